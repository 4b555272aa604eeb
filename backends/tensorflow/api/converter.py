"""Convert a Keras 3 model into a ``nengo.Network``, with NengoDL's ``Converter`` API.

Every layer with a native handler (:mod:`.converter_layers`) becomes nengo objects
that *any* nhw target can build: connection transforms (``Dense``, ``Sparse``,
``Convolution``, ``ConvolutionTranspose``, index views) into passthrough Nodes, and
activations as Ensembles driven at ``.neurons`` (``gain = scale``, ``amplitude = 1 /
scale``, see :mod:`.converter_activations`). Layers without a handler (or in a
configuration a handler cannot express) become, with ``allow_fallback=True``, a
:class:`.tensor_node.TensorNode` running the Keras layer itself (only the
``tensorflow`` target runs those; ``Converter.fallbacks`` names them), or an error
naming the layer. Users add converters for their own layer classes with
:meth:`Converter.register` and :class:`.converter_user.LayerConverter`.

As in NengoDL, only the Keras kernels and biases are trainable in the converted
network (``verify(training=True)`` checks that training both gives the same result).
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import nengo
import numpy as np

from nhw.backends.tensorflow._tf import keras  # the quiet import: TensorFlow's start-up lines stay hidden

from nhw.backends.tensorflow.api.converter_activations import (  # noqa: F401  (re-exported names)
    DEFAULT_ACTIVATIONS, ActivationSwaps, resolve, scale_neurons)
from nhw.backends.tensorflow.api.converter_base import (  # noqa: F401
    ConversionError, InputShapeError, KerasTensorDict, LayerNotConvertibleError, SharedWeightsError, VerificationError,
    _NotNative, _Out, is_keras_tensor)
from nhw.backends.tensorflow.api.converter_layers import LAYERS, MAX_SPARSE_NNZ, handler_for  # noqa: F401
from nhw.backends.tensorflow.api.converter_user import LayerConverter
from nhw.backends.tensorflow.api.converter_verify import verify_converter
from nhw.backends.tensorflow.api.tensor_node import TensorNode
from nhw.backends.tensorflow.settings import configure_settings


class Converter:
    """Convert a Keras model to a nengo network.

    Parameters
    ----------
    model
        A built ``keras.Sequential`` or functional ``keras.Model`` (nested models too).
    allow_fallback
        Run layers without a native nengo equivalent as TensorNodes wrapping the Keras
        layer (with a warning; only the ``tensorflow`` target runs those); ``False``:
        such a layer is a :class:`.LayerNotConvertibleError` (a ``TypeError``) naming it.
    inference_only
        Convert layers whose *inference* the nengo network can repeat but whose
        training it cannot: ``BatchNormalization`` (folded to its moving statistics)
        and ``Dense``/``Conv`` layers with regularisers or constraints. Otherwise those
        layers fall back to TensorNodes (or are errors without ``allow_fallback``).
    max_to_avg_pool
        Convert ``MaxPooling``/``GlobalMaxPooling`` layers to average pooling (this
        changes the network's output; otherwise they are not native).
    split_shared_weights
        A layer with weights applied to several inputs gets one independent copy of
        its weights per application (otherwise a :class:`.SharedWeightsError`).
    swap_activations
        Replace activations: keys are Keras activations (functions or names) or nengo
        neuron types, values Keras activations or nengo neuron types, e.g.
        ``{keras.activations.relu: nengo.SpikingRectifiedLinear()}``,
        ``{nengo.RectifiedLinear(): nengo.SpikingRectifiedLinear()}`` or
        ``{keras.activations.elu: keras.activations.relu}``. A key no layer uses is
        reported with a warning.
    scale_firing_rates
        A number for every neuron layer, or ``{keras layer (or its name): number}``:
        neuron inputs are multiplied by it and outputs divided by it, so networks of
        ReLU-like neurons compute the same while spiking ones fire more (other types
        are skewed, with a warning).
    synapse
        Synapse on every connection and output probe leaving neurons (``None``: none).
    temporal_model
        The Keras model has a time axis after the batch axis (``(batch, n_steps,
        ...)``): every layer is converted for one time step.
    sparse_convolutions
        nhw option: write convolutions and average pooling out as ``Sparse``
        transforms instead of ``nengo.Convolution`` (for targets without convolution,
        such as loihi-emu); convolution biases then sit on each neuron.

    Attributes
    ----------
    model : keras.Model
        The model as given.
    net : nengo.Network
    inputs : KerasTensorDict
        Keras input tensors (and input layers) -> input ``Node`` (zeros; set
        ``output`` or feed data through a simulator).
    outputs : KerasTensorDict
        Keras output tensors (and the layers producing them) -> ``Probe``.
    layers : KerasTensorDict
        Keras layer output tensors (and layers called once) -> the nengo object
        producing that output.
    fallbacks : list of str
        Names of the layers that became TensorNodes (empty: the network is native and
        every target can run it).
    verify_error : float or None
        The largest difference found by the last :meth:`verify`.
    """

    #: NengoDL's name for the dict type of :attr:`inputs`, :attr:`outputs` and :attr:`layers`
    KerasTensorDict = KerasTensorDict

    #: Keras layer class -> user :class:`.LayerConverter` (see :meth:`register`);
    #: nhw's own handlers are :data:`.converter_layers.LAYERS`
    converters: dict[type, type] = {}

    def __init__(
        self,
        model: keras.Model,
        allow_fallback: bool = True,
        inference_only: bool = False,
        max_to_avg_pool: bool = False,
        split_shared_weights: bool = False,
        swap_activations: dict | None = None,
        scale_firing_rates: float | dict | None = None,
        synapse: float | nengo.synapses.Synapse | None = None,
        temporal_model: bool = False,
        sparse_convolutions: bool = False,
    ) -> None:
        if not isinstance(model, keras.Model):
            raise ConversionError(f"Converter: expected a keras.Model, got {type(model).__name__}")
        self.model = model
        self.allow_fallback = allow_fallback
        self.inference_only = inference_only
        self.max_to_avg_pool = max_to_avg_pool
        self.split_shared_weights = split_shared_weights
        self.swap_activations = ActivationSwaps(swap_activations)
        self.scale_firing_rates = scale_firing_rates
        self.synapse = synapse
        self.temporal_model = temporal_model
        self.sparse_convolutions = sparse_convolutions
        #: leading axes of every Keras shape that are not part of one step's signal
        self.n_prefix = 2 if temporal_model else 1
        self.inputs = KerasTensorDict()
        self.outputs = KerasTensorDict()
        self.layers = KerasTensorDict()
        self.fallbacks: list[str] = []
        self.verify_error: float | None = None
        self._calls: dict[int, int] = {}
        self._layer_converters: dict[int, LayerConverter] = {}
        self._node = None  # the Keras call node being converted
        self.net = nengo.Network(label=model.name)
        with self.net:
            configure_settings(trainable=None, inference_only=inference_only)
            ins = [self._input(tensor) for tensor in model.inputs]
            outs = self._walk(model, ins)
            for tensor, out in zip(model.outputs, outs):
                synapse = self.synapse if isinstance(out.obj, nengo.ensemble.Neurons) else None
                # unlabelled, as NengoDL leaves them: the simulator names their metrics
                # "probe_accuracy", "probe_1_loss", ... (what the notebooks read)
                self.outputs[tensor] = nengo.Probe(out.obj, synapse=synapse)
        unused = self.swap_activations.unused()
        if unused:
            warnings.warn(f"Converter: swap_activations keys {unused} match no layer of model "
                          f"'{model.name}'", stacklevel=2)

    def _input(self, tensor) -> _Out:
        shape = tuple(tensor.shape[self.n_prefix:])
        if any(s is None for s in shape):
            raise InputShapeError(
                f"Converter: input '{tensor.name}' has shape {tuple(tensor.shape)}; every axis after "
                f"{'batch and time' if self.temporal_model else 'batch'} must be fixed (a variable "
                "number of time steps: convert with temporal_model=True)")
        node = nengo.Node(np.zeros(int(np.prod(shape))), label=getattr(tensor, "name", "input"))
        self.inputs[tensor] = node
        layer = tensor._keras_history[0]
        if isinstance(layer, keras.layers.InputLayer):
            self.inputs[layer] = node
        self.net.config[node].trainable = False
        return _Out(node, shape)

    # --- graph traversal ---------------------------------------------------------
    def _walk(self, model: keras.Model, ins: list[_Out]) -> list[_Out]:
        graph = getattr(model, "_functional", None) if isinstance(model, keras.Sequential) else model
        if graph is None or not hasattr(graph, "_nodes_by_depth"):
            raise ConversionError(f"model '{model.name}' has no layer graph (build it on a keras.Input)")
        values = {id(t): out for t, out in zip(keras.tree.flatten(graph.inputs), ins)}
        for depth in sorted(graph._nodes_by_depth, reverse=True):
            for node in graph._nodes_by_depth[depth]:
                layer = node.operation
                if isinstance(layer, keras.layers.InputLayer):
                    continue
                if any(is_keras_tensor(v) for v in keras.tree.flatten(node.arguments.kwargs)):
                    raise ConversionError(f"layer '{layer.name}' ({type(layer).__name__}) takes tensors as "
                                          "keyword arguments, which the converter cannot follow")
                args = [values[id(t)] for t in node.input_tensors]
                positional = len(node.arguments.args) > 1  # layer(a, b) rather than layer([a, b])
                outs = self._apply(layer, args, node, positional)
                for tensor, out in zip(node.output_tensors, outs):
                    values[id(tensor)] = out
        return [values[id(t)] for t in keras.tree.flatten(graph.outputs)]

    def _apply(self, layer, ins: list[_Out], node, positional: bool = False) -> list[_Out]:
        user = self._user_converter_class(layer)
        if isinstance(layer, keras.Model) and user is None:
            outs = self._walk(layer, ins)
        else:
            self._count_call(layer, user)
            previous, self._node = self._node, node
            try:
                outs = [self._convert_layer(layer, ins, node, user, positional)]
            finally:
                self._node = previous
        self._record(layer, node, outs)
        return outs

    def _convert_layer(self, layer, ins, node, user, positional) -> _Out:
        try:
            if user is not None:
                ok, msg = user.convertible(layer, self)
                if not ok:
                    if not user.allow_fallback:
                        raise LayerNotConvertibleError(f"layer '{layer.name}': {msg}; its converter "
                                                       f"{user.__name__} allows no TensorNode fallback")
                    raise _NotNative(f"layer '{layer.name}': {msg}")
                return self._run_user(layer, ins, node, user)
            handler = handler_for(layer)
            if handler is None:
                raise _NotNative(f"layer '{layer.name}' ({type(layer).__name__}) has no native nengo equivalent; "
                                 f"supported: {', '.join(sorted(c.__name__ for c in LAYERS))}")
            return handler(self, layer, ins)
        except _NotNative as e:
            if not self.allow_fallback:
                raise LayerNotConvertibleError(
                    f"{e} (allow_fallback=False: set allow_fallback=True to run it in a TensorNode, or "
                    "register a LayerConverter for this layer type)") from None
            warnings.warn(f"{e}; falling back to a TensorNode", stacklevel=4)
            return self._fallback(layer, ins, positional)

    def _count_call(self, layer, user) -> None:
        calls = self._calls.get(id(layer), 0) + 1
        self._calls[id(layer)] = calls
        has_weights = user.has_weights if user is not None else bool(layer.weights)
        if calls > 1 and has_weights and not self.split_shared_weights:
            raise SharedWeightsError(
                f"layer '{layer.name}' ({type(layer).__name__}) is applied {calls} times and has weights; "
                "nengo objects cannot share weights: convert with split_shared_weights=True for one "
                "independent copy per application (equal at first, trained separately)")

    def _record(self, layer, node, outs: list[_Out]) -> None:
        objs = [o.obj for o in outs]
        for tensor, obj in zip(node.output_tensors, objs):
            self.layers[tensor] = obj
        value = objs[0] if len(objs) == 1 else objs
        if self._calls.get(id(layer), 0) <= 1:
            self.layers[layer] = value
        elif KerasTensorDict._norm(layer) in self.layers._values:
            del self.layers[layer]  # several calls: only their output tensors identify them

    def _fallback(self, layer, ins: list[_Out], positional: bool = False) -> _Out:
        """A TensorNode running the Keras layer itself (several inputs: concatenated)."""
        if len(ins) == 1:
            func, shape_in = layer, ins[0].shape
        else:
            func = _SplitInputs(layer, [i.shape for i in ins], positional)
            shape_in = (sum(i.size for i in ins),)
        try:
            node = TensorNode(func, shape_in=shape_in, pass_time=False, label=layer.name)
        except Exception as e:
            raise ConversionError(f"layer '{layer.name}' ({type(layer).__name__}): no native nengo "
                                  f"equivalent, and it cannot run as a TensorNode either: {e}") from e
        start = 0
        for src in ins:
            self._connect(src, node if len(ins) == 1 else node[start:start + src.size])
            start += src.size
        self.fallbacks.append(layer.name)
        return _Out(node, tuple(node.shape_out))

    # --- user converters -----------------------------------------------------------
    @classmethod
    def register(cls, keras_layer: type) -> Callable[[type], type]:
        """Decorator registering a :class:`.LayerConverter` subclass for a Keras layer class.

        Parameters
        ----------
        keras_layer
            The Keras layer class (exact class first; subclasses without their own
            converter use their nearest registered ancestor's). A registration
            replaces an earlier one for the same class, with a warning.
        """

        def register_converter(convert_cls: type) -> type:
            if not (isinstance(convert_cls, type) and issubclass(convert_cls, LayerConverter)):
                raise ConversionError(f"Converter.register({keras_layer.__name__}): expected a LayerConverter "
                                      f"subclass, got {convert_cls!r}")
            if keras_layer in cls.converters:
                warnings.warn(f"Converter.register: layer class {keras_layer.__name__} already has a "
                              f"converter ({cls.converters[keras_layer].__name__}); replacing it", stacklevel=2)
            cls.converters[keras_layer] = convert_cls
            return convert_cls

        return register_converter

    def _user_converter_class(self, layer) -> type | None:
        for klass in type(layer).__mro__:
            if klass in self.converters:
                return self.converters[klass]
        return None

    def get_converter(self, layer) -> LayerConverter | None:
        """The :class:`.LayerConverter` instance converting ``layer`` (None: a built-in handler)."""
        user = self._user_converter_class(layer)
        if user is None:
            return None
        if id(layer) not in self._layer_converters:
            self._layer_converters[id(layer)] = user(layer, self)
        return self._layer_converters[id(layer)]

    def _run_user(self, layer, ins: list[_Out], node, user) -> _Out:
        converter = self.get_converter(layer)
        node_id = layer._inbound_nodes.index(node)
        converter._inputs[node_id] = ins
        obj = converter.convert(node_id)
        if not isinstance(obj, (nengo.Node, nengo.ensemble.Neurons, nengo.base.ObjView, nengo.Ensemble)):
            raise ConversionError(f"{user.__name__}.convert for layer '{layer.name}' returned {obj!r}; "
                                  "expected the nengo Node, TensorNode or Neurons holding its output")
        shape = self.out_shape(layer, ins)
        return _Out(obj, shape, isinstance(obj, nengo.ensemble.Neurons))

    # --- building blocks -------------------------------------------------------------
    def out_shape(self, layer, ins: list[_Out]) -> tuple[int, ...]:
        """The output shape (one step, no batch axis) of the call being converted."""
        node = self._node
        if node is not None and node.operation is layer and len(node.output_tensors) == 1:
            shape = tuple(node.output_tensors[0].shape[self.n_prefix:])
        else:
            prefix = (None,) * self.n_prefix
            shapes = [prefix + tuple(i.shape) for i in ins]
            shape = tuple(layer.compute_output_shape(shapes if len(shapes) > 1 else shapes[0])[self.n_prefix:])
        if any(s is None for s in shape):
            raise ConversionError(f"layer '{layer.name}': output shape {shape} is not fixed")
        return tuple(int(s) for s in shape)

    def _connect(self, src: _Out, post, transform=1.0, trainable: bool = False) -> nengo.Connection:
        synapse = self.synapse if src.spiking_source else None
        conn = nengo.Connection(src.obj, post, transform=transform, synapse=synapse)
        self.net.config[conn].trainable = trainable
        return conn

    def _constant(self, post, value: np.ndarray, label: str, trainable: bool) -> None:
        """``value`` added to ``post``: trainable as the weights of a one-element Node."""
        if trainable:
            one = nengo.Node([1.0], label=f"{label}.bias")
            conn = nengo.Connection(one, post, transform=np.asarray(value, float).reshape(-1, 1), synapse=None)
        else:
            one = nengo.Node(np.asarray(value, float).reshape(-1), label=f"{label}.bias")
            conn = nengo.Connection(one, post, synapse=None)
        self.net.config[one].trainable = False
        self.net.config[conn].trainable = trainable

    def _bias(self, post, bias: np.ndarray, shape: tuple, axis: int, trainable: bool,
              label: str) -> np.ndarray | None:
        """Add ``bias`` (full, or per channel along ``axis``) to ``post``.

        Returns the full bias instead when the caller should put it on its neurons.
        """
        size = int(np.prod(shape))
        if bias.size != size:
            if trainable and not self.sparse_convolutions and bias.size == shape[axis]:
                # one trainable value per channel, as in Keras, broadcast by an index view
                relay = nengo.Node(size_in=bias.size, label=f"{label}.bias_relay")
                self.net.config[relay].trainable = False
                self._constant(relay, bias, label, trainable=True)
                view = [1] * len(shape)
                view[axis] = bias.size
                index = np.broadcast_to(np.arange(bias.size).reshape(view), shape).reshape(-1)
                # (nengo multiplies connections into neurons by their gain: the scale)
                self._connect(_Out(relay[index], shape), post)
                return None
            view = [1] * len(shape)
            view[axis] = bias.size
            bias = np.broadcast_to(bias.reshape(view), shape).reshape(-1)
        return bias

    def _output(self, layer, ins: list[_Out], transforms: list, shape, bias=None, activation=None,
                negative_slope=None, trainable: bool = False, bias_axis: int = -1) -> _Out:
        """Linear layer output (+ optional bias), then an activation (default: the layer's).

        ``trainable``: the transforms and the bias are the layer's Keras weights.
        """
        shape = tuple(shape)
        size = int(np.prod(shape))
        act = activation if activation is not None else getattr(layer, "activation", None)
        neuron_type, unresolved = resolve(self.swap_activations, act, negative_slope) if act is not None \
            else (None, None)
        if unresolved is not None and not self.allow_fallback:
            raise _NotNative(f"layer '{layer.name}': activation '{_name(unresolved)}' has no nengo neuron type "
                             f"(supported: {', '.join(DEFAULT_ACTIVATIONS)}; or map it with swap_activations)")
        # a trainable (Keras) bias is kept even at zero: training moves it
        has_bias = bias is not None and (trainable or np.any(np.asarray(bias) != 0))
        if neuron_type is None:
            if unresolved is not None and len(ins) == 1 and not has_bias and _is_identity(transforms[0]):
                out = ins[0]  # e.g. Activation("softmax"): no linear part
            else:
                node = nengo.Node(size_in=size, label=layer.name)
                self.net.config[node].trainable = False
                for src, t in zip(ins, transforms):
                    self._connect(src, node, t, trainable=trainable and not _is_identity(t))
                if has_bias:
                    full = self._bias(node, np.asarray(bias, float), shape, bias_axis, trainable, layer.name)
                    if full is not None:
                        self._constant(node, full, layer.name, trainable)
                out = _Out(node, shape)
            if unresolved is None:
                return out
            warnings.warn(f"layer '{layer.name}': activation '{_name(unresolved)}' has no nengo neuron type; "
                          "falling back to a TensorNode", stacklevel=3)
            func = keras.layers.Activation(unresolved, name=f"{layer.name}_activation")
            tnode = TensorNode(func, shape_in=shape, shape_out=shape, pass_time=False,
                               label=f"{layer.name}.activation")
            self._connect(out, tnode)
            self.fallbacks.append(layer.name)
            return _Out(tnode, shape)
        scale = self._scale(layer)
        neuron_type = scale_neurons(neuron_type, scale, layer.name)
        ens = nengo.Ensemble(size, 1, neuron_type=neuron_type, gain=np.full(size, scale),
                             bias=np.zeros(size), label=layer.name)
        self.net.config[ens].trainable = False  # encoders: not a Keras weight
        bias_trainable = False
        if has_bias:
            full = self._bias(ens.neurons, np.asarray(bias, float), shape, bias_axis, trainable, layer.name)
            if full is not None:
                ens.bias = full * scale
                bias_trainable = trainable
        self.net.config[ens.neurons].trainable = bias_trainable
        for src, t in zip(ins, transforms):
            self._connect(src, ens.neurons, t, trainable=trainable and not _is_identity(t))
        return _Out(ens.neurons, shape, spiking_source=True)

    def _scale(self, layer) -> float:
        s = self.scale_firing_rates
        if s is None:
            return 1.0
        value = s.get(layer, s.get(layer.name, 1.0)) if isinstance(s, dict) else s
        if value is None:
            return 1.0
        if not np.isscalar(value) or value <= 0:
            raise ConversionError(f"layer '{layer.name}': scale_firing_rates must be a positive number, got {value!r}")
        return float(value)

    # --- checking ----------------------------------------------------------------------
    def verify(self, training: bool = False, inputs: list | np.ndarray | None = None, atol: float = 1e-8,
               rtol: float = 1e-5, simulator: Callable | None = None, seed: int = 0) -> bool:
        """Check that the converted network computes what the Keras model computes.

        Parameters
        ----------
        training
            Also train both (3 epochs of SGD(0.1) on a mean-squared error to targets of
            ones; this changes the Keras model's weights) and compare after training.
            The numbers of trainable parameters must match.
        inputs
            One array per model input, ``(batch, ...)`` (``(batch, n_steps, ...)`` for a
            temporal model); default: ones, batch 2 (and 10 steps).
        atol, rtol
            ``|keras - nengo| <= atol + rtol * |nengo|`` must hold for every output value.
        simulator
            nhw option: the Simulator class to run (default: nhw's TensorFlow
            Simulator, with the batch as its minibatch); another target (e.g.
            ``nengo.Simulator``) runs one input at a time, without ``training``.
        seed
            nhw option: the Simulator's seed.

        Returns
        -------
        bool
            True; ``self.verify_error`` holds the largest absolute difference.

        Raises
        ------
        VerificationError
            (a ``ValueError``) if some output differs, or the parameter counts differ.
        """
        return verify_converter(self, training, inputs, atol, rtol, simulator, seed)


def _name(fn: Any) -> str:
    from nhw.backends.tensorflow.api.converter_activations import activation_name

    return activation_name(fn)


def _is_identity(transform) -> bool:
    return isinstance(transform, (int, float)) and transform == 1


class _SplitInputs(keras.layers.Layer):
    """Runs a several-input Keras layer on one flat, concatenated input (a TensorNode's).

    The wrapped layer is an attribute, so Keras tracks its weights (they train).
    """

    def __init__(self, layer, shapes: list[tuple], positional: bool = False) -> None:
        super().__init__(name=f"{layer.name}_inputs")
        self.layer = layer
        self.shapes = [tuple(s) for s in shapes]
        self.positional = positional

    def call(self, x, training=None):
        parts, start = [], 0
        for shape in self.shapes:
            size = int(np.prod(shape))
            parts.append(keras.ops.reshape(x[:, start:start + size], (-1, *shape)))
            start += size
        return self.layer(*parts) if self.positional else self.layer(parts)

    def compute_output_shape(self, input_shape):
        shapes = [(input_shape[0], *s) for s in self.shapes]
        return self.layer.compute_output_shape(*shapes if self.positional else shapes)

"""Convert a Keras 3 model into a ``nengo.Network``.

Every layer with a native handler becomes nengo objects that *any* nhw target can build:

* ``Dense``, ``Conv1D``/``Conv2D`` (strides, padding, dilation, groups),
  ``DepthwiseConv2D``, ``Conv1DTranspose``/``Conv2DTranspose`` (strides, padding,
  ``output_padding``), ``AveragePooling1D/2D``, ``GlobalAveragePooling1D/2D/3D``,
  ``BatchNormalization`` (folded to a per-channel scale and shift) -> connection
  transforms (``Dense``, ``Sparse``, ``Convolution``, ``ConvolutionTranspose``) into a
  passthrough ``Node``, with a constant ``Node`` for biases;
* ``Conv3D``, ``Conv3DTranspose``, ``AveragePooling3D`` -> a ``Sparse`` transform
  (nengo's ``Convolution`` accepts 3 spatial dimensions, but no nengo builder runs
  it, so the convolution is written out as a sparse matrix);
* activations (``Activation``, ``ReLU``, ``LeakyReLU``, a layer's own ``activation``)
  -> an ``Ensemble`` driven at ``.neurons`` with ``gain = scale``, ``bias = layer bias
  x scale`` and output ``amplitude = 1 / scale`` (``leaky_relu`` ->
  :class:`.neurons.LeakyReLU` with the layer's ``negative_slope``);
* ``Flatten``, ``Reshape``, ``Dropout``/``SpatialDropout``, ``GaussianNoise``,
  ``GaussianDropout``, ``AlphaDropout``, ``ActivityRegularization`` (inference) ->
  nothing (nengo signals are flat, in Keras' row-major channels-last order);
* ``Add`` -> several connections into one passthrough ``Node``; ``Concatenate`` ->
  connections into index slices; ``MaxPooling1D/2D/3D`` -> average pooling when
  ``max_to_avg_pool=True``; nested models are flattened.

Anything else (a layer without a handler, a configuration a handler cannot express,
e.g. ``MaxPooling`` without ``max_to_avg_pool`` or an activation such as ``softmax``
without a nengo neuron type) becomes, with ``allow_fallback=True``, a
:class:`.tensor_node.TensorNode` that runs the Keras layer itself (several inputs are
concatenated into the node and split again inside it); such networks run only on the
``tensorflow`` target, and ``Converter.fallbacks`` names those layers. With
``allow_fallback=False`` they are errors naming the layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import nengo
import numpy as np
import scipy.sparse

from nhw.backends.tensorflow._tf import keras  # the quiet import: TensorFlow's start-up lines stay hidden

from nhw.errors import UnsupportedFeatureError
from nhw.backends.tensorflow.builders.sparse_conv import sparse_convolution
from nhw.backends.neurons import LeakyReLU, SpikingLeakyReLU
from nhw.backends.tensorflow.api.tensor_node import TensorNode


class ConversionError(UnsupportedFeatureError):
    """A Keras model (or one of its layers) that cannot be converted."""


class _NotNative(ConversionError):
    """This layer (configuration) has no native nengo equivalent: a TensorNode may run it."""


#: largest number of non-zeros of a convolution written out as a Sparse transform
MAX_SPARSE_NNZ = 20_000_000


@dataclass(frozen=True)
class _Out:
    """The nengo object holding one Keras tensor, and that tensor's shape."""

    obj: Any
    shape: tuple[int, ...]
    spiking_source: bool = False  # output of neurons: gets the converter's synapse

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


#: Keras activation name -> default nengo neuron type (None: identity).
DEFAULT_ACTIVATIONS: dict[str, nengo.neurons.NeuronType | None] = {
    "linear": None,
    "relu": nengo.RectifiedLinear(),
    "sigmoid": nengo.Sigmoid(tau_ref=1),
    "tanh": nengo.Tanh(tau_ref=1),
    "leaky_relu": LeakyReLU(negative_slope=0.2),  # keras.activations.leaky_relu's default
}

#: Neuron types whose rate is homogeneous in the input, so rates can be rescaled
#: (LeakyReLU and SpikingLeakyReLU are subclasses).
_SCALABLE = (nengo.RectifiedLinear, nengo.SpikingRectifiedLinear)
_LEAKY = (LeakyReLU, SpikingLeakyReLU)


def _with(neuron_type, **params):
    """A copy of ``neuron_type`` with some parameters changed (slope, amplitude)."""
    kwargs = {"amplitude": neuron_type.amplitude}
    if isinstance(neuron_type, _LEAKY):
        kwargs["negative_slope"] = neuron_type.negative_slope
    kwargs.update(params)
    return type(neuron_type)(**kwargs)


def _activation_name(fn) -> str:
    if isinstance(fn, str):
        return fn
    try:
        name = keras.activations.serialize(fn)
    except Exception:  # custom callables have no registered name
        name = getattr(fn, "__name__", repr(fn))
    return name if isinstance(name, str) else name.get("config", repr(fn))


class Converter:
    """Convert a Keras model to a nengo network.

    Parameters
    ----------
    model
        A built ``keras.Sequential`` or functional ``keras.Model`` (nested models too).
    swap_activations
        Replace activations: keys are Keras activations (function or name) or nengo
        neuron types, values nengo neuron types, e.g.
        ``{"relu": nengo.SpikingRectifiedLinear()}`` or
        ``{"leaky_relu": SpikingLeakyReLU()}`` (leaky types keep the Keras layer's
        ``negative_slope``; the swapped type gives only the class and amplitude).
    scale_firing_rates
        A number for every neuron layer, or ``{layer name or layer: number}``: neuron
        inputs are multiplied by it and outputs divided by it, so rate networks are
        unchanged while spiking ones fire more (and approximate better).
    synapse
        Synapse on every connection leaving neurons (``None``: no filtering).
    max_to_avg_pool
        Convert ``MaxPooling`` layers to average pooling (otherwise an error).
    inference_only
        Accepted for API compatibility: the converted network is always the
        inference-mode graph (``Dropout`` is the identity, ``BatchNormalization`` uses
        its moving statistics).
    allow_fallback
        Run layers without a native nengo equivalent as TensorNodes wrapping the Keras
        layer (only the ``tensorflow`` target runs those); ``False``: such a layer is a
        ``ConversionError`` naming it.
    sparse_convolutions
        Write convolutions and average pooling out as ``Sparse`` transforms instead of
        ``nengo.Convolution`` (for targets without convolution, such as loihi-emu).

    Attributes
    ----------
    net : nengo.Network
    inputs : dict
        Keras input layers *and* input tensors -> input ``Node`` (zeros; set
        ``output`` or feed data through a simulator).
    outputs : dict
        Keras output layers *and* output tensors -> ``Probe``.
    layers : dict
        Keras layer -> the nengo object producing its output.
    fallbacks : list of str
        Names of the layers that became TensorNodes (empty: the network is native and
        every target can run it).
    """

    def __init__(
        self,
        model: keras.Model,
        swap_activations: dict | None = None,
        scale_firing_rates: float | dict | None = None,
        synapse: float | nengo.synapses.Synapse | None = None,
        max_to_avg_pool: bool = False,
        inference_only: bool = False,
        allow_fallback: bool = True,
        sparse_convolutions: bool = False,
    ) -> None:
        if not isinstance(model, keras.Model):
            raise ConversionError(f"Converter: expected a keras.Model, got {type(model).__name__}")
        self.model = model
        self.swap = {self._swap_key(k): v for k, v in (swap_activations or {}).items()}
        self.scale_firing_rates = scale_firing_rates
        self.synapse = synapse
        self.max_to_avg_pool = max_to_avg_pool
        self.inference_only = inference_only
        self.allow_fallback = allow_fallback
        self.sparse_convolutions = sparse_convolutions
        self.inputs: dict = {}
        self.outputs: dict = {}
        self.layers: dict = {}
        self.fallbacks: list[str] = []
        self.net = nengo.Network(label=model.name)
        with self.net:
            ins = []
            for tensor in model.inputs:
                shape = tuple(int(s) for s in tensor.shape[1:])
                node = nengo.Node(np.zeros(int(np.prod(shape))), label=getattr(tensor, "name", "input"))
                self.inputs[tensor] = node
                ins.append(_Out(node, shape))
            for layer in model.layers:
                if isinstance(layer, keras.layers.InputLayer):
                    self.inputs[layer] = self.inputs[layer.output]
            outs = self._walk(model, ins)
            for tensor, out in zip(model.outputs, outs):
                probe = nengo.Probe(out.obj, label=f"{getattr(tensor, 'name', 'output')}_probe")
                self.outputs[tensor] = probe
            for layer in model.layers:
                for tensor, probe in zip(model.outputs, list(self.outputs.values())):
                    if _produces(layer, tensor):
                        self.outputs[layer] = probe

    # --- graph traversal ---------------------------------------------------------
    def _walk(self, model: keras.Model, ins: list[_Out]) -> list[_Out]:
        if isinstance(model, keras.Sequential):
            (cur,) = ins
            for layer in model.layers:
                (cur,) = self._apply(layer, [cur])
            return [cur]
        cfg = model.get_config()
        tensors: dict[tuple, _Out] = {}
        for history, out in zip(_histories(cfg["input_layers"]), ins):
            tensors[history] = out
        for layer_cfg in cfg["layers"]:
            if layer_cfg["class_name"] == "InputLayer":
                continue
            layer = model.get_layer(layer_cfg["name"])
            for node_index, inbound in enumerate(layer_cfg["inbound_nodes"]):
                args = [tensors[h] for h in _histories(inbound["args"])]
                if _histories(inbound.get("kwargs", {})):
                    raise ConversionError(f"layer '{layer.name}' ({type(layer).__name__}) takes tensors as "
                                          "keyword arguments, which the converter cannot follow")
                positional = len(inbound["args"]) > 1  # layer(a, b) rather than layer([a, b])
                for k, out in enumerate(self._apply(layer, args, positional)):
                    tensors[(layer_cfg["name"], node_index, k)] = out
        return [tensors[h] for h in _histories(cfg["output_layers"])]

    def _apply(self, layer, ins: list[_Out], positional: bool = False) -> list[_Out]:
        if isinstance(layer, keras.Model):
            outs = self._walk(layer, ins)
        else:
            handler = next((h for cls, h in LAYERS.items() if isinstance(layer, cls)), None)
            try:
                if handler is None:
                    raise _NotNative(
                        f"layer '{layer.name}' ({type(layer).__name__}) has no native nengo equivalent; "
                        f"supported: {', '.join(sorted(c.__name__ for c in LAYERS))}"
                    )
                outs = [handler(self, layer, ins)]
            except _NotNative as e:
                if not self.allow_fallback:
                    raise ConversionError(f"{e} (allow_fallback=False)") from None
                outs = [self._fallback(layer, ins, positional)]
        self.layers[layer] = outs[0].obj if len(outs) == 1 else [o.obj for o in outs]
        return outs

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

    # --- building blocks -------------------------------------------------------------
    def _connect(self, src: _Out, post, transform=1.0) -> None:
        synapse = self.synapse if src.spiking_source else None
        nengo.Connection(src.obj, post, transform=transform, synapse=synapse)

    def _bias(self, post, bias: np.ndarray) -> None:
        if np.any(bias != 0):
            nengo.Connection(nengo.Node(bias, label=f"{post.label}.bias"), post, synapse=None)

    def _output(self, layer, ins: list[_Out], transforms: list, shape, bias=None, activation=None,
                negative_slope=None) -> _Out:
        """Linear layer output (+ optional bias), then an activation (default: the layer's)."""
        size = int(np.prod(shape))
        act = activation if activation is not None else getattr(layer, "activation", None)
        fallback_act = None
        try:
            neuron_type, scale = self._neurons(layer, act, negative_slope) if act is not None else (None, 1.0)
        except _NotNative:
            if not self.allow_fallback:
                raise
            # the linear part stays native; the activation runs in a TensorNode
            neuron_type, scale, fallback_act = None, 1.0, act
        if bias is None:
            bias = np.zeros(size)
        else:  # already flat and complete, or per channel (broadcast over positions)
            bias = np.asarray(bias, float)
            bias = bias.reshape(-1) if bias.size == size else np.broadcast_to(bias, shape).reshape(-1)
        if neuron_type is None:
            if fallback_act is not None and len(ins) == 1 and np.all(bias == 0) and _is_identity(transforms[0]):
                out = ins[0]  # e.g. Activation("softmax"): no linear part
            else:
                node = nengo.Node(size_in=size, label=layer.name)
                for src, t in zip(ins, transforms):
                    self._connect(src, node, t)
                self._bias(node, bias)
                out = _Out(node, tuple(shape))
            if fallback_act is None:
                return out
            func = keras.layers.Activation(fallback_act, name=f"{layer.name}_activation")
            tnode = TensorNode(func, shape_in=tuple(shape), shape_out=tuple(shape), pass_time=False,
                               label=f"{layer.name}.activation")
            self._connect(out, tnode)
            self.fallbacks.append(layer.name)
            return _Out(tnode, tuple(shape))
        ens = nengo.Ensemble(size, 1, neuron_type=neuron_type, gain=np.full(size, scale),
                             bias=bias * scale, label=layer.name)
        for src, t in zip(ins, transforms):
            self._connect(src, ens.neurons, t)
        return _Out(ens.neurons, tuple(shape), spiking_source=True)

    def _neurons(self, layer, activation, negative_slope=None) -> tuple[nengo.neurons.NeuronType | None, float]:
        name = _activation_name(activation)
        if name not in DEFAULT_ACTIVATIONS and name not in self.swap:
            raise _NotNative(
                f"layer '{layer.name}': activation '{name}' has no nengo neuron type "
                f"(supported: {', '.join(DEFAULT_ACTIVATIONS)}; or map it with swap_activations)"
            )
        neuron_type = self.swap.get(name, DEFAULT_ACTIVATIONS.get(name))
        neuron_type = self.swap.get(type(neuron_type), neuron_type)
        if neuron_type is None:
            return None, 1.0
        if name == "leaky_relu" and isinstance(neuron_type, _LEAKY):
            # Keras' slope: the layer's, else keras.activations.leaky_relu's default
            slope = 0.2 if negative_slope is None else float(negative_slope)
            neuron_type = _with(neuron_type, negative_slope=slope)
        scale = self._scale(layer)
        if scale != 1.0:
            if not isinstance(neuron_type, _SCALABLE):
                raise ConversionError(
                    f"layer '{layer.name}': scale_firing_rates needs a neuron type whose rate is "
                    f"proportional to its input (RectifiedLinear, SpikingRectifiedLinear, LeakyReLU, "
                    f"SpikingLeakyReLU), got {type(neuron_type).__name__}"
                )
            neuron_type = _with(neuron_type, amplitude=neuron_type.amplitude / scale)
        return neuron_type, scale

    def _scale(self, layer) -> float:
        s = self.scale_firing_rates
        if s is None:
            return 1.0
        if isinstance(s, dict):
            value = s.get(layer, s.get(layer.name, 1.0))
        else:
            value = s
        if not np.isscalar(value) or value <= 0:
            raise ConversionError(f"layer '{layer.name}': scale_firing_rates must be a positive number, got {value!r}")
        return float(value)

    @staticmethod
    def _swap_key(key):
        if isinstance(key, nengo.neurons.NeuronType):
            return type(key)
        return key if isinstance(key, type) else _activation_name(key)

    # --- checking ----------------------------------------------------------------------
    def verify(self, inputs: np.ndarray | None = None, atol: float = 1e-4, seed: int = 0,
               simulator: Callable | None = None) -> float:
        """Check that the converted network computes what the Keras model computes.

        Runs ``simulator`` (default: ``reference``, i.e. ``nengo.Simulator``, or the
        ``tensorflow`` target's Simulator when some layers became TensorNodes) with
        each input presented for one step (the converted rate network has no state)
        and compares with ``model.predict``.  Only for rate networks: spiking neurons
        need time to approximate their rates.

        Returns
        -------
        float
            The largest absolute difference; raises ``ConversionError`` if over ``atol``.
        """
        if any(getattr(e.neuron_type, "spiking", False) for e in self.net.all_ensembles):
            raise ConversionError("verify() needs a rate network; convert without spiking swap_activations")
        if len(self.model.inputs) != 1 or len(self.model.outputs) != 1:
            raise ConversionError("verify() supports models with one input and one output")
        rng = np.random.RandomState(seed)
        shape = tuple(int(s) for s in self.model.inputs[0].shape[1:])
        x = rng.uniform(-1, 1, (4, *shape)) if inputs is None else np.asarray(inputs)
        expected = np.asarray(self.model.predict(x, verbose=0)).reshape(len(x), -1)
        node = self.inputs[self.model.inputs[0]]
        original = node.output
        node.output = nengo.processes.PresentInput(x.reshape(len(x), -1), presentation_time=0.001)
        if simulator is None:
            if self.fallbacks:
                from nhw.backends.tensorflow.simulator import Simulator as simulator
            else:
                simulator = nengo.Simulator
        try:
            with simulator(self.net, progress_bar=False) as sim:
                sim.run_steps(len(x))
                got = sim.data[self.outputs[self.model.outputs[0]]]
        finally:
            node.output = original
        err = float(np.max(np.abs(got - expected)))
        if err > atol:
            raise ConversionError(f"verify(): converted network differs from Keras by {err:.3g} > atol={atol}")
        return err


def _histories(spec) -> list[tuple]:
    """All ``(layer, node_index, tensor_index)`` references inside a config fragment."""
    if isinstance(spec, dict):
        hist = spec.get("config", {}).get("keras_history") if spec.get("class_name") == "__keras_tensor__" else None
        return [tuple(hist)] if hist else [h for v in spec.values() for h in _histories(v)]
    if isinstance(spec, (list, tuple)):
        if len(spec) == 3 and isinstance(spec[0], str) and all(isinstance(i, int) for i in spec[1:]):
            return [tuple(spec)]
        return [h for item in spec for h in _histories(item)]
    return []


def _produces(layer, tensor) -> bool:
    try:
        return layer.output is tensor
    except (AttributeError, ValueError):  # shared layers have no single output
        return False


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


# --- layer handlers ------------------------------------------------------------------------
def _out_shape(layer, ins: list[_Out]) -> tuple[int, ...]:
    shapes = [(None, *i.shape) for i in ins]
    shape = layer.compute_output_shape(shapes if len(shapes) > 1 else shapes[0])
    return tuple(int(s) for s in shape[1:])


def _weights(layer) -> dict[str, np.ndarray]:
    return {w.path.split("/")[-1]: np.asarray(w.numpy()) for w in layer.weights}


def _dense(conv: Converter, layer, ins):
    (src,) = ins
    w = _weights(layer)
    kernel = w["kernel"]
    prefix = int(np.prod(src.shape[:-1]))
    transform = kernel.T if prefix == 1 else nengo.Sparse(
        (prefix * kernel.shape[1], src.size), init=scipy.sparse.kron(scipy.sparse.eye(prefix), kernel.T).tocsr())
    bias = np.tile(w["bias"], prefix) if "bias" in w else None
    return conv._output(layer, ins, [transform], _out_shape(layer, ins), bias)


def _dilate(kernel: np.ndarray, rate: tuple[int, ...]) -> np.ndarray:
    """Insert zeros between kernel taps: a dilated convolution as a plain one."""
    spatial = kernel.shape[: len(rate)]
    out = np.zeros(tuple(r * (k - 1) + 1 for k, r in zip(spatial, rate)) + kernel.shape[len(rate):])
    out[tuple(slice(None, None, r) for r in rate)] = kernel
    return out


def _check_channels_last(layer) -> None:
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        raise _NotNative(f"layer '{layer.name}': only data_format='channels_last' is supported")


def _is_identity(transform) -> bool:
    return isinstance(transform, (int, float)) and transform == 1


def _conv_nnz(layer, in_shape, kernel, out_shape) -> None:
    nnz = int(np.prod(out_shape[:-1]) * np.prod(kernel.shape))
    if nnz > MAX_SPARSE_NNZ:
        raise _NotNative(f"layer '{layer.name}': a {len(in_shape) - 1}-D convolution needs a sparse transform "
                         f"with ~{nnz:.3g} non-zeros (> MAX_SPARSE_NNZ={MAX_SPARSE_NNZ:.3g})")


def _conv_transform(layer, in_shape: tuple, kernel: np.ndarray, strides: tuple, padding: str, groups: int,
                    out_shape: tuple, sparse: bool = False):
    """``nengo.Convolution`` for 1-D/2-D, a ``Sparse`` matrix for 3-D (no nengo builder runs
    3-D) or with ``sparse`` (targets without convolution, such as loihi-emu)."""
    if len(in_shape) <= 3 and not sparse:
        transform = nengo.Convolution(
            n_filters=kernel.shape[-1], input_shape=in_shape, kernel_size=kernel.shape[:-2],
            strides=tuple(strides), padding=padding, channels_last=True, init=kernel, groups=groups)
        shape = tuple(transform.output_shape.shape)
    else:
        _conv_nnz(layer, in_shape, kernel, out_shape)
        matrix, shape = sparse_convolution(in_shape, kernel, strides, padding, groups)
        transform = nengo.Sparse(matrix.shape, init=matrix)
    if shape != out_shape:
        raise _NotNative(f"layer '{layer.name}': nengo's output shape {shape} "
                         f"differs from Keras' {out_shape} (strides with dilation?)")
    return transform


def _conv(conv: Converter, layer, ins):
    (src,) = ins
    _check_channels_last(layer)
    if layer.padding not in ("valid", "same"):
        raise _NotNative(f"layer '{layer.name}': padding '{layer.padding}' is not supported (valid, same)")
    w = _weights(layer)
    kernel = w["kernel"]
    channels = src.shape[-1]
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        mult = kernel.shape[-1]
        kernel = kernel.reshape(kernel.shape[:2] + (1, channels * mult))
        groups = channels
    else:
        groups = getattr(layer, "groups", 1)
    kernel = _dilate(kernel, tuple(layer.dilation_rate))
    out_shape = _out_shape(layer, ins)
    transform = _conv_transform(layer, src.shape, kernel, layer.strides, layer.padding, groups, out_shape,
                                conv.sparse_convolutions)
    return conv._output(layer, ins, [transform], out_shape, w.get("bias"))


def _conv_transpose(conv: Converter, layer, ins):
    """Keras' transposed convolution is the transpose (gradient) of the forward
    convolution that maps Keras' output shape (``output_padding`` included) back to
    the input shape, with the same kernel, strides and padding."""
    (src,) = ins
    _check_channels_last(layer)
    w = _weights(layer)
    kernel = _dilate(w["kernel"], tuple(layer.dilation_rate))  # kernel_size + (filters, in channels)
    out_shape = _out_shape(layer, ins)
    if len(src.shape) <= 3:
        try:
            transform = nengo.ConvolutionTranspose(
                n_filters=out_shape[-1], input_shape=src.shape, output_shape=out_shape,
                kernel_size=kernel.shape[:-2], strides=tuple(layer.strides), padding=layer.padding,
                channels_last=True, init=np.swapaxes(kernel, -1, -2))
        except nengo.exceptions.ValidationError as e:
            raise _NotNative(f"layer '{layer.name}': nengo's ConvolutionTranspose cannot express it ({e})") from e
    else:
        _conv_nnz(layer, out_shape, kernel, src.shape)
        forward, shape = sparse_convolution(out_shape, kernel, layer.strides, layer.padding)
        if shape != src.shape:
            raise _NotNative(f"layer '{layer.name}': the forward convolution of Keras' output shape "
                             f"{out_shape} gives {shape}, not the input shape {src.shape}")
        matrix = forward.T.tocsr()
        transform = nengo.Sparse(matrix.shape, init=matrix)
    return conv._output(layer, ins, [transform], out_shape, w.get("bias"))


def _avg_pool(conv: Converter, layer, ins, pool_size=None, strides=None):
    (src,) = ins
    _check_channels_last(layer)
    if getattr(layer, "padding", "valid") != "valid":
        raise _NotNative(f"layer '{layer.name}': pooling with padding='same' averages over fewer "
                         "inputs at the border, which a convolution cannot express; use 'valid'")
    pool = tuple(pool_size or layer.pool_size)
    channels = src.shape[-1]
    kernel = np.ones(pool + (1, channels)) / np.prod(pool)
    transform = _conv_transform(layer, src.shape, kernel, tuple(strides or layer.strides), "valid", channels,
                                _out_shape(layer, ins), conv.sparse_convolutions)
    return conv._output(layer, ins, [transform], _out_shape(layer, ins))


def _max_pool(conv: Converter, layer, ins):
    if not conv.max_to_avg_pool:
        raise _NotNative(f"layer '{layer.name}': max pooling has no linear nengo equivalent; "
                         "pass max_to_avg_pool=True to convert it to average pooling")
    return _avg_pool(conv, layer, ins)


def _global_avg_pool(conv: Converter, layer, ins):
    (src,) = ins
    _check_channels_last(layer)
    channels = src.shape[-1]
    positions = src.size // channels
    transform = np.tile(np.eye(channels), positions) / positions
    return conv._output(layer, ins, [transform], (channels,))


def _batch_norm(conv: Converter, layer, ins):
    (src,) = ins
    axis = layer.axis if isinstance(layer.axis, int) else layer.axis[0]
    if axis not in (-1, len(src.shape)):
        raise _NotNative(f"layer '{layer.name}': BatchNormalization must normalise the last axis")
    w = _weights(layer)
    channels = src.shape[-1]
    gamma = w.get("gamma", np.ones(channels))
    beta = w.get("beta", np.zeros(channels))
    scale = gamma / np.sqrt(w["moving_variance"] + layer.epsilon)
    shift = beta - w["moving_mean"] * scale
    reps = src.size // channels
    return conv._output(layer, ins, [nengo.Dense((src.size, src.size), init=np.tile(scale, reps))], src.shape,
                        np.tile(shift, reps).reshape(src.shape))


def _identity(conv: Converter, layer, ins):
    (src,) = ins
    return _Out(src.obj, _out_shape(layer, ins), src.spiking_source)


def _activation(conv: Converter, layer, ins):
    return conv._output(layer, ins, [1.0], ins[0].shape)


def _relu_layer(conv: Converter, layer, ins):
    if layer.threshold or layer.max_value is not None:
        raise _NotNative(f"layer '{layer.name}': ReLU with threshold/max_value has no nengo neuron type")
    if layer.negative_slope:
        return conv._output(layer, ins, [1.0], ins[0].shape, activation="leaky_relu",
                            negative_slope=layer.negative_slope)
    return conv._output(layer, ins, [1.0], ins[0].shape, activation="relu")


def _leaky_relu_layer(conv: Converter, layer, ins):
    return conv._output(layer, ins, [1.0], ins[0].shape, activation="leaky_relu",
                        negative_slope=layer.negative_slope)


def _add(conv: Converter, layer, ins):
    return conv._output(layer, ins, [1.0] * len(ins), ins[0].shape)


def _concatenate(conv: Converter, layer, ins):
    out_shape = _out_shape(layer, ins)
    index = np.arange(int(np.prod(out_shape))).reshape(out_shape)
    sizes = np.cumsum([i.shape[layer.axis] for i in ins])[:-1]
    parts = np.split(index, sizes, axis=layer.axis)
    node = nengo.Node(size_in=index.size, label=layer.name)
    for src, part in zip(ins, parts):
        conv._connect(src, node[part.reshape(-1)])
    return _Out(node, out_shape)


L = keras.layers
#: Keras layer class -> handler (the first isinstance match wins; order matters
#: only where classes inherit from each other, e.g. DepthwiseConv2D).
LAYERS: dict[type, Callable] = {
    L.Dense: _dense,
    L.DepthwiseConv2D: _conv,
    L.Conv1D: _conv,
    L.Conv2D: _conv,
    L.Conv3D: _conv,
    L.Conv1DTranspose: _conv_transpose,
    L.Conv2DTranspose: _conv_transpose,
    L.Conv3DTranspose: _conv_transpose,
    L.AveragePooling1D: _avg_pool,
    L.AveragePooling2D: _avg_pool,
    L.AveragePooling3D: _avg_pool,
    L.MaxPooling1D: _max_pool,
    L.MaxPooling2D: _max_pool,
    L.MaxPooling3D: _max_pool,
    L.GlobalAveragePooling1D: _global_avg_pool,
    L.GlobalAveragePooling2D: _global_avg_pool,
    L.GlobalAveragePooling3D: _global_avg_pool,
    L.BatchNormalization: _batch_norm,
    L.Flatten: _identity,
    L.Reshape: _identity,
    L.Dropout: _identity,  # SpatialDropout1D/2D/3D are subclasses
    L.GaussianNoise: _identity,
    L.GaussianDropout: _identity,
    L.AlphaDropout: _identity,
    L.ActivityRegularization: _identity,
    L.Identity: _identity,
    L.Activation: _activation,
    L.ReLU: _relu_layer,
    L.LeakyReLU: _leaky_relu_layer,
    L.Add: _add,
    L.Concatenate: _concatenate,
}
del L

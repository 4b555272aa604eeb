"""TensorNodes: TensorFlow code (a function or a Keras layer) inside a nengo network.

:class:`TensorNode` is a :class:`nengo.Node` whose output is computed by a
TensorFlow function each time step; :class:`Layer` is a Keras-functional-style
shortcut that creates a TensorNode (or an Ensemble of neurons) and connects an
input to it.

>>> with nengo.Network() as net:                                  # doctest: +SKIP
...     a = nengo.Node([0.5, -0.1])
...     b = TensorNode(lambda t, x: t + x, shape_in=(2,), shape_out=(2,))
...     nengo.Connection(a, b, synapse=None)
...     dense = Layer(keras.layers.Dense(3))(b)

This module is the nengo side only: it imports without TensorFlow, which is
imported when a shape has to be inferred by calling the function. The network
builds with nengo's builder (the operator is :class:`SimTensorNode`) but only the
``tensorflow`` target can run it (see :mod:`.tensor_node_builder`).
"""

from __future__ import annotations

import sys
from typing import Any, Callable

import numpy as np

import nengo
from nengo.builder import Builder, Operator, Signal
from nengo.builder.operator import Reset
from nengo.exceptions import ValidationError
from nengo.params import BoolParam, Parameter, ShapeParam

from nhw.errors import UnsupportedFeatureError

__all__ = ["Layer", "SimTensorNode", "TensorNode", "build_tensor_node", "call_tensor_func", "is_keras_layer",
           "tensor_layer"]


def is_keras_layer(obj: Any) -> bool:
    """Whether ``obj`` is a ``keras.layers.Layer`` (without importing Keras).

    A Keras layer can only exist if Keras was imported, so looking the class up
    in ``sys.modules`` keeps this module free of a TensorFlow import.
    """
    keras = sys.modules.get("keras")
    layers = getattr(keras, "layers", None) if keras is not None else None
    layer_cls = getattr(layers, "Layer", None)
    return layer_cls is not None and isinstance(obj, layer_cls)


def _shape(value: Any, what: str, name: str) -> tuple | None:
    """``value`` as a tuple of positive ints (``None`` passes through).

    An int is accepted as a 1-D shape for convenience.
    """
    if value is None:
        return None
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value,)
    try:
        shape = tuple(value)
    except TypeError:
        raise ValidationError(
            f"{name}: {what} must be a tuple of positive ints; got {value!r}", attr=what
        ) from None
    if len(shape) == 0 or not all(
        isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1 for s in shape
    ):
        raise ValidationError(
            f"{name}: {what} must be a non-empty tuple of positive ints; got {value!r}", attr=what
        )
    return tuple(int(s) for s in shape)


class _TensorFuncParam(Parameter):
    """A callable or Keras layer (Keras layers are callable too)."""

    def coerce(self, node, func):  # pylint: disable=arguments-renamed
        func = super().coerce(node, func)
        if not callable(func):
            raise ValidationError(
                f"tensor_func must be callable or a keras.layers.Layer; got "
                f"{type(func).__name__} {func!r}",
                attr=self.name,
                obj=node,
            )
        return func


class _NoOutputParam(Parameter):
    """``Node.output`` of a TensorNode: always ``None``.

    nengo's own ``OutputParam`` would overwrite ``size_out`` with ``size_in`` for
    ``output=None`` (a passthrough Node), and the simulators use ``output is None``
    to tell that a Node is not an input, so TensorNodes keep it ``None``.
    """

    def __init__(self, name: str) -> None:
        super().__init__(name, default=None, optional=True, readonly=False)

    def coerce(self, node, output):  # pylint: disable=arguments-renamed
        if output is not None:
            raise ValidationError(
                f"a TensorNode's output is computed by its tensor_func; output must be "
                f"None, got {output!r}",
                attr=self.name,
                obj=node,
            )
        return None


class TensorNode(nengo.Node):
    """A Node whose output is computed by TensorFlow code every time step.

    Parameters
    ----------
    tensor_func : callable or keras.layers.Layer
        A function is called every step as ``tensor_func(t, x)`` (``pass_time``
        and ``shape_in``), ``tensor_func(x)`` (no time) or ``tensor_func(t)`` (no
        input). A Keras layer, as in NengoDL, gets one argument: ``layer([t, x])``
        (a list) with both, else ``layer(t)`` or ``layer(x)``. ``t`` is a scalar
        float tensor in the simulation dtype, ``x`` a tensor of shape
        ``(minibatch_size,) + shape_in``; the result must have shape
        ``(minibatch_size,) + shape_out`` (``(1,) + shape_out`` is broadcast
        across the minibatch) and the simulation dtype (a function returning
        another dtype raises ValidationError, as NengoDL's ``validate_output``
        does; a Keras layer's output in the layer's own compute dtype is cast).
        Keras layers get ``training=`` when their ``call`` accepts it, and their
        weights are part of the simulator's Keras model.
    shape_in : tuple of int, optional
        Shape of the input ``x`` (without the minibatch axis); ``None`` for a
        node without input. ``size_in`` is ``prod(shape_in)``.
    shape_out : tuple of int, optional
        Shape of the output (without the minibatch axis); ``None`` infers it by
        calling ``tensor_func`` once, eagerly, on zeros with a minibatch of 1
        (which also builds a Keras layer's weights).
    pass_time : bool
        Whether ``t`` is passed as the first argument. A node with neither
        ``shape_in`` nor ``pass_time`` raises ValidationError ("Must specify
        either shape_in or pass_time"), as in NengoDL.
    label : str, optional
        Name of the node.

    Notes
    -----
    Only the ``tensorflow`` target runs TensorNodes; other simulators raise
    :class:`nhw.errors.UnsupportedFeatureError` when they build the model.
    The output signal is flat (``size_out``), so probes of a TensorNode record
    ``prod(shape_out)`` values per step.
    """

    tensor_func = _TensorFuncParam("tensor_func", readonly=True)
    shape_in = ShapeParam("shape_in", default=None, low=1, optional=True, readonly=True)
    shape_out = ShapeParam("shape_out", default=None, low=1, optional=True, readonly=True)
    pass_time = BoolParam("pass_time", default=True, readonly=True)
    output = _NoOutputParam("output")

    _param_init_order = ["size_in", "size_out", "output"]

    def __init__(
        self,
        tensor_func: Callable,
        shape_in: tuple | None = None,
        shape_out: tuple | None = None,
        pass_time: bool = True,
        label: str | None = None,
    ) -> None:
        name = f"TensorNode(label={label!r})" if label is not None else "TensorNode"
        if not callable(tensor_func):
            raise ValidationError(
                f"{name}: tensor_func must be callable or a keras.layers.Layer; got "
                f"{type(tensor_func).__name__} {tensor_func!r}",
                attr="tensor_func",
            )
        if not isinstance(pass_time, (bool, np.bool_)):
            raise ValidationError(
                f"{name}: pass_time must be a bool; got {pass_time!r}", attr="pass_time"
            )
        shape_in = _shape(shape_in, "shape_in", name)
        shape_out = _shape(shape_out, "shape_out", name)
        if shape_in is None and not pass_time:
            # NengoDL's TensorNode.__init__: a function of nothing is no TensorNode
            raise ValidationError(
                f"{name}: Must specify either shape_in or pass_time (a TensorNode's "
                "function needs the time, an input, or both)",
                attr="pass_time",
            )
        if shape_out is None:
            shape_out = _infer_shape_out(tensor_func, shape_in, bool(pass_time), name)
        super().__init__(
            output=None,
            size_in=0 if shape_in is None else int(np.prod(shape_in)),
            size_out=int(np.prod(shape_out)),
            label=label,
        )
        self.tensor_func = tensor_func
        self.shape_in = shape_in
        self.shape_out = shape_out
        self.pass_time = bool(pass_time)

    @property
    def is_keras_layer(self) -> bool:
        """Whether ``tensor_func`` is a Keras layer."""
        return is_keras_layer(self.tensor_func)

    def call_args(self, t: Any, x: Any) -> tuple:
        """Positional arguments for ``tensor_func`` given time ``t`` and input ``x``.

        A function gets ``(t, x)``, ``(t,)`` or ``(x,)``; a Keras layer gets one
        argument, ``([t, x],)`` with both (see :func:`call_tensor_func`).
        """
        args: tuple = ()
        if self.pass_time:
            args += (t,)
        if self.shape_in is not None:
            args += (x,)
        if len(args) > 1 and self.is_keras_layer:
            return (list(args),)
        return args


def call_tensor_func(func: Callable, args: tuple, **kwargs: Any) -> Any:
    """Call a TensorNode's ``tensor_func`` on its inputs ``args`` (``(t, x)``, ``(t,)`` or ``(x,)``).

    As NengoDL's ``SimTensorNodeBuilder.build_step``: a function gets the
    inputs as positional arguments, ``func(t, x)``; a Keras layer gets them as
    one argument, a list when there are two (``layer([t, x])``), else the one
    tensor (``layer(t)`` or ``layer(x)``). ``kwargs`` (e.g. ``training``) are
    passed on.
    """
    if is_keras_layer(func) and len(args) > 1:
        return func(list(args), **kwargs)
    return func(*args, **kwargs)


def _infer_shape_out(func: Callable, shape_in: tuple | None, pass_time: bool, name: str) -> tuple:
    """Call ``func`` eagerly on zeros (minibatch 1) and return its output shape."""
    from nhw.backends.tensorflow._tf import tf  # only needed here: the module must import without it

    args: tuple = ()
    # float32 like Keras' default: the simulation dtype is not known yet
    with tf.init_scope():  # eager even if a network is built inside a tf.function
        if pass_time:
            args += (tf.constant(0.0, tf.float32),)
        if shape_in is not None:
            args += (tf.zeros((1,) + shape_in, tf.float32),)
        try:
            out = call_tensor_func(func, args)
        except ValidationError:
            raise
        except Exception as e:
            raise ValidationError(
                f"{name}: calling tensor_func{_arg_desc(pass_time, shape_in, is_keras_layer(func))} on zeros to "
                f"infer shape_out failed ({type(e).__name__}: {e}); check the function or "
                "give shape_out",
                attr="shape_out",
            ) from e
        out_shape = tf.convert_to_tensor(out).shape
    if out_shape.rank is None or out_shape.rank < 2 or not out_shape[1:].is_fully_defined():
        raise ValidationError(
            f"{name}: cannot infer shape_out: tensor_func must return a tensor shaped "
            f"(minibatch_size,) + shape_out with at least one non-batch axis; got shape "
            f"{tuple(out_shape) if out_shape.rank is not None else 'unknown'} for input "
            f"{(1,) + shape_in if shape_in else None} (return e.g. keepdims=True results, or "
            "give shape_out)",
            attr="shape_out",
        )
    return tuple(int(s) for s in out_shape[1:])


def _arg_desc(pass_time: bool, shape_in: tuple | None, keras_layer: bool = False) -> str:
    names = (["t"] if pass_time else []) + (["x"] if shape_in is not None else [])
    if keras_layer and len(names) > 1:
        return f"([{', '.join(names)}])"
    return f"({', '.join(names)})"


class SimTensorNode(Operator):
    """Compute a TensorNode's output from time and input: ``output = f(t, x)``.

    1. sets ``[output]``
    2. incs ``[]``
    3. reads ``[time]`` or ``[time, input]``
    4. updates ``[]``

    Parameters
    ----------
    node : TensorNode
        The node whose ``tensor_func`` computes the output.
    time : Signal
        The model's time signal.
    input : Signal or None
        The node's (flat) input signal, ``None`` without input.
    output : Signal
        The node's (flat) output signal.
    tag : str, optional
        Label for debugging.

    Notes
    -----
    Only the ``tensorflow`` target implements this operator; :meth:`make_step`
    (used by ``nengo.Simulator`` and numpy-based backends) raises
    :class:`nhw.errors.UnsupportedFeatureError`.
    """

    def __init__(
        self,
        node: TensorNode,
        time: Signal,
        input: Signal | None,  # noqa: A002 - nengo's operator naming
        output: Signal,
        tag: str | None = None,
    ) -> None:
        super().__init__(tag=tag)
        self.node = node
        self.sets = [output]
        self.incs = []
        self.reads = [time] + ([] if input is None else [input])
        self.updates = []

    # properties index the lists so signals replaced by nengo's optimizer stay in sync
    @property
    def time(self) -> Signal:
        """The time signal read."""
        return self.reads[0]

    @property
    def input(self) -> Signal | None:
        """The input signal read (``None`` without input)."""
        return self.reads[1] if len(self.reads) > 1 else None

    @property
    def output(self) -> Signal:
        """The output signal set."""
        return self.sets[0]

    @property
    def _descstr(self) -> str:
        return f"{self.node}: {self.time}, {self.input} -> {self.output}"

    def make_step(self, signals, dt, rng):
        raise UnsupportedFeatureError(
            f"{self.node} (a TensorNode) runs only on the 'tensorflow' target "
            "(backends.tensorflow.Simulator); this simulator cannot run TensorFlow code"
        )


@Builder.register(TensorNode)
def build_tensor_node(model, node: TensorNode) -> None:
    """Build a :class:`TensorNode`: input/output signals and a :class:`SimTensorNode`.

    Sets ``model.sig[node]["in"]`` (``None`` without input), ``["out"]`` and
    ``model.params[node] = None`` like nengo's Node builder, so Connections and
    Probes (``"output"``) work unchanged.
    """
    if node.size_in > 0:
        sig_in = Signal(shape=(node.size_in,), name=f"{node}.in")
        # connections increment the input every step, so it restarts from zero
        model.add_op(Reset(sig_in))
    else:
        sig_in = None
    sig_out = Signal(shape=(node.size_out,), name=f"{node}.out")
    model.add_op(SimTensorNode(node, model.time, sig_in, sig_out))
    model.sig[node]["in"] = sig_in
    model.sig[node]["out"] = sig_out
    model.params[node] = None


class Layer:
    """Keras-functional-style shortcut: ``Layer(func)(input)`` creates and connects.

    Parameters
    ----------
    layer_func : callable, keras.layers.Layer or nengo.neurons.NeuronType
        A function of ``x`` or a Keras layer (becomes a :class:`TensorNode` with
        ``pass_time=False``), or a neuron type (becomes a one-dimensional
        ``nengo.Ensemble`` of those neurons, whose ``.neurons`` is returned).

    Notes
    -----
    As in NengoDL, a neuron-type layer is an ordinary ``nengo.Ensemble``: its
    gains and biases come from the Ensemble's parameters, i.e. from the
    ``layer_args`` given to the call or else the network's config defaults
    (typically ``net.config[nengo.Ensemble].max_rates = nengo.dists.Choice([100])``
    and ``.intercepts = nengo.dists.Choice([0])``), else nengo's defaults. The
    connection into the layer is marked non-trainable
    (``net.config[conn].trainable = False``): the layer's own weights (Keras
    layer weights, ensemble biases) train, the identity link to it does not.
    """

    def __init__(self, layer_func: Any) -> None:
        if not (callable(layer_func) or isinstance(layer_func, nengo.neurons.NeuronType)):
            raise ValidationError(
                "Layer: layer_func must be a callable, keras.layers.Layer or "
                f"nengo.neurons.NeuronType; got {type(layer_func).__name__} {layer_func!r}",
                attr="layer_func",
            )
        self.layer_func = layer_func

    def __call__(
        self,
        input: Any,
        transform: Any = None,
        synapse: Any = None,
        shape_in: tuple | None = None,
        return_conn: bool = False,
        **layer_args: Any,
    ):
        """Create the layer and connect ``input`` to it.

        Parameters
        ----------
        input : nengo object or ObjView
            Object connected to the new layer (anything with ``size_out``).
        transform : optional
            Transform of the connection; ``None`` is the identity (like ``1``).
        synapse : optional
            Synapse of the connection (default: none).
        shape_in : tuple of int, optional
            Input shape of the layer. Defaults to the transform's output shape
            (``transform.shape[0]`` for a 2-D array, ``size_out`` or the
            convolution's ``output_shape`` for a ``nengo.transforms`` object),
            else ``(input.size_out,)``.
        return_conn : bool
            Also return the created Connection.
        **layer_args
            Passed to :class:`TensorNode` (e.g. ``shape_out``, ``label``,
            ``pass_time``) or, for a neuron type, to ``nengo.Ensemble`` (e.g. ``max_rates``, ``gain``).

        Returns
        -------
        obj : TensorNode or nengo.ensemble.Neurons
            The new layer.
        conn : nengo.Connection
            Only with ``return_conn=True``.
        """
        size = getattr(input, "size_out", None)
        if size is None:
            raise ValidationError(
                f"Layer({self.layer_func!r}): input must be a nengo object with size_out "
                f"(Node, Ensemble, Neurons, ObjView, ...); got {type(input).__name__} {input!r}",
                attr="input",
            )
        name = f"Layer({self.layer_func!r})"
        shape_in = _shape(shape_in, "shape_in", name) or _transform_shape(transform) or (int(size),)
        if isinstance(self.layer_func, nengo.neurons.NeuronType):
            # no gain/bias defaults here: like any Ensemble, the layer takes them
            # from layer_args, else the network config (max_rates/intercepts)
            ens = nengo.Ensemble(
                int(np.prod(shape_in)), 1, neuron_type=self.layer_func, **layer_args
            )
            obj = ens.neurons
        else:
            # Keras layers take only x; pass_time=True can still be asked for
            layer_args.setdefault("pass_time", False)
            obj = TensorNode(self.layer_func, shape_in=shape_in, **layer_args)
        conn = nengo.Connection(input, obj, transform=transform, synapse=synapse)
        _mark_untrainable(conn)
        return (obj, conn) if return_conn else obj

    def __str__(self) -> str:
        func = self.layer_func
        return f"Layer({getattr(func, 'name', getattr(func, '__name__', func))})"


def _transform_shape(transform: Any) -> tuple | None:
    """Output shape of a connection transform, when the transform fixes it."""
    if isinstance(transform, np.ndarray) and transform.ndim == 2:
        return (int(transform.shape[0]),)
    if isinstance(transform, nengo.transforms.Convolution):
        return tuple(int(s) for s in transform.output_shape.shape)
    if isinstance(transform, nengo.transforms.Transform) and not isinstance(
        transform, nengo.transforms.NoTransform
    ):
        try:
            return (int(transform.size_out),)
        except (AttributeError, TypeError, ValueError):
            return None  # e.g. a Dense transform with a Distribution and no shape
    return None


def _mark_untrainable(conn: nengo.Connection) -> None:
    """Set ``trainable = False`` for ``conn`` in the innermost network's config.

    Registers the ``trainable`` config parameter first (default None, i.e. no
    change for other objects) when no ``configure_settings(trainable=...)``
    call has done so.
    """
    from nhw.backends.tensorflow.settings import configure_settings  # deferred: settings imports nengo only

    cfg = nengo.Network.context[-1].config
    try:
        cfg[conn].trainable = False
    except (AttributeError, KeyError, nengo.exceptions.ConfigError):
        configure_settings(trainable=None)
        cfg[conn].trainable = False


def tensor_layer(input: Any, layer_func: Any, **kwargs: Any):
    """Deprecated NengoDL 2 spelling of ``Layer(layer_func)(input, **kwargs)``.

    Parameters
    ----------
    input : nengo object or ObjView
        Object connected to the new layer.
    layer_func : callable, keras.layers.Layer or nengo.neurons.NeuronType
        See :class:`Layer`.
    **kwargs
        Passed to :meth:`Layer.__call__`.

    Returns
    -------
    obj : TensorNode or nengo.ensemble.Neurons
        The new layer (and the Connection with ``return_conn=True``).
    """
    import warnings

    warnings.warn("tensor_layer is deprecated; use Layer(layer_func)(input, ...) instead", DeprecationWarning,
                  stacklevel=2)
    return Layer(layer_func)(input, **kwargs)

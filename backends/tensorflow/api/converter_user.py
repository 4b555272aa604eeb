"""``LayerConverter``: NengoDL's base class for user-written layer converters.

A user converts their own Keras layer class by subclassing :class:`LayerConverter`,
implementing :meth:`LayerConverter.convert` and registering the class::

    @nengo_dl.Converter.register(MyLayer)
    class ConvertMyLayer(nengo_dl.converter.LayerConverter):
        has_weights = True

        def convert(self, node_id):
            output = self.add_nengo_obj(node_id, biases=None, activation=self.layer.activation)
            self.add_connection(node_id, output, transform=..., trainable=True)
            return output

Inside ``convert`` the helpers below build nengo objects in the converted network;
``node_id`` is the index of the Keras call (``layer._inbound_nodes``) being converted.
"""

from __future__ import annotations

from typing import Any

import nengo
import numpy as np

from nhw.backends.tensorflow._tf import keras  # the quiet import
from nhw.backends.tensorflow.api.converter_activations import DEFAULT_ACTIVATIONS
from nhw.backends.tensorflow.api.converter_base import _Out


def _activation_map() -> dict:
    """Keras activation functions -> nengo neuron types (None: identity)."""
    out: dict = {None: None}
    for name, neuron_type in DEFAULT_ACTIVATIONS.items():
        out[keras.activations.get(name)] = neuron_type
    return out


class LayerConverter:
    """Base class of the converters for one Keras layer class.

    Parameters
    ----------
    layer : keras.layers.Layer
        The layer being converted.
    converter : Converter
        The Converter running the conversion.

    Attributes
    ----------
    activation_map : dict
        Keras activation function -> nengo neuron type used by :meth:`add_nengo_obj`
        (the converter's ``swap_activations`` apply on top).
    unsupported_args : list
        Layer attributes that must have their default value for the layer to be
        convertible: a name (default None) or ``(name, default)``.
    unsupported_training_args : list
        The same, checked only when the Converter's ``inference_only`` is False.
    has_weights : bool
        The layer has weights: applying it several times needs ``split_shared_weights``.
    allow_fallback : bool
        Whether an unconvertible layer of this class may fall back to a TensorNode.
    """

    activation_map: dict = _activation_map()
    unsupported_args: list = []
    unsupported_training_args: list = []
    has_weights: bool = False
    allow_fallback: bool = True

    def __init__(self, layer, converter) -> None:
        self.layer = layer
        self.converter = converter
        self._inputs: dict[int, list[_Out]] = {}  # node_id -> its inputs (set by the Converter)

    @classmethod
    def convertible(cls, layer, converter) -> tuple[bool, str | None]:
        """Whether ``layer`` can become native nengo objects, and if not, why.

        Returns
        -------
        convertible : bool
        message : str or None
        """
        args = list(cls.unsupported_args)
        if not converter.inference_only:
            args += list(cls.unsupported_training_args)
        for arg in args:
            name, default = (arg, None) if isinstance(arg, str) else arg
            value = getattr(layer, name)
            if value != default:
                msg = f"{layer.name}.{name} has value {value!r} != {default!r}, which is not supported"
                if arg in cls.unsupported_training_args:
                    msg += " (unless inference_only=True)"
                return False, msg
        return True, None

    def convert(self, node_id: int) -> Any:
        """Build the nengo objects of one call of the layer; return the one holding its output.

        Parameters
        ----------
        node_id : int
            The index of the Keras call being converted.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement convert(node_id)")

    # --- helpers -------------------------------------------------------------------
    def _node(self, node_id: int):
        return self.layer._inbound_nodes[node_id]

    def get_input_obj(self, node_id: int, tensor_idx: int = 0) -> Any:
        """The nengo object holding input ``tensor_idx`` of call ``node_id``."""
        return self._inputs[node_id][tensor_idx].obj

    def _shapes(self, tensors, full_shape: bool) -> Any:
        skip = 0 if full_shape else self.converter.n_prefix
        shapes = [tuple(t.shape[skip:]) for t in tensors]
        return shapes[0] if len(shapes) == 1 else shapes

    def input_shape(self, node_id: int, full_shape: bool = False) -> Any:
        """Input shape of call ``node_id`` (a list of shapes for several inputs);
        ``full_shape``: with the batch (and time) axes."""
        return self._shapes(self._node(node_id).input_tensors, full_shape)

    def output_shape(self, node_id: int, full_shape: bool = False) -> Any:
        """Output shape of call ``node_id`` (see :meth:`input_shape`)."""
        return self._shapes(self._node(node_id).output_tensors, full_shape)

    @staticmethod
    def set_trainable(obj: Any, trainable: bool) -> None:
        """Whether the simulator trains ``obj``'s parameters (the current network's config)."""
        nengo.Network.context[-1].config[obj].trainable = trainable

    def add_nengo_obj(self, node_id: int, biases: np.ndarray | None = None, activation: Any = None) -> Any:
        """The nengo object producing call ``node_id``'s output.

        A passthrough Node for a linear activation, Neurons of an Ensemble for an
        activation with a neuron type (``scale_firing_rates`` applied), a TensorNode
        for an activation without one (``allow_fallback``); ``biases`` (one value per
        output element) are trainable.
        """
        customised = type(self).activation_map is not LayerConverter.activation_map
        if customised and activation is not None and not isinstance(activation, nengo.neurons.NeuronType) \
                and activation in self.activation_map:
            mapped = self.activation_map[activation]
            activation = activation if mapped is None else mapped
        if activation is None:
            activation = "linear"
        shape = self.output_shape(node_id)
        out = self.converter._output(self.layer, [], [], shape, biases, activation=activation, trainable=True)
        return out.obj

    def add_connection(self, node_id: int, obj: Any, input_idx: int = 0, trainable: bool = False,
                       **kwargs: Any) -> nengo.Connection:
        """A Connection from input ``input_idx`` of call ``node_id`` to ``obj``.

        The converter's ``synapse`` applies when the input comes from neurons; other
        keyword arguments go to ``nengo.Connection``.
        """
        src = self._inputs[node_id][input_idx]
        kwargs.setdefault("synapse", self.converter.synapse if src.spiking_source else None)
        conn = nengo.Connection(src.obj, obj, **kwargs)
        self.converter.net.config[conn].trainable = trainable
        return conn

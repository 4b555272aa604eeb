"""Keras activations -> nengo neuron types, with ``swap_activations`` and
``scale_firing_rates`` applied as NengoDL documents them.

Resolution of one layer's activation:

1. a swap keyed by the Keras activation (function or name) replaces it, with a Keras
   activation or a nengo neuron type;
2. a Keras activation maps to its default neuron type (:data:`DEFAULT_ACTIVATIONS`;
   ``linear`` -> no neurons); one without a neuron type is left for a TensorNode;
3. a swap keyed by a neuron type (an instance: equal parameters match; else the same
   class) replaces the neuron type.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import nengo

from nhw.backends.tensorflow._tf import keras  # the quiet import
from nhw.backends.neurons import LeakyReLU, SpikingLeakyReLU

#: Keras activation name -> default nengo neuron type (None: identity).
DEFAULT_ACTIVATIONS: dict[str, nengo.neurons.NeuronType | None] = {
    "linear": None,
    "relu": nengo.RectifiedLinear(),
    "sigmoid": nengo.Sigmoid(tau_ref=1),
    "tanh": nengo.Tanh(tau_ref=1),
    "leaky_relu": LeakyReLU(negative_slope=0.2),  # keras.activations.leaky_relu's default
}

#: Neuron types whose rate is homogeneous in the input, so scaling the input by ``s`` and
#: the output by ``1/s`` leaves the rate unchanged (the leaky types are subclasses).
SCALABLE = (nengo.RectifiedLinear, nengo.SpikingRectifiedLinear)
LEAKY = (LeakyReLU, SpikingLeakyReLU)


def activation_name(fn: Any) -> str:
    """The Keras name of an activation (``"relu"``), or the callable's own name."""
    if isinstance(fn, str):
        return fn
    try:
        name = keras.activations.serialize(fn)
    except Exception:  # custom callables have no registered name
        name = getattr(fn, "__name__", repr(fn))
    return name if isinstance(name, str) else name.get("config", repr(fn))


def with_param(neuron_type: nengo.neurons.NeuronType, name: str, value: Any) -> nengo.neurons.NeuronType:
    """A copy of ``neuron_type`` with one (read-only) parameter changed, others kept."""
    out = copy.copy(neuron_type)
    getattr(type(out), name).data[out] = value
    return out


class ActivationSwaps:
    """``swap_activations`` with NengoDL's key forms, and which keys were used.

    Parameters
    ----------
    swaps
        Keys: Keras activations (functions or names) or nengo neuron types (instances or
        classes); values: Keras activations or nengo neuron types.
    """

    def __init__(self, swaps: dict | None) -> None:
        self.given = dict(swaps or {})
        self._by_name: dict[str, Any] = {}
        self._by_neuron: list[tuple[Any, Any, Any]] = []  # (key as given, match, value)
        for key, value in self.given.items():
            if isinstance(key, nengo.neurons.NeuronType) or (
                    isinstance(key, type) and issubclass(key, nengo.neurons.NeuronType)):
                self._by_neuron.append((key, key, value))
            else:
                self._by_name[activation_name(key)] = key
        self._used: set[int] = set()

    def _mark(self, key: Any) -> None:
        self._used.add(id(key))

    def by_activation(self, activation: Any) -> Any:
        """Step 1: the swap for a Keras activation, or the activation itself."""
        key = self._by_name.get(activation_name(activation))
        if key is None:
            return activation
        self._mark(key)
        return self.given[key]

    def by_neuron_type(self, neuron_type: Any) -> Any:
        """Step 3: the swap for a neuron type (equal instance first, then class)."""
        for key, match, value in self._by_neuron:
            if not isinstance(match, type) and type(match) is type(neuron_type) and match == neuron_type:
                self._mark(key)
                return value
        for key, match, value in self._by_neuron:
            cls = match if isinstance(match, type) else type(match)
            if type(neuron_type) is cls:
                self._mark(key)
                return value
        return neuron_type

    def unused(self) -> list:
        """Keys that matched no layer of the model (NengoDL warns about them)."""
        return [k for k in self.given if id(k) not in self._used]


def resolve(swaps: ActivationSwaps, activation: Any, negative_slope: float | None = None):
    """A layer's activation -> ``(neuron type or None, unresolved Keras activation or None)``.

    ``(None, None)`` is the identity; ``(None, fn)``: ``fn`` has no neuron type (a
    TensorNode must run it); ``(neurons, None)``: run it as those neurons.
    """
    if isinstance(activation, nengo.neurons.NeuronType):
        act, slope = activation, None
    else:
        act = swaps.by_activation(activation)
        # a leaky ReLU's slope belongs to the model: a swap gives only class and amplitude
        slope = (0.2 if negative_slope is None else float(negative_slope)) \
            if activation_name(activation) == "leaky_relu" else None
    if isinstance(act, nengo.neurons.NeuronType):
        neuron_type = act
    else:
        name = activation_name(act)
        if name not in DEFAULT_ACTIVATIONS:
            return None, act
        neuron_type = DEFAULT_ACTIVATIONS[name]
        if neuron_type is None:
            return None, None
    if slope is not None and isinstance(neuron_type, LEAKY):
        neuron_type = with_param(neuron_type, "negative_slope", slope)
    swapped = swaps.by_neuron_type(neuron_type)
    if swapped is not neuron_type:
        if isinstance(swapped, type):
            swapped = swapped()
        if not isinstance(swapped, nengo.neurons.NeuronType):
            return resolve(ActivationSwaps(None), swapped)
        if isinstance(neuron_type, LEAKY) and isinstance(swapped, LEAKY):
            swapped = with_param(swapped, "negative_slope", neuron_type.negative_slope)
        neuron_type = swapped
    return neuron_type, None


def scale_neurons(neuron_type: nengo.neurons.NeuronType, scale: float, layer_name: str):
    """Divide the output amplitude by ``scale`` (the input gain is multiplied by it).

    Exact for homogeneous types (ReLU-like); NengoDL scales any type with an
    ``amplitude`` (the rate curve is skewed) and only the input of types without one
    (the output changes): both are done here with a warning saying so.
    """
    if scale == 1.0:
        return neuron_type
    if not hasattr(neuron_type, "amplitude"):
        warnings.warn(f"layer '{layer_name}': scale_firing_rates={scale:g} on {type(neuron_type).__name__}, "
                      "which has no amplitude: only its input is scaled, so the output changes", stacklevel=4)
        return neuron_type
    if not isinstance(neuron_type, SCALABLE):
        warnings.warn(f"layer '{layer_name}': scale_firing_rates={scale:g} on {type(neuron_type).__name__}, "
                      "whose rate is not proportional to its input: the output is skewed", stacklevel=4)
    return with_param(neuron_type, "amplitude", neuron_type.amplitude / scale)

"""One registry of neuron types that every target and the NIR exporter consult.

A neuron type is registered once, with the name configs use for it
(:meth:`NeuronTypeRegistry.register`); each consumer then attaches what it knows about
the type under its own key, in one place of its own (:meth:`NeuronTypeRegistry.attach`):

- ``"tensorflow"``: the TensorFlow step (``nhw.backends.tensorflow.builders.neuron_builders``)
- ``"loihi-emu"``: the chip's neuron model (``nhw.backends.loihi_emu``)
- ``"opencl"``: a check of the instance's parameters (``nhw.backends.opencl``)
- ``"nir"``: the NIR node writer (``nhw.toolchain.nir.export``)

Lookups walk the type's MRO, so a subclass that only changes parameters is served by
its registered ancestor; a subclass that overrides the neuron equations (``step``) is
a different model and is not: nothing registered for an ancestor applies to it.

>>> from nhw.backends.neuron_types import NEURON_TYPES
>>> NEURON_TYPES.lookup(nengo.LIF, "opencl")     # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any, Iterator

import nengo

from nhw.errors import UnsupportedFeatureError

#: Methods whose override makes a subclass a different neuron model.
_EQUATIONS = ("step",)


class NeuronTypeRegistry:
    """Neuron types, their config names, and what each consumer attaches to them."""

    def __init__(self) -> None:
        self._names: dict[str, type] = {}
        self._facets: dict[type, dict[str, Any]] = {}

    def register(self, neuron_type: type, name: str) -> type:
        """Register ``neuron_type`` under the config name ``name``.

        Raises
        ------
        ValueError
            ``name`` already names another type, or ``neuron_type`` is not a
            :class:`nengo.neurons.NeuronType` subclass.
        """
        if not (isinstance(neuron_type, type) and issubclass(neuron_type, nengo.neurons.NeuronType)):
            raise ValueError(f"register: expected a nengo.neurons.NeuronType subclass; got {neuron_type!r}")
        if self._names.get(name, neuron_type) is not neuron_type:
            raise ValueError(f"register: name {name!r} already names {self._names[name].__name__}")
        self._names[name] = neuron_type
        self._facets.setdefault(neuron_type, {})
        return neuron_type

    def attach(self, neuron_type: type, key: str, value: Any) -> None:
        """Attach ``value`` for consumer ``key`` (e.g. ``"opencl"``) to ``neuron_type``."""
        self._facets.setdefault(neuron_type, {})[key] = value

    def lookup(self, neuron_type: type, key: str, exact: bool = False) -> Any | None:
        """What consumer ``key`` attached to ``neuron_type`` or its nearest ancestor, else None.

        An ancestor's value applies only while ``neuron_type`` keeps that ancestor's
        equations (it does not override ``step``). ``exact`` looks at ``neuron_type``
        itself only, for consumers that dispatch on the exact class.
        """
        for base in neuron_type.__mro__[:1] if exact else neuron_type.__mro__:
            facets = self._facets.get(base)
            if facets is not None and key in facets:
                return facets[key] if _same_equations(neuron_type, base) else None
        return None

    def get(self, neuron_type: type, key: str, target: str, exact: bool = False) -> Any:
        """Like :meth:`lookup`, but an unsupported type is an :class:`UnsupportedFeatureError`.

        ``target`` names the consumer in the message, which lists the supported types.
        """
        value = self.lookup(neuron_type, key, exact)
        if value is None:
            raise UnsupportedFeatureError(
                f"{target}: neuron type {neuron_type.__name__} is not supported; supported: "
                f"{', '.join(self.supported(key))}"
            )
        return value

    def supported(self, key: str) -> list[str]:
        """Names of the types consumer ``key`` supports, registration order."""
        return [t.__name__ for t, facets in self._facets.items() if key in facets]

    def by_name(self, name: str) -> type:
        """The type registered under config name ``name``.

        Raises
        ------
        KeyError
            Unknown name (the message lists the known ones).
        """
        try:
            return self._names[name]
        except KeyError:
            raise KeyError(f"unknown neuron type {name!r}; known: {', '.join(self._names)}") from None

    def names(self) -> list[str]:
        """Config names, registration order."""
        return list(self._names)

    def __iter__(self) -> Iterator[type]:
        return iter(self._facets)


def _same_equations(sub: type, base: type) -> bool:
    return all(getattr(sub, m, None) is getattr(base, m, None) for m in _EQUATIONS)


NEURON_TYPES = NeuronTypeRegistry()

# nengo's neuron types, by the names configs use
for _name, _type in [
    ("relu", nengo.RectifiedLinear),
    ("spiking_relu", nengo.SpikingRectifiedLinear),
    ("lif", nengo.LIF),
    ("lif_rate", nengo.LIFRate),
    ("adaptive_lif", nengo.AdaptiveLIF),
    ("adaptive_lif_rate", nengo.AdaptiveLIFRate),
    ("sigmoid", nengo.Sigmoid),
    ("tanh", nengo.Tanh),
    ("izhikevich", nengo.Izhikevich),
]:
    NEURON_TYPES.register(_type, _name)
del _name, _type

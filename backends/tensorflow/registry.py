"""Builder registries: nengo operator, neuron and process types -> builder classes.

Lookups walk the type's MRO so subclasses of a supported nengo type use the
builder of the nearest registered ancestor; a failed lookup names the type and
lists what is supported.
"""

from __future__ import annotations

from typing import Callable

from nengo.builder.neurons import SimNeurons
from nengo.builder.processes import SimProcess

from nhw.errors import UnsupportedFeatureError

from nhw.backends.neuron_types import NEURON_TYPES


class Registry:
    """A mapping from types to builder classes with MRO lookup.

    Parameters
    ----------
    kind
        What the registry holds, used in error messages (e.g. ``"operator"``).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._builders: dict[type, type] = {}

    def register(self, *types: type) -> Callable[[type], type]:
        """Class decorator registering a builder for ``types``."""

        def deco(builder: type) -> type:
            for t in types:
                self._builders[t] = builder
            return builder

        return deco

    def lookup(self, t: type, exact: bool = False) -> type | None:
        """Builder for type ``t`` (or its nearest registered ancestor), else None."""
        if exact:
            return self._builders.get(t)
        for cls in t.__mro__:
            if cls in self._builders:
                return self._builders[cls]
        return None

    def get(self, t: type, obj: object = None) -> type:
        """Like :meth:`lookup` but raises :class:`UnsupportedFeatureError`."""
        b = self.lookup(t)
        if b is None:
            names = ", ".join(sorted(k.__name__ for k in self._builders))
            raise UnsupportedFeatureError(
                f"tensorflow backend: no builder for {self.kind} type "
                f"{t.__name__!r}{f' ({obj})' if obj is not None else ''}; supported: {names}"
            )
        return b

    def __len__(self) -> int:
        return len(self._builders)

    def __contains__(self, t: type) -> bool:
        return self.lookup(t) is not None


class NeuronSteps(Registry):
    """The TensorFlow steps of neuron types: the ``"tensorflow"`` entries of the shared
    :data:`~nhw.backends.neuron_types.NEURON_TYPES` registry, with this module's interface.

    Every target and the NIR exporter read that one registry; this view only keeps the
    builder code's ``register``/``lookup`` calls.
    """

    KEY = "tensorflow"

    def register(self, *types: type) -> Callable[[type], type]:
        """Decorator attaching a TensorFlow step to ``types`` in the shared registry."""

        def deco(step):
            for t in types:
                NEURON_TYPES.attach(t, self.KEY, step)
            return step

        return deco

    def lookup(self, t: type, exact: bool = False):
        """The step of type ``t`` (nearest registered ancestor with the same equations), else None."""
        return NEURON_TYPES.lookup(t, self.KEY, exact)

    def get(self, t: type, obj: object = None):
        """Like :meth:`lookup` but an unsupported type is an :class:`UnsupportedFeatureError`."""
        return NEURON_TYPES.get(t, self.KEY, "tensorflow backend")

    def __len__(self) -> int:
        return len(NEURON_TYPES.supported(self.KEY))

    def supported(self) -> list[str]:
        """Names of the types with a TensorFlow step."""
        return NEURON_TYPES.supported(self.KEY)


OPS = Registry("operator")
NEURONS = NeuronSteps("neuron")
PROCESSES = Registry("process")


def native_process_builder(op) -> type | None:
    """The builder of an input-driven :class:`~nengo.builder.processes.SimProcess`, if native.

    A user subclass that overrides ``make_step`` changes the equations, so it has no
    native builder: it runs its own Python step on the host instead of its parent's.
    """
    if not isinstance(op, SimProcess):
        return None
    proc_type = type(op.process)
    for base in proc_type.__mro__:
        builder = PROCESSES.lookup(base, exact=True)
        if builder is not None:
            return builder if proc_type.make_step is base.make_step else None
    return None


def runs_natively(op) -> bool:
    """Whether an input-driven SimProcess has a TensorFlow builder (see :func:`native_process_builder`)."""
    return native_process_builder(op) is not None


def runs_on_host_neurons(op) -> bool:
    """Whether ``op`` is a :class:`~nengo.builder.neurons.SimNeurons` without a TensorFlow step.

    The lookup is exact: a user subclass may change ``step`` and must not
    silently run its parent's equations, so it runs its own numpy ``step`` on
    the host unless a TensorFlow step was registered for exactly its type
    (see :func:`~.neuron_builders.register_neuron_step`).
    """
    return isinstance(op, SimNeurons) and NEURONS.lookup(type(op.neurons), exact=True) is None

"""Exceptions raised by :mod:`hw_emulator`.

Every error subclasses :class:`EmulatorError` and a builtin category, so callers
can catch either the package's hierarchy or the usual Python exception.
"""

from __future__ import annotations


class EmulatorError(Exception):
    """Base class of every error raised by :mod:`hw_emulator`."""


class ResourceError(EmulatorError, ValueError):
    """A network does not fit the chip: too many compartments, axons, synapses or cores."""


class UnsupportedError(EmulatorError, NotImplementedError):
    """A neuron type, synapse, probe or feature that the chip cannot run."""


class DiscretizationError(EmulatorError, ValueError):
    """A float parameter that has no representation in the chip's integer formats."""


class MappingError(EmulatorError, ValueError):
    """A built model whose structure cannot be mapped onto chip objects."""

"""Exceptions raised by the ``backends`` package.

Every error subclasses :class:`BackendError` and a builtin, so callers can catch
either the package's own hierarchy or the usual Python category.
"""

from __future__ import annotations


class BackendError(Exception):
    """Base class of every error raised by ``backends``."""


class UnknownBackendError(BackendError, KeyError):
    """A backend name that is not registered."""

    def __str__(self) -> str:
        # KeyError.__str__ quotes its argument; we want the sentence as written.
        return str(self.args[0]) if self.args else ""


class BackendUnavailableError(BackendError, RuntimeError):
    """A registered backend whose dependency or device is missing."""


class UnsupportedFeatureError(BackendError, NotImplementedError):
    """A network feature that a backend cannot simulate correctly."""


class SimulationDataKeyError(BackendError, KeyError):
    """``sim.data[obj]`` for an object that the simulator did not build."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

"""Registry of simulation backends, keyed by target name.

Each entry names the module and class that implement the backend, the Python
modules it needs, and an optional probe for its device.  Nothing heavy is
imported until a backend is asked for, so ``import nhw.backends`` stays fast and
free of TensorFlow and pyopencl.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from typing import Callable

from nhw.errors import BackendUnavailableError, UnknownBackendError
from nhw.names import unknown


@dataclass(frozen=True)
class BackendSpec:
    """How to find, check and load one backend.

    Parameters
    ----------
    name
        Target name users type (``"opencl"``).
    target
        ``"module:Class"`` of the Simulator class.
    requires
        Import names of required modules, each with the install hint shown when it
        is missing.
    probe
        ``"module:function"`` returning ``None`` when the device exists, otherwise a
        message saying what is missing and how to install it.  Called lazily.
    summary
        One line shown by :func:`describe`.
    own_process
        The backend's driver cannot share a process with others (PoCL next to
        TensorFlow); multi-target tools run it in a process of its own.
    """

    name: str
    target: str
    requires: tuple[tuple[str, str], ...] = ()
    probe: str | None = None
    summary: str = ""
    own_process: bool = False
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    def unavailable_reason(self) -> str | None:
        """Why this backend cannot run here, or ``None`` if it can."""
        if "reason" not in self._cache:
            self._cache["reason"] = self._check()
        return self._cache["reason"]

    def _check(self) -> str | None:
        for module, hint in self.requires:
            if importlib.util.find_spec(module) is None:
                return f"Python module '{module}' is not installed: {hint}"
        if self.probe is not None:
            try:
                return _load(self.probe)()
            except Exception as exc:  # a broken driver must not break describe()
                return f"device check failed: {type(exc).__name__}: {exc}"
        return None

    def load(self) -> type:
        """Import and return the Simulator class, or raise a clear error."""
        reason = self.unavailable_reason()
        if reason is not None:
            raise BackendUnavailableError(f"backend '{self.name}' is not available: {reason}")
        return _load(self.target)


def _load(path: str) -> Callable:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


_REGISTRY: dict[str, BackendSpec] = {}


def register(spec: BackendSpec, *, replace: bool = False) -> None:
    """Add a backend to the registry.

    Parameters
    ----------
    spec
        The backend's description.
    replace
        Allow replacing an existing entry of the same name.
    """
    if spec.name in _REGISTRY and not replace:
        raise ValueError(f"backend '{spec.name}' is already registered ({_REGISTRY[spec.name].target})")
    _REGISTRY[spec.name] = spec


def spec(name: str) -> BackendSpec:
    """Return the registry entry for ``name``; unknown names list the known ones."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise UnknownBackendError(unknown("target", name, _REGISTRY)) from None


def names() -> list[str]:
    """All registered target names, in registration order."""
    return list(_REGISTRY)

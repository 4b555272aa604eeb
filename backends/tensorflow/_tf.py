"""The one place TensorFlow is imported, quietly.

TensorFlow 2.21 prints absl/XLA start-up lines ("All log messages before
absl::InitializeLog() ...", "Could not find cuda drivers ...") straight to file
descriptor 2 during import, whatever ``TF_CPP_MIN_LOG_LEVEL`` says. Unless the
user asked for TensorFlow's logs (``TF_CPP_MIN_LOG_LEVEL`` < 2), stderr is
pointed at /dev/null for the duration of the import only; Python exceptions
are raised after it is restored.

TensorFlow is also imported *late*: ``tf`` and ``keras`` here are stand-ins that import
the real modules on first attribute access. The simulator modules can then be imported
without TensorFlow, and ``Simulator`` runs nengo's builder before TensorFlow is loaded:
the builder's transient memory (decoder solves of large ensembles) and TensorFlow's
resident image never coexist.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import time
import types

#: seconds this process spent importing TensorFlow/Keras through the stand-ins
_import_seconds = 0.0
_LOAD_LOCK = threading.RLock()


def _import_quietly():
    if "tensorflow" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3") < "2":
        import tensorflow

        return tensorflow
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (e.g. some embedded interpreters)
        import tensorflow

        return tensorflow
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return tensorflow


class _LateModule(types.ModuleType):
    """A module stand-in that imports the real module on first attribute access.

    After loading, the real module's namespace is copied in, so later lookups are
    plain dictionary hits (the stand-in sits on hot graph-construction paths).
    """

    def __init__(self, name: str, load) -> None:
        super().__init__(name)
        self._late_load = load

    def __getattr__(self, attr: str):
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)  # copy/pickle/inspect probes must not import
        real = self.__dict__.get("_late_real")
        if real is None:
            real = self._load()
        # names the real module itself provides lazily (submodules) land here too
        return getattr(real, attr)

    def _load(self):
        global _import_seconds
        with _LOAD_LOCK:  # the quiet import swaps fd 2: one thread at a time
            real = self.__dict__.get("_late_real")
            if real is None:
                t0 = time.perf_counter()
                real = self._late_load()
                _import_seconds += time.perf_counter() - t0
                self.__dict__.update(real.__dict__)
                self._late_real = real
                # from now on a plain module: hits are native dict lookups, and
                # misses (names the real module provides lazily) go to a
                # module-level __getattr__ (PEP 562) forwarding to it
                self.__dict__["__getattr__"] = lambda attr: getattr(real, attr)
                self.__class__ = types.ModuleType
        return real


def _import_keras():
    _import_quietly()  # TensorFlow first, so its start-up noise is silenced
    return importlib.import_module("keras")


def import_seconds() -> float:
    """Seconds spent importing TensorFlow and Keras on first use (0 if already imported).

    A one-time library cost that lands inside the first ``Simulator(...)`` call; the
    benchmark harness reports it apart from build time.
    """
    return _import_seconds


def loaded() -> bool:
    """Whether TensorFlow has been imported (by us or anyone else)."""
    return "tensorflow" in sys.modules


tf = _LateModule("tensorflow", _import_quietly)
keras = _LateModule("keras", _import_keras)

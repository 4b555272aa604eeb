"""nhw's TensorFlow/Keras 3 simulator (the ``tensorflow`` target).

>>> from nhw.backends.tensorflow import Simulator      # doctest: +SKIP
>>> with Simulator(net, minibatch_size=32) as sim:  # doctest: +SKIP
...     out = sim.predict(x)

Importing this package is cheap, and so is importing :class:`Simulator`: TensorFlow is
imported (quietly) inside its constructor, after nengo's builder has run (see
:mod:`._tf`), so the builder's transient memory and TensorFlow's never add up.
"""

from __future__ import annotations

import os

# TensorFlow reads this at import time; default to quiet (C++ INFO, WARNING and the
# cuInit noise of GPU-less machines) unless the user chose a level.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__all__ = [
    "ConversionError",
    "Converter",
    "Layer",
    "Simulator",
    "TensorNode",
    "configure_settings",
    "freeze_params",
    "get_nengo_params",
]

#: Public name -> module that defines it (imported on first use; only the
#: simulator, converter and training modules import TensorFlow).
_LAZY = {
    "Simulator": ".simulator",
    "Converter": ".converter",
    "ConversionError": ".converter",
    "TensorNode": ".tensor_node",
    "Layer": ".tensor_node",
    "configure_settings": ".settings",
    "freeze_params": ".freeze",
    "get_nengo_params": ".freeze",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

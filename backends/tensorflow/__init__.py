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
    "register_neuron_step",
    "tensor_layer",
    "callbacks",
    "dists",
    "losses",
    "neurons",
]

#: Public name -> module that defines it (imported on first use; only the
#: simulator, converter and training modules import TensorFlow).
_LAZY = {
    "Simulator": ".simulator",
    "Converter": ".api.converter",
    "ConversionError": ".api.converter",
    "TensorNode": ".api.tensor_node",
    "Layer": ".api.tensor_node",
    "configure_settings": ".settings",
    "freeze_params": ".api.freeze",
    "get_nengo_params": ".api.freeze",
    "register_neuron_step": ".builders.neuron_builders",
    "tensor_layer": ".api.tensor_node",
}

#: Submodules reachable as attributes (``nengo_dl.dists.Glorot()`` style).
_MODULES = {"callbacks": ".api.callbacks", "dists": ".api.dists", "losses": ".api.losses", "neurons": "nhw.backends.neurons"}


def __getattr__(name: str):
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    if name in _MODULES:
        return importlib.import_module(_MODULES[name], __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

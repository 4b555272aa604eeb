"""The TensorFlow simulator's user API under NengoDL's names.

Porting NengoDL code is a one-line change::

    import nhw.dl as nengo_dl          # was: import nengo_dl

    with nengo_dl.Simulator(net, minibatch_size=32) as sim:
        sim.compile(optimizer="adam", loss={probe: nengo_dl.losses.nan_mse})
        sim.fit(x, y, epochs=5)

Names resolve on first use, so ``import nhw.dl`` does not import TensorFlow; the
simulator imports it when it is constructed.

NengoDL's user-facing submodules import under their NengoDL names too
(``from nhw.dl.losses import nan_mse``, ``from nhw.dl.config import get_setting``);
each is the nhw module that implements it (see :mod:`nhw.dl._alias`).
"""

from __future__ import annotations

import importlib
from typing import Any

from nhw import __version__  # nhw's own version (NengoDL code reads nengo_dl.__version__)

_PKG = "nhw.backends.tensorflow"

#: Public name -> (module, relative to the TF simulator package unless absolute; attribute
#: or None for the module itself).
_NAMES: dict[str, tuple[str, str | None]] = {
    "Simulator": ("simulator", "Simulator"),
    "TensorNode": ("api.tensor_node", "TensorNode"),
    "Layer": ("api.tensor_node", "Layer"),
    "configure_settings": ("settings", "configure_settings"),
    "Converter": ("api.converter", "Converter"),
    "ConversionError": ("api.converter", "ConversionError"),
    "freeze_params": ("api.freeze", "freeze_params"),
    "get_nengo_params": ("api.freeze", "get_nengo_params"),
    "SoftLIFRate": ("nhw.backends.neurons", "SoftLIFRate"),
    "LeakyReLU": ("nhw.backends.neurons", "LeakyReLU"),
    "SpikingLeakyReLU": ("nhw.backends.neurons", "SpikingLeakyReLU"),
    "register_neuron_step": ("builders.neuron_builders", "register_neuron_step"),
    "tensor_layer": ("api.tensor_node", "tensor_layer"),
    "callbacks": ("api.callbacks", None),
    "dists": ("api.dists", None),
    "losses": ("api.losses", None),
    "neurons": ("nhw.backends.neurons", None),
    "converter": ("api.converter", None),
    "graph_optimizer": ("graph_optimizer", None),
    "config": ("nhw.dl.config", None),
    "simulator": ("simulator", None),
    "tensor_node": ("api.tensor_node", None),
    "utils": ("api.dl_utils", None),
}

__all__ = sorted(_NAMES) + ["__version__"]


def __getattr__(name: str) -> Any:
    try:
        module, attr = _NAMES[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    obj = importlib.import_module(module if module.startswith("nhw.") else f"{_PKG}.{module}")
    value = obj if attr is None else getattr(obj, attr)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_NAMES))

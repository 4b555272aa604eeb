"""An experiment's stages, in the order every command calls them.

1. :mod:`.network` — the config's network, built once, trained values applied,
   names checked (:func:`build_network`)
2. :mod:`.feed` — the dataset and the samples fed into an input (:func:`feed_inputs`)
3. :mod:`.simulate` — one target runs it and its probes are collected (:func:`simulate`)

The commands (:mod:`nhw.toolchain.deploy`, ``train``, ``parity_config``) call these
and then write a run directory (:mod:`nhw.toolchain.artifacts`).
"""

from __future__ import annotations

from nhw.toolchain.experiment.feed import feed_inputs, load_data
from nhw.toolchain.experiment.network import apply_trained, build_network
from nhw.toolchain.experiment.simulate import (
    Simulated,
    check_options,
    select_probes,
    simulate,
    spiking_probes,
)

__all__ = [
    "Simulated",
    "apply_trained",
    "build_network",
    "check_options",
    "feed_inputs",
    "load_data",
    "select_probes",
    "simulate",
    "spiking_probes",
]

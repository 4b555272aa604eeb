"""A Loihi-style neuromorphic chip emulator (integer arithmetic, per-core capacities).

Modules, one idea each (see ``SPEC.md`` for the behaviour they implement):

``chip``        the frozen, versioned :class:`~nhw.hw_emulator.chip.ChipSpec`
``discretize``  float parameters -> chip integers, quantisation reports
``rates``       firing-rate models of discretised compartments
``neurons``     registry of chip neuron models (LIF, integrate-and-fire)
``blocks``      chip objects: compartment blocks, input axons, synapse groups
``allocate``    placement on cores and chips, ``ResourceError``
``learning``    on-chip PES: traces, host error, learned weights
``emulator``    the vectorised integer run loop
``synapse_tables`` the emulator's synapse layouts for delivery (dense rows, tables, runs)
``compiled_run`` the emulator's compiled (numba) step and runs, ``run_decoded``
``report``      hardware report (resources, activity, energy/time *estimate*)
``report_layout`` the placement-only part of a report, computed once per placement

Everything here is numpy-only: the chip knows no nengo.  Mapping nengo's built model
onto these objects is the ``loihi-emu`` backend's work (:mod:`nhw.backends.loihi_emu`).
"""

from nhw.errors import (
    DiscretizationError,
    EmulatorError,
    ResourceError,
    UnsupportedFeatureError,
)

from .chip import LOIHI_V1, BoardSpec, ChipSpec

__all__ = [
    "LOIHI_V1",
    "BoardSpec",
    "ChipSpec",
    "DiscretizationError",
    "EmulatorError",
    "ResourceError",
    "UnsupportedFeatureError",
]

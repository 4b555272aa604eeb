"""The ``reference`` target: nengo's own numpy simulator.

This adapter only sharpens error messages (``sim.data`` lookups of objects that
were not built); the numbers are exactly nengo's.
"""

from __future__ import annotations

import nengo
import nengo.simulator

from .base import Simulator as SimulatorContract
from .base import missing_data_error


class NengoSimulationData(nengo.simulator.SimulationData):
    """nengo's data view, raising a message that names the missing object.

    Shared by the adapters of nengo's own simulators (reference, opencl).
    """

    def __getitem__(self, key):
        if key not in self.raw:
            raise missing_data_error(key)
        return super().__getitem__(key)


class Simulator(nengo.Simulator, SimulatorContract):
    """nengo's reference simulator behind the nhw Simulator contract.

    Parameters are those of :class:`nengo.Simulator`.
    """

    def __init__(self, network, dt=0.001, seed=None, model=None, progress_bar=True, optimize=True):
        super().__init__(
            network, dt=dt, seed=seed, model=model, progress_bar=progress_bar, optimize=optimize
        )
        self.data = NengoSimulationData(self.model.params)

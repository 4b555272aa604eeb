"""Host values the chip cannot encode stop the run with an error naming the connection."""

from __future__ import annotations

import nengo
import numpy as np
import pytest

from nhw.backends.loihi_emu import Simulator
from nhw.errors import DiscretizationError


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_non_finite_process_output_is_refused(bad):
    with nengo.Network(seed=0) as net:
        stim = nengo.Node(nengo.processes.Piecewise({0: 0.5, 0.05: bad}), label="stim")
        a = nengo.Ensemble(20, 1, label="a")
        nengo.Connection(stim, a)
    with Simulator(net) as sim:
        with pytest.raises(DiscretizationError, match=r"'stim'.*'a'.*needs finite values"):
            sim.run(0.1)

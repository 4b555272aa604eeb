"""The SimulatorBase bookkeeping shared by nhw's own backends, on a toy backend."""

import nengo
import numpy as np
import pytest
from nengo.exceptions import ReadonlyError, SimulatorClosed

from nhw import backends
from nhw.backends.base import SimulatorBase


class CountingSimulator(SimulatorBase):
    """Records the step number on every probe; enough to test the bookkeeping."""

    def __init__(self, network, dt=0.001, seed=None, progress_bar=False):
        super().__init__(dt)
        self.model = nengo.builder.Model(dt=dt)
        self.model.build(network)
        self._probe_data = {p: [] for p in network.all_probes}
        self.resets = []

    def _run_steps(self, steps):
        for k in range(self.n_steps + 1, self.n_steps + steps + 1):
            for data in self._probe_data.values():
                data.append([k])

    def _reset(self, seed):
        self.resets.append(seed)


@pytest.fixture
def net():
    with nengo.Network() as net:
        ens = nengo.Ensemble(5, 1, label="ens")
        net.probe = nengo.Probe(ens)
    return net


def test_run_time_and_trange(net):
    with CountingSimulator(net, dt=0.002) as sim:
        sim.run(0.0101)  # rounds to 5 steps
        assert sim.n_steps == 5
        assert sim.time == pytest.approx(0.010)
        assert np.allclose(sim.trange(), 0.002 * np.arange(1, 6))
        assert np.allclose(sim.trange(sample_every=0.004), [0.004, 0.008])
        assert sim.data[net.probe].shape == (5, 1)
        sim.step()
        assert sim.data[net.probe].shape == (6, 1)  # cache refreshed


def test_dt_read_only(net):
    sim = CountingSimulator(net)
    with pytest.raises(ReadonlyError, match="read-only"):
        sim.dt = 0.01


def test_closed(net):
    sim = CountingSimulator(net)
    sim.run_steps(3)
    sim.close()
    for call in (sim.step, lambda: sim.run_steps(1), lambda: sim.run(0.1), sim.reset):
        with pytest.raises(SimulatorClosed, match="closed"):
            call()
    assert sim.data[net.probe].shape == (3, 1)  # data survives closing, like nengo


def test_reset_clears(net):
    sim = CountingSimulator(net)
    sim.run_steps(4)
    sim.reset(seed=7)
    assert sim.resets == [7] and sim.n_steps == 0 and sim.data[net.probe].shape == (0,)


def test_negative_steps(net):
    with pytest.raises(ValueError, match="steps must be >= 0, got -1"):
        CountingSimulator(net).run_steps(-1)


def test_run_less_than_half_step_warns(net):
    sim = CountingSimulator(net)
    with pytest.warns(UserWarning, match="no steps simulated"):
        sim.run(0.0001)


def test_unknown_object_message(net):
    sim = CountingSimulator(net)
    stray = nengo.Ensemble(3, 1, label="stray", add_to_container=False)
    with pytest.raises(backends.SimulationDataKeyError, match="Ensemble 'stray'.*not part of the network"):
        sim.data[stray]
    assert sim.data[net.ensembles[0]].encoders.shape == (5, 1)


def test_negative_run_time_and_trange_arguments(net):
    from nengo.exceptions import ValidationError

    sim = CountingSimulator(net)
    with pytest.raises(ValidationError, match="non-negative"):
        sim.run(-0.001)
    sim.run_steps(4)
    with pytest.raises(ValidationError, match="Cannot specify both"):
        sim.trange(dt=0.002, sample_every=0.002)
    with pytest.warns(DeprecationWarning):
        assert np.allclose(sim.trange(dt=0.002), [0.002, 0.004])


def test_backends_get_suggests_the_close_name():
    """As the CLI does: a near miss gets a did-you-mean before the list of targets."""
    import pytest

    from nhw import backends
    from nhw.errors import UnknownBackendError

    with pytest.raises(UnknownBackendError, match=r"unknown target 'loihi_emu'; did you mean 'loihi-emu'\? known: "):
        backends.get("loihi_emu")

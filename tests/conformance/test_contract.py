"""Every available target meets the Simulator contract (nengo's interface)."""

import nengo
import numpy as np
import pytest
from nengo.exceptions import ReadonlyError, SimulatorClosed

from nhw import backends


@pytest.fixture
def net():
    with nengo.Network(seed=3) as net:
        stim = nengo.Node(lambda t: np.sin(8 * t), label="stim")
        ens = nengo.Ensemble(40, 1, label="ens")
        nengo.Connection(stim, ens)
        net.ens = ens
        net.probe = nengo.Probe(ens, synapse=0.01)
        net.spikes = nengo.Probe(ens.neurons)
    return net


def test_is_contract_subclass(target):
    assert issubclass(backends.get(target), backends.Simulator)


def test_run_and_bookkeeping(target, net):
    with backends.get(target)(net, dt=0.001, seed=1, progress_bar=False) as sim:
        assert isinstance(sim, backends.Simulator)
        assert sim.dt == 0.001 and sim.n_steps == 0
        sim.run(0.05)
        sim.run_steps(10)
        sim.step()
        assert sim.n_steps == 61
        assert sim.time == pytest.approx(0.061)
        assert np.allclose(sim.trange(), 0.001 * np.arange(1, 62))
        assert sim.data[net.probe].shape == (61, 1)
        assert sim.data[net.spikes].shape == (61, 40)
        assert sim.data[net.ens].encoders.shape == (40, 1)
        with pytest.raises(ReadonlyError):
            sim.dt = 0.002


def test_reset_reproduces(target, net):
    with backends.get(target)(net, seed=1, progress_bar=False) as sim:
        sim.run_steps(40)
        first = np.array(sim.data[net.probe])
        sim.reset()
        assert sim.n_steps == 0
        sim.run_steps(40)
        assert np.allclose(sim.data[net.probe], first)


def test_closed(target, net):
    sim = backends.get(target)(net, progress_bar=False)
    sim.close()
    for call in (sim.step, lambda: sim.run(0.01), lambda: sim.run_steps(2), sim.reset):
        with pytest.raises(SimulatorClosed):
            call()


def test_probe_not_in_network(target, net):
    stray = nengo.Probe(net.ens, add_to_container=False)
    with backends.get(target)(net, progress_bar=False) as sim:
        sim.run_steps(2)
        with pytest.raises(KeyError, match="not part of the network"):
            sim.data[stray]

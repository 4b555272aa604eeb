"""Neuron input currents are not carried between steps with a minibatch (step_local.py).

A layout choice for speed: probes of the currents, every sample's results and
stateful runs must be unchanged, and ``sim.signals`` must refuse a value it no
longer keeps, saying what to do instead.
"""

from __future__ import annotations

import nengo
import numpy as np
import pytest

from nhw.errors import SimulationDataKeyError
from nhw.backends.tensorflow import Simulator

STEPS = 150  # > SMALL_RUN: the compiled loop


def _net():
    with nengo.Network(seed=4) as net:
        stim = nengo.Node(np.zeros(2), label="stim")
        a = nengo.Ensemble(40, 2)
        b = nengo.Ensemble(30, 1)
        nengo.Connection(stim, a)
        nengo.Connection(a, b, function=lambda x: x[0] * x[1], synapse=0.01)
        nengo.Connection(a.neurons[:5], b.neurons[:5], transform=0.01 * np.ones((5, 5)))
        probes = {"b": nengo.Probe(b, synapse=0.02), "a_in": nengo.Probe(a.neurons, "input"),
                  "b_in": nengo.Probe(b.neurons, "input")}
    return net, stim, a, probes


def _inputs(batch):
    t = np.arange(STEPS) * 0.001
    return np.stack([np.stack([np.sin(7 * t + k), np.cos(4 * t - k)], axis=1) for k in range(batch)])


def test_probed_currents_and_outputs_equal_batch_one_runs():
    net, stim, _, probes = _net()
    x = _inputs(3)
    with Simulator(net, minibatch_size=3, progress_bar=False, seed=2, dtype="float64") as sim:
        local = {sim._layout.slots[i][0] for i in sim._layout.step_local_slots}
        first = sim.predict({stim: x[:, :70]}, stateful=True)
        second = sim.predict({stim: x[:, 70:]}, stateful=True)
    # both ensembles' input currents live within a step
    assert len(local) >= 1 and all("neuron_in" in base.name or "merged" in base.name for base in local)
    for k in range(3):
        with Simulator(net, progress_bar=False, seed=2, dtype="float64") as ref:
            assert not ref._layout.step_local_slots  # batch 1: layout unchanged
            want = ref.predict({stim: x[k:k + 1]})
        for name, p in probes.items():
            got = np.concatenate([first[p][k], second[p][k]], axis=0)
            np.testing.assert_allclose(got, want[p][0], rtol=1e-9, atol=1e-9, err_msg=name)
    assert np.abs(first[probes["a_in"]][0] - first[probes["a_in"]][1]).max() > 1e-2


def test_signals_refuses_a_current_it_does_not_keep():
    net, _, a, probes = _net()
    with Simulator(net, minibatch_size=2, progress_bar=False) as sim:
        J = sim.model.sig[a.neurons]["in"]
        sim.run_steps(STEPS)
        assert J not in sim.signals  # nor listed
        assert J not in list(sim.signals)
        with pytest.raises(SimulationDataKeyError, match=r"not kept between steps.*nengo\.Probe\(ens\.neurons, 'input'\)"):
            sim.signals[J]
        voltage = sim.signals[sim.model.sig[a.neurons]["voltage"]]  # carried state still reads
        assert voltage.shape == (2, 40)
    with Simulator(net, progress_bar=False) as sim:  # batch 1: the last step's current
        sim.run_steps(STEPS)
        np.testing.assert_allclose(sim.signals[sim.model.sig[a.neurons]["in"]], sim.data[probes["a_in"]][-1],
                                   rtol=1e-6, atol=1e-6)

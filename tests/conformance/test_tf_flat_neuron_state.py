"""Neuron state carried flat ``(n * batch,)`` through the loop when there is a minibatch.

A layout choice for speed (``SignalLayout(flat_batch_last=...)``): every sample
of a minibatch must still equal a batch-1 run with that sample's input, state
must carry over between calls, and ``sim.data`` must read the same values.
"""

from __future__ import annotations

import nengo
import numpy as np
import pytest

from nhw.backends.tensorflow import Simulator

STEPS = 150  # > SMALL_RUN: the compiled loop


def _net():
    with nengo.Network(seed=3) as net:
        stim = nengo.Node(np.zeros(2), label="stim")
        a = nengo.Ensemble(40, 2, neuron_type=nengo.LIF())
        b = nengo.Ensemble(30, 2, neuron_type=nengo.AdaptiveLIF(tau_n=0.05, inc_n=0.2))
        c = nengo.Ensemble(20, 1, neuron_type=nengo.RectifiedLinear())
        d = nengo.Ensemble(20, 1, neuron_type=nengo.AdaptiveLIFRate(tau_n=0.05, inc_n=0.2))
        nengo.Connection(stim, a)
        nengo.Connection(a, b, synapse=0.01)
        nengo.Connection(b[0], c, synapse=0.01)
        nengo.Connection(b[1], d, synapse=0.01)
        probes = {
            "b": nengo.Probe(b, synapse=0.02),
            "c": nengo.Probe(c, synapse=0.02),
            "a_spikes": nengo.Probe(a.neurons),
            "b_voltage": nengo.Probe(b.neurons, "voltage"),
            "b_adaptation": nengo.Probe(b.neurons, "adaptation"),
            "d_adaptation": nengo.Probe(d.neurons, "adaptation"),
        }
    return net, stim, probes


def _inputs(batch):
    t = np.arange(STEPS) * 0.001
    return np.stack([np.stack([np.sin(8 * t + k), np.cos(5 * t - k)], axis=1) for k in range(batch)])


@pytest.mark.parametrize("batch", [4, 16])
def test_each_sample_equals_its_batch_one_run(batch):
    net, stim, probes = _net()
    x = _inputs(batch)
    with Simulator(net, minibatch_size=batch, progress_bar=False, seed=1, dtype="float64") as sim:
        flat = sim._layout.flat_last_slots
        first = sim.predict({stim: x[:, : STEPS // 2]}, stateful=True)
        second = sim.predict({stim: x[:, STEPS // 2:]}, stateful=True)  # continues from the first call's state
    # the neuron outputs and states are carried flat: one 1-D loop variable each
    assert len(flat) >= 5
    for k in (0, batch - 1):
        with Simulator(net, progress_bar=False, seed=1, dtype="float64") as ref:
            assert not ref._layout.flat_last_slots  # batch 1: nothing to gain, layout unchanged
            want = ref.predict({stim: x[k:k + 1]})
        for name, p in probes.items():
            got = np.concatenate([first[p][k], second[p][k]], axis=0)
            np.testing.assert_allclose(got, want[p][0], rtol=1e-9, atol=1e-9, err_msg=name)
    # the samples really differ (each sample's input reached its own part of the state)
    assert np.abs(first[probes["b"]][0] - first[probes["b"]][-1]).max() > 1e-2


def test_random_neurons_keep_their_draws():
    # stochastic neurons draw (n, batch) random numbers: they are not flattened,
    # so a minibatch run draws exactly what it drew before this layout existed
    with nengo.Network(seed=0) as net:
        ens = nengo.Ensemble(25, 1, neuron_type=nengo.StochasticSpiking(nengo.LIFRate()))
        lif = nengo.Ensemble(25, 1)
        nengo.Connection(ens, lif)
        p = nengo.Probe(ens.neurons)
        q = nengo.Probe(lif.neurons, "voltage")
    with Simulator(net, minibatch_size=3, progress_bar=False, seed=5) as sim:
        assert sim._layout.flat_last_slots  # the LIF population's state is flat
        ens_bases = {sig.base for op in sim._step_order if getattr(op, "neurons", None) is ens.neuron_type
                     for sig in op.sets + op.updates}
        flat_bases = {sim._layout.slots[i][0] for i in sim._layout.flat_last_slots}
        assert ens_bases and not ens_bases & flat_bases
        sim.run_steps(STEPS)
        spikes, volts = sim.data[p], sim.data[q]
    assert spikes.shape == (3, STEPS, 25) and volts.shape == (3, STEPS, 25)
    assert spikes.any()

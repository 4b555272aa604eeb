"""Merged synapses (backends.tensorflow.filter_merge) against nengo's reference simulator."""

import numpy as np
import nengo
import pytest

pytest.importorskip("tensorflow")

from nhw.backends.tensorflow import Simulator  # noqa: E402
from nhw.backends.tensorflow.passes.filter_merge import MergedLinearFilters  # noqa: E402

SYNAPSES = [0.005, nengo.Alpha(0.004), 0.01, nengo.LinearFilter([1], [0.002, 0.06, 1]),
            nengo.LinearFilter([0.5, 1.0], [0.01, 1.0]), nengo.LinearFilter([2.0], [1.0])]


def chain(n_ens: int, seed: int = 0, synapses=SYNAPSES):
    """``n_ens`` one-dimensional ensembles in chains of 10, one synapse per connection."""
    with nengo.Network(seed=seed) as net:
        stim = nengo.Node(lambda t: [np.sin(8 * t), np.cos(5 * t)], label="stim")
        ens = [nengo.Ensemble(20, 1) for _ in range(n_ens)]
        for i, e in enumerate(ens):
            src = stim[i % 2] if i % 10 == 0 else ens[i - 1]
            nengo.Connection(src, e, synapse=synapses[i % len(synapses)])
        probes = [nengo.Probe(ens[-1], synapse=0.01), nengo.Probe(ens[n_ens // 2], synapse=nengo.Alpha(0.01)),
                  nengo.Probe(ens[3].neurons, synapse=0.003), nengo.Probe(ens[7])]
    return net, stim, probes


@pytest.mark.parametrize("batch", [None, 3])
def test_merged_synapses_match_reference(batch):
    net, stim, probes = chain(40)
    with nengo.Simulator(net, progress_bar=False) as ref:
        ref.run_steps(200)
    with Simulator(net, progress_bar=False, dtype="float64", minibatch_size=batch) as sim:
        merged = [op for op in sim._exec_order if isinstance(op, MergedLinearFilters)]
        assert sum(len(m.ops) for m in merged) >= 30  # most synapses (nengo may leave one alone)
        assert {m.form for m in merged} >= {"onex", "nod", "general", "nox"}
        sim.run_steps(200)
        for p in probes:
            got = sim.data[p] if batch is None else sim.data[p][batch - 1]
            np.testing.assert_allclose(got, ref.data[p], atol=1e-9, rtol=1e-9)


def test_merged_synapse_state_resets_and_runs_stateful_predict():
    net, stim, probes = chain(20)
    with nengo.Simulator(net, progress_bar=False) as ref:
        ref.run_steps(120)
    with Simulator(net, progress_bar=False, dtype="float64", minibatch_size=2) as sim:
        sim.run_steps(50)
        sim.reset()
        first = sim.predict(n_steps=60, stateful=True)
        second = sim.predict(n_steps=60, stateful=True)
    expected = ref.data[probes[0]]
    got = np.concatenate([first[probes[0]], second[probes[0]]], axis=1)
    for b in range(2):
        np.testing.assert_allclose(got[b], expected, atol=1e-9)


def test_many_connections_keep_the_loop_small():
    """Synapses add no loop variables per connection (they added about 3 each).

    What remains grows only with how far nengo's optimizer merged the rest of
    the model.
    """
    net, _, _ = chain(200, synapses=[0.005])
    with Simulator(net, progress_bar=False) as sim:
        merged = [op for op in sim._exec_order if isinstance(op, MergedLinearFilters)]
        assert sum(len(m.ops) for m in merged) >= 200
        states = {id(m.state.base) for m in merged}
        assert sum(id(base) in states for base, _, _ in sim._layout.slots) == len(merged)
        # the rest varies with how far nengo's optimizer merged in this run (94-202
        # seen); one loop variable per synapse state and output, as before, is ~600
        assert len(sim._layout.slots) < 400


def test_signals_read_a_merged_filters_state():
    """``sim.signals[state]`` of a synapse inside a merged operator is its current value.

    Checked through the step forms' output equations: a Lowpass's output is its
    state, an Alpha's is ``C @ state`` (both update their state and output together).
    """
    from nhw.backends.tensorflow.passes.filter_merge import filter_form

    net, _, _ = chain(12, synapses=[0.005, nengo.Alpha(0.004)])
    with Simulator(net, progress_bar=False, dtype="float64") as sim:
        sim.run_steps(30)
        merged = [op for op in sim._exec_order if isinstance(op, MergedLinearFilters)]
        assert {m.form for m in merged} == {"onex", "nod"}
        checked = 0
        for m in merged:
            for op in m.ops:
                X = np.asarray(sim.signals[op.state["X"]])
                C = np.asarray(filter_form(op.process, sim.dt, X.shape)[3])
                y = X[0] if m.form == "onex" else (C @ X)[0]
                np.testing.assert_allclose(y, sim.signals[op.output], rtol=1e-12, atol=1e-14)
                checked += np.abs(y).max() > 1e-3
        assert checked >= 5

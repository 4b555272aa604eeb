"""Blocked neuron state with a minibatch (``neuron_builders.BLOCK_ELEMENTS``).

A large population's flat state is carried as several loop variables so that each
block's update is a kernel XLA:CPU does not split over its threads. The results must
be bit-identical to the unblocked update, for every state variable and the output.
"""

from __future__ import annotations

import nengo
import numpy as np
import pytest

from nhw.backends.tensorflow import Simulator
from nhw.backends.tensorflow.builders import neuron_builders
from nhw.backends.tensorflow.builders.neuron_builders import SimNeuronsBuilder, state_blocks


@pytest.mark.parametrize("n, part, limit", [(800, 16, 4096), (800, 8, 4096), (3200, 16, 4096), (7, 1000, 100),
                                            (601, 4, 1024)])
def test_state_blocks_cover_in_fewest_blocks_within_the_limit(n, part, limit):
    blocks = state_blocks(n, part, limit)
    assert blocks[0][0] == 0 and blocks[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(blocks[:-1], blocks[1:]))
    sizes = [hi - lo for lo, hi in blocks]
    assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1
    # within the limit unless one neuron's samples alone exceed it; and no fewer blocks would do
    assert all(s * part <= limit for s in sizes) or max(sizes) == 1
    assert len(blocks) == min(n, -(-n * part // limit))


def test_state_blocks_one_block_when_it_fits():
    assert state_blocks(100, 16, 4096) == [(0, 100)]


def _network(neuron_type, n=600):
    with nengo.Network(seed=3) as net:
        stim = nengo.Node(lambda t: [np.sin(5 * t), np.cos(3 * t)])
        ens = nengo.Ensemble(n, 2, neuron_type=neuron_type)
        out = nengo.Node(size_in=2)
        nengo.Connection(stim, ens, synapse=0.005)
        nengo.Connection(ens, out, synapse=0.01)
        nengo.Connection(ens, ens, synapse=0.05, transform=0.5)
        probes = {
            "spikes": nengo.Probe(ens.neurons),
            "out": nengo.Probe(out),
            **{k: nengo.Probe(ens.neurons, k) for k in neuron_type.state},
        }
    return net, probes


def _run(neuron_type, limit, monkeypatch, batch=8, steps=60):
    monkeypatch.setattr(neuron_builders, "BLOCK_ELEMENTS", limit)
    net, probes = _network(neuron_type)
    data = np.random.RandomState(1).uniform(-1, 1, size=(batch, steps, 2))
    with Simulator(net, minibatch_size=batch, progress_bar=False, seed=0) as sim:
        blocks = [b.blocks for b in sim._loop.builders if isinstance(b, SimNeuronsBuilder)]
        sim.run_steps(steps)
        return blocks, {k: np.array(sim.data[p]) for k, p in probes.items()}


@pytest.mark.parametrize("neuron_type", [nengo.LIF(), nengo.AdaptiveLIF(tau_n=0.05, inc_n=0.1),
                                         nengo.SpikingRectifiedLinear()])
def test_blocked_state_is_bit_identical(neuron_type, monkeypatch):
    blocked, got = _run(neuron_type, 512, monkeypatch)
    whole, want = _run(neuron_type, 10**12, monkeypatch)
    assert whole == [None]
    assert blocked[0] is not None and len(blocked[0]) >= 2
    assert set(got) == set(want)
    for key in want:
        assert np.array_equal(got[key], want[key]), key
    assert np.count_nonzero(want["spikes"]) > 0


def test_blocked_state_is_its_own_loop_variables(monkeypatch):
    monkeypatch.setattr(neuron_builders, "BLOCK_ELEMENTS", 512)
    net, _ = _network(nengo.LIF())
    with Simulator(net, minibatch_size=8, progress_bar=False, seed=0) as sim:
        (builder,) = [b for b in sim._loop.builders if isinstance(b, SimNeuronsBuilder)]
        lay = sim._layout
        for sig in builder.op.state.values():
            spans = [(a, b) for a, b, _ in lay.segments(sig.base)]
            lo = lay.indices(sig)[0]
            assert [(a - lo, b - lo) for a, b in spans if lo <= a < lo + sig.size] == builder.blocks


def test_no_blocks_without_a_minibatch_or_for_small_populations(monkeypatch):
    monkeypatch.setattr(neuron_builders, "BLOCK_ELEMENTS", 512)
    net, _ = _network(nengo.LIF())
    with Simulator(net, progress_bar=False, seed=0) as sim:
        assert [b.blocks for b in sim._loop.builders if isinstance(b, SimNeuronsBuilder)] == [None]
    monkeypatch.setattr(neuron_builders, "BLOCK_ELEMENTS", 10**6)
    with Simulator(net, minibatch_size=8, progress_bar=False, seed=0) as sim:
        assert [b.blocks for b in sim._loop.builders if isinstance(b, SimNeuronsBuilder)] == [None]


def test_training_reads_and_writes_blocked_state(monkeypatch):
    """Training steps the whole population (not blocked) over the blocked layout: same loss either way."""
    import nhw.dl as nengo_dl

    losses = []
    for limit in (256, 10**12):
        monkeypatch.setattr(neuron_builders, "BLOCK_ELEMENTS", limit)
        with nengo.Network(seed=0) as net:
            inp = nengo.Node(np.zeros(2))
            ens = nengo.Ensemble(600, 2, neuron_type=nengo.LIF())
            nengo.Connection(inp, ens)
            p = nengo.Probe(ens, synapse=0.01)
        x = np.random.RandomState(0).uniform(-1, 1, size=(8, 5, 2))
        with nengo_dl.Simulator(net, minibatch_size=4, progress_bar=False, seed=0) as sim:
            if limit == 256:
                assert [b.blocks for b in sim._loop.builders if isinstance(b, SimNeuronsBuilder)] != [None]
            sim.compile(optimizer="sgd", loss="mse")
            hist = sim.fit({inp: x}, {p: np.zeros((8, 5, 2))}, epochs=1, verbose=0)
            losses.append(hist.history["loss"][-1])
    assert np.isfinite(losses[0])
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)

"""Minibatches split into parts that run concurrently (``batch_shards``).

Splitting is a scheduling choice: every probe must equal the unsplit run, with
per-sample inputs, across calls (state carried over), and with learning. XLA
may compile a narrower batch with a different vectorisation, so "equal" is to
float32 rounding (as between two minibatch sizes); networks whose samples
interact are never split.
"""

from __future__ import annotations

import nengo
import numpy as np
import pytest
from nengo.exceptions import ValidationError

from nhw.backends.tensorflow import Simulator, TensorNode, configure_settings
from nhw.backends.tensorflow.runtime.loop import MIN_CACHE_SPLIT_SAMPLES, MIN_SHARD_SAMPLES, choose_shards
from pes_nets import pes_net


def _with_shards(net, shards):
    with net:
        configure_settings(batch_shards=shards)
    return net


def _predict_twice(net, probes, shards, batch=8, steps=120):
    # 120 steps > SMALL_RUN: the XLA loop, the only one that is split
    _with_shards(net, shards)
    stim = [n for n in net.all_nodes if n.size_in == 0][0]
    rng = np.random.RandomState(0)
    x = rng.uniform(-1, 1, (batch, steps, stim.size_out)).astype(np.float32)
    with Simulator(net, progress_bar=False, minibatch_size=batch, seed=2) as sim:
        first = sim.predict({stim: x}, stateful=True)
        second = sim.predict({stim: x[:, ::-1]}, stateful=True)  # continues from the first call's state
        used = sim._loop.shards
    return used, [first[p] for p in probes.values()] + [second[p] for p in probes.values()]


@pytest.mark.parametrize("shards", [2, 4])
def test_split_minibatch_equals_unsplit(shards):
    net, probes = pes_net(d=2, n_per_dim=20)
    used1, want = _predict_twice(net, probes, 1)
    used, got = _predict_twice(net, probes, shards)
    assert (used1, used) == (1, shards)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-5)
    # the samples really differ (per-sample inputs reached their own part)
    assert np.abs(want[0][0] - want[0][-1]).max() > 1e-3


def test_auto_shards_follow_cores_and_batch(monkeypatch):
    class B:
        samples_independent = True

    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert choose_shards(32, [B()]) == 2
    assert choose_shards(2 * MIN_SHARD_SAMPLES - 1, [B()]) == 1
    assert choose_shards(32, [B()], on_gpu=True) == 1
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(3)), raising=False)
    assert choose_shards(32, [B()]) == 2  # the largest divisor of 32 not above 3


def test_auto_shards_keep_the_concurrent_state_in_cache(monkeypatch):
    class B:
        samples_independent = True

    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1}, raising=False)
    mb = 1 << 20
    # two cores each streaming half of 26 MB exceed half a 32 MB cache: 4 parts
    assert choose_shards(32, [B()], state_bytes=26 * mb, cache_bytes=32 * mb) == 4
    assert choose_shards(32, [B()], state_bytes=2 * mb, cache_bytes=32 * mb) == 2
    assert choose_shards(48, [B()], state_bytes=40 * mb, cache_bytes=32 * mb) == 6  # multiples of 2 dividing 48
    # never below MIN_CACHE_SPLIT_SAMPLES samples per part, however large the state
    assert choose_shards(32, [B()], state_bytes=10 << 30, cache_bytes=32 * mb) == 32 // MIN_CACHE_SPLIT_SAMPLES
    assert choose_shards(64, [B()], state_bytes=10 << 30, cache_bytes=32 * mb) == 64 // MIN_CACHE_SPLIT_SAMPLES
    # a part per core may hold fewer (the cores' parallelism pays for it)
    assert choose_shards(16, [B()], state_bytes=10 << 30, cache_bytes=32 * mb) == 2
    assert choose_shards(8, [B()], state_bytes=10 << 30, cache_bytes=32 * mb) == 2
    assert choose_shards(32, [B()], 2, state_bytes=10 << 30, cache_bytes=32 * mb) == 2  # asked for


def test_interacting_samples_are_never_split():
    with nengo.Network(seed=0) as net:
        inp = nengo.Node(np.zeros(3))
        # a layer that mixes the samples of the minibatch
        node = TensorNode(lambda x: x - np.float32(1) * x[:1], shape_in=(3,), pass_time=False)
        nengo.Connection(inp, node, synapse=None)
        nengo.Probe(node)
    with Simulator(net, progress_bar=False, minibatch_size=8) as sim:
        assert sim._loop.shards == 1
    with net:
        configure_settings(batch_shards=2)
    with pytest.raises(ValidationError, match="batch_shards=2.*cannot be split"):
        Simulator(net, progress_bar=False, minibatch_size=8)


def test_bad_shard_count_is_refused():
    net, _ = pes_net(d=1, n_per_dim=10)
    _with_shards(net, 3)
    with pytest.raises(ValidationError, match="divisor of minibatch_size=8; got 3"):
        Simulator(net, progress_bar=False, minibatch_size=8)
    with pytest.raises(ValidationError):
        with net:
            configure_settings(batch_shards=0)


def test_auto_shards_fit_learned_matrices_in_a_cores_cache(monkeypatch):
    class B:
        samples_independent = True

    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1}, raising=False)
    kb, mb = 1 << 10, 1 << 20
    big_l3 = dict(state_bytes=3 * mb, cache_bytes=32 * mb, core_cache=512 * kb)
    # pes16 at batch 32: 1.6 MB of weights; 4 parts of 410 kB fit a 512 kB L2
    assert choose_shards(32, [B()], matrix_bytes=1640 * kb, **big_l3) == 4
    # already fitting as one part per core: unchanged
    assert choose_shards(32, [B()], matrix_bytes=800 * kb, **big_l3) == 2
    # no allowed split (>= MIN_CACHE_SPLIT_SAMPLES each) fits: unchanged
    assert choose_shards(32, [B()], matrix_bytes=6 * mb, **big_l3) == 2
    # the smallest fitting multiple of the core count that divides the batch
    assert choose_shards(48, [B()], matrix_bytes=2500 * kb, **big_l3) == 6
    # unknown L2 size, or a fixed request: no such split
    assert choose_shards(32, [B()], matrix_bytes=1640 * kb, **dict(big_l3, core_cache=0)) == 2
    assert choose_shards(32, [B()], 2, matrix_bytes=1640 * kb, **big_l3) == 2


def test_pes_weights_set_the_split_from_the_layout(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr("nhw.backends.tensorflow.runtime.loop.core_cache_bytes", lambda: 64 << 10)
    net, _ = pes_net(d=2, n_per_dim=20)  # 2 x 40 weights per sample
    with Simulator(net, minibatch_size=32, progress_bar=False) as sim:
        assert sim._layout.matrix_bytes(32) == 2 * 40 * 32 * 4
        assert sim._loop.shards == 2  # 10 kB fit in 64 kB
    monkeypatch.setattr("nhw.backends.tensorflow.runtime.loop.core_cache_bytes", lambda: 4 << 10)
    with Simulator(net, minibatch_size=32, progress_bar=False) as sim:
        assert sim._loop.shards == 4  # 2.5 kB per part fit in 4 kB

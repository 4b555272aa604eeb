"""loihi-emu's batched and compiled host paths against the per-step host code: bit for bit.

The fast paths (source Nodes evaluated for a whole chunk, spikes decoded inside the
compiled emulator loop, the spike encoder and row-by-row Lowpass compiled) must give
exactly the numbers of the per-step code they replace, for runs in one piece and split
into pieces, and for Nodes that must stay per-step (state, feedback from the chip).
"""

from __future__ import annotations

import itertools

import nengo
import numpy as np
import pytest
from scipy import sparse

from nhw.backends.loihi_emu import host_kernels, time_nodes
from nhw.backends.loihi_emu.host import check_output
from nhw.backends.loihi_emu.simulator import Simulator
from nhw.errors import ConfigError
from nhw.hw_emulator.emulator import Emulator

needs_numba = pytest.mark.skipif(not host_kernels.AVAILABLE, reason="numba not installed (nhw[fast])")


def _counter():
    """A stateful node function: its output depends on how often it was called."""
    calls = itertools.count()
    return lambda t: [np.sin(0.01 * next(calls)), 0.5]


def _open_loop() -> nengo.Network:
    """Every kind of source Node, host connections between Nodes, probes of every plan."""
    with nengo.Network(seed=5) as net:
        const = nengo.Node([0.3, -0.6], label="const")
        pw = nengo.Node(nengo.processes.Piecewise({0: [0.2, 0.1], 0.031: [-0.5, 0.7], 0.2: [0.9, -0.2]}))
        pi = nengo.Node(nengo.processes.PresentInput([[0.1, 0.4], [-0.7, 0.2], [0.5, 0.5]], 0.013))
        stateful = nengo.Node(_counter())
        fn = nengo.Node(lambda t: [np.cos(9 * t), np.sin(5 * t)])
        relay = nengo.Node(size_in=2)
        nengo.Connection(const, relay, synapse=0.004)
        nengo.Connection(pw, relay, synapse=None)
        a = nengo.Ensemble(80, 2)
        b = nengo.Ensemble(60, 2)
        c = nengo.Ensemble(60, 2)
        nengo.Connection(relay, a)
        nengo.Connection(pi, a, transform=0.5)
        nengo.Connection(stateful, b)
        nengo.Connection(fn, c, function=lambda x: x ** 2)
        nengo.Connection(a, b, synapse=0.01)
        out = nengo.Node(size_in=2)
        nengo.Connection(b, out)
        nengo.Connection(c, out, synapse=0.02)
        net.test_probes = [
            nengo.Probe(a, synapse=0.01), nengo.Probe(b), nengo.Probe(out, synapse=0.005),
            nengo.Probe(relay, synapse=0.003), nengo.Probe(pw), nengo.Probe(pi, synapse=0.01),
            nengo.Probe(stateful), nengo.Probe(c.neurons), nengo.Probe(a, "decoded_output", sample_every=0.003),
        ]
    return net


def _feedback() -> nengo.Network:
    """A Node reading the chip and feeding it back (must stay per step) next to batched sources."""
    with nengo.Network(seed=6) as net:
        pw = nengo.Node(nengo.processes.Piecewise({0: [0.5], 0.05: [-0.5]}))
        const = nengo.Node([0.25])
        a = nengo.Ensemble(60, 1)
        b = nengo.Ensemble(60, 1)
        loop = nengo.Node(lambda t, x: -0.5 * x, size_in=1, size_out=1)
        nengo.Connection(pw, a)
        nengo.Connection(const, b)
        nengo.Connection(a, loop)
        nengo.Connection(loop, b)
        net.test_probes = [nengo.Probe(b, synapse=0.01), nengo.Probe(loop), nengo.Probe(pw), nengo.Probe(a.neurons)]
    return net


def _learning() -> nengo.Network:
    """PES with its error from a Node reading the chip: the closed loop's compiled host steps
    (error quantisation, decode and Lowpass bank, host-connection Lowpass)."""
    with nengo.Network(seed=7) as net:
        stim = nengo.Node(lambda t: [np.sin(7 * t), np.cos(5 * t)])
        pre = nengo.Ensemble(80, 2)
        post = nengo.Ensemble(60, 2)
        nengo.Connection(stim, pre)
        conn = nengo.Connection(pre, post, function=lambda x: [0, 0], learning_rule_type=nengo.PES(3e-4))
        err = nengo.Node(size_in=2)
        nengo.Connection(post, err, synapse=0.01)
        nengo.Connection(stim, err, transform=-1, synapse=0.005)
        nengo.Connection(err, conn.learning_rule)
        net.test_probes = [nengo.Probe(post, synapse=0.01), nengo.Probe(err), nengo.Probe(pre.neurons),
                           nengo.Probe(post, synapse=0.02)]
    return net


def _run(make, pieces, fast: bool, monkeypatch) -> list:
    net = make()  # fresh: the stateful node function counts its calls
    with monkeypatch.context() as m:
        if not fast:
            m.setattr(Simulator, "fast_host", False)
            m.setattr(host_kernels, "AVAILABLE", False)
        with Simulator(net, seed=1) as sim:
            assert sim.encoder.compiled == fast
            for n in pieces:
                sim.run_steps(n)
            return [np.array(sim.data[p]) for p in net.test_probes] + [sim.emulator.spike_count.copy(),
                                                                    sim.emulator.input_count.copy()]


@needs_numba
@pytest.mark.parametrize("make", [_open_loop, _feedback, _learning], ids=["open-loop", "feedback", "learning"])
@pytest.mark.parametrize("pieces", [(300,), (1, 57, 1, 141, 100)], ids=["one-run", "split"])
def test_fast_host_equals_per_step_host(make, pieces, monkeypatch):
    fast = _run(make, pieces, True, monkeypatch)
    ref = _run(make, pieces, False, monkeypatch)
    assert len(fast) == len(ref)
    for i, (x, y) in enumerate(zip(fast, ref)):
        assert x.shape == y.shape, i
        assert np.array_equal(x, y), f"probe {i} differs"
    assert np.abs(fast[0]).max() > 0.05  # the network did something


@needs_numba
def test_fast_host_keeps_a_stateful_node_per_step(monkeypatch):
    # a Node function with state is called once per step, in order (nengo called it
    # once more when the Node was made, to learn its output size)
    data = _run(_open_loop, (10, 25), True, monkeypatch)
    stateful = data[6]
    np.testing.assert_array_equal(stateful[:, 0], np.sin(0.01 * np.arange(1, 36)))


def _emulator_network():
    from tests.unit.test_hw_kernel import _random_network

    return _random_network(7, big=False)


@needs_numba
def test_run_decoded_equals_the_sparse_product_of_the_raster():
    net = _emulator_network()
    fast, ref = Emulator(net, kernel="numba"), Emulator(net, kernel="numba")
    rng = np.random.RandomState(0)
    cols = np.sort(rng.choice(fast.n, 90, replace=False))
    dec = rng.standard_normal((90, 5)) * 10.0 ** rng.randint(-3, 4, (90, 1))
    for steps in (75, 1, 40):
        counts = rng.randint(0, 4, (steps, 30))
        y = fast.run_decoded(steps, counts, cols, dec)
        raster, _ = ref.run(steps, counts, cols)
        assert np.array_equal(y, np.asarray(sparse.csr_matrix(raster, dtype=np.float64) @ dec))
        assert raster.any()
        for attr in ("spike_count", "active_count", "input_count", "u_overflows"):
            assert np.array_equal(getattr(fast, attr), getattr(ref, attr)), attr
        assert np.array_equal(fast.spikes, ref.spikes) and fast.n_steps == ref.n_steps


def test_run_decoded_needs_the_compiled_kernel():
    em = Emulator(_emulator_network(), kernel="numpy")
    assert not em.can_run_decoded
    with pytest.raises(ConfigError, match="kernel='numpy'"):
        em.run_decoded(3, None, np.arange(3), np.ones((3, 1)))


def _numpy_encode(y, acc, amp, kmax):
    # one recurrence per step (SpikeEncoder.encode): residual + value, whole spikes out
    k = np.empty_like(y)
    for i, row in enumerate(y):
        acc = acc + row
        k[i] = np.floor(acc / amp)
        acc = acc - k[i] * amp
    over = (np.abs(k) > kmax).any(axis=0)
    return np.clip(k, -kmax, kmax), acc, over


@needs_numba
def test_compiled_encoder_equals_numpy_encoder():
    rng = np.random.RandomState(2)
    rows, n_inputs = 6, 14
    amp = rng.uniform(0.01, 0.3, rows)
    kmax = rng.randint(1, 20, rows).astype(float)
    on, off = np.arange(rows), np.arange(rows, 2 * rows)
    acc = rng.uniform(0, 1, rows) * amp
    acc_ref = acc.copy()
    for steps in (50, 2, 200):
        y = rng.standard_normal((steps, rows)) * rng.choice([0.01, 1.0, 5.0], rows)
        counts, over = host_kernels.encode_counts(y, acc, amp, kmax, on, off, n_inputs)
        k, acc_ref, over_ref = _numpy_encode(y, acc_ref, amp, kmax)
        assert np.array_equal(counts[:, on], np.maximum(k, 0).astype(np.int64))
        assert np.array_equal(counts[:, off], np.maximum(-k, 0).astype(np.int64))
        assert not counts[:, 2 * rows:].any()
        assert np.array_equal(acc, acc_ref) and np.array_equal(over, over_ref)
    assert over_ref.any() and not over_ref.all()  # both the clipped and the free case
    # any split of the steps into calls gives the same counts and residual
    y = rng.standard_normal((300, rows)) * 0.1
    acc1, acc2 = acc.copy(), acc.copy()
    whole, _ = host_kernels.encode_counts(y, acc1, amp, kmax, on, off, n_inputs)
    parts = [host_kernels.encode_counts(y[a:b], acc2, amp, kmax, on, off, n_inputs)[0]
             for a, b in ((0, 1), (1, 117), (117, 300))]
    assert np.array_equal(whole, np.concatenate(parts)) and np.array_equal(acc1, acc2)


@needs_numba
@pytest.mark.parametrize("decay", [0.9, np.array([0.0, 0.5, 0.99])], ids=["scalar", "per-value"])
def test_compiled_lowpass_rows_equal_successive_calls(decay):
    rng = np.random.RandomState(3)
    x = rng.standard_normal((40, 3))
    state = rng.standard_normal(3)
    y_ref, rows = state.copy(), []
    for row in x:
        y_ref = decay * y_ref + (1 - decay) * row
        rows.append(y_ref)
    out = host_kernels.lowpass_rows(state, decay, x)
    assert np.array_equal(out, np.array(rows)) and np.array_equal(state, y_ref)


@pytest.mark.parametrize("process", [
    nengo.processes.Piecewise({0.0: [1.0, 2.0], 0.0105: [3.0, -1.0], 0.02: [0.5, 0.5]}),
    nengo.processes.Piecewise({0.004: [1.0, 2.0]}),
    nengo.processes.PresentInput([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], 0.007),
], ids=["piecewise", "piecewise-late-start", "present-input"])
def test_time_node_tables_equal_the_step_function(process):
    node = nengo.Node(process, size_out=2, add_to_container=False)
    dt = 0.001
    ts = (1 + np.arange(60)) * dt
    step = process.make_step((0,), (2,), dt, np.random.RandomState(0), process.make_state((0,), (2,), dt))
    expected = np.array([np.broadcast_to(np.asarray(step(t), np.float64), (2,)) for t in ts])
    assert time_nodes.may_table(node)
    assert np.array_equal(time_nodes.table(node, ts, dt, check_output), expected)


def test_time_node_tables_leave_other_nodes_to_their_calls():
    with nengo.Network():
        _time_node_kinds()


def _time_node_kinds():
    assert not time_nodes.may_table(nengo.Node(lambda t: t))
    assert not time_nodes.may_table(nengo.Node(nengo.processes.WhiteSignal(1, 5), size_out=1))
    assert time_nodes.table(nengo.Node(nengo.processes.Piecewise({0: [1.0]}, interpolation="linear")),
                            np.arange(3) * 1e-3, 1e-3, check_output) is None
    assert time_nodes.may_table(nengo.Node([1.0, 2.0]))


@needs_numba
@pytest.mark.parametrize("wide", [False, True], ids=["loihi-float32", "wide-float64"])
def test_compiled_pes_learning_equals_numpy_learning(wide):
    import dataclasses

    from nhw.hw_emulator.chip import LOIHI_V1
    from nhw.hw_emulator.learning import LearnedWeights, PESRule, TraceRegisters

    spec = dataclasses.replace(LOIHI_V1, weight_bits=20) if wide else LOIHI_V1
    rng = np.random.RandomState(4)
    n_src, n_dims = 40, 3
    rule = PESRule("r", n_dims, np.repeat(np.arange(n_dims), 2), np.tile([1, -1], n_dims),
                   rng.randint(-200, 200, (n_src, n_dims)), TraceRegisters(300, 40, 1.0),
                   np.array([90, 200, 255]), 3, np.ones(n_dims), epoch=2)
    fast, ref = (LearnedWeights(rule, slice(0, n_src), slice(n_src, n_src + 2 * n_dims), 6, spec) for _ in "ab")
    assert fast.dtype == (np.float64 if wide else np.float32)
    g_fast, g_ref = np.random.Generator(np.random.PCG64(9)), np.random.Generator(np.random.PCG64(9))
    q = np.zeros(n_src + 2 * n_dims)
    for step in range(1, 301):
        pre = rng.rand(n_src) < 0.3 * (step % 7 != 0)  # some steps without pre spikes
        q[:] = 0.0
        fast.deliver_compiled(pre, q)
        d = ref.deliver(pre)
        expected = np.zeros_like(q)
        if d is not None:
            expected[n_src:] += d
        assert np.array_equal(q, expected)
        e = rng.randint(-127, 128, n_dims) * (step % 5 != 0)  # and zero errors
        fast.set_error(e)
        ref.set_error(e)
        fast.learn_compiled(pre, g_fast, step)
        ref.learn(pre, g_ref, step)
        assert np.array_equal(fast.x, ref.x) and np.array_equal(fast.mant, ref.mant), step
    assert fast.saturations == ref.saturations and fast.epochs == ref.epochs
    if not wide:
        assert ref.saturations > 0  # the clip was exercised
    assert g_fast.integers(1 << 30) == g_ref.integers(1 << 30)  # the same draws


@needs_numba
def test_compiled_error_quantisation_equals_numpy():
    from nhw.hw_emulator.chip import LOIHI_V1
    from nhw.hw_emulator.learning import PESRule, TraceRegisters, quantize_error

    n_dims = 6
    scale = np.array([0.01, 0.02, 0.5, 1e-3, 0.25, 0.01])
    rule = PESRule("r", n_dims, np.arange(n_dims), np.ones(n_dims, np.int64), np.zeros((1, n_dims)),
                   TraceRegisters(2, 20, 1.0), np.ones(n_dims, np.int64), 0, scale)
    rng = np.random.RandomState(0)
    inv = 1.0 / scale
    for e in [rng.randn(n_dims) * 3, (np.arange(n_dims) + 0.5) * scale, np.full(n_dims, 1e6), -np.full(n_dims, 1e6)]:
        got = host_kernels.quantize_error(e, inv, float(LOIHI_V1.error_max))
        assert got.dtype == np.int64
        assert np.array_equal(got, quantize_error(e, rule, LOIHI_V1))  # ties round to even, clips equal

"""The compiled closed-loop chunk (``backends/loihi_emu/closed_loop.py``) equals the per-step loop bit for bit."""

from __future__ import annotations

import nengo
import numpy as np
import pytest

from nhw.backends.loihi_emu import host_kernels
from nhw.backends.loihi_emu.simulator import Simulator

needs_numba = pytest.mark.skipif(not host_kernels.AVAILABLE, reason="numba not installed (nhw[fast])")


def _pes(error_fn=None, chain: bool = False, probe_error: bool = False, probe_voltage: bool = False,
         rule_transform: object = 1.0, d: int = 2) -> nengo.Network:
    """PES with ``error = post - stim`` on the host; ``chain``: the error passes a second Node
    through a filtered elementwise (1-D) transform, so a late Node reads a late connection."""
    with nengo.Network(seed=11) as net:
        stim = nengo.Node(lambda t: np.sin((3 + np.arange(d)) * t))
        pre = nengo.Ensemble(40 * d, d)
        post = nengo.Ensemble(30 * d, d)
        nengo.Connection(stim, pre)
        conn = nengo.Connection(pre, post, function=lambda x: np.zeros(d), learning_rule_type=nengo.PES(5e-4))
        err = nengo.Node(error_fn, size_in=d, size_out=d if error_fn else None)
        nengo.Connection(post, err, synapse=0.01)
        nengo.Connection(stim, err, transform=-1, synapse=0.005)
        if chain:
            err2 = nengo.Node(size_in=d)
            nengo.Connection(err, err2, transform=np.linspace(0.5, 1.5, d), synapse=0.003)
            nengo.Connection(stim, err2, transform=0.1)
            nengo.Connection(err2, conn.learning_rule, transform=0.8)
        else:
            nengo.Connection(err, conn.learning_rule, transform=rule_transform)
        net.test_probes = [nengo.Probe(post, synapse=0.01), nengo.Probe(post)]
        if probe_error:  # Node probes: a late Node filtered and not, an early Node
            net.test_probes += [nengo.Probe(err), nengo.Probe(err, synapse=0.02), nengo.Probe(stim, synapse=0.01)]
        if probe_voltage:
            net.test_probes.append(nengo.Probe(post.neurons, "voltage"))
    return net


def _run(net: nengo.Network, pieces: tuple, fast: bool, monkeypatch, reset: bool = False) -> tuple:
    with monkeypatch.context() as m:
        if not fast:
            m.setattr(Simulator, "fast_host", False)
        with Simulator(net, seed=3) as sim:
            if reset:
                sim.run_steps(77)
                sim.reset()
            for n in pieces:
                sim.run_steps(n)
            em = sim.emulator
            lw = next(iter(em.learned.values()))[1]
            state = [lw.mantissas] + [np.array(sim.data[p]) for p in net.test_probes] + [
                em.spike_count.copy(), em.input_count.copy(), em.active_count.copy(), lw.x.copy(),
                lw.error.copy(), np.array([em.n_steps, em.q_overflows, lw.epochs, lw.saturations]),
                sim.host.y_all.copy(),
            ]
            # the host's late values too (the error's rounding would hide last-bit differences)
            late_nodes, late_conns = sim.host.passes["late"]
            state += [np.array(sim.host.node_val[nd]) for nd in late_nodes]
            state += [np.array(sim.host.conn_next[c]) for c in late_conns]
            return sim._loop_plan is not None, state


@needs_numba
@pytest.mark.parametrize("kw", [{}, {"chain": True}, {"probe_error": True}],
                         ids=["error-node", "error-chain", "node-probes"])
@pytest.mark.parametrize("pieces", [(300,), (1, 57, 1, 141, 100, 250)], ids=["one-run", "split"])
def test_compiled_closed_loop_equals_per_step_loop(kw, pieces, monkeypatch):
    planned, fast = _run(_pes(**kw), pieces, True, monkeypatch)
    assert planned
    _, ref = _run(_pes(**kw), pieces, False, monkeypatch)
    for i, (x, y) in enumerate(zip(fast, ref)):
        assert x.shape == y.shape, i
        assert np.array_equal(x, y), f"item {i} differs"
    assert np.abs(fast[1]).max() > 0.05 and np.abs(fast[0]).sum() > 0  # it ran and learned


@needs_numba
def test_compiled_closed_loop_after_reset(monkeypatch):
    planned, fast = _run(_pes(), (120,), True, monkeypatch, reset=True)
    assert planned
    _, fresh = _run(_pes(), (120,), True, monkeypatch)
    for x, y in zip(fast, fresh):
        assert np.array_equal(x, y)


@needs_numba
def test_compiled_closed_loop_epoch(monkeypatch):
    """A weight update every 3rd step: the dither draws stay in the per-step order."""
    net = _pes()
    with monkeypatch.context() as m:
        results = []
        for fast in (True, False):
            m.setattr(Simulator, "fast_host", fast)
            with Simulator(net, seed=3, learn_epoch=3) as sim:
                assert (sim._loop_plan is not None) == fast
                sim.run_steps(101)
                sim.run_steps(50)
                lw = next(iter(sim.emulator.learned.values()))[1]
                results.append((np.array(sim.data[net.test_probes[0]]), lw.mantissas, lw.epochs))
    assert np.array_equal(results[0][0], results[1][0])
    assert np.array_equal(results[0][1], results[1][1])
    assert results[0][2] == results[1][2] == 50


@needs_numba
@pytest.mark.parametrize("kw", [{"error_fn": lambda t, x: x}, {"probe_voltage": True},
                                {"rule_transform": [[1.0, 0.2], [-0.1, 0.9]]}],
                         ids=["node-function", "voltage-probe", "matrix-transform"])
def test_other_late_host_passes_keep_the_per_step_loop(kw, monkeypatch):
    planned, fast = _run(_pes(**kw), (130,), True, monkeypatch)
    assert not planned
    _, ref = _run(_pes(**kw), (130,), False, monkeypatch)
    for x, y in zip(fast, ref):
        assert np.array_equal(x, y)


def test_no_plan_without_numba(monkeypatch):
    monkeypatch.setattr(host_kernels, "AVAILABLE", False)
    with Simulator(_pes(), seed=3) as sim:
        assert sim._loop_plan is None
        sim.run_steps(20)

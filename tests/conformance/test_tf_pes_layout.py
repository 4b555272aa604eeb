"""How the TensorFlow simulator lays out PES learning (backends/tensorflow/outer_delta.py).

PES's ``delta`` is kept as its two factors instead of a (post, pre, batch)
tensor, and fixed decoders that nengo's optimizer merged into one block-sparse
matrix with the learned ones are read as constants. Both are layout choices:
results must equal those of nengo's own operators (the rewrite switched off)
and nengo's reference simulator; a probed ``delta`` keeps nengo's operators.
"""

from __future__ import annotations

import nengo
import numpy as np
import pytest
from nengo.builder.learning_rules import SimPES
from nengo.builder.operator import BsrDotInc

import nhw.backends.tensorflow.simulator as tf_simulator
from nhw.backends.tensorflow import Simulator
from nhw.backends.tensorflow.passes.outer_delta import AddOuterProduct, KeepPESFactors
from pes_nets import pes_net


def _pes_net(probe_delta: bool = False):
    return pes_net(d=2, n_per_dim=40, rate=2e-3, seed=5, probe_delta=probe_delta)


def _run(net, probes, batch, steps=300, factor=True, monkeypatch=None):
    if not factor:
        monkeypatch.setattr(tf_simulator, "factor_outer_deltas", lambda ops, keep=(): list(ops))
    with Simulator(net, progress_bar=False, minibatch_size=batch, seed=1) as sim:
        sim.run_steps(steps)
        ops = list(sim._step_order)
        out = {k: sim.data[p].copy() for k, p in probes.items()}
    if not factor:
        monkeypatch.undo()
    return ops, out


@pytest.mark.parametrize("batch", [None, 4])
def test_factored_pes_equals_nengo_operators(batch, monkeypatch):
    net, probes = _pes_net()
    ops, got = _run(net, probes, batch)
    assert any(isinstance(op, KeepPESFactors) for op in ops)
    assert any(isinstance(op, AddOuterProduct) for op in ops)
    assert not any(isinstance(op, SimPES) for op in ops)
    old_ops, want = _run(net, probes, batch, factor=False, monkeypatch=monkeypatch)
    assert any(isinstance(op, SimPES) for op in old_ops)
    for key in probes:
        # same products in the same step; XLA may contract the multiply-add differently
        np.testing.assert_allclose(got[key], want[key], rtol=0, atol=1e-6, err_msg=key)
    with nengo.Simulator(net, progress_bar=False, seed=1) as ref:
        ref.run_steps(300)
    first = (lambda a: a) if batch is None else (lambda a: a[0])
    np.testing.assert_allclose(first(got["weights"]), ref.data[probes["weights"]], atol=1e-4)
    np.testing.assert_allclose(first(got["post"]), ref.data[probes["post"]], atol=2e-3)


def test_probed_delta_keeps_nengo_operators():
    net, probes = _pes_net(probe_delta=True)
    ops, got = _run(net, probes, None, steps=100)
    assert any(isinstance(op, SimPES) for op in ops)
    assert not any(isinstance(op, KeepPESFactors) for op in ops)
    with nengo.Simulator(net, progress_bar=False, seed=1) as ref:
        ref.run_steps(100)
    np.testing.assert_allclose(got["delta"], ref.data[probes["delta"]], atol=1e-7)


def _learned_channel(d: int, post_input: bool):
    """``stim -> pre -(PES, error = stim)-> post`` (and ``stim -> post`` if asked)."""
    with nengo.Network(seed=5) as net:
        stim = nengo.Node(lambda t: np.sin(2 * np.pi * t * np.arange(1, d + 1)))
        pre = nengo.Ensemble(80, d)
        post = nengo.Ensemble(80, d)
        nengo.Connection(stim, pre)
        if post_input:
            nengo.Connection(stim, post)
        learned = nengo.Connection(pre, post, learning_rule_type=nengo.PES(1e-3))
        nengo.Connection(stim, learned.learning_rule)
    return net, post, learned


def _fixed_next_to_learned(d: int = 2):
    # two decoded connections and nothing else that nengo's optimizer could
    # merge with them: the learned and the fixed decoders share one block-sparse base
    net, post, _ = _learned_channel(d, post_input=True)
    with net:
        out = nengo.Node(size_in=d)
        fixed = nengo.Connection(post, out)
        p_out = nengo.Probe(out)
    return net, fixed, p_out


def test_fixed_blocks_next_to_learned_ones_are_constants():
    net, fixed, p_out = _fixed_next_to_learned()
    with Simulator(net, progress_bar=False, minibatch_size=3) as sim:
        lay = sim._layout
        learned = [op for op in sim._step_order if isinstance(op, AddOuterProduct)][0].target
        bsr = [op for op in sim._step_order if isinstance(op, BsrDotInc) and op.A.base is learned.base]
        assert bsr, "expected nengo's optimizer to merge the learned decoders with fixed ones"
        A = bsr[0].A
        idx = lay.indices(A)
        lo, hi = int(idx.min()), int(idx.max()) + 1
        learned_idx = lay.indices(learned)
        l0, l1 = int(learned_idx.min()), int(learned_idx.max()) + 1
        assert not lay.never_written(A.base, l0, l1)
        fixed = [(a, b) for a, b in ((lo, l0), (l1, hi)) if b > a]
        assert fixed and all(lay.never_written(A.base, a, b) for a, b in fixed)
        sim.run_steps(100)
        got = sim.data[p_out]
    with nengo.Simulator(net, progress_bar=False) as ref:
        ref.run_steps(100)
    for k in range(3):
        np.testing.assert_allclose(got[k], ref.data[p_out], atol=2e-3)


def test_trained_values_of_fixed_blocks_are_used():
    # a fixed block is read without the loop state; a trainable parameter there
    # must still reach the simulation (its value comes from its variable)
    net, fixed, p_out = _fixed_next_to_learned()
    with Simulator(net, progress_bar=False, minibatch_size=3) as sim:
        sim.run_steps(50)
        assert np.abs(sim.data[p_out]).max() > 0.1
        lay = sim._layout
        weights = sim._params_of[fixed]
        assert len(weights) == 1 and lay.is_state(weights[0].signal)
        idx = lay.indices(weights[0].signal)
        assert lay.never_written(weights[0].signal.base, int(idx.min()), int(idx.max()) + 1)
        weights[0].variable.assign(np.zeros(weights[0].shape))
        # keep the assigned value: a plain reset() restores the initial trainables (NengoDL)
        sim.reset(include_trainable=False)
        sim.run_steps(50)
        np.testing.assert_array_equal(sim.data[p_out], 0.0)


def _learned_readers(sim):
    target = [op for op in sim._step_order if isinstance(op, AddOuterProduct)][0].target
    readers = {type(op).__name__ for op in sim._step_order if target.base in {s.base for s in op.reads}}
    return target, readers - {"AddOuterProduct", "SimProbe"}


def _lone_learned(d: int = 2):
    # the only decoded connection: nothing for nengo's optimizer to merge it with
    net, post, learned = _learned_channel(d, post_input=False)
    with net:
        probes = {
            "rates": nengo.Probe(post.neurons, synapse=0.05),
            "weights": nengo.Probe(learned, "weights", sample_every=0.05),
        }
    return net, probes


@pytest.mark.parametrize("which", ["bsr", "dot"])
def test_learned_weights_held_batch_major_keep_samples_apart(which):
    # per-sample learned weights are (batch, n) inside the loop; their matvec
    # (BsrDotInc when merged with fixed decoders, DotInc otherwise), the weights
    # probe and state carried across run_steps calls must keep every sample its
    # own: each sample of a batch-3 run (different inputs) equals a batch-1 run
    if which == "bsr":
        net, _, p_out = _fixed_next_to_learned()
        probes = {"out": p_out}
    else:
        net, probes = _lone_learned()
    stim = net.nodes[0]
    t = np.arange(1, 301)[None, :, None] * 0.001
    x = np.sin(2 * np.pi * t * np.array([1.0, 2.0])[None, None, :] * np.array([1.0, 1.7, 0.6])[:, None, None])
    with Simulator(net, progress_bar=False, minibatch_size=3, seed=1) as sim:
        target, readers = _learned_readers(sim)
        assert sim._layout.is_batch_major(target)
        assert readers == {"BsrDotInc" if which == "bsr" else "DotInc"}, readers
        sim.run_steps(120, data={stim: x[:, :120]})
        sim.run_steps(180, data={stim: x[:, 120:]})
        got = {k: sim.data[p] for k, p in probes.items()}
    for b in range(3):
        with Simulator(net, progress_bar=False, seed=1) as one:
            one.run_steps(300, data={stim: x[b:b + 1]})
            for k, p in probes.items():
                # rates in Hz: a float32 spike a step early moves one trace by ~20 Hz
                if k == "rates":
                    rmse = np.sqrt(np.mean((got[k][b] - one.data[p]) ** 2))
                    assert rmse < 2.0 and np.abs(one.data[p]).max() > 100, (b, rmse)
                else:
                    np.testing.assert_allclose(got[k][b], one.data[p], atol=1e-5, err_msg=f"{k} sample {b}")
    assert not np.allclose(got[next(iter(probes))][0], got[next(iter(probes))][1])

"""BCM and Oja learning kept as factors (backends/tensorflow/outer_delta.py).

Like PES, BCM's and Oja's ``delta`` is a rank-one outer product (Oja adds a
decay of the weights' rows), so the TensorFlow simulator keeps its factors as
loop state and updates the weights directly, held as per-sample matrices.
These are layout choices: results must equal nengo's own operators (the
rewrite switched off) and nengo's reference simulator, per sample.
"""

from __future__ import annotations

import nengo
import numpy as np
import pytest
from nengo.builder.learning_rules import SimBCM, SimOja

import nhw.backends.tensorflow.simulator as tf_simulator
from nhw.backends.tensorflow import Simulator
from nhw.backends.tensorflow.passes.outer_delta import AddOuterProduct, KeepBCMFactors, KeepOjaFactors

RULES = {"bcm": (lambda: nengo.BCM(1e-7), SimBCM, KeepBCMFactors),
         "oja": (lambda: nengo.Oja(1e-5), SimOja, KeepOjaFactors)}


def _net(rules, n: int = 30):
    with nengo.Network(seed=3) as net:
        stim = nengo.Node(lambda t: [np.sin(10 * t), np.cos(7 * t)], label="stim")
        a = nengo.Ensemble(n, 2)
        b = nengo.Ensemble(n, 2)
        nengo.Connection(stim, a)
        w = np.random.RandomState(0).randn(n, n) * 1e-3
        conn = nengo.Connection(a.neurons, b.neurons, transform=w, learning_rule_type=rules)
        probes = {"weights": nengo.Probe(conn, "weights", sample_every=0.01), "b": nengo.Probe(b, synapse=0.02)}
    return net, stim, probes


def _run(net, probes, batch=None, steps=400, data=None):
    with Simulator(net, progress_bar=False, minibatch_size=batch, seed=1, dtype="float64") as sim:
        sim.run_steps(steps // 2, data=None if data is None else {k: v[:, : steps // 2] for k, v in data.items()})
        sim.run_steps(steps - steps // 2, data=None if data is None else {k: v[:, steps // 2:] for k, v in data.items()})
        return list(sim._step_order), dict(sim._layout.matrix_slots), {k: sim.data[p] for k, p in probes.items()}


def _reference(net, probes, steps=400):
    with nengo.Simulator(net, progress_bar=False, seed=1) as ref:
        ref.run_steps(steps)
        return {k: ref.data[p] for k, p in probes.items()}


@pytest.mark.parametrize("rule", sorted(RULES))
@pytest.mark.parametrize("batch", [None, 3])
def test_factored_rule_equals_nengo_operators_and_reference(rule, batch, monkeypatch):
    make, nengo_op, factors = RULES[rule]
    net, _, probes = _net(make())
    ops, matrices, got = _run(net, probes, batch)
    assert any(isinstance(op, factors) for op in ops) and any(isinstance(op, AddOuterProduct) for op in ops)
    assert not any(isinstance(op, nengo_op) for op in ops)
    assert list(matrices.values()) == [(30, 30)], "learned weights should be held as a per-sample matrix"
    want = _reference(net, probes)
    first = (lambda a: a) if batch is None else (lambda a: a[0])
    moved = np.abs(want["weights"][-1] - want["weights"][0]).max()
    assert moved > 1e-3, "the rule should change the weights noticeably"
    for key in probes:
        np.testing.assert_allclose(first(got[key]), want[key], rtol=1e-9, atol=1e-12, err_msg=key)
    monkeypatch.setattr(tf_simulator, "factor_outer_deltas", lambda ops, keep=(): list(ops))
    old_ops, _, old = _run(net, probes, batch)
    assert any(isinstance(op, nengo_op) for op in old_ops)
    for key in probes:
        np.testing.assert_allclose(got[key], old[key], rtol=1e-9, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("rule", sorted(RULES))
def test_factored_rule_keeps_samples_apart(rule):
    # each sample of a batch-3 run with its own input equals a batch-1 run of that input
    make, _, _ = RULES[rule]
    net, stim, probes = _net(make())
    t = np.arange(1, 401)[None, :, None] * 0.001
    x = np.concatenate([np.sin(10 * t * [[[1.0]], [[1.6]], [[0.5]]]), np.cos(7 * t * [[[1.0]], [[0.7]], [[1.3]]])], -1)
    _, _, got = _run(net, probes, batch=3, data={stim: x})
    for b in range(3):
        _, _, one = _run(net, probes, data={stim: x[b:b + 1]})
        for key in probes:
            np.testing.assert_allclose(got[key][b], one[key], rtol=1e-9, atol=1e-12, err_msg=f"{key} sample {b}")
    assert not np.allclose(got["weights"][0], got["weights"][1])


def test_oja_next_to_another_rule_keeps_nengo_operators():
    # Oja's decay reads the weights: with a second rule also adding to them, the
    # decay would see the other rule's update, so Oja stays nengo's; BCM's pure
    # outer product is still factored, and the sum equals nengo's
    net, _, probes = _net([nengo.BCM(1e-7), nengo.Oja(1e-5)])
    ops, _, got = _run(net, probes)
    assert any(isinstance(op, KeepBCMFactors) for op in ops)
    assert any(isinstance(op, SimOja) for op in ops) and not any(isinstance(op, KeepOjaFactors) for op in ops)
    want = _reference(net, probes)
    for key in probes:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-9, atol=1e-12, err_msg=key)

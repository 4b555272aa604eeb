"""PES learning on the loihi-emu chip: it learns like nengo's PES, within stated tolerances.

Tolerances (2-d communication channel learned from zero decoders, PES rate 3e-4,
probes filtered at 0.02 s): the learning curve (tracking RMSE per 250 ms window) stays
within 0.1 of reference's (twice nengo's learning rate misses by ~0.16), the output
within RMSE 0.08 of reference's over the run (measured ~0.05); without an error signal
the output stays near zero.
"""

from __future__ import annotations

import warnings

import nengo
import numpy as np
import pytest

from nhw.backends.loihi_emu import Simulator
from nhw.errors import UnsupportedFeatureError

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _stim(t):
    return [0.7 * np.sin(2 * np.pi * t), 0.6 * np.cos(2 * np.pi * 0.7 * t)]


def pes_net(post_kind: str = "ensemble", learning_rate: float = 1e-3, error: bool = True, seed: int = 3):
    with nengo.Network(seed=seed) as net:
        stim = nengo.Node(_stim, label="stim")
        pre = nengo.Ensemble(100, 2, label="pre")
        nengo.Connection(stim, pre)
        if post_kind == "ensemble":
            post = nengo.Ensemble(100, 2, label="post")
        else:
            post = nengo.Node(size_in=2, label="post")
        conn = nengo.Connection(pre, post, function=lambda x: [0, 0],
                                learning_rule_type=nengo.PES(learning_rate))
        err = nengo.Node(size_in=2, label="error")
        nengo.Connection(post, err)
        nengo.Connection(stim, err, transform=-1)
        if error:
            nengo.Connection(err, conn.learning_rule)
        net.p_post = nengo.Probe(post, synapse=0.02)
        net.p_stim = nengo.Probe(stim, synapse=0.02)
        net.conn = conn
    return net


def _run(net, simulator, t=2.0, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with simulator(net, progress_bar=False, **kw) as sim:
            sim.run(t)
            return sim.trange(), sim.data[net.p_post], sim.data[net.p_stim], sim


def _rmse(a, b):
    return float(np.sqrt(np.mean((a - b) ** 2)))


def _curve(t, y, stim):
    """Tracking error (RMSE) in each 250 ms window: how fast learning proceeds."""
    w = (t * 4).astype(int)
    return np.array([_rmse(y[w == k], stim[w == k]) for k in range(int(w.max()))])


@pytest.mark.parametrize("post_kind", ["ensemble", "node"])
def test_pes_learns_like_reference(post_kind):
    # a slow rate, so the learning transient spans most of the 2 s
    net = pes_net(post_kind, learning_rate=3e-4)
    t, y_emu, stim, sim = _run(net, Simulator)
    _, y_ref, _, _ = _run(net, nengo.Simulator)
    c_emu, c_ref = _curve(t, y_emu, stim), _curve(t, y_ref, stim)
    # same learning speed: with twice nengo's rate the curves differ by ~0.16
    assert np.abs(c_emu - c_ref).max() < 0.1, (c_emu, c_ref)
    assert _rmse(y_emu, y_ref) < 0.08
    # it learned: the first 100 ms (zero decoders) are far worse than the end, and
    # the end is close to reference's (the chip's pre rates are at or below nengo's,
    # so PES, whose update scales with them, learns slightly slower on the chip)
    assert c_emu[-2:].mean() < min(0.25, 1.2 * c_ref[-2:].mean())
    early = t < 0.1
    assert _rmse(y_emu[early], stim[early]) > 0.25


def test_no_error_no_learning():
    net = pes_net(error=False)
    t, y, stim, _ = _run(net, Simulator, t=0.5)
    assert np.abs(y).max() < 0.1


def test_deterministic_and_reset():
    net = pes_net()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Simulator(net, progress_bar=False, seed=5) as sim:
            sim.run(0.3)
            a = sim.data[net.p_post].copy()
            sim.reset()
            sim.run(0.3)
            b = sim.data[net.p_post].copy()
        with Simulator(net, progress_bar=False, seed=5) as sim:
            sim.run(0.3)
            c = sim.data[net.p_post].copy()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


def test_learning_group_in_report_and_resources():
    net = pes_net()
    _, _, _, sim = _run(net, Simulator, t=0.2)
    report = sim.hardware_report()
    quant = report.quantization["pre->post.decode"].as_dict()
    (label, group), = [(k, v) for k, v in quant["synapse_groups"].items() if "(PES)" in k]
    assert group["n_clipped"] == 0
    # every synapse of a learning group exists, whatever its current weight:
    # 100 pre neurons x 2 dims x 2 polarities x decode_pairs copies
    g = next(g for g in sim.mapped.chip.groups if g.learning is not None)
    assert g.n_synapses == 100 * 2 * 2 * sim.options.decode_pairs
    assert any("learning-rate" in n for n in quant["notes"])
    # the learning engine's work is in the report and its energy estimate
    epochs = sim.n_steps // sim.options.learn_epoch
    assert report.total_synaptic_updates == epochs * g.n_synapses
    assert "learning:" in report.to_table()
    assert report.as_dict()["cores"][0]["synaptic_updates"] >= 0


@pytest.mark.parametrize("rule", [nengo.BCM(), nengo.Oja(), nengo.Voja()])
def test_other_rules_are_refused(rule):
    with nengo.Network() as net:
        a = nengo.Ensemble(10, 1, label="a")
        b = nengo.Ensemble(10, 1, label="b")
        if isinstance(rule, nengo.Voja):
            nengo.Connection(a, b, learning_rule_type=rule)
        else:
            nengo.Connection(a.neurons, b.neurons, transform=np.zeros((10, 10)), learning_rule_type=rule)
    with pytest.raises(UnsupportedFeatureError, match="nengo.PES only"):
        Simulator(net, progress_bar=False)


@pytest.mark.parametrize("case", ["weights", "neurons_pre", "neurons_post"])
def test_pes_shapes_the_chip_cannot_learn(case):
    with nengo.Network() as net:
        a = nengo.Ensemble(10, 1, label="a")
        b = nengo.Ensemble(10, 1, label="b")
        if case == "weights":
            c = nengo.Connection(a, b, solver=nengo.solvers.LstsqL2(weights=True),
                                 learning_rule_type=nengo.PES())
        elif case == "neurons_pre":
            c = nengo.Connection(a.neurons, b, transform=np.zeros((1, 10)), learning_rule_type=nengo.PES())
        else:
            c = nengo.Connection(a, b.neurons, transform=np.zeros((10, 1)), learning_rule_type=nengo.PES())
        err = nengo.Node(np.zeros(c.learning_rule.size_in), label="err")
        nengo.Connection(err, c.learning_rule)
    with pytest.raises(UnsupportedFeatureError, match="PES"):
        Simulator(net, progress_bar=False)

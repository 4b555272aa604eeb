"""NengoDL 3.6 semantics of trainable=False, losses.Regularize, keep_history=False,
inference_only=True and fit/evaluate(sample_weight=...) on nhw.

Expected values come from NengoDL's documentation and documented formulas
(docs/config.rst, losses.Regularize, Simulator.run_steps/fit/evaluate), not its tests.
"""

from __future__ import annotations

import nengo
import numpy as np
import pytest
from nengo.exceptions import SimulationError, ValidationError

tf = pytest.importorskip("tensorflow")

from tf_training_helpers import (
    compile_fast,
    has_param,
    make_sim,
    regression_net,
    square_data,
)

import nhw.dl as nengo_dl


# --- F1: trainable=False on an ensemble freezes its biases too -----------------------------
def _two_ensembles(mode):
    with nengo.Network(seed=0) as net:
        nengo_dl.configure_settings(trainable=None)
        a = nengo.Node([0.3], label="a")
        e1 = nengo.Ensemble(10, 1, neuron_type=nengo.LIFRate(), label="e1")
        e2 = nengo.Ensemble(10, 1, neuron_type=nengo.LIFRate(), label="e2")
        nengo.Connection(a, e1, synapse=None)
        nengo.Connection(e1, e2, synapse=None)
        p = nengo.Probe(e2, synapse=None, label="p")
        if mode == "instance":
            net.config[e1].trainable = False
        elif mode == "class":
            net.config[nengo.Ensemble].trainable = False
        elif mode == "biases":
            net.config[e1].trainable = False
            net.config[e1.neurons].trainable = True
    return net, a, e1, p


@pytest.mark.parametrize("mode", ["instance", "class", "biases"])
def test_ensemble_trainable_false_freezes_biases(mode):
    net, a, e1, p = _two_ensembles(mode)
    rng = np.random.RandomState(0)
    with make_sim(net, batch=4) as sim:
        bias0 = sim.data[e1].bias.copy()
        enc0 = sim.data[e1].scaled_encoders.copy()
        compile_fast(sim, optimizer=tf.optimizers.SGD(1.0), loss="mse")
        sim.fit({a: rng.rand(4, 2, 1)}, {p: rng.rand(4, 2, 1)}, epochs=2, verbose=0)
        assert not has_param(sim, e1, "encoders")
        assert np.array_equal(sim.data[e1].scaled_encoders, enc0)
        if mode == "biases":  # config[ens.neurons] controls the biases alone
            assert has_param(sim, e1, "bias") and not np.allclose(sim.data[e1].bias, bias0)
        else:
            assert not has_param(sim, e1, "bias")
            assert np.array_equal(sim.data[e1].bias, bias0)


# --- F2: losses.Regularize ---------------------------------------------------------------
def _reference(y, order, axis=None):
    """NengoDL's documented value: norm per (batch, step) over the output, then the mean."""
    y = np.asarray(y, dtype=np.float64)
    flat = y.reshape(y.shape[:2] + (-1,)) if axis is None else np.moveaxis(y, axis + 2, -1)
    a = np.abs(flat)
    norms = a.max(axis=-1) if order == np.inf else (a ** order).sum(axis=-1) ** (1 / order)
    return norms.mean()


@pytest.mark.parametrize("order, axis, expected", [
    (2, None, 2.0), (1, None, 4.0), (1, 0, 4.0), (2, 0, 2.0), (np.inf, None, 1.0), ("euclidean", None, 2.0),
])
def test_regularize_documented_values(order, axis, expected):
    y = np.ones((2, 3, 4), dtype=np.float32)  # (batch, n_steps, dims)
    loss = nengo_dl.losses.Regularize(order=order, axis=axis)
    assert np.isclose(float(loss(np.zeros_like(y), y)), expected)


@pytest.mark.parametrize("order", [1, 2, 3, 0.5, np.inf])
@pytest.mark.parametrize("axis", [None, 0, 1, -1])
def test_regularize_matches_reference_formula(order, axis):
    y = np.random.RandomState(4).randn(2, 3, 4, 5).astype(np.float32)
    ax = None if axis is None else axis % 2
    got = float(nengo_dl.losses.Regularize(order=order, axis=axis)(np.zeros_like(y), y))
    assert np.isclose(got, _reference(y, order, ax), rtol=1e-5)


def test_regularize_bad_order_and_axis_name_the_value():
    with pytest.raises(ValidationError, match="'fro'") as info:
        nengo_dl.losses.Regularize(order="fro")
    assert info.value.attr == "order"
    loss = nengo_dl.losses.Regularize(axis=1)
    y = np.ones((2, 3, 4), dtype=np.float32)
    with pytest.raises(ValidationError, match="axis=1") as info:
        loss(y, y)
    assert info.value.attr == "axis"


def test_regularize_as_probe_loss_in_evaluate():
    net = regression_net(second_probe=True)  # p2: the ensemble's decoded output
    x, _ = square_data(16)
    with make_sim(net) as sim:
        out = sim.predict(x)[net.p2]
        compile_fast(sim, "sgd", loss={net.p2: nengo_dl.losses.Regularize(order=1)})
        res = sim.evaluate(x, {net.p2: np.zeros_like(out)}, verbose=0)
    assert np.isclose(res["loss"], _reference(out, 1), rtol=1e-4)


# --- F3: keep_history=False adds one row per run_steps call ---------------------------------
def test_keep_history_false_grows_one_row_per_call():
    with nengo.Network(seed=0) as net:
        nengo_dl.configure_settings(keep_history=False)
        a = nengo.Node(lambda t: t, label="a")
        p = nengo.Probe(a)
        p_all = nengo.Probe(a)
        net.config[p_all].keep_history = True
    with nengo_dl.Simulator(net, progress_bar=False) as sim:
        sim.run_steps(5)
        sim.run_steps(3)
        sim.run_steps(1)
        assert np.allclose(sim.data[p], [[0.005], [0.008], [0.009]])
        assert np.asarray(sim.data[p_all]).shape == (9, 1)
        sim.reset()
        sim.run_steps(2)
        assert np.allclose(sim.data[p], [[0.002]])


# --- F6: inference_only=True compiles and evaluates; only fit is refused --------------------
def test_inference_only_compiles_and_evaluates():
    x, y = square_data(16)
    results = {}
    for inference_only in (False, True):
        net = regression_net()
        with net:
            nengo_dl.configure_settings(inference_only=inference_only)
        with make_sim(net) as sim:
            compile_fast(sim, "sgd", loss="mse")
            results[inference_only] = sim.evaluate(x, y, verbose=0)
            if inference_only:
                assert sim.predict(x)[net.p].shape == (16, 1, 1)
                with pytest.raises(SimulationError, match="fit.*inference_only=True"):
                    sim.fit(x, y, verbose=0)
    assert np.isclose(results[True]["loss"], results[False]["loss"], rtol=1e-6)


# --- F10: fit/evaluate(sample_weight=arrays), forwarded per minibatch item -------------------
def test_evaluate_sample_weight_weights_each_item():
    net = regression_net()
    x, y = square_data(16, steps=2)
    w = np.arange(16, dtype=np.float64) % 3
    with make_sim(net) as sim:
        out = sim.predict(x)[net.p]
        compile_fast(sim, "sgd", loss="mse")
        per_item = ((out - y) ** 2).mean(axis=2)  # (16, 2): Keras' per-(item, step) mse
        res = sim.evaluate(x, y, sample_weight=w, verbose=0)
        assert np.isclose(res["loss"], (w[:, None] * per_item).mean(), rtol=1e-5)
        w2 = np.random.RandomState(0).rand(16, 2)  # one weight per item and timestep
        res = sim.evaluate(x, y, sample_weight=w2, verbose=0)
        assert np.isclose(res["loss"], (w2 * per_item).mean(), rtol=1e-5)
        res = sim.evaluate(x, {net.p: y}, sample_weight={net.p: w}, verbose=0)
        assert np.isclose(res["loss"], (w[:, None] * per_item).mean(), rtol=1e-5)


def test_fit_sample_weight_and_validation_weights():
    x, y = square_data(16)
    w = np.linspace(0.5, 2.0, 16)
    runs = {}
    for name, kw in [("plain", {}), ("ones", {"sample_weight": np.ones(16)})]:
        with make_sim(regression_net()) as sim:
            compile_fast(sim, "adam", loss="mse")
            runs[name] = sim.fit(x, y, epochs=2, verbose=0, **kw).history["loss"]
    # weights of one train exactly as no weights (the same shuffled order too)
    assert np.allclose(runs["plain"], runs["ones"], rtol=1e-5)
    with make_sim(regression_net()) as sim:
        compile_fast(sim, "adam", loss="mse")
        hist = sim.fit(x, y, epochs=1, verbose=0, sample_weight=w, validation_data=(x, y, w)).history
        expected = sim.evaluate(x, y, sample_weight=w, verbose=0)["loss"]
        assert np.isclose(hist["val_loss"][-1], expected, rtol=1e-4)
        hist = sim.fit(x, y, epochs=1, verbose=0, sample_weight=w, validation_split=0.5).history
        expected = sim.evaluate(x[8:], y[8:], sample_weight=w[8:], verbose=0)["loss"]
        assert np.isclose(hist["val_loss"][-1], expected, rtol=1e-4)


def test_bad_sample_weight_names_argument_expected_and_received():
    x, y = square_data(16)
    with make_sim(regression_net()) as sim:
        compile_fast(sim, "sgd", loss="mse")
        with pytest.raises(ValidationError, match=r"sample_weight has shape \(8,\); expected \(16,\)") as info:
            sim.fit(x, y, verbose=0, sample_weight=np.ones(8))
        assert info.value.attr == "sample_weight"
        ds = tf.data.Dataset.from_tensor_slices(({"inp": x.astype(np.float32)}, {"probe": y.astype(np.float32)}))
        with pytest.raises(ValidationError, match="sample_weight.*inside it"):
            sim.evaluate(ds.batch(8, drop_remainder=True), sample_weight=np.ones(16), verbose=0)

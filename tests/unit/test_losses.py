"""Keras losses of the TensorFlow backend: values, NaN handling, gradients, use in fit."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from nengo.exceptions import ValidationError  # noqa: E402

from nhw.backends.tensorflow.api.losses import Regularize, nan_mse  # noqa: E402


def _grad(fn, y_true, y_pred):
    y_pred = tf.Variable(y_pred)
    with tf.GradientTape() as tape:
        loss = fn(tf.constant(y_true), y_pred)
    return loss.numpy(), tape.gradient(loss, y_pred).numpy()


def test_nan_mse_matches_numpy():
    rng = np.random.RandomState(0)
    y_true = rng.randn(4, 5, 3)
    y_pred = rng.randn(4, 5, 3)
    y_true[rng.rand(*y_true.shape) < 0.3] = np.nan
    valid = ~np.isnan(y_true)
    # NengoDL: a NaN target is zero error, and the mean is over every element
    expected = np.sum((y_pred[valid] - y_true[valid]) ** 2) / y_true.size
    loss, grad = _grad(nan_mse, y_true, y_pred)
    assert np.isclose(loss, expected)
    assert np.all(np.isfinite(grad))
    assert np.all(grad[~valid] == 0)
    assert np.allclose(grad[valid], 2 * (y_pred[valid] - y_true[valid]) / y_true.size)


def test_nan_mse_without_nans_is_mse():
    rng = np.random.RandomState(1)
    y_true, y_pred = rng.randn(6, 4).astype("float32"), rng.randn(6, 4).astype("float32")
    assert np.isclose(float(nan_mse(y_true, y_pred)), np.mean((y_true - y_pred) ** 2), rtol=1e-5)


def test_nan_mse_all_nan_is_zero_with_finite_gradient():
    loss, grad = _grad(nan_mse, np.full((2, 3), np.nan), np.ones((2, 3)))
    assert loss == 0
    assert np.all(grad == 0)


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("mean", [False, True])
def test_regularize_matches_numpy(order, mean):
    rng = np.random.RandomState(2)
    y = rng.randn(4, 6, 3)  # (batch, n_steps, dims)
    mag = np.abs(y) ** order
    # as NengoDL: one norm per (batch, step) over the dims, then the mean of those
    per_step = mag.mean(axis=2) if mean else mag.sum(axis=2) ** (1.0 / order)
    loss = Regularize(order=order, mean=mean)
    # y_true is ignored
    assert np.isclose(float(loss(np.full_like(y, 99.0), y)), per_step.mean())
    # call() gives one value per item (Keras then averages over the, possibly global, batch)
    np.testing.assert_allclose(loss.call(None, tf.constant(y)).numpy(), per_step.mean(axis=1), rtol=1e-6)


def test_regularize_axis_target_and_weight():
    rng = np.random.RandomState(3)
    y = rng.rand(3, 5, 4)
    loss = Regularize(order=2, axis=-1, weight=0.5, target=0.25)
    expected = 0.5 * np.sqrt(np.sum((y - 0.25) ** 2, axis=-1))
    assert np.isclose(float(loss(np.zeros_like(y), y)), expected.mean())
    # a 1-D y_pred: one scalar per item
    v = np.array([-1.0, 2.0, 0.0])
    np.testing.assert_allclose(Regularize(order=1).call(None, tf.constant(v)).numpy(), np.abs(v))


@pytest.mark.parametrize("order", [1, 2])
def test_regularize_gradient_finite_at_zero(order):
    loss, grad = _grad(Regularize(order=order), np.zeros((2, 3)), np.zeros((2, 3)))
    assert loss == 0
    assert np.all(np.isfinite(grad))


@pytest.mark.parametrize(
    "kwargs, attr",
    [
        ({"order": 0}, "order"),
        ({"order": -1}, "order"),
        ({"order": True}, "order"),
        ({"order": "fro"}, "order"),
        ({"order": "nuc"}, "order"),
        ({"order": np.inf, "mean": True}, "order"),
        ({"weight": -1}, "weight"),
        ({"target": "high"}, "target"),
        ({"axis": "last"}, "axis"),
    ],
)
def test_regularize_bad_parameters(kwargs, attr):
    with pytest.raises(ValidationError) as info:
        Regularize(**kwargs)
    assert info.value.attr == attr


def test_serialization_roundtrip():
    loss = Regularize(order=1, axis=(1, 2), weight=0.1, target=2.0, mean=True, reduction="sum", name="reg")
    config = loss.get_config()
    assert config["order"] == 1 and config["axis"] == (1, 2) and config["mean"] is True
    clone = Regularize.from_config(config)
    assert clone.get_config() == config
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(again, Regularize) and again.get_config() == config
    fn = keras.losses.deserialize(keras.losses.serialize(nan_mse))
    assert fn is nan_mse


def test_in_keras_model_compile_fit():
    keras.utils.set_random_seed(0)
    inp = keras.Input((4,))
    out = keras.layers.Dense(3, name="out")(inp)
    rate = keras.layers.Dense(5, activation="relu", name="rate")(inp)
    model = keras.Model(inp, [out, rate])
    model.compile(
        optimizer=keras.optimizers.SGD(0.05),
        loss={"out": nan_mse, "rate": Regularize(weight=0.1)},
    )
    rng = np.random.RandomState(0)
    x = rng.randn(32, 4).astype("float32")
    y = x[:, :3].copy()
    y[::2, 0] = np.nan  # half the targets of the first output are unknown
    history = model.fit(x, {"out": y, "rate": np.zeros((32, 5), "float32")}, epochs=5, batch_size=8, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses))
    assert losses[-1] < losses[0]
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())

"""Datasets: built-in sets (no downloads) and .npz files read without pickle."""

import numpy as np
import pytest

from nhw.toolchain import data
from nhw.errors import DataError, UnknownNameError


def test_digits():
    ds = data.digits(seed=0)
    assert ds.x_train.shape[1] == 64 and ds.n_features == 64
    assert len(ds.x_train) + len(ds.x_test) == 1797
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    assert set(np.unique(ds.y_train)) == set(range(10))
    again = data.digits(seed=0)
    np.testing.assert_array_equal(ds.x_test, again.x_test)
    assert not np.array_equal(ds.y_test, data.digits(seed=1).y_test)


def test_digits_over_time():
    ds = data.digits(n_steps=3)
    assert ds.x_train.shape[1:] == (3, 64) and ds.n_features == 64


@pytest.mark.parametrize("name", ["sine", "sin_x2"])
def test_synthetic(name):
    ds = data.load_builtin(name, seed=2, n_steps=50, n=8)
    assert ds.x_train.shape[1:] == (50, 1) and len(ds.x_train) + len(ds.x_test) == 8
    np.testing.assert_array_equal(ds.x_train, data.load_builtin(name, seed=2, n_steps=50, n=8).x_train)
    if name == "sin_x2":
        np.testing.assert_allclose(ds.y_train, np.sin(ds.x_train**2), rtol=1e-6)


def test_unknown_builtin():
    with pytest.raises(UnknownNameError, match="did you mean 'digits'"):
        data.load_builtin("digit")


def test_keras_mnist_layout(tmp_path):
    rng = np.random.RandomState(0)
    p = tmp_path / "mnist.npz"
    np.savez_compressed(p, x_train=rng.randint(0, 256, (6, 28, 28)).astype(np.uint8), y_train=np.arange(6) % 10,
                        x_test=rng.randint(0, 256, (2, 28, 28)).astype(np.uint8), y_test=np.array([1, 2]))
    ds = data.load_npz(p)
    assert ds.x_train.shape == (6, 784) and ds.x_test.shape == (2, 784) and ds.name == "mnist"
    assert ds.x_train.dtype == np.float32 and ds.x_train.max() <= 1.0
    raw = data.load_npz(p, flatten=False, scale=False)
    assert raw.x_train.shape == (6, 28, 28) and raw.x_train.dtype == np.uint8


def test_npz_errors(tmp_path):
    with pytest.raises(DataError, match="dataset file not found"):
        data.load_npz(tmp_path / "none.npz")
    p = tmp_path / "partial.npz"
    np.savez(p, x_train=np.zeros((2, 3)), y_train=np.zeros(2))
    with pytest.raises(DataError, match="missing arrays x_test, y_test"):
        data.load_npz(p)
    p = tmp_path / "pickled.npz"
    np.savez(p, x_train=np.array([{"a": 1}], dtype=object), y_train=np.zeros(1),
             x_test=np.zeros((1, 1)), y_test=np.zeros(1))
    with pytest.raises(DataError, match="cannot load without pickle"):
        data.load_npz(p)
    p = tmp_path / "uneven.npz"
    np.savez(p, x_train=np.zeros((2, 3)), y_train=np.zeros(3), x_test=np.zeros((1, 3)), y_test=np.zeros(1))
    with pytest.raises(DataError, match="x_train has 2 samples but y_train has 3"):
        data.load_npz(p)
    p = tmp_path / "text.npz"
    p.write_text("not a zip")
    # the real cause, not "pickled data" (issue 24)
    with pytest.raises(DataError, match="expected an .npz archive .* got a text file"):
        data.load_npz(p)

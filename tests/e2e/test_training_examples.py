"""The training examples (TensorFlow simulator) in their --quick mode, as CI runs them.

Each example runs once per module in a subprocess (as a user would run it); the tests
then check the lines it printed and the figures it saved.
"""

import re

import numpy as np
import pytest

from examples_runner import number, run_example


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory):
    out = tmp_path_factory.mktemp("coming_from_tensorflow")
    return run_example("coming_from_tensorflow.py", out), out


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    png = tmp_path_factory.mktemp("spiking_digits") / "spiking_digits.png"
    return run_example("spiking_digits.py", png), png


# --- coming_from_tensorflow.py ---------------------------------------------------------
def test_walkthrough_figures(walkthrough):
    _, out = walkthrough
    for name in ("spiking.png", "autoencoder.png", "nef.png"):
        assert (out / name).stat().st_size > 1000, name


def test_walkthrough_predict_shapes(walkthrough):
    stdout = walkthrough[0].stdout
    assert "keras model.predict output shape: (50, 784)" in stdout
    # the tutorial's shape: batch, one time step, 784 outputs
    assert "nengo sim.predict output shape: (50, 1, 784)" in stdout


def test_walkthrough_tensor_node_table(walkthrough):
    proc = walkthrough[0]
    # tf.print inside the simulation loop writes t and x to stderr every step
    times = [float(v) for v in re.findall(r"^t: ([0-9.e-]+)$", proc.stderr, re.M)]
    np.testing.assert_allclose(times, 0.001 * np.arange(1, 11), rtol=1e-5)
    assert proc.stderr.count("x: [[0.5 -0.1]]") == 10
    table = proc.stdout.split("TensorNode output:\n", 1)[1]
    rows = re.findall(r"\[\s*([-0-9.]+)\s+([-0-9.]+)\s*\]", table)[:10]
    values = np.array(rows, dtype=float)
    t = 0.001 * np.arange(1, 11)
    np.testing.assert_allclose(values, np.stack([0.5 + t, -0.1 + t], axis=1), atol=1e-6)
    assert "[ 0.501 -0.099]" in table and "[ 0.51  -0.09 ]" in table


def test_walkthrough_layers(walkthrough):
    stdout = walkthrough[0].stdout
    assert "Layer and TensorNode+Connection agree: True" in stdout
    out = number(r"custom Keras layer TensorNode: output (-?[0-9.]+)", stdout)
    w = number(r"custom Keras layer TensorNode: .*weight (-?[0-9.]+)", stdout)
    assert out == w
    assert "in sim.keras_model.weights: True" in stdout


def test_walkthrough_spiking_vs_rate(walkthrough):
    err = number(r"vs equally filtered rates ([0-9.]+)", walkthrough[0].stdout)
    assert err < 0.1


def test_walkthrough_training_matches_keras(walkthrough):
    stdout = walkthrough[0].stdout
    # Keras-style log lines of sim.fit, with the per-probe loss
    assert re.search(r"loss: [0-9.]+ - probe_loss: [0-9.]+", stdout)
    table = stdout.split("nengo probe_loss\n", 1)[1]
    rows = np.array(re.findall(r"^\s*\d+\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)$", table, re.M), dtype=float)
    assert len(rows) >= 3
    keras_loss, nengo_loss, probe_loss = rows.T
    np.testing.assert_allclose(nengo_loss, probe_loss)  # one probe: loss == probe_loss
    assert np.all(np.diff(nengo_loss) < 0) and np.all(np.diff(keras_loss) < 0)
    # same architecture, optimiser and data: the losses fall alike
    np.testing.assert_allclose(nengo_loss, keras_loss, rtol=0.3)
    keras_test = number(r"test loss after training:\s+keras ([0-9.]+)", stdout)
    nengo_test = number(r"test loss after training:.*nengo ([0-9.]+)", stdout)
    before = number(r"test loss before training:.*nengo ([0-9.]+)", stdout)
    assert nengo_test < 0.5 * before
    assert 0.7 < nengo_test / keras_test < 1.4


def test_walkthrough_nef(walkthrough):
    stdout = walkthrough[0].stdout
    assert number(r"sin\(x\^2\) rms error \(tensorflow\): ([0-9.]+)", stdout) < 0.1
    assert number(r"tensorflow vs reference rms difference ([0-9.e+-]+)", stdout) < 1e-4


# --- spiking_digits.py -----------------------------------------------------------------
def test_digits_figure(digits):
    assert digits[1].stat().st_size > 1000


def test_digits_spiking_accuracy(digits):
    stdout = digits[0].stdout
    assert number(r"rate-mode test accuracy \(1 step\): ([0-9.]+)", stdout) > 0.85
    assert number(r"spiking test accuracy \(tensorflow, .*\): ([0-9.]+)", stdout) > 0.85


def test_digits_frozen_reference_matches(digits):
    stdout = digits[0].stdout
    tf_acc = number(r"first \d+ test images: tensorflow ([0-9.]+)", stdout)
    ref_acc = number(r"reference \(frozen\) ([0-9.]+)", stdout)
    agree = number(r"predictions agree on ([0-9.]+)", stdout)
    assert ref_acc > 0.8
    assert abs(tf_acc - ref_acc) <= 0.04
    assert agree >= 0.95

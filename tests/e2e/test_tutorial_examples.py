"""The NengoDL-tutorial examples with Keras inside nengo, in their --quick mode, as CI runs them.

``examples/keras_in_nengo.py`` (a Keras CNN as a TensorNode before a spiking LIF layer)
and ``examples/lmu_keras.py`` (a Keras LMU cell in a TensorNode, psMNIST-style digits)
each run once per module in a subprocess; the tests check the lines they printed and
the figures they saved.
"""


import pytest

from examples_runner import number, run_example


@pytest.fixture(scope="module")
def keras_in_nengo(tmp_path_factory):
    png = tmp_path_factory.mktemp("keras_in_nengo") / "keras_in_nengo.png"
    return run_example("keras_in_nengo.py", png), png


@pytest.fixture(scope="module")
def lmu(tmp_path_factory):
    png = tmp_path_factory.mktemp("lmu_keras") / "lmu_keras.png"
    return run_example("lmu_keras.py", png), png


# --- keras_in_nengo.py -----------------------------------------------------------------
def test_keras_in_nengo_figure(keras_in_nengo):
    assert keras_in_nengo[1].stat().st_size > 1000


def test_keras_in_nengo_tensor_node_shape(keras_in_nengo):
    # (8, 8, 1) image -> 3x3 conv (same) -> 3x3 conv stride 2 (same, 32 maps) -> flatten
    assert "shape_in (8, 8, 1), shape_out (512,)" in keras_in_nengo[0].stdout


def test_keras_in_nengo_accuracies(keras_in_nengo):
    stdout = keras_in_nengo[0].stdout
    assert number(r"Keras test accuracy: ([0-9.]+)", stdout) > 0.9
    assert number(r"before training: spiking accuracy ([0-9.]+)", stdout) < 0.5
    assert number(r"frozen Keras weights: rate accuracy ([0-9.]+)", stdout) > 0.9
    assert number(r"frozen Keras weights: .*spiking accuracy \(\d+ steps\) ([0-9.]+)", stdout) > 0.88
    assert number(r"fine-tuned: rate accuracy ([0-9.]+)", stdout) > 0.9
    assert number(r"fine-tuned: .*spiking accuracy \(\d+ steps\) ([0-9.]+)", stdout) > 0.88


def test_keras_in_nengo_weights_frozen_then_trained(keras_in_nengo):
    stdout = keras_in_nengo[0].stdout
    # frozen: part of the model's weights, not of its trainable weights, unchanged by fit
    assert "in sim.keras_model.weights: True; in trainable_weights: False" in stdout
    assert number(r"frozen Keras weights: .*max \|change\| ([0-9.e+-]+)", stdout) == 0
    # unfrozen and recompiled: trained by sim.fit
    assert "after features.trainable = True: Keras weights in trainable_weights: True" in stdout
    assert number(r"fine-tuned: .*max \|change\| ([0-9.e+-]+)", stdout) > 1e-4


# --- lmu_keras.py ----------------------------------------------------------------------
def test_lmu_figure(lmu):
    assert lmu[1].stat().st_size > 1000


def test_lmu_cell_weights_in_model(lmu):
    assert "in sim.keras_model.trainable_weights: True" in lmu[0].stdout


def test_lmu_accuracy(lmu):
    stdout = lmu[0].stdout
    seq = number(r"test accuracy \(keras.layers.RNN in a TensorNode.*\): ([0-9.]+)", stdout)
    assert seq > 0.85
    # the trained non-linear LMU beats a linear readout of its fixed memory
    assert number(r"fixed LMU memory alone .*: test accuracy ([0-9.]+)", stdout) > 0.7
    assert number(r"trained pixel by pixel .*test accuracy ([0-9.]+)", stdout) > 0.8


def test_lmu_streaming_matches_sequence_model(lmu):
    stdout = lmu[0].stdout
    # the trained cell run one pixel per simulator step (state fed back through a
    # synapse=0 Connection) computes what keras.layers.RNN computed
    stream = number(r"streamed pixel by pixel .*: accuracy ([0-9.]+)", stdout)
    same = number(r"sequence model on the same digits ([0-9.]+)", stdout)
    assert abs(stream - same) <= 0.01
    assert number(r"max \|output difference\| ([0-9.e+-]+)", stdout) < 1e-3

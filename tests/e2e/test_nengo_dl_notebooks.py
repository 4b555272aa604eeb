"""NengoDL's documentation notebooks as scripts (``examples/nengo_dl/``), in their --quick form.

Each script is a notebook written with ``import nhw.dl as nengo_dl`` and run here as a
user would run it, in a subprocess. The checks read the results it printed: each
one fails if training did nothing (accuracy near chance, loss unchanged) or if
NengoDL and nengo disagree where the notebook shows them agreeing.
"""

import re

import numpy as np
import pytest
from examples_runner import number, run_example


def _run(script, tmp_path):
    return run_example(f"nengo_dl/{script}", tmp_path).stdout


def test_from_nengo(tmp_path):
    out = _run("from_nengo.py", tmp_path)
    assert number(r"nengo vs nengo_dl output: max difference (\S+)", out) < 1e-4
    # minibatch_size=3 runs three different simulations of the WhiteSignal input
    assert "batch elements differ: True" in out
    assert number(r"ramp input: output rmse from sin\(x\^2\) (\S+)", out) < 0.3
    after = number(r"from-nengo test mse (\S+)", out)
    before = number(r"before training (\S+)\)", out)
    assert after < 0.85 * before
    assert number(r"Node vs TensorNode output: max difference (\S+)", out) < 1e-5
    assert (tmp_path / "from_nengo_trained.png").stat().st_size > 1000


def test_from_tensorflow(tmp_path):
    out = _run("from_tensorflow.py", tmp_path)
    assert "keras model.predict output shape: (50, 64)" in out
    assert "nengo sim.predict output shape: (50, 1, 64)" in out
    assert "Layer and TensorNode+Connection agree: True" in out
    # the TensorNode outputs t + x each step: the tenth row is [0.51, -0.09]
    rows = re.findall(r"\[\s*([-0-9.e]+)\s+([-0-9.e]+)\s*\]", out.split("TensorNode output:", 1)[1])
    np.testing.assert_allclose(np.array(rows[:10], dtype=float),
                               [[0.5 + 0.001 * k, -0.1 + 0.001 * k] for k in range(1, 11)], atol=1e-6)
    assert number(r"custom Keras layer TensorNode: output (\S+),", out) == \
        number(r"custom Keras layer TensorNode: .*weight (\S+)", out)
    nengo_mse = number(r"autoencoder test mse (\S+)", out)
    keras_mse = number(r"autoencoder test mse \S+ \(keras (\S+);", out)
    before = number(r"autoencoder test mse .*before training (\S+)\)", out)
    assert nengo_mse < 0.5 * before and keras_mse < 0.5 * before
    assert nengo_mse < 2 * keras_mse
    assert number(r"NEF network, nengo_dl vs nengo: max difference (\S+)", out) < 1e-4


def test_spiking_mnist(tmp_path):
    out = _run("spiking_mnist.py", tmp_path)
    spiking = number(r"spiking test accuracy (\S+)", out)
    keras_acc = number(r"spiking test accuracy \S+ \(keras (\S+);", out)
    before = number(r"spiking test accuracy .*before training (\S+)\)", out)
    assert before < 0.3  # chance is 0.1
    assert spiking > 0.6 and keras_acc > 0.6  # the Keras baseline varies run to run (0.80-0.94 seen in --quick)
    assert (tmp_path / "mnist_params.npz").exists()


def test_keras_to_snn(tmp_path):
    out = _run("keras_to_snn.py", tmp_path)
    keras_acc = number(r"keras test accuracy: (\S+)%", out) / 100
    rate = number(r"\nrate: test accuracy (\S+)%", out) / 100
    assert keras_acc > 0.7
    # the converted, NengoDL-trained model with rate neurons is as good as Keras
    assert rate > keras_acc - 0.1
    # spiking without filtering is poor; scaling the firing rates up recovers accuracy
    plain = number(r"\nspiking: test accuracy (\S+)%", out) / 100
    scale10 = number(r"spiking scale=10: test accuracy (\S+)%", out) / 100
    assert scale10 > plain + 0.2 and scale10 > 0.6
    assert number(r"regularized rate: test accuracy (\S+)%", out) > 50


def test_tensorflow_models(tmp_path):
    out = _run("tensorflow_models.py", tmp_path)
    assert number(r"TensorNode sin\(t\): max error (\S+)", out) < 1e-5
    keras_acc = number(r"keras model in a TensorNode: test accuracy \S+ \(keras (\S+)\)", out)
    wrapped = number(r"keras model in a TensorNode: test accuracy (\S+)", out)
    assert keras_acc > 0.7
    assert abs(wrapped - keras_acc) < 0.01  # the same weights, the same predictions
    for name in ("nengo_dl.Layer model", "nengo objects model"):
        assert number(name.replace(".", r"\.") + r": test accuracy (\S+)", out) > keras_acc - 0.1
    assert abs(number(r"converted model: test accuracy (\S+)", out) - keras_acc) < 0.01


def test_lmu(tmp_path):
    out = _run("lmu.py", tmp_path)
    acc = number(r"lmu test accuracy (\S+)", out)
    keras_acc = number(r"lmu test accuracy \S+ \(keras (\S+);", out)
    before = number(r"lmu test accuracy .*before training (\S+)\)", out)
    assert before < 0.3
    assert acc > 0.6 and acc > keras_acc - 0.1


def test_spa_retrieval(tmp_path):
    pytest.importorskip("nengo_spa")
    out = _run("spa_retrieval.py", tmp_path)
    after = number(r"retrieval accuracy (\S+)", out)
    before = number(r"retrieval accuracy .*before training (\S+)\)", out)
    assert after > before + 0.1


@pytest.mark.slow  # the longest of these (two memories trained over 40-50 steps)
def test_spa_memory(tmp_path):
    pytest.importorskip("nengo_spa")
    out = _run("spa_memory.py", tmp_path)
    after = number(r"memory test loss (\S+)", out)
    before = number(r"memory test loss .*before training (\S+)\)", out)
    assert after < 0.9 * before
    b_after = number(r"binding memory test loss (\S+)", out)
    b_before = number(r"binding memory test loss .*before training (\S+)\);", out)
    assert b_after < 0.9 * b_before

"""examples/cognitive_model.py (optimizing a cognitive model) in its --quick mode.

The example runs once per module in a subprocess, as CI runs it; the tests check the
numbers it printed and the figures it saved.
"""

import re

import pytest

from examples_runner import number, run_example


@pytest.fixture(scope="module")
def cognitive(tmp_path_factory):
    out = tmp_path_factory.mktemp("cognitive_model")
    return run_example("cognitive_model.py", out), out


def test_cognitive_figures(cognitive):
    _, out = cognitive
    for name in ("binding_accuracy.png", "binding_dynamics.png"):
        assert (out / name).stat().st_size > 1000, name


def test_binding_training_improves_spiking_accuracy(cognitive):
    stdout = cognitive[0].stdout
    before = number(r"before training, spiking \(\d+ steps\): cosine ([0-9.]+)", stdout)
    after = number(r"after training, spiking \(\d+ steps\): cosine ([0-9.]+)", stdout)
    mse_before = number(r"before training, spiking \(\d+ steps\): .*mse ([0-9.]+)", stdout)
    mse_after = number(r"after training, spiking \(\d+ steps\): .*mse ([0-9.]+)", stdout)
    # measured: cosine 0.78 -> 0.90, mse 0.028 -> 0.012
    assert before > 0.6, "the NEF-solved network should already bind, imperfectly"
    assert after > before + 0.05
    assert after > 0.85
    assert mse_after < 0.7 * mse_before
    retr_before = number(r"before training, spiking \(\d+ steps\): .*retrieval ([0-9.]+)", stdout)
    retr_after = number(r"after training, spiking \(\d+ steps\): .*retrieval ([0-9.]+)", stdout)
    assert retr_after > retr_before + 0.05


def test_binding_rate_training_carries_over_to_spikes(cognitive):
    stdout = cognitive[0].stdout
    rate = number(r"after training, rate mode \(1 step\): cosine ([0-9.]+)", stdout)
    spiking = number(r"after training, spiking \(\d+ steps\): cosine ([0-9.]+)", stdout)
    assert abs(rate - spiking) < 0.05


def test_binding_frozen_reference_matches(cognitive):
    stdout = cognitive[0].stdout
    tf_cos = number(r"first \d+ test pairs: tensorflow cosine ([0-9.]+)", stdout)
    ref_cos = number(r"reference \(frozen\) cosine ([0-9.]+)", stdout)
    tf_mse = number(r"first \d+ test pairs: .*mse tensorflow ([0-9.]+)", stdout)
    ref_mse = number(r"first \d+ test pairs: .*mse tensorflow [0-9.]+, reference ([0-9.]+)", stdout)
    # float32 vs float64: a spike can land a step apart, which barely moves the averages
    assert abs(tf_cos - ref_cos) < 0.01
    assert abs(tf_mse - ref_mse) < 0.1 * tf_mse
    assert ref_cos > 0.8


def test_dynamics_training_improves_time_course(cognitive):
    stdout = cognitive[0].stdout
    mse_before = number(r"spiking time-course mse over \d+ steps: before ([0-9.]+)", stdout)
    mse_after = number(r"spiking time-course mse over \d+ steps: .*after ([0-9.]+)", stdout)
    cos_before = number(r"spiking time-course cosine over \d+ steps: before ([0-9.]+)", stdout)
    cos_after = number(r"spiking time-course cosine over \d+ steps: .*after ([0-9.]+)", stdout)
    # measured: mse 0.035 -> 0.027, cosine 0.65 -> 0.75
    assert mse_after < 0.9 * mse_before
    assert cos_after > cos_before + 0.04
    # the trained network gets to the answer sooner
    reach = re.search(r"first step with mean cosine >= 0.7: before (\w+), after (\w+)", stdout)
    assert reach and reach.group(2) != "None", stdout[-2000:]
    if reach.group(1) != "None":
        assert int(reach.group(2)) < int(reach.group(1))


def test_dynamics_frozen_reference_matches(cognitive):
    stdout = cognitive[0].stdout
    tf_mse = number(r"time-course mse: tensorflow ([0-9.]+)", stdout)
    ref_mse = number(r"time-course mse: tensorflow [0-9.]+, reference \(frozen\) ([0-9.]+)", stdout)
    assert abs(tf_mse - ref_mse) < 0.1 * tf_mse

"""Parity and deploy for configs: tolerance precedence, skipped targets, options, feeding."""

import pytest

from nhw.toolchain import networks
from nhw.toolchain.config import from_dict
from nhw.errors import DeployError
from nhw.toolchain.deploy import classify
from nhw.toolchain.experiment import check_options, feed_inputs, spiking_probes
from nhw.toolchain.parity_config import report_from_json, tolerance_for, unsupported_reason
from nhw.toolchain.parity import ParityReport, compare
from nhw.toolchain.parity_networks import NETWORKS, Tolerance


def cfg(**parity):
    return from_dict({"network": {"name": "communication_channel"}, "parity": parity}, check=False)


def test_tolerance_precedence(monkeypatch):
    built = networks.build("communication_channel", {"n_per_dim": 5})
    std = NETWORKS["communication_channel"]
    # nothing in the config: the zoo network's declared tolerance
    assert tolerance_for(cfg(), built, "opencl", "a") == std.tolerance_for("opencl", "a")
    # a probe tolerance beats the zoo default
    c = cfg(tolerances={"a": {"rmse": 0.5, "max_abs": 1}})
    assert tolerance_for(c, built, "opencl", "a") == Tolerance(0.5, 1)
    assert tolerance_for(c, built, "opencl", "b") == std.tolerance_for("opencl", "b")
    # the config's explicit per-probe tolerance beats the zoo's per-target one (issue 24) ...
    monkeypatch.setitem(std.per_target, "loihi-emu", Tolerance(0.3, 0.9))
    assert tolerance_for(c, built, "loihi-emu", "a") == Tolerance(0.5, 1)
    # ... unless it only repeats the zoo's default, which the per-target value refines ...
    same = cfg(tolerances={"a": {"rmse": std.tolerance.rmse, "max_abs": std.tolerance.max_abs}})
    assert tolerance_for(same, built, "loihi-emu", "a") == Tolerance(0.3, 0.9)
    # ... and the config's (target, probe) tolerance beats everything
    c = cfg(per_target={"loihi-emu": {"a": {"rmse": 0.7, "max_abs": 2}}})
    assert tolerance_for(c, built, "loihi-emu", "a") == Tolerance(0.7, 2)


def test_default_tolerance_for_non_standard_networks():
    c = from_dict({"network": {"name": "rate_spiking"}, "parity": {"default": {"rmse": 0.1, "max_abs": 0.2}}},
                  check=False)
    built = networks.build("rate_spiking", {"n_neurons": 3})
    assert tolerance_for(c, built, "opencl", "rate") == Tolerance(0.1, 0.2)


def test_unsupported_reason(monkeypatch):
    built = networks.build("communication_channel", {"n_per_dim": 5})
    assert unsupported_reason(cfg(unsupported={"opencl": "no"}), built, "opencl") == "no"
    monkeypatch.setitem(NETWORKS["communication_channel"].unsupported, "loihi-emu", "not on chip")
    assert unsupported_reason(cfg(), built, "loihi-emu") == "not on chip"
    assert unsupported_reason(cfg(), built, "opencl") is None


def test_report_json_round_trip():
    import numpy as np

    report = ParityReport()
    report.results.append(compare("n", "t", "p", np.zeros((3, 1)), np.ones((3, 1)), Tolerance(0.1, 0.1)))
    report.skipped.append(("n", "u", "why"))
    again = report_from_json(report.to_json())
    assert again.to_table() == report.to_table() and again.passed is False


def test_check_options():
    class Sim:
        def __init__(self, network, dt=0.001, seed=None, progress_bar=True, optimize=True):
            pass

    check_options("x", Sim, {"optimize": False})
    with pytest.raises(DeployError, match="unknown option 'optimise'; did you mean 'optimize'"):
        check_options("x", Sim, {"optimise": False})

    class Open:
        def __init__(self, network, **kwargs):
            pass

    check_options("x", Open, {"anything": 1})


def test_feed_and_spiking_probes():
    c = from_dict({"network": {"name": "digits_classifier", "params": {"n_hidden": 8}},
                   "data": {"name": "digits"}, "deploy": {"feed": "input", "n_items": 4}})
    built = networks.build("digits_classifier", {"n_hidden": 8})
    fed = feed_inputs(c, built)
    assert fed["x"].shape == (4, 64) and int(fed["n_steps"]) == 120
    assert spiking_probes(built.probes) == ["hidden"]
    assert feed_inputs(from_dict({"network": {"name": "sin_x2_chain"}}), built) == {}


def test_classify_scores_the_end_of_each_presentation():
    import numpy as np

    out = np.zeros((30, 3))
    out[0:10, 2] = 1      # item 0 -> class 2 (label 2)
    out[10:18, 0] = 1     # item 1: class 0 early ...
    out[18:20, 1] = 5     # ... but class 1 at the end (label 1)
    out[20:30, 0] = 1     # item 2 -> class 0 (label 1: wrong)
    m = classify(out, np.array([2, 1, 1]), 10)
    assert m["output_accuracy"] == 2 / 3 and m["n_scored"] == 3
    assert classify(out, np.array([0.5, 1.0, 2.0]), 10) == {}  # not class labels

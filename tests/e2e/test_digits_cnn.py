"""configs/digits_cnn.yaml end to end: trained chip-aware and quantised, its spiking accuracy on
loihi-emu equals the same network's in the TensorFlow simulator to 0.5 points (issue 29)."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from nhw import backends
from nhw.toolchain.cli import main

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "digits_cnn.yaml"

pytestmark = pytest.mark.skipif(
    not {"tensorflow", "loihi-emu"} <= set(backends.available()), reason="needs the tensorflow and loihi-emu targets")


def nhw(*args):
    r = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert r.exit_code == 0, r.stdout + r.stderr
    return r


def _accuracy(run: Path) -> float:
    metrics = json.loads((run / "summary.json").read_text())["metrics"]
    assert metrics["n_scored"] == N_ITEMS
    return float(metrics["output_accuracy"])


N_ITEMS = 200


def test_digits_cnn_trains_for_the_chip_and_keeps_its_accuracy_there(tmp_path):
    run = tmp_path / "train"
    nhw("train", CONFIG, "--out", run, "-q", "--set", "train.epochs=6")
    # the run's summary states what the chip's formats cost each quantised parameter
    quant = json.loads((run / "summary.json").read_text())["quantization"]
    kinds = sorted(q["kind"] for q in quant["quantized"].values())
    assert kinds == ["bias", "bias", "weights"], quant  # conv1, conv2; conv1 -> conv2 (on the chip)
    assert all(0 < q["max_rel_error"] < 0.05 for q in quant["quantized"].values()), quant
    acc = {}
    for target in ("tensorflow", "loihi-emu"):
        out = tmp_path / target
        nhw("deploy", run, "--target", target, "--out", out,
            "--set", f"deploy.n_items={N_ITEMS}", "--set", "deploy.plots=false")
        acc[target] = _accuracy(out)
    # the TF simulator ran the network as trained: the chip's neurons, quantised weights
    summary = json.loads((tmp_path / "tensorflow" / "summary.json").read_text())
    assert summary["neurons"] == "loihi-emu neuron models, quantised weights", summary
    assert "neurons" not in json.loads((tmp_path / "loihi-emu" / "summary.json").read_text())
    # briefly trained, the network is well above chance (10 %) on both targets...
    assert acc["tensorflow"] > 0.6, acc
    # ...and the chip emulator's accuracy is the TensorFlow simulator's, within the issue's
    # 0.5 points (one digit of 200): the TF chip form encodes the input image as the chip's
    # spike counts, delivers spikes a step later and rounds the integer synapse currents
    # as loihi-emu does (float32 rounding can still move a spike)
    assert abs(acc["loihi-emu"] - acc["tensorflow"]) <= 0.005, acc


def test_digits_cnn_is_a_zoo_network_and_the_config_uses_it():
    import numpy as np
    import yaml

    from nhw.toolchain import networks

    assert yaml.safe_load(CONFIG.read_text())["network"]["name"] == "digits_cnn"
    params = {"filters1": 2, "filters2": 3, "transform": "convolution"}
    built = networks.build("digits_cnn", params, seed=4)
    again = networks.build("digits_cnn", params, seed=4)
    assert built.inputs["input"].size_out == 64 and set(built.probes) == {"output", "logits", "conv1", "conv2"}
    assert built.probes["conv2"].obj.size_out == 2 * 2 * 3
    for a, b in zip(built.network.all_connections, again.network.all_connections):  # the seed fixes the weights
        np.testing.assert_array_equal(np.asarray(a.transform.init), np.asarray(b.transform.init))
    with pytest.raises(Exception, match="filters3"):
        networks.build("digits_cnn", {"filters3": 1})

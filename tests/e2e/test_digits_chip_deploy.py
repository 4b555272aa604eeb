"""configs/digits.yaml trained for the chip: the TensorFlow simulator's spiking accuracy is what
loihi-emu scores, to the issue's 0.5 points (issue 29)."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from nhw import backends
from nhw.toolchain.cli import main

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "digits.yaml"
N_ITEMS = 200

pytestmark = pytest.mark.skipif(
    not {"tensorflow", "loihi-emu"} <= set(backends.available()), reason="needs the tensorflow and loihi-emu targets")


def nhw(*args):
    r = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert r.exit_code == 0, r.stdout + r.stderr
    return r


@pytest.mark.parametrize("quantize, options", [(False, None), (True, None), (True, {"input_pairs": 4})],
                         ids=["chip", "chip-quantize", "chip-quantize-4-input-pairs"])
def test_digits_trained_for_the_chip_scores_the_same_on_tf_and_loihi_emu(tmp_path, quantize, options):
    # deploy.options for loihi-emu (its mapping options) reach training's quantiser and the
    # TF simulator's chip form too
    extra = [] if options is None else ["--set", "deploy.options=" + json.dumps({"loihi-emu": options})]
    run = tmp_path / "train"
    nhw("train", CONFIG, "--out", run, "-q", "--set", "train.epochs=5", "--set", "train.target=loihi-emu",
        "--set", f"train.quantize={str(quantize).lower()}", *extra)
    acc = {}
    for target in ("tensorflow", "loihi-emu"):
        out = tmp_path / target
        nhw("deploy", run, "--target", target, "--out", out,
            "--set", f"deploy.n_items={N_ITEMS}", "--set", "deploy.plots=false")
        metrics = json.loads((out / "summary.json").read_text())["metrics"]
        assert metrics["n_scored"] == N_ITEMS
        acc[target] = float(metrics["output_accuracy"])
    assert acc["tensorflow"] > 0.6, acc  # trained: far above chance
    # back to back, 30 steps a digit: the input image crosses as the chip's spike counts in both
    assert abs(acc["loihi-emu"] - acc["tensorflow"]) <= 0.005, acc

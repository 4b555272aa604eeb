"""nhw train with a validation split and the YAML callbacks, end to end (small digits network)."""

import json
from pathlib import Path

from click.testing import CliRunner

from nhw.toolchain.cli import main

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--set", "network.params.n_hidden=32", "--set", "train.epochs=8", "--set", "train.validation_split=0.15"]


def nhw(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_validation_early_stopping_schedule_and_csv(tmp_path):
    out = tmp_path / "run"
    r = nhw("train", ROOT / "configs" / "digits.yaml", *SMALL, "--out", out,
            "--set", "train.callbacks.early_stopping={monitor: loss, patience: 1, min_delta: 1000}",
            "--set", "train.callbacks.lr_schedule={name: step, factor: 0.5, every: 1}")
    assert r.exit_code == 0, r.output
    history = json.loads((out / "history.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    # min_delta 1000 on a loss that starts near 30: no epoch after the first improves
    assert len(history["loss"]) == 2 and summary["epochs_done"] == 2
    assert "stopped early: loss did not improve for 1 epoch(s) after epoch 1" in summary["stopped_early"]
    assert history["learning_rate"] == [1e-3, 5e-4]
    # validated on held-out training data, scored on the test set: two different numbers
    assert len(history["val_output_accuracy"]) == 2 and "test_output_accuracy" in summary["metrics"]
    csv = (out / "history.csv").read_text().splitlines()
    assert csv[0].startswith("epoch,") and len(csv) == 3
    assert "epoch 2/8" in r.output and "Epoch 1/1" not in r.output

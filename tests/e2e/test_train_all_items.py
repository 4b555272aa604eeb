"""`nhw train` reports its test accuracy over every test item (QA: a minibatch larger
than the test set gave no test accuracy at all; 32 scored 448 of 449 items)."""

import json
from pathlib import Path

from click.testing import CliRunner

from nhw.toolchain.cli import main
from nhw.toolchain.config import load_config
from nhw.toolchain.experiment import load_data

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "configs" / "digits.yaml"


def test_a_minibatch_larger_than_the_test_set_still_scores_every_item(tmp_path):
    sets = ["--set", "network.params.n_hidden=32", "--set", "train.epochs=1", "--set", "train.minibatch_size=500"]
    r = CliRunner().invoke(main, ["train", str(DIGITS), *sets, "--out", str(tmp_path / "run")],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    n_test = len(load_data(load_config(DIGITS)).y_test)
    metrics = json.loads((tmp_path / "run" / "summary.json").read_text())["metrics"]
    assert metrics["n_scored"] == n_test and n_test % 500 != 0
    assert 0.0 <= metrics["test_output_accuracy"] <= 1.0

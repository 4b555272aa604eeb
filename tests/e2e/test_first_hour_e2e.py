"""The README's trained runs pass their own configs' parity checks over every test digit
(QA round h2: digits_cnn failed on tensorflow's stale limits, digits on loihi-emu's decisions)."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from nhw.toolchain.cli import main

from nhw import backends

ROOT = Path(__file__).resolve().parents[2]

TF_AND_CHIP = pytest.mark.skipif(not {"tensorflow", "loihi-emu"} <= set(backends.available()),
                                 reason="needs the tensorflow and loihi-emu targets")


def nhw(*args, code=0):
    r = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert r.exit_code == code, r.stdout + r.stderr
    return r


@pytest.mark.slow
@TF_AND_CHIP
@pytest.mark.parametrize("config, targets", [("digits", "loihi-emu"), ("digits_cnn", "tensorflow,loihi-emu")])
def test_readme_run_passes_its_configs_parity(tmp_path, config, targets):
    """As the README: `nhw train configs/X.yaml`, then `nhw parity RUN` over every test digit."""
    run = tmp_path / "run"
    nhw("train", ROOT / "configs" / f"{config}.yaml", "--out", run, "-q")
    r = nhw("parity", run, "--targets", targets, "--out", tmp_path / "parity", "--json")
    report = json.loads(r.stdout)
    assert report["passed"], report["results"]
    decided = [row for row in report["results"] if row["probe"].endswith(":decisions")]
    assert decided and all(row["note"].endswith("/449 decisions agree") for row in decided)


def test_ctrl_c_hint_repeats_the_set_options(tmp_path, monkeypatch):
    """The printed `--resume` command, run as printed, continues the interrupted run."""
    import shlex

    import keras
    from nhw.toolchain import train as train_mod

    class Stop(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise KeyboardInterrupt

    real = train_mod.train
    monkeypatch.setattr(train_mod, "train", lambda *a, **k: real(*a, **k, callbacks=[Stop()]))
    config, out = ROOT / "configs" / "autoencoder.yaml", tmp_path / "my run"
    sets = ["network.params.n_hidden=16", "train.epochs=3", "train.optimizer={name: adam, learning_rate: 0.01}"]
    r = CliRunner().invoke(main, ["train", str(config), *(a for s in sets for a in ("--set", s)), "--out", str(out)],
                           prog_name="nhw")
    assert r.exit_code == 130, r.output
    hint = r.stderr.split("continue with `", 1)[1].split("`", 1)[0]
    args = shlex.split(hint)
    assert args[:3] == ["nhw", "train", str(config)] and args[-3:] == ["--out", str(out), "--resume"]
    assert args[3:-3] == [a for s in sets for a in ("--set", s)]
    monkeypatch.setattr(train_mod, "train", real)
    nhw(*args[1:], "-q")  # as printed: the same config, so the checkpoint is accepted
    assert json.loads((out / "history.json").read_text())["loss"].__len__() == 3

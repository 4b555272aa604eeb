"""``nhw train`` end to end: train, checkpoint, resume, and deploy the trained run.

A small digits classifier (32 spiking ReLU neurons, few epochs) keeps this fast; the
assertions check that training really happened (accuracy far above chance on the
held-out digits with spikes, on the TF simulator and after deployment on reference and
the chip emulator), not just that files appear.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from nhw.toolchain.cli import main
from nhw.toolchain.config import load_config
from nhw.errors import ToolchainError

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "configs" / "digits.yaml"
SMALL = ["--set", "network.params.n_hidden=64", "--set", "train.epochs=4"]


def nhw(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "digits"
    r = nhw("train", DIGITS, *SMALL, "--out", out)
    assert r.exit_code == 0, r.stdout + r.stderr
    return out, r


def test_train_writes_a_complete_run(trained):
    out, r = trained
    files = {p.name for p in out.iterdir()}
    assert {"frozen.npz", "params.npz", "history.json", "training.png", "summary.json", "manifest.json"} <= files
    assert not out.with_name(out.name + ".checkpoint").exists()  # removed once the run is written
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "train" and manifest["config"]["train"]["epochs"] == 4
    history = json.loads((out / "history.json").read_text())
    assert len(history["logits_loss"]) == 4 and history["logits_loss"][-1] < history["logits_loss"][0]
    acc = manifest["summary"]["metrics"]["test_output_accuracy"]
    assert acc > 0.7, acc  # chance is 0.1
    with np.load(out / "frozen.npz", allow_pickle=False) as f:
        assert "Ensemble:hidden/bias" in f.files and "Connection:connections[0]/weights" in f.files
    assert "test_output_accuracy" in r.stdout


@pytest.mark.parametrize("target", ["reference", "loihi-emu"])
def test_deploy_the_trained_run(trained, target, tmp_path):
    out, _ = trained
    r = nhw("deploy", out, "--target", target, "--set", "deploy.n_items=20", "--out", tmp_path / "dep")
    assert r.exit_code == 0, r.stdout + r.stderr
    summary = json.loads((tmp_path / "dep" / "summary.json").read_text())
    assert summary["metrics"]["output_accuracy"] >= 0.6, summary["metrics"]


def test_untrained_config_is_at_chance(tmp_path):
    # the same deploy without the trained values: proves the run's values were applied
    r = nhw("deploy", DIGITS, *SMALL, "--set", "deploy.n_items=20", "--out", tmp_path / "dep")
    assert r.exit_code == 0, r.stderr
    summary = json.loads((tmp_path / "dep" / "summary.json").read_text())
    assert summary["metrics"]["output_accuracy"] <= 0.4


def test_interrupted_run_resumes(tmp_path):
    import keras

    from nhw.toolchain.train import train

    cfg = load_config(DIGITS, ["network.params.n_hidden=32", "train.epochs=3"])
    out = tmp_path / "run"

    class Stop(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, out, verbose=0, callbacks=[Stop()])
    ckpt = out.with_name("run.checkpoint")
    assert not out.exists() and json.loads((ckpt / "state.json").read_text())["epochs_done"] == 2
    result = train(cfg, out, resume=True, verbose=0)
    assert result.epochs_run == 1 and len(result.history["logits_loss"]) == 3
    assert out.exists() and not ckpt.exists()

    other = load_config(DIGITS, ["network.params.n_hidden=32", "train.epochs=4"])
    with pytest.raises(ToolchainError, match="no checkpoint"):
        train(other, tmp_path / "fresh", resume=True, verbose=0)


def test_resume_refuses_a_different_config(tmp_path):
    import keras

    from nhw.toolchain.train import train

    cfg = load_config(DIGITS, ["network.params.n_hidden=32", "train.epochs=2"])

    class Stop(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "run", verbose=0, callbacks=[Stop()])
    changed = load_config(DIGITS, ["network.params.n_hidden=32", "train.epochs=2", "train.optimizer.learning_rate=0.01"])
    with pytest.raises(ToolchainError, match="different config"):
        train(changed, tmp_path / "run", resume=True, verbose=0)


def test_killed_train_resumes_without_losing_epochs(tmp_path):
    """SIGKILL ``nhw train`` mid-run, then ``--resume``: every epoch is there once."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    args = ["--set", "network.params.n_hidden=32", "--set", "train.epochs=6", "--out", str(out), "-q"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen([sys.executable, "-m", "nhw.toolchain.cli", "train", str(DIGITS), *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    state = out.with_name("run.checkpoint") / "state.json"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if state.exists() and json.loads(state.read_text())["epochs_done"] >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"train finished or failed before it could be killed: {proc.stderr.read()[-2000:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = json.loads(state.read_text())["epochs_done"]
    assert 2 <= done < 6 and not out.exists()
    r = nhw("train", DIGITS, "--resume", *args[:-1])
    assert r.exit_code == 0, r.stdout + r.stderr
    history = json.loads((out / "history.json").read_text())
    assert len(history["logits_loss"]) == 6  # the epochs before the kill plus the rest, none twice
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs_run_now"] == 6 - done


def test_parity_of_the_trained_run(trained, tmp_path):
    """``nhw parity RUN``: numeric rows plus the classifier's decision agreement."""
    out, _ = trained
    r = nhw("parity", out, "--targets", "tensorflow,loihi-emu", "--set", "deploy.n_items=10", "--json",
            "--out", tmp_path / "par")
    assert r.exit_code in (0, 1), r.stdout + r.stderr
    rows = {(x["target"], x["probe"]): x for x in json.loads(r.stdout)["results"]}
    tf_dec, emu_dec = rows[("tensorflow", "output:decisions")], rows[("loihi-emu", "output:decisions")]
    assert tf_dec["passed"] and tf_dec["max_abs"] == 0.0  # same float model: identical decisions
    # the integer chip decides (almost) like reference: at most 3 of 10 differ (1 - 7/10 rounds above 0.3)
    assert emu_dec["max_abs"] <= 0.3 + 1e-9, emu_dec
    assert rows[("tensorflow", "output")]["passed"]


def test_trained_run_through_nir_keeps_its_accuracy(trained, tmp_path):
    """``nhw train`` -> ``nhw export --format nir`` -> ``nhw import`` -> same accuracy on reference."""
    import yaml

    out, _ = trained
    nir_file = tmp_path / "digits.nir"
    assert nhw("export", out, "--format", "nir", "-o", nir_file).exit_code == 0
    imported = tmp_path / "imported.yaml"
    r = nhw("import", nir_file, "-o", imported)
    assert r.exit_code == 0, r.stdout + r.stderr
    cfg = yaml.safe_load(imported.read_text())
    original = yaml.safe_load(DIGITS.read_text())
    cfg["data"] = original["data"]
    cfg["deploy"].update({"feed": "input", "presentation_time": 0.03, "n_items": 40, "probes": ["output"],
                          "classify": "output"})
    cfg["deploy"].pop("n_steps", None)
    imported.write_text(yaml.safe_dump(cfg))
    accs = []
    for source, extra in ((imported, []), (out, ["--set", "deploy.n_items=40"])):
        r = nhw("deploy", source, *extra, "--json", "--out", tmp_path / f"dep{len(accs)}")
        assert r.exit_code == 0, r.stdout + r.stderr
        accs.append(json.loads(r.stdout)["metrics"]["output_accuracy"])
    assert accs[0] == pytest.approx(accs[1], abs=0.05) and accs[1] > 0.6, accs


def test_report_rerenders_a_train_run(trained, tmp_path):
    out, _ = trained
    r = nhw("report", out, "--out", tmp_path / "rep")
    assert r.exit_code == 0, r.stdout + r.stderr
    assert "train run" in r.stdout and "logits_loss" in r.stdout and "test_output_accuracy" in r.stdout
    assert (tmp_path / "rep" / "training.png").stat().st_size > 1000

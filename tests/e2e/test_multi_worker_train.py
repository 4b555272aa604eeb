"""``nhw train --workers N``: local worker processes, one run folder written by the chief.

A 16-neuron digits classifier for two epochs keeps this short; the slow test checks the
two-worker history against one process on the same global batch (float rounding).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from nhw.toolchain.cli import main

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "configs" / "digits.yaml"
TINY = ["--set", "network.params.n_hidden=16", "--set", "train.epochs=2"]
TIMEOUT = 400


def _nhw(*args, env_extra=None) -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="", **(env_extra or {}))
    env.pop("TF_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "nhw.toolchain.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=TIMEOUT)


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    base = tmp_path_factory.mktemp("workers")
    res = _nhw("train", DIGITS, *TINY, "--workers", 2, "--out", base / "run")
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    return base, res


def test_two_local_workers_write_one_run(two_workers):
    base, res = two_workers
    run = base / "run"
    # the chief wrote the run atomically; nothing else appeared (no checkpoint, no temp folder)
    assert sorted(p.name for p in base.iterdir()) == ["run"]
    assert {"frozen.npz", "params.npz", "history.json", "summary.json", "manifest.json"} <= {
        p.name for p in run.iterdir()}
    history = json.loads((run / "history.json").read_text())
    assert len(history["loss"]) == 2 and history["loss"][1] < history["loss"][0]
    assert res.stdout.count("trained digits: 2 of 2 epochs") == 1  # only the chief reports


@pytest.mark.slow
def test_two_workers_match_one_process(two_workers, tmp_path):
    base, _ = two_workers
    res = _nhw("train", DIGITS, *TINY, "--out", tmp_path / "one")
    assert res.returncode == 0, res.stderr[-3000:]
    multi = json.loads((base / "run" / "history.json").read_text())
    one = json.loads((tmp_path / "one" / "history.json").read_text())
    assert set(multi) == set(one)
    for key in one:
        np.testing.assert_allclose(multi[key], one[key], rtol=1e-5, err_msg=key)



def test_killed_two_worker_run_resumes_as_if_uninterrupted(tmp_path):
    """SIGKILL ``nhw train --workers 2`` after its first epoch, then ``--resume --workers 2``.

    The resumed run's history equals one process's uninterrupted run on the same global
    batch (before the fix, restoring the optimizer's state outside the strategy's scope
    failed on every worker).
    """
    import signal
    import time

    args = ["--set", "network.params.n_hidden=16", "--set", "train.epochs=3"]
    out = tmp_path / "run"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    proc = subprocess.Popen([sys.executable, "-m", "nhw.toolchain.cli", "train", str(DIGITS), *args,
                             "--workers", "2", "--out", str(out), "-q"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    state = out.with_name("run.checkpoint") / "state.json"
    deadline = time.time() + TIMEOUT
    while time.time() < deadline and proc.poll() is None:
        if state.exists() and json.loads(state.read_text())["epochs_done"] >= 1:
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"training ended before it could be killed: {proc.stderr.read()[-2000:]}"
    os.killpg(proc.pid, signal.SIGKILL)  # the launcher and both workers
    proc.wait()
    done = json.loads(state.read_text())["epochs_done"]
    assert 1 <= done < 3 and not out.exists()

    res = _nhw("train", DIGITS, *args, "--workers", 2, "--resume", "--out", out)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    one = _nhw("train", DIGITS, *args, "--out", tmp_path / "one")
    assert one.returncode == 0, one.stderr[-3000:]
    resumed = json.loads((out / "history.json").read_text())
    whole = json.loads((tmp_path / "one" / "history.json").read_text())
    assert set(resumed) == set(whole) and len(resumed["loss"]) == 3
    for key in whole:
        np.testing.assert_allclose(resumed[key], whole[key], rtol=1e-5, err_msg=key)
    assert json.loads((out / "summary.json").read_text())["epochs_run_now"] == 3 - done


def nhw_inproc(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_workers_must_be_at_least_one(tmp_path):
    r = nhw_inproc("train", DIGITS, "--workers", 0, "--out", tmp_path / "x")
    assert r.exit_code == 2 and "--workers" in r.output and ">= 1" in r.output
    assert not (tmp_path / "x").exists()


def test_global_batch_must_split_over_the_workers(tmp_path):
    # digits.yaml: minibatch_size 32, not a multiple of 3: refused before any worker starts
    r = nhw_inproc("train", DIGITS, "--workers", 3, "--out", tmp_path / "x")
    assert r.exit_code != 0
    assert "minibatch_size 32" in r.output and "multiple of 3" in r.output
    assert not (tmp_path / "x").exists()


def test_workers_and_tf_config_conflict(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["127.0.0.1:1"]},
                                                "task": {"type": "worker", "index": 0}}))
    r = nhw_inproc("train", DIGITS, "--workers", 2, "--out", tmp_path / "x")
    assert r.exit_code == 2 and "TF_CONFIG" in r.output

"""The shipped configs end to end: quickstart deployed on reference and on every other
available target among reference/opencl; every parity config compared on opencl (when
available) against reference, within the config's tolerances."""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from nhw import backends
from nhw.toolchain import artifacts
from nhw.toolchain.cli import main

ROOT = Path(__file__).resolve().parents[2]
PARITY = sorted((ROOT / "configs" / "parity").glob("*.yaml"))
#: Targets these tests run on; tensorflow and loihi-emu have their own suites while built.
TARGETS = [t for t in ("reference", "opencl") if t in backends.available()]
OTHERS = [t for t in TARGETS if t != "reference"]


def nhw(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.mark.parametrize("target", TARGETS)
def test_quickstart_deploys(tmp_path, target):
    out = tmp_path / "q"
    r = nhw("deploy", ROOT / "configs" / "quickstart.yaml", "--target", target, "--out", out)
    assert r.exit_code == 0, r.stdout + r.stderr
    assert f"sin_x2_chain on {target}: 1000 steps" in r.stdout
    run = artifacts.load_run(out)
    data = run.npz("probes.npz")
    # the NEF chain approximates sin(x^2) of its input
    rmse = float(np.sqrt(np.mean((data["out"] - np.sin(data["x"] ** 2)) ** 2)))
    assert rmse < 0.1


@pytest.mark.parametrize("path", PARITY, ids=[p.stem for p in PARITY])
def test_parity_config(tmp_path, path):
    out = tmp_path / "p"
    r = nhw("parity", path, "--targets", ",".join(["reference", *OTHERS]), "--out", out)
    assert r.exit_code == 0, r.stdout + r.stderr
    report = json.loads((out / "parity.json").read_text())
    assert report["passed"]
    assert {x["target"] for x in report["results"]} | {x["target"] for x in report["skipped"]} == set(OTHERS)

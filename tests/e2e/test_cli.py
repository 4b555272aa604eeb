"""End-to-end: the nhw command line and the quickstart, run as a user would."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nhw import backends

ROOT = Path(__file__).resolve().parents[2]


def nhw(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "nhw.toolchain.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_help_is_light():
    out = subprocess.run(
        [sys.executable, "-c", "import sys; from nhw.toolchain.cli import main; sys.argv=['nhw','--help']\n"
         "try: main()\nexcept SystemExit: pass\nprint('tensorflow' in sys.modules)"],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert "parity" in out.stdout and "deploy" in out.stdout and out.stdout.strip().endswith("False")


def test_targets_lists_all_with_reasons():
    out = nhw("targets")
    assert out.returncode == 0
    for status in backends.describe():
        line = next(ln for ln in out.stdout.splitlines() if ln.startswith(status.name + " "))
        assert ("yes" in line) is status.available


def test_unknown_target_exits_2_with_known_names():
    out = nhw("parity", "--targets", "ocl2", "--networks", "communication_channel")
    assert out.returncode == 2
    assert "unknown target 'ocl2'; did you mean 'opencl'? known: reference, opencl" in out.stderr
    assert "Traceback" not in out.stderr


def test_unknown_network_exits_2():
    out = nhw("parity", "--targets", "reference", "--networks", "nope")
    assert out.returncode == 2 and "unknown standard network 'nope'" in out.stderr


@pytest.mark.skipif("opencl" not in backends.available(), reason="no OpenCL device")
def test_parity_opencl_writes_json(tmp_path):
    out = nhw("parity", "--targets", "opencl", "--networks", "communication_channel", "--out", str(tmp_path / "run"))
    assert out.returncode == 0, out.stdout + out.stderr
    data = json.loads((tmp_path / "run" / "parity.json").read_text())
    assert data["passed"] and {r["probe"] for r in data["results"]} == {"a", "b"}
    out = nhw("parity", "--targets", "opencl", "--networks", "communication_channel", "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["passed"]


def test_config_error_from_the_console_script(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("network:\n  name: sin_x2_chain\n  params: [\n")
    out = nhw("config", "validate", str(bad))
    assert out.returncode == 2 and out.stderr.startswith(f"nhw: error: {bad}:4:1: malformed YAML")
    assert "Traceback" not in out.stderr


def test_quickstart_config_runs(tmp_path):
    out = nhw("deploy", "configs/quickstart.yaml", "--target", "reference", "--out", str(tmp_path / "q"))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "q" / "manifest.json").is_file() and (tmp_path / "q" / "outputs.png").is_file()


def test_quickstart_runs(tmp_path):
    png = tmp_path / "q.png"
    out = subprocess.run([sys.executable, "examples/quickstart.py", "--targets", "reference", "--out", str(png)],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert png.stat().st_size > 1000
    rmse = float(next(ln for ln in out.stdout.splitlines() if ln.startswith("reference")).split()[2])
    assert rmse < 0.1  # the NEF chain approximates sin(x^2)

"""The runnable examples, in their --quick mode, as CI runs them."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("script", ["keras_to_snn.py", "lmu_digits.py"])
def test_example_runs_quick(script, tmp_path):
    png = tmp_path / "out.png"
    out = subprocess.run([sys.executable, f"examples/{script}", "--quick", "--out", str(png)],
                         capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert png.stat().st_size > 1000
    assert "accuracy" in out.stdout

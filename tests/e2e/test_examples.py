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


def test_keras_to_snn_on_loihi_emu_keeps_accuracy(tmp_path):
    """The issue's target: scale 200 + synapse on loihi-emu keeps >= 90% of Keras' accuracy."""
    import re

    png = tmp_path / "out.png"
    out = subprocess.run([sys.executable, "examples/keras_to_snn.py", "--quick", "--target", "loihi-emu",
                          "--out", str(png)], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "loihi-emu configuration: input_range=" in out.stdout
    assert "hardware report (loihi-emu" in out.stdout
    assert "spike encoder's range" not in out.stderr  # inputs fit the encoder: nothing clipped
    m = re.search(r"scale_firing_rates=200\s+synapse=0.005: accuracy [\d.]+ \(([\d.]+)% of Keras\)", out.stdout)
    assert m, out.stdout
    assert float(m.group(1)) >= 90.0, out.stdout


def test_examples_import_tensorflow_only_through_the_quiet_import():
    """``import keras``/``import tensorflow`` print absl/cuda lines whatever TF_CPP_MIN_LOG_LEVEL says."""
    import re

    loud = re.compile(r"^\s*(import (keras|tensorflow)\b|from (keras|tensorflow)\b)", re.M)
    offenders = [p.name for p in sorted((ROOT / "examples").glob("*.py")) if loud.search(p.read_text())]
    assert not offenders, f"examples importing TensorFlow/Keras directly (use nhw.quiet): {offenders}"


def test_examples_write_under_runs_by_default():
    """Run as the README says (no --out), an example must not litter the repository root."""
    import re

    for p in sorted((ROOT / "examples").glob("*.py")):
        m = re.search(r'add_argument\("--out",[^)]*default="([^"]+)"', p.read_text())
        if m:
            assert m.group(1).startswith("runs/"), (p.name, m.group(1))

"""Running an example script as CI does, and reading numbers from what it printed.

Shared by the example tests (a plain module, imported by name: pytest puts this
folder on ``sys.path``).
"""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_example(script: str, out: Path) -> subprocess.CompletedProcess:
    """Run ``examples/<script> --quick --out <out>`` from the repository root."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    # the checkout under test, whatever copy of the package is installed
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    proc = subprocess.run([sys.executable, f"examples/{script}", "--quick", "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    # TensorFlow's start-up lines (absl, cuda, oneDNN) must not reach the user
    assert "absl::" not in proc.stderr and "cuda drivers" not in proc.stderr, proc.stderr[-2000:]
    return proc


def number(pattern: str, text: str) -> float:
    """The float captured by ``pattern`` in ``text`` (the test fails if absent)."""
    m = re.search(pattern, text)
    assert m, f"no match for {pattern!r} in output:\n{text[-3000:]}"
    return float(m.group(1))

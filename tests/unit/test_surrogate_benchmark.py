"""benchmarks/surrogate.py: the snnTorch comparison uses the nhw benchmark's data split."""

import sys
from pathlib import Path

import numpy as np

from benchmarks import surrogate

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "conformance"))
import surrogate_digits  # noqa: E402


def test_split_is_the_nhw_benchmarks():
    for seed in (0, 3):
        ours, theirs = surrogate.digits(seed=seed), surrogate_digits.digits(seed=seed)
        for a, b in zip(ours, theirs):
            np.testing.assert_array_equal(a[0], b[0])
            np.testing.assert_array_equal(a[1], b[1])
    (xt, yt), (xe, ye) = surrogate.digits()
    assert xt.shape == (1400, 64) and len(ye) == 350 and len(ye) % surrogate.BATCH == 0


def test_snntorch_runs_only_where_it_imports(monkeypatch, capsys):
    ran = []
    monkeypatch.setattr(surrogate, "_torch_available", lambda: False)
    monkeypatch.setitem(surrogate.RUNNERS, "nhw", lambda e, s: ran.append(e) or {"epoch_s": [2.0, 1.0, 3.0]})
    results = surrogate.main(["--epochs", "1,2"])
    assert ran == [1, 2] and [r["median_epoch_s_after_first"] for r in results] == [2.0, 2.0]
    assert "snnTorch not run" in capsys.readouterr().err

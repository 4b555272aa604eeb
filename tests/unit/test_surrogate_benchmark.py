"""benchmarks/surrogate.py: the snnTorch comparison uses the nhw benchmark's data split."""

import sys
from pathlib import Path

import numpy as np

from benchmarks import surrogate

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "conformance"))
import surrogate_digits  # noqa: E402


def test_split_is_the_nhw_benchmarks():
    # one split for both tools: the snnTorch part reads the nhw part's (no copy to drift)
    assert surrogate._nhw_part() is surrogate_digits
    (xt, yt), (xe, ye) = surrogate.digits()
    assert xt.shape == (1400, 64) and len(ye) == 350 and len(ye) % surrogate.BATCH == 0
    assert not np.array_equal(surrogate.digits(seed=3)[0][1], yt)  # the seed shuffles


def test_snntorch_runs_only_where_it_imports(monkeypatch, capsys):
    ran = []
    monkeypatch.setattr(surrogate, "_torch_available", lambda: False)
    monkeypatch.setitem(surrogate.RUNNERS, "nhw", lambda e, s: ran.append(e) or {"epoch_s": [2.0, 1.0, 3.0]})
    results = surrogate.main(["--epochs", "1,2"])
    assert ran == [1, 2] and [r["median_epoch_s_after_first"] for r in results] == [2.0, 2.0]
    assert "snnTorch not run" in capsys.readouterr().err

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
    monkeypatch.setitem(surrogate.RUNNERS, "nhw",
                        lambda e, s, network: ran.append((e, network)) or {"epoch_s": [2.0, 1.0, 3.0]})
    results = surrogate.main(["--epochs", "1,2", "--network", "snntorch_like"])
    assert ran == [(1, "snntorch_like"), (2, "snntorch_like")] and [r["median_epoch_s_after_first"] for r in results] == [2.0, 2.0]
    assert "snnTorch not run" in capsys.readouterr().err


def test_network_variants():
    """The three parameterisations differ where they say they do; an unknown name is refused."""
    import pytest

    like = surrogate_digits.build(None, network="snntorch_like")
    assert len(like.all_connections) == 4 and any(n.label == "one" for n in like.all_nodes)
    default = surrogate_digits.build(None, network="nengo_default")
    assert all(e.gain is None for e in default.all_ensembles)  # nengo derives it from max_rates, intercepts
    matched = surrogate_digits.build(None)
    assert len(matched.all_connections) == 2
    assert all(list(e.gain.options) == [surrogate_digits.GAIN] for e in matched.all_ensembles)
    with pytest.raises(ValueError, match="network"):
        surrogate_digits.build(None, network="keras")

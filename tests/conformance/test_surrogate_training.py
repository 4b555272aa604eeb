"""Spiking-aware training with surrogate gradients: the digits benchmark, quick form, and the YAML key."""

from __future__ import annotations

import pytest

import surrogate_digits


def test_digits_benchmark_quick_reaches_accuracy():
    # the issue 29 benchmark (64-128-10 LIF, 1400 images x 30 steps, Adam 1e-3,
    # batch 50) for 3 of its 5 epochs with the default surrogate; the full run
    # reaches 0.90 (`python tests/conformance/surrogate_digits.py`)
    r = surrogate_digits.run(None, epochs=3)
    assert r["accuracy"] >= 0.8, r


def test_yaml_train_surrogate_key(tmp_path):
    from nhw.errors import ConfigError
    from nhw.toolchain import config as C

    base = "network:\n  name: sin_x2_chain\ntrain:\n  mode: spiking_aware\n"
    p = tmp_path / "c.yaml"
    p.write_text(base + "  surrogate: {name: arctan, slope: 4}\n")
    cfg = C.load_config(p)
    assert cfg.train.surrogate.name == "arctan" and cfg.train.surrogate.slope == 4
    p.write_text(base)
    assert C.load_config(p).train.surrogate is None
    p.write_text(base + "  surrogate: {name: superspike}\n")
    with pytest.raises(ConfigError, match="fast_sigmoid"):
        C.load_config(p)

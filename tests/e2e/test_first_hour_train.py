"""Issue 24: training that trained nothing, lost checkpoints, and resumed differently."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from nhw.errors import ArtifactError, ConfigError, ToolchainError
from nhw.toolchain.config import load_config
from nhw.toolchain.train import train

ROOT = Path(__file__).resolve().parents[2]
AE = ROOT / "configs" / "autoencoder.yaml"
SMALL_AE = ["network.params.n_hidden=16", "train.epochs=1"]


def test_autoencoder_trains():
    result = train(load_config(AE, SMALL_AE + ["train.epochs=2"]), verbose=0)
    loss = result.history["loss"]
    assert loss[-1] < 0.5 * loss[0]


def test_no_gradient_is_an_error_not_a_warning():
    cfg = load_config(AE, SMALL_AE + ["network.params.synapse=0.005"])
    with pytest.raises(ToolchainError, match="no gradient reaches some trained variables"):
        train(cfg, verbose=0)


def test_nan_loss_stops_training():
    cfg = load_config(AE, SMALL_AE + ["train.optimizer.name=sgd", "train.optimizer.learning_rate=1.0e+30"])
    with pytest.raises(ToolchainError, match="expected finite losses|not finite|NaN|non-finite"):
        train(cfg, verbose=0)


def test_missing_train_section_fails_fast():
    cfg = load_config(ROOT / "configs" / "quickstart.yaml")
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match="train: section is missing"):
        train(cfg, out="unused", verbose=0)
    assert time.perf_counter() - t0 < 1.0


def _interrupting(n):
    import keras

    class Stop(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 == n:
                raise KeyboardInterrupt

    return Stop()


def test_resume_reproduces_the_uninterrupted_run_and_checkpoint_is_kept(tmp_path):
    sets = ["network.params.n_hidden=16", "train.epochs=3"]
    whole = train(load_config(AE, sets), out=tmp_path / "whole", verbose=0)
    cfg = load_config(AE, sets)
    with pytest.raises(KeyboardInterrupt) as info:
        train(cfg, out=tmp_path / "part", verbose=0, callbacks=[_interrupting(1)])
    assert "--resume" in "".join(getattr(info.value, "__notes__", []))
    # without --resume the checkpoint is not deleted silently
    with pytest.raises(ArtifactError, match="continue it with --resume, or start over with --force"):
        train(cfg, out=tmp_path / "part", verbose=0)
    # a changed config fails fast, naming the key
    t0 = time.perf_counter()
    with pytest.raises(ToolchainError, match=r"changed: train.optimizer.learning_rate"):
        train(load_config(AE, sets + ["train.optimizer.learning_rate=0.01"]), out=tmp_path / "part", resume=True,
              verbose=0)
    assert time.perf_counter() - t0 < 1.0
    resumed = train(cfg, out=tmp_path / "part", resume=True, verbose=0)
    assert resumed.history == whole.history
    for k, v in whole.frozen.items():
        np.testing.assert_array_equal(resumed.frozen[k], v, err_msg=k)


def test_truncated_checkpoint_is_one_line(tmp_path):
    sets = ["network.params.n_hidden=16", "train.epochs=2"]
    cfg = load_config(AE, sets)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, out=tmp_path / "run", verbose=0, callbacks=[_interrupting(1)])
    params = next((tmp_path / "run.checkpoint").glob("epoch-*/params.npz"))
    params.write_bytes(params.read_bytes()[:100])
    with pytest.raises(ArtifactError, match="truncated or corrupt"):
        train(cfg, out=tmp_path / "run", resume=True, verbose=0)

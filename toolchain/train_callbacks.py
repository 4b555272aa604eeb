"""What ``train.callbacks`` and ``train.validation_split`` do, epoch by epoch.

``nhw train`` runs one Keras ``fit`` per epoch (so a resumed run reproduces the
uninterrupted one, see :func:`nhw.toolchain.train.epoch_order`). Keras' own
``EarlyStopping`` and ``CSVLogger`` reset at every ``fit``, so the state they keep is
derived here from the run's history instead, which the checkpoint stores: early
stopping and the learning-rate schedule resume exactly.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

import numpy as np

from nhw.errors import ConfigError


def learning_rate(schedule, base: float, epoch: int, epochs: int) -> float:
    """The learning rate of ``epoch`` (0-based) under ``schedule`` (a ``LRScheduleSection`` or None)."""
    if schedule is None:
        return base
    if schedule.name == "exponential":
        return base * schedule.factor ** epoch
    if schedule.name == "step":
        return base * schedule.factor ** (epoch // schedule.every)
    frac = epoch / max(1, epochs - 1)  # cosine: base at the first epoch, min_lr at the last
    return schedule.min_lr + (base - schedule.min_lr) * 0.5 * (1 + math.cos(math.pi * frac))


class EarlyStopping:
    """Early stopping computed from the history alone (so it survives ``--resume``)."""

    def __init__(self, section, source: str) -> None:
        self.section = section
        self.source = source
        mode = section.mode
        if mode == "auto":
            mode = "max" if "acc" in section.monitor else "min"
        self.sign = 1.0 if mode == "min" else -1.0

    def best_epoch(self, history: dict[str, list[float]]) -> int | None:
        """Index of the best epoch so far (an improvement must beat the best by ``min_delta``)."""
        values = history.get(self.section.monitor)
        if not history:
            return None  # no epoch has run yet
        if values is None:
            known = ", ".join(sorted(history)) or "(none yet)"
            raise ConfigError(f"{self.source}: train.callbacks.early_stopping.monitor: "
                              f"{self.section.monitor!r} is not in the training history; known: {known}")
        best, best_i = math.inf, None
        for i, v in enumerate(values):
            if self.sign * v < best - self.section.min_delta:
                best, best_i = self.sign * v, i
        return best_i

    def should_stop(self, history: dict[str, list[float]]) -> bool:
        """Whether the last ``patience`` epochs brought no improvement."""
        best = self.best_epoch(history)
        n = len(history.get(self.section.monitor, []))
        return best is not None and n - 1 - best >= self.section.patience


def validation_split(x: dict, y: dict, share: float, minibatch_size: int) -> tuple[dict, dict, dict, dict, int]:
    """Hold out the last ``share`` of the training samples (whole minibatches).

    Returns ``(x_train, y_train, x_val, y_val, n_val)``; the data sets are shuffled when
    loaded, so the tail is a random sample of the training set, and the test set is
    never seen before the final score.
    """
    n = len(next(iter(x.values())))
    n_val = int(round(n * share)) // minibatch_size * minibatch_size
    if share > 0 and n_val == 0:
        raise ConfigError(f"train.validation_split: {share} of {n} samples is less than one minibatch of "
                          f"{minibatch_size}; expected a larger split or a smaller minibatch_size")
    n_tr = (n - n_val) // minibatch_size * minibatch_size
    cut = lambda d, a, b: {k: v[a:b] for k, v in d.items()}  # noqa: E731
    return cut(x, 0, n_tr), cut(y, 0, n_tr), cut(x, n - n_val, n), cut(y, n - n_val, n), n_val


def history_csv(history: dict[str, list[float]]) -> str:
    """The history as CSV: one row per epoch, ``epoch`` then the keys in sorted order."""
    keys = sorted(history)
    rows = ["epoch," + ",".join(keys)]
    for i in range(max((len(v) for v in history.values()), default=0)):
        rows.append(f"{i + 1}," + ",".join(f"{history[k][i]:.9g}" if i < len(history[k]) else "" for k in keys))
    return "\n".join(rows) + "\n"


def epoch_line(epoch: int, epochs: int, logs: dict[str, Any], seconds: float) -> str:
    """``epoch 3/20 - 1.2 s - loss: 0.31 - val_loss: 0.35``."""
    items = " - ".join(f"{k}: {v:.4g}" for k, v in sorted(logs.items()))
    return f"epoch {epoch + 1}/{epochs} - {seconds:.1f} s" + (f" - {items}" if items else "")


def live_bar(epoch: int, epochs: int, steps: int):
    """A Keras callback drawing Keras' live progress bar for epoch ``epoch`` of ``epochs`` on a terminal.

    Keras' own ``verbose`` output would number every epoch "1/1" (one ``fit`` per epoch).
    """
    from nhw.backends.tensorflow._tf import keras

    class EpochBar(keras.callbacks.Callback):
        def on_epoch_begin(self, _epoch, logs=None):
            print(f"Epoch {epoch + 1}/{epochs}", flush=True)
            self.bar = keras.utils.Progbar(steps)

        def on_train_batch_end(self, batch, logs=None):
            logs = logs or {}
            self.bar.stateful_metrics.update(logs)  # Keras' logs are running means already
            self.bar.update(batch + 1, values=[(k, float(v)) for k, v in logs.items()])

    return EpochBar()


def report_epoch(epoch: int, epochs: int, logs: dict[str, float], seconds: float, live: bool) -> None:
    """Print the finished epoch: every value in one line, or after a live bar the validation values."""
    if not live:
        print(epoch_line(epoch, epochs, logs, seconds), flush=True)
        return
    val = {k: v for k, v in logs.items() if k.startswith("val_")}
    if val:
        print("  " + " - ".join(f"{k}: {v:.4g}" for k, v in sorted(val.items())), flush=True)


def is_terminal() -> bool:
    """Whether stdout is a terminal (live bars) rather than a pipe or a log."""
    return sys.stdout.isatty()


def tensorboard_callback(log_dir: str):
    """Keras' TensorBoard callback, or a clear error when TensorBoard is not installed."""
    import importlib.util

    from nhw.backends.tensorflow._tf import keras

    if importlib.util.find_spec("tensorboard") is None:
        raise ConfigError("train.callbacks.tensorboard: the tensorboard package is not installed; "
                          "expected `pip install 'nhw[tensorboard]'` (or remove the key)")
    return keras.callbacks.TensorBoard(log_dir=log_dir)

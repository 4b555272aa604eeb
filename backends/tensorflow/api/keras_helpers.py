"""Keras objects by name, for callers that must not import Keras themselves.

The toolchain (``nhw train``) describes training in YAML; these helpers turn
those names into Keras objects and expose optimizer state as plain arrays for
checkpoints, keeping TensorFlow/Keras imports inside ``nhw.backends.tensorflow``.
"""

from __future__ import annotations

import contextlib
from typing import Callable

import numpy as np

from nhw.backends.tensorflow._tf import keras  # imported on first use

#: loss name -> factory; logits-based classification losses (the zoo's outputs are logits)
LOSSES: dict = {
    "mse": lambda: keras.losses.MeanSquaredError(),
    "mae": lambda: keras.losses.MeanAbsoluteError(),
    "sparse_categorical_crossentropy": lambda: keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    "categorical_crossentropy": lambda: keras.losses.CategoricalCrossentropy(from_logits=True),
}

OPTIMIZERS: dict = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop, "sgd": keras.optimizers.SGD}


def make_loss(name: str):
    """A Keras loss by name (see :data:`LOSSES`)."""
    return LOSSES[name]()


def make_optimizer(name: str, learning_rate: float):
    """A Keras optimizer by name (see :data:`OPTIMIZERS`)."""
    return OPTIMIZERS[name](learning_rate)


def set_seed(seed: int) -> None:
    """Seed Python, numpy and TensorFlow (Keras' global seed)."""
    keras.utils.set_random_seed(int(seed))


def epoch_callback(fn: Callable[[int, dict], None]):
    """A Keras callback calling ``fn(epoch, logs)`` at the end of every epoch."""

    class _EpochEnd(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            fn(epoch, dict(logs or {}))

    return _EpochEnd()


def optimizer_state(sim) -> list:
    """The compiled optimizer's variables as numpy arrays (for checkpoints)."""
    return [np.asarray(v.numpy()) for v in sim.keras_model.optimizer.variables]


def set_optimizer_state(sim, values: list) -> None:
    """Restore :func:`optimizer_state` values (builds the optimizer first).

    Raises
    ------
    ValueError
        If the number of values does not match this optimizer's variables.
    """
    opt = sim.keras_model.optimizer
    # under a distribution strategy (multi-worker training) the slots must be created
    # in its scope, as Keras itself does when it builds them in fit
    strategy = getattr(sim.keras_model, "_distribute_strategy", None)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        opt.build(sim.keras_model.trainable_variables)
        if len(values) != len(opt.variables):
            raise ValueError(f"optimizer state has {len(values)} arrays; this optimizer has {len(opt.variables)}")
        for var, val in zip(opt.variables, values):
            if tuple(var.shape) != tuple(np.shape(val)):
                raise ValueError(f"optimizer variable {var.path}: shape {tuple(var.shape)} vs saved {np.shape(val)}")
            var.assign(val)

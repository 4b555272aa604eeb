"""When ``sim.fit`` runs several batches per call of its traced step (api/executions.py):
the automatic value, and the callbacks that keep it at one batch per call."""

import pytest

pytest.importorskip("tensorflow")

import keras  # noqa: E402

from nhw.backends.tensorflow.api import executions  # noqa: E402
from nhw.backends.tensorflow.api.train_checks import FLAT_MIN_BATCHES  # noqa: E402


@pytest.mark.parametrize("batches,expected", [
    (120, 15),   # the seed autoencoder: 6000 samples / 50
    (64, 16), (1875, 15), (40, 10), (32, 8),
    (8, 2),      # two executions would be too few for the flat-loss check: 8 // 4
    (7, 1), (97, 1),  # no divisor small enough: one batch per call
])
def test_auto_steps_divides_the_epoch_and_leaves_enough_executions(batches, expected):
    steps = executions.auto_steps(batches)
    assert steps == expected
    assert batches % steps == 0 and steps <= executions.AUTO_MAX_STEPS
    assert steps == 1 or batches // steps >= FLAT_MIN_BATCHES


class _EpochOnly(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        pass


class _BatchEnd(_EpochOnly):
    def on_batch_end(self, batch, logs=None):
        pass


@pytest.mark.parametrize("callback,hooks", [
    (keras.callbacks.Callback(), False),
    (_EpochOnly(), False),
    (keras.callbacks.EarlyStopping(), False),
    (keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: None), False),
    (_BatchEnd(), True),
    (keras.callbacks.LambdaCallback(on_train_batch_begin=lambda b, logs: None), True),
    (keras.callbacks.TerminateOnNaN(), True),
    (object(), True),  # not a Keras callback: cannot tell, so assume it looks
])
def test_batch_hooks_are_found(callback, hooks):
    assert executions.has_batch_hooks(callback) is hooks


def test_fit_steps_rules():
    quiet = [_EpochOnly()]
    assert executions.fit_steps(None, quiet, 120, validation=False, distributed=False) == 15
    assert executions.fit_steps(3, [_BatchEnd()], 120, validation=True, distributed=True) == 3  # as given
    assert executions.fit_steps(None, quiet + [_BatchEnd()], 120, validation=False, distributed=False) == 1
    assert executions.fit_steps(None, quiet, 120, validation=True, distributed=False) == 1
    assert executions.fit_steps(None, quiet, 120, validation=False, distributed=True) == 1
    assert executions.fit_steps(None, quiet, None, validation=False, distributed=False) == 1

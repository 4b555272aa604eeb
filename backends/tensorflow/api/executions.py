"""How many training batches ``sim.fit`` runs per call of Keras' traced train step.

Every call of a traced TensorFlow function has a fixed cost in TensorFlow's
runtime (argument handling, starting the graph executor, the dataset iterator's
``get_next``), paid once per call whatever the call computes. For a small network
that cost is as large as the batch's own arithmetic. Keras' ``steps_per_execution``
runs several batches inside one call (a ``tf.while_loop`` over the same compiled
step, drawing each batch from the same iterator in the same order), so the
parameters, losses and metrics are those of one call per batch.

What differs is visible only to callbacks' batch hooks: Keras calls
``on_train_batch_begin``/``on_train_batch_end`` once per execution, with the last
batch's index and logs. NengoDL calls them once per batch, so ``sim.fit`` chooses
a value above 1 by itself only where no callback can see the difference:

- ``compile`` was given no ``steps_per_execution`` (a given value is used as given);
- no callback passed to ``fit`` overrides a batch hook (``on_batch_begin/end``,
  ``on_train_batch_begin/end``); Keras' own History and progress bar are not
  affected (the bar redraws at most every 50 ms, and the chosen value divides the
  epoch's batches, so every count it shows is a real one);
- the fit has no validation data (the evaluation inside ``fit`` would share the
  value, and ``sim.evaluate`` keeps Keras' default of one batch per call);
- no ``tf.distribute`` strategy is involved;
- the number of batches per epoch is known.

The automatic value is the largest divisor of the epoch's batches that is at most
:data:`AUTO_MAX_STEPS` and leaves at least
:data:`~nhw.backends.tensorflow.api.train_checks.FLAT_MIN_BATCHES` executions in an
epoch, so the first-epoch checks of :mod:`.train_checks` still see that many losses
(:class:`ExecutionChecks` runs them once per execution and counts batches in their
messages); a non-finite loss stops the fit at the end of the execution it appeared in.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from nhw.backends.tensorflow._tf import keras, tf  # imported on first use
from nhw.backends.tensorflow.api.train_checks import FLAT_MIN_BATCHES, FitChecks

#: most batches one automatically sized execution runs (the per-call cost is then a
#: small fraction of an execution; more saves little and coarsens the NaN check)
AUTO_MAX_STEPS = 16

#: the Keras callback methods called once per batch (once per execution above 1)
TRAIN_BATCH_HOOKS = ("on_batch_begin", "on_batch_end", "on_train_batch_begin", "on_train_batch_end")


def has_batch_hooks(callback: Any, hooks: Iterable[str] = TRAIN_BATCH_HOOKS) -> bool:
    """Whether ``callback`` does anything in one of Keras' per-batch ``hooks``.

    Parameters
    ----------
    callback
        A Keras callback (anything else counts as having hooks: it cannot be inspected).
    hooks
        The method names to look at.
    """
    base = keras.callbacks.Callback
    if not isinstance(callback, base):
        return True
    # a method is the base class's no-op only if it is that very function, bound
    return any(getattr(getattr(callback, name, None), "__func__", None) is not getattr(base, name)
               for name in hooks)


def auto_steps(batches: int) -> int:
    """The automatic ``steps_per_execution`` for an epoch of ``batches`` batches.

    Parameters
    ----------
    batches
        Training batches per epoch.

    Returns
    -------
    int
        The largest divisor of ``batches`` that is at most :data:`AUTO_MAX_STEPS` and
        at most ``batches // FLAT_MIN_BATCHES`` (1 for fewer than twice that many batches).
    """
    limit = min(AUTO_MAX_STEPS, int(batches) // FLAT_MIN_BATCHES)
    return next((d for d in range(limit, 1, -1) if batches % d == 0), 1)


def epoch_batches(ds: Any, steps_per_epoch: Any) -> int | None:
    """Batches per epoch of ``fit`` on ``ds``: ``steps_per_epoch`` or the dataset's
    cardinality (None when unknown or infinite)."""
    if steps_per_epoch is not None:
        return int(steps_per_epoch)
    n = int(ds.cardinality()) if isinstance(ds, tf.data.Dataset) else -1
    return n if n > 0 else None


def fit_steps(given: Any, callbacks: Iterable, batches: int | None, validation: bool, distributed: bool) -> Any:
    """The ``steps_per_execution`` one ``sim.fit`` call runs under.

    Parameters
    ----------
    given
        The value given to ``sim.compile`` (None: choose).
    callbacks
        The callbacks the user passed to ``fit``.
    batches
        Training batches per epoch (None: unknown).
    validation
        Whether the fit evaluates validation data.
    distributed
        Whether a ``tf.distribute`` strategy runs the fit.

    Returns
    -------
    int
        ``given`` if not None; 1 where a larger value could be observed (see the module
        docstring); else :func:`auto_steps` of ``batches``.
    """
    if given is not None:
        return given
    if validation or distributed or batches is None or any(has_batch_hooks(cb) for cb in callbacks):
        return 1
    return auto_steps(batches)


class ExecutionChecks(FitChecks):
    """:class:`~.train_checks.FitChecks` for a fit that runs several batches per call.

    ``FitChecks`` counts one batch per ``on_train_batch_end``; with several batches per
    execution Keras calls it once per execution, with the index of the execution's
    last batch (past the epoch's end for a short last execution). These checks are
    told how many batches each report covers, so the messages count batches: the
    flat-loss message the batches its first-epoch losses covered, the non-finite one
    the batches of the execution the loss turned non-finite in.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._first_epoch_batches = 0
        self._execution_from = 1

    def after_batches(self, loss: Any, done: int) -> None:
        """Decide after one execution (``done``: batches trained in this fit so far)."""
        self._execution_from = self._batches + 1
        flat = self._check_flat
        # after_batch counts the execution's last batch itself
        self._batches = max(self._batches, int(done) - 1)
        self.after_batch(loss)
        if flat:
            self._first_epoch_batches = self._batches

    def _flat_loss_message(self, loss: float, batches: int) -> str:
        return super()._flat_loss_message(loss, max(batches, self._first_epoch_batches))

    def _batch_desc(self) -> str:
        if self._execution_from >= self._batches:
            return super()._batch_desc()
        return f"one of training batches {self._execution_from}-{self._batches} (one call of the traced step)"

    def callback(self) -> Any:
        """A Keras callback telling these checks the batches each report covers."""
        checks = self
        inner = super().callback()

        class _ExecutionChecks(keras.callbacks.Callback):
            def __init__(self) -> None:
                super().__init__()
                self._epoch_start = 0

            def set_model(self, model) -> None:
                super().set_model(model)
                inner.set_model(model)

            def set_params(self, params) -> None:
                super().set_params(params)
                inner.set_params(params)

            def on_epoch_begin(self, epoch, logs=None):
                self._epoch_start = checks._batches

            def on_train_batch_end(self, batch, logs=None):
                steps = (self.params or {}).get("steps")
                done = self._epoch_start + (batch + 1 if not steps else min(batch + 1, int(steps)))
                if checks.failure is None:
                    checks.after_batches((logs or {}).get("loss"), done)
                if checks.failure is not None:
                    self.model.stop_training = True

            def on_epoch_end(self, epoch, logs=None):
                inner.on_epoch_end(epoch, logs)

        return _ExecutionChecks()

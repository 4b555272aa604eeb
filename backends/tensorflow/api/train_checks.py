"""Checks that stop ``sim.fit`` when training cannot be doing what the user expects.

Two situations make a fit's numbers misleading without any error from Keras:

- **Nothing trains.** Every gradient is exactly zero (the usual cause: spiking
  neurons that never reach threshold, trained through a rate model whose
  derivative is zero below threshold, or inputs that are all zero), so no
  parameter moves and the loss stays where it started for every epoch. The check
  compares the trainable weights after the first update with their values before
  the fit; when none changed although the model has trainable weights, the step's
  learning rate was positive and the loss was finite and nonzero, the fit stops
  with :class:`TrainingError`. It looks only until something has changed, and no
  longer than the first epoch, so later batches cost nothing.
  ``configure_settings(zero_gradient_check=False)`` turns it off.
- **The loss does not depend on anything.** A surrogate gradient can move the
  weights into a layer whose neurons still never fire, so the parameters change
  but the output stays silent and the loss is the same number on every batch
  (``ln 10`` for ten classes and zero logits), epoch after epoch. When the first
  epoch's running loss is the same, to a relative 1e-6, after each of at least
  :data:`FLAT_MIN_BATCHES` batches (each batch updates the parameters), the fit stops with
  :class:`TrainingError`. The same setting turns it off.
- **The loss is NaN or infinite.** Training stops at the batch where it happened
  (not after the remaining epochs) and the fit raises.

Both are decided in a Keras callback that only records the failure and sets
``stop_training``; :meth:`FitChecks.raise_failure` raises it after ``keras.Model.fit``
has returned, so Keras' own end-of-training callbacks run normally.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from nengo.exceptions import SimulationError
from nhw.backends.tensorflow._tf import keras

from nhw.errors import BackendError


#: fewest first-epoch batches that make a loss identical on every batch evidence of an
#: output that depends on nothing (one or two equal batches can be chance)
FLAT_MIN_BATCHES = 4
#: relative spread of the first epoch's running loss below which it counts as flat
FLAT_RTOL = 1e-6


class TrainingError(BackendError, SimulationError):
    """``fit`` stopped because training cannot work as set up (no gradient, NaN loss).

    Also a ``nengo.exceptions.SimulationError`` (so a ``RuntimeError``), which the
    simulator's earlier training errors were.
    """


def step_learning_rate(optimizer: Any, step: int) -> float | None:
    """The learning rate ``optimizer`` applied at update ``step`` (0-based), or None if unknown.

    Parameters
    ----------
    optimizer
        A Keras 3 optimizer (a ``LossScaleOptimizer`` is read through its inner one).
    step
        The update's index (``optimizer.iterations - 1`` right after it).
    """
    opt = getattr(optimizer, "inner_optimizer", None) or optimizer
    # Keras keeps the configured value (variable, schedule or callable) here; the
    # public property evaluates a schedule at the *next* step, which would miss a
    # warm-up that starts at zero
    lr = getattr(opt, "_learning_rate", None)
    try:
        if isinstance(lr, keras.optimizers.schedules.LearningRateSchedule):
            return float(lr(step))
        return float(np.asarray(opt.learning_rate))
    except (TypeError, ValueError, AttributeError):
        return None


class FitChecks:
    """The checks of one ``sim.fit`` call; ``callback()`` goes into its callbacks.

    Parameters
    ----------
    sim
        The :class:`~nhw.backends.tensorflow.Simulator` being trained.
    weights_before
        ``keras_model.weights`` values from before the fit, in that order (the
        snapshot the fit also restores from).
    check_zero_gradients
        Whether to run the zero-gradient check (``zero_gradient_check`` setting).
    """

    def __init__(self, sim: Any, weights_before: list, check_zero_gradients: bool = True) -> None:
        self.sim = sim
        model = sim.keras_model
        by_id = {id(v): val for v, val in zip(model.weights, weights_before)}
        # the weights Keras trains, as they were before the fit
        self._trainable = [(v, by_id[id(v)]) for v in model.trainable_weights
                           if id(v) in by_id and int(np.prod(v.shape)) > 0]
        self._watching = bool(check_zero_gradients and self._trainable)
        self._check_flat = self._watching
        self._first_losses: list = []
        self._batches = 0
        self.failure: str | None = None

    # ------------------------------------------------------------ decisions
    def _nothing_changed(self) -> bool:
        return all(np.array_equal(np.asarray(v.numpy()), old) for v, old in self._trainable)

    def _may_skip_updates(self) -> int:
        """Batches before the optimizer must have applied an update (accumulation)."""
        opt = self.sim.keras_model.optimizer
        return int(getattr(opt, "gradient_accumulation_steps", None) or 1)

    def after_batch(self, loss: Any) -> None:
        """Decide after one training batch (``loss``: Keras' running loss of the epoch)."""
        self._batches += 1
        if loss is not None and not math.isfinite(float(loss)):
            self.failure = self._nonfinite_message(float(loss))
            return
        if self._check_flat and loss is not None:
            self._first_losses.append(float(loss))
        if not self._watching:
            return
        opt = self.sim.keras_model.optimizer
        # a loss-scaling optimizer skips the updates whose scaled gradients overflow,
        # which leaves the weights unchanged on purpose: it is judged at the epoch's end
        if hasattr(opt, "inner_optimizer") or self._batches < self._may_skip_updates():
            return
        self._judge(loss, step=int(np.asarray(opt.iterations)) - 1)

    def after_first_epoch(self, loss: Any) -> None:
        """Last chance of the zero-gradient check (then it stops looking)."""
        if self._watching and self.failure is None:
            opt = self.sim.keras_model.optimizer
            self._judge(loss, step=int(np.asarray(opt.iterations)) - 1)
        self._watching = False
        if self._check_flat and self.failure is None:
            self._judge_flat()
        self._check_flat = False

    def _judge_flat(self) -> None:
        losses = np.asarray(self._first_losses)
        if len(losses) < FLAT_MIN_BATCHES or not np.all(np.isfinite(losses)) or losses[0] == 0:
            return
        spread = float(losses.max() - losses.min())
        if spread > FLAT_RTOL * abs(float(losses[0])):
            return
        lr = step_learning_rate(self.sim.keras_model.optimizer, 0)
        if lr is not None and lr <= 0:
            return
        self.failure = self._flat_loss_message(float(losses[0]), len(losses))

    def _judge(self, loss: Any, step: int) -> None:
        if loss is None or float(loss) == 0.0:
            return  # a zero loss has zero gradient legitimately; keep looking
        lr = step_learning_rate(self.sim.keras_model.optimizer, max(step, 0))
        if lr is None or lr <= 0:
            return  # lr = 0 (on purpose, or a warm-up's first step): no update expected
        if not self._nothing_changed():
            self._watching = False  # something trains: stop looking
            return
        self.failure = self._zero_gradient_message(float(loss), lr)
        self._watching = False

    # ------------------------------------------------------------ messages
    def _losses_desc(self) -> str:
        names = sorted(getattr(self.sim, "_compiled_losses", ()) or ())
        return "the loss of probe(s) " + ", ".join(repr(n) for n in names) if names else "the loss"

    def _zero_gradient_message(self, loss: float, lr: float) -> str:
        from nhw.backends.tensorflow.settings import get_setting

        network = getattr(self.sim.model, "toplevel", None)
        mode = get_setting(network, "training_mode")
        surrogate = get_setting(network, "surrogate")
        n = sum(int(np.prod(v.shape)) for v, _ in self._trainable)
        names = ", ".join(v.path for v, _ in self._trainable[:4]) + (" ..." if len(self._trainable) > 4 else "")
        if mode == "rate":
            how = ("spiking neurons train through their rate model (training_mode='rate'), whose "
                   "derivative is zero for a neuron that never fires: use "
                   "configure_settings(lif_smoothing=0.01) (SoftLIFRate) or "
                   "configure_settings(training_mode='spiking_aware') (a surrogate gradient "
                   "below threshold too)")
        elif surrogate == "rate":
            how = ("surrogate='rate' is the rate model's derivative, zero for a neuron that never "
                   "fires: use configure_settings(surrogate='fast_sigmoid') or 'arctan'")
        else:
            how = "the surrogate gradient reaches no trainable parameter"
        return (
            f"fit: no trainable parameter changed in the first training step of this call ({n} values in "
            f"{len(self._trainable)} variable(s): {names}): every gradient of {self._losses_desc()} "
            f"was zero (loss {loss:.6g}, learning rate {lr:.3g}), so the loss cannot move. Likely "
            "causes: the neurons never reach threshold (in nengo's units the input current is "
            "gain * (encoders . x) + bias: raise the gains, lower the intercepts, or scale the "
            f"inputs up), and {how}; or the inputs are all zero. The parameters were restored to "
            "their values before this call. To train anyway, turn this check off with "
            "configure_settings(zero_gradient_check=False) (in an nhw config: train.zero_gradient_check: false)"
        )

    def _flat_loss_message(self, loss: float, batches: int) -> str:
        return (
            f"fit: {self._losses_desc()} was {loss:.6g} after each of the {batches} batches of the first "
            "epoch: the network's output depended neither on its input nor on the parameters being "
            "trained, so the loss did not move. A surrogate gradient can keep moving the weights into "
            "neurons that never fire, but the output carries nothing until they do, which can take "
            "several epochs. Likely causes: the neurons feeding the output never fire (in nengo's "
            "units the input current is gain * (encoders . x) + bias: raise the gains, lower the "
            "intercepts, or scale the inputs up), the probed output is not connected to the inputs, "
            "or the inputs are all zero. Check the output with sim.predict on a few samples. The "
            "parameters were restored to their values before this call. To train anyway (e.g. to let "
            "a surrogate wake a silent layer), turn this check off with "
            "configure_settings(zero_gradient_check=False) (in an nhw config: train.zero_gradient_check: false)"
        )

    def _batch_desc(self) -> str:
        """Where the last reported loss came from (the failure messages name it)."""
        return f"training batch {self._batches}"

    def _nonfinite_message(self, loss: float) -> str:
        return (
            f"fit: {self._losses_desc()} became non-finite ({loss}) in {self._batch_desc()} (counted "
            "over the whole fit), so training stopped there; the parameters were restored to their "
            "values before this call (check the data and targets for NaN/Inf, lower the learning "
            "rate, or use a loss that is finite for the network's outputs)"
        )

    # ------------------------------------------------------------ Keras side
    def callback(self) -> Any:
        """A Keras callback running these checks (stops training on a failure)."""
        return _checks_callback(self)

    def raise_failure(self) -> None:
        """Raise :class:`TrainingError` if a check failed during the fit."""
        if self.failure is not None:
            raise TrainingError(self.failure)


def _checks_callback(checks: FitChecks) -> Any:
    """The Keras side of ``checks``; defined on first use (subclassing a Keras class
    at import would import TensorFlow)."""

    class _FitChecksCallback(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self._epochs_done = 0

        def on_train_batch_end(self, batch, logs=None):
            if checks.failure is None:
                checks.after_batch((logs or {}).get("loss"))
            if checks.failure is not None:
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            self._epochs_done += 1
            if self._epochs_done == 1:
                checks.after_first_epoch((logs or {}).get("loss"))
            if checks.failure is not None:
                self.model.stop_training = True

    return _FitChecksCallback()

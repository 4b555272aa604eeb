"""Keras losses for training nengo models with the TensorFlow backend.

Only the public Keras 3 API is used, so the losses work with any Keras backend
and can be saved/loaded with the model (both are registered as serializable).
"""

from __future__ import annotations

import numbers
from typing import Any

from nhw.backends.tensorflow._tf import keras  # the quiet import: TensorFlow's start-up lines stay hidden

ops = keras.ops
from nengo.exceptions import ValidationError

__all__ = ["nan_mse", "Regularize"]


@keras.saving.register_keras_serializable(package="nhw")
def nan_mse(y_true: Any, y_pred: Any) -> Any:
    """Mean squared error in which NaN targets count as zero error.

    Useful when targets are only defined at some time steps/outputs: mark the
    rest NaN. As in NengoDL, a NaN target contributes zero error but still
    counts in the denominator: the result is the mean over *all* elements of
    the batch, ``sum(valid squared errors) / y_true.size`` (so the loss and its
    gradient scale with the fraction of defined targets).

    Parameters
    ----------
    y_true
        Targets; NaN entries count as zero error.
    y_pred
        Predictions, same shape as ``y_true``.

    Returns
    -------
    loss
        Scalar; 0 when every target is NaN. Gradients are finite (NaN targets
        are replaced before the subtraction, so no NaN flows backwards).
    """
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(ops.convert_to_tensor(y_true), y_pred.dtype)
    valid = ops.logical_not(ops.isnan(y_true))
    # substitute y_pred for the NaN targets: the difference there is exactly 0 and
    # (unlike multiplying a NaN by 0) the gradient stays finite
    diff = y_pred - ops.where(valid, y_true, y_pred)
    return ops.mean(ops.square(diff))


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@keras.saving.register_keras_serializable(package="nhw")
class Regularize(keras.losses.Loss):
    """Penalise the magnitude of the output; ``y_true`` is ignored.

    Meant as a per-probe loss, e.g. to keep firing rates low:
    ``loss={rate_probe: Regularize()}`` with zeros as that probe's targets. Each
    sample's value is ``weight * norm(y_pred - target)`` over ``axis``, where the
    norm is the L1 (``order=1``) or L2 (``order=2``) norm, or, with
    ``mean=True``, ``weight * mean(|y_pred - target| ** order)``.

    Parameters
    ----------
    order
        1 or 2.
    axis
        Axis or axes (of ``y_pred``, batch axis 0 included) to reduce. None
        reduces every axis except the batch axis, giving one value per sample.
    weight
        Non-negative factor on the penalty.
    target
        Value the output is pulled towards (0 penalises the magnitude itself).
    mean
        Use the mean of ``|x| ** order`` instead of the norm.
    name, reduction, dtype
        As :class:`keras.losses.Loss`.
    """

    def __init__(
        self,
        order: int = 2,
        axis: int | tuple[int, ...] | None = None,
        weight: float = 1.0,
        target: float = 0.0,
        mean: bool = False,
        name: str = "regularize",
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if isinstance(order, bool) or order not in (1, 2):
            raise ValidationError(f"expected order 1 or 2; received {order!r}", attr="order", obj=self)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
            raise ValidationError(
                f"expected a non-negative number for weight; received {weight!r}",
                attr="weight",
                obj=self,
            )
        if isinstance(target, bool) or not isinstance(target, (int, float)):
            raise ValidationError(f"expected a number for target; received {target!r}", attr="target", obj=self)
        if axis is not None and not _is_int(axis):
            # JSON configs turn tuples into lists, so accept any sequence of ints
            if isinstance(axis, str) or not hasattr(axis, "__iter__") or not all(_is_int(a) for a in axis):
                raise ValidationError(
                    f"expected axis None, an int or a tuple of ints; received {axis!r}",
                    attr="axis",
                    obj=self,
                )
            axis = tuple(int(a) for a in axis)
        self.order = int(order)
        self.axis = axis
        self.weight = float(weight)
        self.target = float(target)
        self.mean = bool(mean)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        """Per-sample penalty on ``y_pred`` (``y_true`` is unused)."""
        x = ops.convert_to_tensor(y_pred)
        if self.target != 0.0:
            x = x - ops.cast(self.target, x.dtype)
        axis = self.axis
        if axis is None:
            # one value per sample; a 1-D y_pred is one scalar per sample already
            axis = tuple(range(1, len(x.shape)))
            if not axis:
                x = ops.expand_dims(x, -1)
                axis = (1,)
        mag = ops.abs(x) if self.order == 1 else ops.square(x)
        if self.mean:
            out = ops.mean(mag, axis=axis)
        elif self.order == 1:
            out = ops.sum(mag, axis=axis)
        else:
            s = ops.sum(mag, axis=axis)
            # sqrt has an infinite derivative at 0 (e.g. a silent population), so
            # take it of a safe value and put the exact 0 back afterwards
            pos = s > 0
            out = ops.where(pos, ops.sqrt(ops.where(pos, s, ops.ones_like(s))), ops.zeros_like(s))
        return out * ops.cast(self.weight, out.dtype)

    def get_config(self) -> dict:
        """Configuration for serialisation (the constructor's arguments)."""
        config = super().get_config()
        config.update(order=self.order, axis=self.axis, weight=self.weight, target=self.target, mean=self.mean)
        return config

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


def _norm_order(order: Any) -> float:
    """The numeric order of a vector norm: any ``tf.norm`` vector ord, as a float.

    ``"euclidean"`` is 2; any real number above 0 is a p-norm, ``np.inf`` the
    max-norm. Anything else (``"fro"``, ``"nuc"``, 0, negatives, NaN, bools) is refused.
    """
    if isinstance(order, str):
        if order == "euclidean":
            return 2.0
        raise ValueError(order)
    if isinstance(order, bool) or not isinstance(order, numbers.Real):
        raise TypeError(order)
    value = float(order)
    if not value > 0:  # also refuses NaN
        raise ValueError(order)
    return value


def _step_axes(axis: Any, n_step_dims: int, obj: Any) -> tuple[int, ...]:
    """Axes (of one timestep's output, negative from its end) as offsets into it."""
    axes = (axis,) if _is_int(axis) else tuple(axis)
    out = []
    for a in axes:
        if not -n_step_dims <= a < n_step_dims:
            raise ValidationError(
                f"axis {a} is out of range for a probe output of {n_step_dims} dimension(s) per "
                f"timestep (axes count from one timestep's output, batch and time excluded); "
                f"received axis={axis!r}",
                attr="axis",
                obj=obj,
            )
        out.append(a % n_step_dims)
    if len(set(out)) != len(out):
        raise ValidationError(f"axis names the same axis twice; received {axis!r}", attr="axis", obj=obj)
    return tuple(out)


@keras.saving.register_keras_serializable(package="nhw")
class Regularize(keras.losses.Loss):
    """Penalise the magnitude of a probed signal; ``y_true`` is ignored.

    As in NengoDL: the norm of the output is taken separately for every
    minibatch item and timestep, over the output's dimensions (all of them, or
    ``axis``), and the loss is the mean of those norms over batch, time and any
    axes not reduced. For ``y_pred`` of ones with shape (2, 3, 4) the loss is
    2.0 for ``order=2`` and 4.0 for ``order=1``.

    Meant as a per-probe loss, e.g. ``loss={rate_probe: Regularize()}`` with
    zeros of the probe's shape as that probe's targets.

    Parameters
    ----------
    order
        Order of the vector norm, as in ``tf.norm``: ``"euclidean"`` (the same
        as 2), any real number above 0 (1 for L1, 2 for L2, ...) or ``np.inf``
        (largest magnitude).
    axis
        Axis, or tuple of axes, of one timestep's output (batch and time axes
        are not counted) along which the norm is taken; negative values count
        from the end. None takes it over all the output's dimensions.
    weight
        Non-negative factor on the penalty (nhw extension; default 1).
    target
        Value the output is pulled towards; the norm is of ``y_pred - target``
        (nhw extension; default 0, the magnitude itself).
    mean
        Use the mean of ``|y_pred - target| ** order`` over the axes instead of
        the norm (nhw extension; needs a finite ``order``).
    name, reduction, dtype
        As :class:`keras.losses.Loss`.

    Notes
    -----
    ``y_pred`` has shape (batch, n_steps, ...) as a probe's output. A 2-D
    ``y_pred`` is taken as (batch, dims), one timestep; a 1-D one as one value
    per item. Unlike ``tf.norm``, the gradient of a norm of an all-zero output
    is 0, not NaN.
    """

    def __init__(
        self,
        order: float | str = 2,
        axis: int | tuple[int, ...] | None = None,
        weight: float = 1.0,
        target: float = 0.0,
        mean: bool = False,
        name: str = "regularize",
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        try:
            p = _norm_order(order)
        except (TypeError, ValueError):
            raise ValidationError(
                "expected a tf.norm vector order: 'euclidean', a number above 0 or np.inf; "
                f"received {order!r}",
                attr="order",
                obj=self,
            ) from None
        if mean and p == float("inf"):
            raise ValidationError(
                f"expected a finite order with mean=True; received {order!r}", attr="order", obj=self
            )
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
            if (
                isinstance(axis, str)
                or not hasattr(axis, "__iter__")
                or not all(_is_int(a) for a in axis)
                or len(axis) == 0
            ):
                raise ValidationError(
                    f"expected axis None, an int or a tuple of ints; received {axis!r}",
                    attr="axis",
                    obj=self,
                )
            axis = tuple(int(a) for a in axis)
        self.order = order if isinstance(order, str) else (int(order) if p.is_integer() else p)
        self._p = p
        self.axis = axis
        self.weight = float(weight)
        self.target = float(target)
        self.mean = bool(mean)

    def _norm(self, x: Any, axes: tuple[int, ...]) -> Any:
        p = self._p
        mag = ops.abs(x)
        if self.mean:
            return ops.mean(mag if p == 1 else ops.power(mag, p), axis=axes)
        if p == float("inf"):
            return ops.max(mag, axis=axes)
        if p == 1:
            return ops.sum(mag, axis=axes)
        s = ops.sum(ops.square(x) if p == 2 else ops.power(mag, p), axis=axes)
        # the root has an infinite derivative at 0 (e.g. a silent population), so
        # take it of a safe value and put the exact 0 back afterwards
        pos = s > 0
        safe = ops.where(pos, s, ops.ones_like(s))
        root = ops.sqrt(safe) if p == 2 else ops.power(safe, 1.0 / p)
        return ops.where(pos, root, ops.zeros_like(s))

    def call(self, y_true: Any, y_pred: Any) -> Any:
        """The penalty on ``y_pred`` (``y_true`` is unused), one value per minibatch item."""
        x = ops.convert_to_tensor(y_pred)
        if self.target != 0.0:
            x = x - ops.cast(self.target, x.dtype)
        if len(x.shape) < 2:
            x = ops.expand_dims(x, -1)  # one value per item: (batch, 1)
        lead = 2 if len(x.shape) >= 3 else 1  # batch and time axes (time absent in 2-D)
        n_step_dims = len(x.shape) - lead
        if self.axis is None:
            axes = tuple(range(lead, len(x.shape)))
        else:
            axes = tuple(lead + a for a in _step_axes(self.axis, n_step_dims, self))
        norms = self._norm(x, axes)
        # one value per item (the mean over its timesteps and unreduced axes): Keras
        # then averages over the batch, which under a distribution strategy is the
        # global batch (a scalar here was summed over the replicas instead)
        if len(norms.shape) > 1:
            norms = ops.mean(norms, axis=tuple(range(1, len(norms.shape))))
        return norms * ops.cast(self.weight, norms.dtype)

    def get_config(self) -> dict:
        """Configuration for serialisation (the constructor's arguments)."""
        config = super().get_config()
        config.update(order=self.order, axis=self.axis, weight=self.weight, target=self.target, mean=self.mean)
        return config

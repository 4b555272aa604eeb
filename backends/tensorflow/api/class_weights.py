"""``class_weight=`` of ``fit``, turned into per-(item, timestep) sample weights.

Keras reads ``class_weight`` only for a model with a single output and 2-D targets,
so NengoDL's ``fit`` (targets ``(items, steps, dims)``, passed as a dict) could not
use it at all. nhw supports the usual meaning on the simulator's data: each
(item, timestep) of the one target probe is weighted by the weight of its class,
the argmax of a one-hot (or score) target, or the value of a single-column
integer label; classes missing from the dict weigh 1, as in Keras.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from nengo.exceptions import ValidationError

__all__ = ["class_sample_weight", "combine"]


def class_sample_weight(class_weight: Any, y: Any, what: str = "fit") -> np.ndarray:
    """Per-(item, timestep) weights, ``(n, n_steps)`` float32, from ``class_weight``.

    Parameters
    ----------
    class_weight
        ``{class index: weight}``.
    y
        The targets: one array ``(n, n_steps, dims)``, or a dict/list holding exactly one.
    what
        The calling method, for messages.

    Returns
    -------
    numpy.ndarray
        The weight of each target row's class (1 for classes not in ``class_weight``
        and for rows that are NaN, which ``nan_mse``-style losses ignore anyway).
    """
    if not isinstance(class_weight, Mapping) or not class_weight:
        raise ValidationError(
            f"{what}: class_weight must be a non-empty dict {{class index: weight}}; "
            f"received {type(class_weight).__name__}", attr="class_weight")
    try:
        table = {int(k): float(v) for k, v in class_weight.items()}
    except (TypeError, ValueError):
        raise ValidationError(
            f"{what}: class_weight must map integer class indices to numbers; received "
            f"{dict(class_weight)!r:.100}", attr="class_weight") from None
    if min(table) < 0 or not all(np.isfinite(w) and w >= 0 for w in table.values()):
        raise ValidationError(
            f"{what}: class_weight needs class indices >= 0 and finite weights >= 0; received {table!r:.100}",
            attr="class_weight")
    target = _single_target(y, what)
    if target.ndim != 3:
        raise ValidationError(
            f"{what}: class_weight needs targets of shape (n_items, n_steps, dims); received "
            f"{target.shape}", attr="class_weight")
    rows = np.isnan(target).any(axis=-1)
    filled = np.where(np.isnan(target), 0.0, target)
    if target.shape[-1] == 1:
        classes = np.rint(filled[..., 0]).astype(np.int64)
    else:
        classes = np.argmax(filled, axis=-1)
    lookup = np.ones(max(max(table), int(classes.max(initial=0))) + 1, dtype=np.float32)
    for k, w in table.items():
        lookup[k] = w
    out = lookup[np.clip(classes, 0, None)]
    out[rows | (classes < 0)] = 1.0
    return out


def _single_target(y: Any, what: str) -> np.ndarray:
    if isinstance(y, Mapping):
        values = list(y.values())
    elif isinstance(y, (list, tuple)) and y and np.ndim(y[0]) == 3:
        values = list(y)
    else:
        values = [y]
    if len(values) != 1 or values[0] is None:
        raise ValidationError(
            f"{what}: class_weight needs exactly one target probe given as an array; received "
            f"{len(values)} targets (weight several probes with sample_weight={{probe: weights}})",
            attr="class_weight")
    try:
        return np.asarray(values[0], dtype=np.float64)
    except (TypeError, ValueError):
        raise ValidationError(
            f"{what}: class_weight needs the targets as arrays; received {type(values[0]).__name__}",
            attr="class_weight") from None


def combine(sample_weight: Any, class_weights: np.ndarray) -> Any:
    """``sample_weight`` (validated array or dict of arrays) times the class weights, as Keras does."""
    if sample_weight is None:
        return class_weights
    if isinstance(sample_weight, Mapping):
        return {k: v * class_weights for k, v in sample_weight.items()}
    return sample_weight * class_weights

"""``sample_weight=`` of ``fit``/``evaluate`` given as arrays, as NengoDL forwards it to Keras.

NengoDL passes ``sample_weight`` on to ``keras.Model.fit``/``evaluate`` with the
array data, so every minibatch item's loss is weighted by its own value. nhw
hands Keras a ``tf.data.Dataset`` built from the arrays, which Keras will not
combine with ``sample_weight``; here the weights are validated and put into
that dataset instead, as its third element ``(inputs, targets, weights)``, the
form Keras reads sample weights from a dataset in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from nengo.exceptions import ValidationError
from nhw.backends.tensorflow._tf import tf

__all__ = ["check_sample_weight", "n_samples", "with_weights"]


def n_samples(y: Any) -> int | None:
    """Number of samples in targets given as an array, a list or a dict (None if unknown)."""
    if isinstance(y, Mapping):
        y = next(iter(y.values()), None)
    elif isinstance(y, (list, tuple)):
        y = y[0] if y else None
    shape = np.shape(y) if y is not None else ()
    return int(shape[0]) if shape else None


def check_sample_weight(sample_weight: Any, n: int | None, probe_key: Any, what: str) -> Any:
    """Validated sample weights: an array, or ``{probe name: array}``.

    Parameters
    ----------
    sample_weight
        An array of shape ``(n,)`` (one weight per minibatch item) or
        ``(n, n_steps)`` (one per item and timestep), or a dict of such arrays
        keyed by Probe or probe name.
    n
        Number of samples in the targets (None: not checked).
    probe_key
        ``probe_key(key, what) -> name``: a Probe or probe name as the probe's name.
    what
        The calling method, for messages.

    Returns
    -------
    numpy.ndarray or dict
        float32 weights, keyed by probe name for a dict.
    """
    if isinstance(sample_weight, Mapping):
        return {probe_key(k, f"{what}(sample_weight)"): _one(v, n, what, f"[{k!r}]")
                for k, v in sample_weight.items()}
    return _one(sample_weight, n, what, "")


def _one(value: Any, n: int | None, what: str, where: str) -> np.ndarray:
    if isinstance(value, (tf.data.Dataset, str, bytes)) or value is None:
        raise ValidationError(
            f"{what}: sample_weight{where} must be an array of shape (n_samples,) or (n_samples, n_steps); "
            f"received {type(value).__name__}",
            attr="sample_weight",
        )
    try:
        arr = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise ValidationError(
            f"{what}: sample_weight{where} must be an array of numbers of shape (n_samples,) or "
            f"(n_samples, n_steps); received {value!r:.100}",
            attr="sample_weight",
        ) from None
    if arr.ndim not in (1, 2) or (n is not None and arr.shape[0] != n):
        expected = "(n_samples,) or (n_samples, n_steps)" if n is None else f"({n},) or ({n}, n_steps)"
        raise ValidationError(
            f"{what}: sample_weight{where} has shape {arr.shape}; expected {expected}, one weight per "
            "sample (and timestep) of the targets",
            attr="sample_weight",
        )
    # Keras 3 multiplies the per-(item, step) losses by the weights without NengoDL's
    # (Keras 2's) broadcasting of one weight per item over the steps: give it that shape
    return arr[:, None] if arr.ndim == 1 else arr


def with_weights(ds: Any, weights: Any, batch_size: int, start: int, shuffle: bool, seed: Any) -> Any:
    """``ds`` (ordered, unshuffled ``(inputs, targets)`` batches) with each item's weights added.

    Parameters
    ----------
    ds
        Batches of samples ``start, start + 1, ...`` in order, ``batch_size`` each.
    weights
        From :func:`check_sample_weight`; the weights of sample ``i`` are ``weights[i]``.
    batch_size
        Items per batch of ``ds``.
    start
        Index of ``ds``'s first sample in ``weights`` (the validation part of a split).
    shuffle
        Reshuffle the items (with their weights) every epoch.
    seed
        Shuffle seed (the simulator's, as for unweighted data).

    Returns
    -------
    tf.data.Dataset
        Batches ``(inputs, targets, weights)``, as many as ``ds`` has.
    """
    n_batches = int(ds.cardinality())
    stop = start + n_batches * batch_size
    part = tf.nest.map_structure(lambda w: w[start:stop], weights)
    wds = tf.data.Dataset.from_tensor_slices(part).batch(batch_size, drop_remainder=True)
    out = tf.data.Dataset.zip((ds, wds)).map(lambda d, w: (d[0], d[1], w))
    if shuffle:
        out = out.unbatch().shuffle(n_batches * batch_size, seed=seed, reshuffle_each_iteration=True)
        out = out.batch(batch_size, drop_remainder=True)
        out = out.apply(tf.data.experimental.assert_cardinality(n_batches))
    return out.prefetch(tf.data.AUTOTUNE)

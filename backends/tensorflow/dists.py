"""Weight-initialisation distributions usable on any nengo backend.

These are plain nengo :class:`~nengo.dists.Distribution` subclasses (numpy only, no
TensorFlow), so they can be passed anywhere nengo accepts a distribution, most usefully
as a connection weight initialiser::

    nengo.Connection(a.neurons, b.neurons, transform=dists.Glorot())

nengo wraps the distribution in a :class:`nengo.transforms.Dense` transform, which
calls ``sample(size_out, size_in, rng=rng)``. The fan computations below therefore
treat a 2-D sample shape ``(n, d)`` as ``(fan_out, fan_in)``, matching nengo's
``(size_out, size_in)`` weight layout (the transpose of the Keras kernel layout).
"""

from __future__ import annotations

import numpy as np
from nengo.dists import Distribution
from nengo.exceptions import ValidationError
from nengo.params import EnumParam, NumberParam

__all__ = ["VarianceScaling", "Glorot", "He", "TruncatedNormal"]

#: stddev of a unit normal truncated at +-2 standard deviations; dividing by it
#: makes the truncated distribution have the requested variance (Keras does the same)
_TRUNC_STD = 0.87962566103423978


def _check_shape(obj: Distribution, n: int, d: int | None) -> tuple[int, ...]:
    """Validate the ``n``/``d`` arguments of ``sample`` and return the sample shape."""
    for attr, value in (("n", n), ("d", d)):
        if value is None and attr == "d":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValidationError(
                f"sample(): expected '{attr}' to be a non-negative "
                f"integer{' or None' if attr == 'd' else ''}; received {value!r}",
                attr=attr,
                obj=obj,
            )
    return (int(n),) if d is None else (int(n), int(d))


class TruncatedNormal(Distribution):
    """A normal distribution with samples outside ``mean +- limit`` redrawn.

    Parameters
    ----------
    mean
        Mean of the untruncated normal distribution.
    stddev
        Standard deviation of the untruncated normal distribution (before
        truncation; the truncated samples have a smaller spread).
    limit
        Samples further than ``limit`` from ``mean`` are redrawn. Defaults to
        ``2 * stddev``.
    """

    mean = NumberParam("mean")
    stddev = NumberParam("stddev", low=0, low_open=True)
    limit = NumberParam("limit", low=0, low_open=True)

    def __init__(self, mean: float = 0.0, stddev: float = 1.0, limit: float | None = None) -> None:
        super().__init__()
        self.mean = mean
        self.stddev = stddev
        self.limit = 2 * self.stddev if limit is None else limit

    def sample(self, n: int, d: int | None = None, rng: np.random.RandomState = np.random) -> np.ndarray:
        """Draw samples of shape ``(n,)`` (``d is None``) or ``(n, d)``.

        Parameters
        ----------
        n
            Number of samples.
        d
            Number of dimensions, or None for a 1-D result.
        rng
            Random number generator.

        Returns
        -------
        samples
            Array of shape ``(n,)`` or ``(n, d)``.
        """
        shape = _check_shape(self, n, d)
        samples = rng.normal(loc=self.mean, scale=self.stddev, size=shape)
        # rejection sampling: with limit = 2 std ~4.6% of draws are redrawn each
        # round, so this converges in a handful of iterations
        bad = np.abs(samples - self.mean) > self.limit
        while np.any(bad):
            samples[bad] = rng.normal(loc=self.mean, scale=self.stddev, size=int(bad.sum()))
            bad = np.abs(samples - self.mean) > self.limit
        return samples


class VarianceScaling(Distribution):
    """Variance-scaling weight initialiser with Keras semantics.

    Samples have variance ``scale / fan``, where ``fan`` is chosen by ``mode``.
    For a 2-D sample shape ``(n, d)`` (nengo's ``(size_out, size_in)``),
    ``fan_in = d`` and ``fan_out = n``; for a 1-D shape ``(n,)`` both are ``n``.

    Parameters
    ----------
    scale
        Variance scaling factor.
    mode
        ``"fan_in"``, ``"fan_out"`` or ``"fan_avg"`` (the mean of the two).
    distribution
        ``"uniform"``: uniform on ``[-limit, limit)`` with
        ``limit = sqrt(3 * scale / fan)``; ``"normal"``: normal truncated at two
        standard deviations, with its stddev corrected so the truncated samples
        have variance ``scale / fan``.
    """

    scale = NumberParam("scale", low=0, low_open=True)
    mode = EnumParam("mode", values=("fan_in", "fan_out", "fan_avg"))
    distribution = EnumParam("distribution", values=("uniform", "normal"))

    def __init__(self, scale: float = 1.0, mode: str = "fan_avg", distribution: str = "uniform") -> None:
        super().__init__()
        self.scale = scale
        self.mode = mode
        self.distribution = distribution

    def _fan(self, shape: tuple[int, ...]) -> float:
        fan_out = shape[0]
        fan_in = shape[1] if len(shape) == 2 else shape[0]
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        # an empty shape has no samples anyway; avoid dividing by zero
        return max(float(fan), 1.0)

    def sample(self, n: int, d: int | None = None, rng: np.random.RandomState = np.random) -> np.ndarray:
        """Draw samples of shape ``(n,)`` (``d is None``) or ``(n, d)``.

        Parameters
        ----------
        n
            Number of samples (``fan_out`` for 2-D shapes).
        d
            Number of dimensions (``fan_in``), or None for a 1-D result.
        rng
            Random number generator.

        Returns
        -------
        samples
            Array of shape ``(n,)`` or ``(n, d)``.
        """
        shape = _check_shape(self, n, d)
        var = self.scale / self._fan(shape)
        if self.distribution == "uniform":
            limit = np.sqrt(3.0 * var)
            return rng.uniform(-limit, limit, size=shape)
        stddev = np.sqrt(var) / _TRUNC_STD
        return TruncatedNormal(mean=0.0, stddev=stddev).sample(n, d, rng=rng)


class Glorot(VarianceScaling):
    """Glorot/Xavier initialiser: :class:`VarianceScaling` with ``mode="fan_avg"``.

    Parameters
    ----------
    scale
        Variance scaling factor.
    distribution
        ``"uniform"`` or ``"normal"`` (see :class:`VarianceScaling`).
    """

    def __init__(self, scale: float = 1.0, distribution: str = "uniform") -> None:
        super().__init__(scale=scale, mode="fan_avg", distribution=distribution)


class He(VarianceScaling):
    """He/Kaiming initialiser: :class:`VarianceScaling` with ``mode="fan_in"``.

    Parameters
    ----------
    scale
        Variance scaling factor (2 suits rectified-linear units).
    distribution
        ``"uniform"`` or ``"normal"`` (see :class:`VarianceScaling`).
    """

    def __init__(self, scale: float = 2.0, distribution: str = "normal") -> None:
        super().__init__(scale=scale, mode="fan_in", distribution=distribution)

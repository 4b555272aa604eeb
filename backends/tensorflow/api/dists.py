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

__all__ = ["VarianceScaling", "Glorot", "He", "TruncatedNormal", "TRUNCATED_VARIANCE"]

#: variance of a unit normal truncated at +-2 standard deviations,
#: ``1 - 4 * phi(2) / (Phi(2) - Phi(-2))``: the variance factor of the ``"normal"``
#: initialisers, which (as NengoDL's) do not widen the normal to compensate
TRUNCATED_VARIANCE = 0.7737413035499232


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
    """Variance-scaling weight initialiser with NengoDL's definition.

    For a sample shape ``(n, d)`` (nengo's ``(size_out, size_in)`` weight
    layout), ``fan_out = n`` and ``fan_in = d``; for a 1-D shape ``(n,)``,
    ``fan_out = n`` and ``fan_in = 1``. With ``fan`` chosen by ``mode``, the
    draws are:

    * ``"uniform"``: uniform on ``[-sqrt(3 * scale / fan), sqrt(3 * scale / fan))``,
      so the variance is exactly ``scale / fan``;
    * ``"normal"``: :class:`TruncatedNormal` with ``stddev = sqrt(scale / fan)``
      and values beyond two standard deviations redrawn. The truncation is not
      compensated, so the variance is ``0.7737 * scale / fan`` (unlike
      ``keras.initializers.VarianceScaling``, which widens the normal to make
      it ``scale / fan``).

    Parameters
    ----------
    scale
        Variance factor (positive).
    mode
        ``"fan_in"``, ``"fan_out"`` or ``"fan_avg"`` (the mean of the two).
    distribution
        ``"uniform"`` or ``"normal"`` (truncated normal).
    """

    # NengoDL accepts 0 (all-zero weights); refused here as almost surely a mistake
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
        fan_in = shape[1] if len(shape) == 2 else 1
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        # an empty shape has no samples anyway; avoid dividing by zero
        return max(float(fan), 1.0)

    def variance(self, n: int, d: int | None = None) -> float:
        """Variance of the samples ``sample(n, d)`` draws (the documented formula).

        Parameters
        ----------
        n
            Number of samples (``fan_out``).
        d
            Number of dimensions (``fan_in``), or None for a 1-D result.

        Returns
        -------
        variance
            ``scale / fan``, times :data:`TRUNCATED_VARIANCE` for ``"normal"``.
        """
        var = self.scale / self._fan(_check_shape(self, n, d))
        return var * TRUNCATED_VARIANCE if self.distribution == "normal" else var

    def sample(self, n: int, d: int | None = None, rng: np.random.RandomState = np.random) -> np.ndarray:
        """Draw samples of shape ``(n,)`` (``d is None``) or ``(n, d)``.

        Parameters
        ----------
        n
            Number of samples (``fan_out``).
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
        return TruncatedNormal(mean=0.0, stddev=np.sqrt(var)).sample(n, d, rng=rng)


class Glorot(VarianceScaling):
    """Glorot/Xavier initialiser: :class:`VarianceScaling` with ``mode="fan_avg"``.

    Parameters
    ----------
    scale
        Variance factor: the samples have variance ``scale / fan_avg``
        (``"uniform"``) or ``0.7737 * scale / fan_avg`` (``"normal"``).
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
        Standard-deviation factor (``sqrt(2)`` suits rectified-linear units):
        the variance factor is ``scale ** 2``, so the samples have variance
        ``0.7737 * scale ** 2 / fan_in`` (``"normal"``) or ``scale ** 2 / fan_in``
        (``"uniform"``). :attr:`scale` reads back as ``scale ** 2``.
    distribution
        ``"normal"`` (truncated normal) or ``"uniform"`` (see :class:`VarianceScaling`).
    """

    def __init__(self, scale: float = 1.0, distribution: str = "normal") -> None:
        if isinstance(scale, bool) or not isinstance(scale, (int, float, np.integer, np.floating)) or scale <= 0:
            raise ValidationError(
                f"He: expected 'scale' to be a positive number; received {scale!r}", attr="scale", obj=self
            )
        super().__init__(scale=float(scale) ** 2, mode="fan_in", distribution=distribution)

"""``expm1`` and ``log1p`` on the bounded domains of the LIF update, as polynomials.

In nengo's LIF step both functions only ever see small arguments:

- ``expm1(-delta_t / tau_rc)`` with ``0 <= delta_t <= dt``, so ``y`` lies in
  ``[-dt / tau_rc, 0]``;
- ``log1p(-(v - 1) / (J - 1))`` only matters for neurons that spiked this step, where
  (``v <= 1`` before the step) ``x`` lies in ``[-(1 - exp(-dt / tau_rc)), 0]``.

On such a domain a Taylor polynomial whose truncation error is far below float32's
rounding (relative ``1e-9`` against ``2**-24 ~ 6e-8``) is as exact as the library
function, and XLA on a CPU evaluates it several times faster (both functions are
most of the cost of a batched LIF step).  The degree is fixed at build time from the
bound; when the bound needs more than ``MAX_DEGREE`` terms (``dt`` close to
``tau_rc``), or the simulation runs in float64, the library functions are used.
"""

from __future__ import annotations

import math
from typing import Any

from ._tf import tf

#: relative truncation error allowed
TOLERANCE = 1e-9
#: largest polynomial degree worth evaluating instead of the library function
MAX_DEGREE = 12


def expm1_degree(y_max: float) -> int | None:
    """Degree for ``expm1`` on ``[-y_max, 0]`` (``None``: use the library function).

    Alternating series: the remainder after degree ``d`` is at most
    ``y**(d+1) / (d+1)!``, and ``|expm1(y)| >= |y| / 2`` for ``|y| <= 1``.
    """
    if not 0 <= y_max <= 1:
        return None
    for d in range(1, MAX_DEGREE + 1):
        if 2 * y_max**d / math.factorial(d + 1) < TOLERANCE:
            return d
    return None


def log1p_degree(x_max: float) -> int | None:
    """Degree for ``log1p`` on ``[-x_max, 0]`` (``None``: use the library function).

    Every term has the same sign: the remainder after degree ``d`` is at most
    ``|x|**(d+1) / ((d+1) (1 - x_max))``, and ``|log1p(x)| >= |x|``.
    """
    if not 0 <= x_max < 0.5:
        return None
    for d in range(1, MAX_DEGREE + 1):
        if x_max**d / ((d + 1) * (1 - x_max)) < TOLERANCE:
            return d
    return None


def expm1_poly(y: Any, degree: int) -> Any:
    """``y (1 + y/2 (1 + y/3 (1 + ...)))``: the Taylor polynomial of ``expm1``, Horner form."""
    acc = 1.0 + y / float(degree)
    for k in range(degree - 1, 1, -1):
        acc = 1.0 + (y / float(k)) * acc
    return y * acc if degree > 1 else y


def log1p_poly(x: Any, degree: int) -> Any:
    """``x - x**2/2 + x**3/3 - ...`` up to ``x**degree``, Horner form."""
    acc = tf.ones_like(x) * ((-1.0) ** (degree - 1) / degree)
    for k in range(degree - 1, 0, -1):
        acc = (-1.0) ** (k - 1) / k + x * acc
    return x * acc


def lif_expm1(y: Any, dt: float, tau_rc: float) -> Any:
    """``expm1(y)`` for ``y`` in ``[-dt / tau_rc, 0]``."""
    d = expm1_degree(dt / tau_rc) if y.dtype == tf.float32 else None
    return tf.math.expm1(y) if d is None else expm1_poly(y, d)


def lif_log1p(x: Any, dt: float, tau_rc: float) -> Any:
    """``log1p(x)`` for ``x`` in ``[-(1 - exp(-dt / tau_rc)), 0]`` (values outside,
    possible only for a user-set voltage above 1, are clamped into the domain)."""
    bound = -math.expm1(-dt / tau_rc)
    d = log1p_degree(bound) if x.dtype == tf.float32 else None
    if d is None:
        return tf.math.log1p(x)
    return log1p_poly(tf.clip_by_value(x, -bound, 0.0), d)

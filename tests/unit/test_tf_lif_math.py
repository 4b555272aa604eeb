"""The LIF update's bounded-domain expm1/log1p polynomials (backends.tensorflow.lif_math)."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from nhw.backends.tensorflow.builders import lif_math  # noqa: E402
from nhw.backends.tensorflow._tf import tf  # noqa: E402


def _max_rel(a, ref):
    return float(np.max(np.abs(a - ref) / np.maximum(np.abs(ref), 1e-30)))


@pytest.mark.parametrize("dt, tau_rc", [(0.001, 0.02), (0.0005, 0.02), (0.002, 0.02), (0.001, 0.05),
                                        (0.001, 0.002)])
def test_polynomials_are_as_exact_as_float32_library_functions(dt, tau_rc):
    y = np.linspace(-dt / tau_rc, 0, 20001).astype(np.float32)
    bound = -math.expm1(-dt / tau_rc)
    x = np.linspace(-bound, 0, 20001).astype(np.float32)
    e = lif_math.lif_expm1(tf.constant(y), dt, tau_rc).numpy()
    lg = lif_math.lif_log1p(tf.constant(x), dt, tau_rc).numpy()
    e_lib = tf.math.expm1(tf.constant(y)).numpy()
    lg_lib = tf.math.log1p(tf.constant(x)).numpy()
    e_ref, lg_ref = np.expm1(y.astype(np.float64)), np.log1p(x.astype(np.float64))
    # never worse than TensorFlow's own float32 functions (both near 1-2 ulp)
    assert _max_rel(e, e_ref) <= max(_max_rel(e_lib, e_ref), 2.4e-7)
    assert _max_rel(lg, lg_ref) <= max(_max_rel(lg_lib, lg_ref), 2.4e-7)


def test_degrees_and_library_fallbacks():
    # near-minimax fits need fewer terms than the Taylor series (5 and 7 there)
    e = lif_math.expm1_coefficients(0.05)
    lg = lif_math.log1p_coefficients(1 - math.exp(-0.05))
    assert (len(e), len(lg)) == (4, 5)  # x q(x): degrees 4 and 5
    assert e[0] == pytest.approx(1.0, abs=1e-9) and lg[0] == pytest.approx(1.0, abs=1e-9)
    assert lif_math.expm1_coefficients(2.0) is None  # dt > tau_rc: library expm1
    assert lif_math.log1p_coefficients(0.6) is None  # outside the LIF's domain: library log1p
    assert len(lif_math.log1p_coefficients(0.45)) == 10


def test_too_many_terms_fall_back_to_the_library(monkeypatch):
    monkeypatch.setattr(lif_math, "MAX_DEGREE", 3)
    assert lif_math.log1p_coefficients(0.0123) is None  # (a bound not fitted before: the fit is cached)
    y = tf.constant(np.linspace(-0.0123, 0, 5), tf.float32)
    assert np.array_equal(lif_math.lif_log1p(y, 0.001, -0.001 / math.log1p(-0.0123)).numpy(),
                          tf.math.log1p(y).numpy())
    y64 = tf.constant(np.linspace(-0.05, 0, 11))
    assert np.array_equal(lif_math.lif_expm1(y64, 0.001, 0.02).numpy(), tf.math.expm1(y64).numpy())  # float64


def test_fits_meet_the_tolerance_in_float64():
    for lo, f, coef in [(-0.05, np.expm1, lif_math.expm1_coefficients(0.05)),
                        (-0.3, np.log1p, lif_math.log1p_coefficients(0.3))]:
        x = np.linspace(lo, 0, 100001)[:-1]  # a denser grid than the fit's, 0 excluded
        got = x * np.polynomial.polynomial.polyval(x, coef)
        assert np.max(np.abs(got - f(x)) / np.abs(f(x))) < lif_math.TOLERANCE


def test_out_of_domain_log1p_argument_is_clamped_not_nan():
    """Only a user-set voltage above 1 can push the argument below the bound."""
    out = lif_math.lif_log1p(tf.constant([-0.5, 0.3], tf.float32), 0.001, 0.02).numpy()
    assert np.all(np.isfinite(out))
    assert out[0] == pytest.approx(math.log1p(-(1 - math.exp(-0.05))), rel=1e-6)

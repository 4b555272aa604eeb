"""The chip's PES learning engine (hw_emulator.learning), against its written rules."""

from __future__ import annotations

import numpy as np
import pytest

from nhw.hw_emulator.chip import LOIHI_V1
from nhw.errors import DiscretizationError
from nhw.hw_emulator.learning import (
    LearnedWeights, PESRule, TraceRegisters, learning_rate_registers, quantize_error, trace_registers,
)


def _rule(n_src=3, n_dims=2, lr_mant=(1, 2), lr_shift=0, decay=0, impulse=50, mant_init=None):
    k = 1  # one on/off pair per dimension
    dim = np.tile(np.arange(n_dims), 2 * k)
    sign = np.repeat([1, -1], n_dims * k)
    init = np.zeros((n_src, n_dims), np.int64) if mant_init is None else np.asarray(mant_init)
    return PESRule("r", n_dims, dim, sign, init, TraceRegisters(decay, impulse, 1.0),
                   np.asarray(lr_mant), lr_shift, np.full(n_dims, 0.01))


def test_trace_registers():
    r = trace_registers(0.005, 0.001)
    d = 1 - np.exp(-0.2)
    assert r.decay == round(4095 * d) and r.impulse == round(127 * d) == 23
    assert r.rate_per_unit == pytest.approx(d / (23 * 0.001))
    assert trace_registers(0.0, 0.001).impulse == LOIHI_V1.trace_max
    with pytest.raises(DiscretizationError, match="pre_synapse tau=10"):
        trace_registers(10.0, 0.001)


def test_learning_rate_registers():
    mant, shift = learning_rate_registers(np.array([1e-5, 3e-6, 0.0]))
    assert mant.max() <= 255 and mant[0] >= 128  # the largest rate uses the full mantissa
    np.testing.assert_allclose(mant * 2.0**-shift, [1e-5, 3e-6, 0], rtol=0.01, atol=2.0**-shift)


def test_quantize_error_rounds_and_clips():
    rule = _rule()
    np.testing.assert_array_equal(quantize_error([0.034, -5.0], rule), [3, -127])


def test_integer_updates_are_exact():
    """With integer rates and no trace decay the update is deterministic: a golden trace."""
    rule = _rule(decay=0, impulse=50, lr_mant=(1, 2))
    lw = LearnedWeights(rule, slice(0, 3), slice(3, 7), 6, LOIHI_V1)
    rng = np.random.Generator(np.random.PCG64(0))
    x = np.zeros(3)
    m = np.zeros((3, 2))
    sat = 0
    for t, (spk, err) in enumerate([([1, 0, 0], [1, 0]), ([1, 1, 0], [-1, 2]), ([0, 0, 1], [3, -1]),
                                    ([1, 1, 1], [-2, -2]), ([0, 0, 0], [-2, 1])]):
        lw.set_error(np.array(err))
        lw.learn(np.array(spk, bool), rng)
        x = np.minimum(x + 50 * np.array(spk), 127)
        m = m - np.outer(x, np.array([1, 2]) * np.array(err))
        sat += int(np.count_nonzero(np.abs(m) > 255))
        m = np.clip(m, -255, 255)
        np.testing.assert_array_equal(lw.x, x, err_msg=f"trace at step {t}")
        np.testing.assert_array_equal(lw.mantissas, m, err_msg=f"weights at step {t}")
    assert lw.saturations == sat > 0
    # delivery: on neurons get +M << 6 of the spiking rows, off neurons -M << 6
    q = lw.deliver(np.array([1, 0, 1], bool))
    per_dim = (m[0] + m[2]) * 64
    np.testing.assert_array_equal(q, np.concatenate([per_dim, -per_dim]))


def test_stochastic_rounding_is_unbiased():
    """Fractional updates (and trace decays) round up with the right probability."""
    rule = _rule(n_src=2000, n_dims=1, lr_mant=(3,), lr_shift=4, decay=0, impulse=10)  # 3/16 per unit
    lw = LearnedWeights(rule, slice(0, 2000), slice(2000, 2002), 6, LOIHI_V1)
    rng = np.random.Generator(np.random.PCG64(1))
    lw.set_error(np.array([-1]))
    lw.learn(np.ones(2000, bool), rng)  # x = 10: expected step 10 * 3/16 = 1.875
    mean = lw.mantissas.mean()
    assert abs(mean - 1.875) < 0.03 and set(np.unique(lw.mantissas)) == {1, 2}
    decaying = LearnedWeights(_rule(n_src=5000, n_dims=1, lr_mant=(0,), decay=1024, impulse=10),
                              slice(0, 5000), slice(5000, 5002), 6, LOIHI_V1)
    decaying.learn(np.ones(5000, bool), rng)
    decaying.learn(np.zeros(5000, bool), rng)  # 10 * 3072/4096 = 7.5 on average
    assert abs(decaying.x.mean() - 7.5) < 0.05


def test_error_range_is_checked():
    lw = LearnedWeights(_rule(), slice(0, 3), slice(3, 7), 6, LOIHI_V1)
    with pytest.raises(ValueError, match="127"):
        lw.set_error(np.array([200, 0]))


def test_rounding_numbers_are_uniform_per_element_over_time():
    """Each element's stochastic-rounding numbers are uniform over calls and do not
    repeat a pattern (a fixed phase alone would round the same way every time)."""
    from nhw.hw_emulator.learning import _Dither

    d = _Dither((5,), block=64)
    rng = np.random.Generator(np.random.PCG64(3))
    u = np.array([d.next(rng).copy() for _ in range(20000)])
    assert u.min() >= 0 and u.max() < 1
    np.testing.assert_allclose(u.mean(axis=0), 0.5, atol=0.01)
    np.testing.assert_allclose((u < 0.3).mean(axis=0), 0.3, atol=0.015)
    # consecutive numbers of one element are uncorrelated
    assert abs(np.corrcoef(u[:-1, 0], u[1:, 0])[0, 1]) < 0.03
    # advancing without computing keeps the stream aligned
    a, b = _Dither((5,)), _Dither((5,))
    ra, rb = (np.random.Generator(np.random.PCG64(4)) for _ in range(2))
    a.next(ra), b.next(rb, compute=False)
    np.testing.assert_array_equal(a.next(ra), b.next(rb))

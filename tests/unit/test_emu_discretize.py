"""Discretisation functions at their boundary values (SPEC.md section 3)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nhw.hw_emulator import discretize as dz
from nhw.hw_emulator import rates
from nhw.hw_emulator.chip import LOIHI_V1
from nhw.errors import DiscretizationError, EmulatorError


def test_decay_registers_examples_from_the_chip_notes():
    # dt = 1 ms: tau = 20 ms -> about 200, tau = 5 ms -> about 741-742
    assert dz.decay_v_register(0.02, 0.001) == 200
    assert dz.decay_v_register(0.005, 0.001) in (741, 742)
    assert dz.decay_u_register(0.005, 0.001) == dz.decay_v_register(0.005, 0.001) - 1


def test_decay_boundaries():
    assert dz.decay_u_register(0.0, 0.001) == 4095  # synapse=None: no memory
    assert dz.decay_v_register(math.inf, 0.001) == 0  # integrator
    assert dz.decay_u_register(1e-9, 0.001) == 4094  # d rounds to 1: 4095 - 1
    assert dz.decay_v_register(1e-9, 0.001) == 4095
    # the longest current time constant still representable (register 0)
    assert dz.decay_u_register(0.001 / -math.log1p(-1.0 / 4095), 0.001) == 0
    with pytest.raises(DiscretizationError, match="tau=1000"):
        dz.decay_u_register(1000.0, 0.001)
    with pytest.raises(DiscretizationError, match="tau_rc"):
        dz.decay_v_register(1e6, 0.001)
    for bad in (-0.1, float("nan")):
        with pytest.raises(DiscretizationError):
            dz.decay_u_register(bad, 0.001)


def test_refractory_delay_range():
    # the register is round(tau_ref/dt) + 1: the hold lasts register - 1 steps
    assert dz.refractory_delay(0.0, 0.001) == 1
    assert dz.refractory_delay(0.001, 0.001) == 2
    assert dz.refractory_delay(0.002, 0.001) == 3
    assert dz.refractory_delay(0.0024, 0.001) == 3
    assert dz.refractory_delay(0.062, 0.001) == 63
    with pytest.raises(DiscretizationError, match="64"):
        dz.refractory_delay(0.063, 0.001)


def test_vth_register_boundaries():
    assert dz.vth_register(64) == (1, 64)
    assert dz.vth_register(131071 * 64) == (131071, 8388544)
    with pytest.raises(DiscretizationError, match="vth"):
        dz.vth_register(131072 * 64)
    with pytest.raises(DiscretizationError):
        dz.vth_register(10)  # rounds to mantissa 0
    e, vmax = dz.vmax_register(8388544)
    assert (e, vmax) == (7, 2**23 - 1)
    assert dz.vmax_register(510) == (0, 511)
    assert dz.vmax_register(511) == (1, 2047)


def test_bias_exponent_choice_and_clipping():
    m, e, clipped = dz.bias_registers(np.array([0, 4095, 4096, -4096, 4095 * 128, 4095 * 128 + 100, 1e9]))
    assert list(e[:5]) == [0, 0, 1, 1, 7]
    assert list(m[:5]) == [0, 4095, 2048, -2048, 4095]
    assert clipped == 1 or clipped == 2
    assert np.all(np.abs(m) <= 4095) and np.all(e <= 7)
    assert list(dz.bias_effective(m[:5], e[:5])) == [0, 4095, 4096, -4096, 4095 * 128]


def test_weight_exponent_boundaries():
    assert dz.weight_exponent(255) == -6  # scale 2**0
    assert dz.weight_exponent(256) == -5
    assert dz.weight_exponent(255 * 2.0**13) == 7
    assert dz.weight_exponent(255 * 2.0**14) == 7  # too big: clips, caller reports
    assert dz.weight_exponent(0.0) == -7
    assert dz.weight_exponent(1e-6) == -7


def test_effective_weights_shifts():
    assert list(dz.effective_weights(np.array([3, -3, 255]), 0)) == [192, -192, 16320]
    # 6 + e < 0: arithmetic right shift (rounds toward minus infinity)
    assert list(dz.effective_weights(np.array([3, -3]), -7)) == [1, -2]


def test_quantize_weights_report():
    w = np.array([[1000.0, -500.0, 0.5], [0.0, 10.0, -1000.0]])
    q = dz.quantize_weights(w)
    assert q.exponent == dz.weight_exponent(1000.0)
    assert q.n_zeroed == 1  # 0.5 rounds to zero; exact zeros are not counted
    assert q.n_clipped == 0
    assert q.max_rel_error <= 0.5 * q.scale / 1000.0 + 1e-12
    big = dz.quantize_weights(np.array([[255 * 2.0**14]]))
    assert big.n_clipped == 1
    assert set(q.as_dict()) >= {"exponent", "scale", "n_clipped", "n_zeroed", "bits_lost"}


def test_errors_subclass_builtins():
    assert issubclass(DiscretizationError, ValueError) and issubclass(DiscretizationError, EmulatorError)


def test_rate_model_matches_integer_recurrence():
    # float approximation the chip decoders are solved on vs the exact integer period
    dv, ref, s = dz.decay_v_register(0.02, 0.001), dz.refractory_delay(0.002, 0.001), 1 << 18
    for J in [1.2, 2.0, 5.0, 10.0]:
        u2 = int(round(J * s * dv / 4096))
        exact = rates.compartment_rate(u2, dv, s, ref, 0.001)
        approx = float(rates.lif_rates(np.array([J]), dv, ref, 0.001)[0])
        assert abs(exact - approx) < 0.05 * exact
    assert rates.compartment_period(10, 0, 640, 1) == 65
    assert rates.compartment_period(0, 200, 640, 1, max_steps=100) is None
    assert LOIHI_V1.decay_max == 4095

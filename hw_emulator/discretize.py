"""Pure functions turning float (nengo-unit) parameters into chip integers.

Conventions (see ``SPEC.md``):

* A compartment's voltage scale ``S`` is its threshold ``vth`` in integer units: a
  nengo voltage of 1 is ``S`` chip units.
* The per-step input scale ``c`` converts a nengo current ``J`` into the integer added
  to ``v`` each step: ``c = S * dv`` for LIF (``dv`` the voltage decay fraction) and
  ``c = S * dt`` for spiking ReLU (no leak).
* A synapse weight ``w`` (nengo: a spike of amplitude ``1/dt`` times ``w`` enters a
  Lowpass filter) becomes ``w_int = w * du / dt * c`` with ``du`` the current decay
  fraction, because the chip adds ``w_int`` straight to the decaying current ``u``.

Every function here is deterministic and free of side effects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from nhw.errors import DiscretizationError

from .chip import LOIHI_V1, ChipSpec


# ----------------------------------------------------------------------------- decays
def _check_tau(name: str, tau: float) -> float:
    tau = float(tau)
    if not math.isfinite(tau) and tau != math.inf or tau < 0:
        raise DiscretizationError(f"{name}: time constant must be >= 0 (or inf), got {tau!r}")
    return tau


def decay_fraction(tau: float, dt: float) -> float:
    """Float decay per step ``1 - exp(-dt/tau)`` (1 for ``tau == 0``, 0 for ``inf``)."""
    if tau == 0:
        return 1.0
    if math.isinf(tau):
        return 0.0
    return -math.expm1(-dt / tau)


def decay_u_register(tau: float, dt: float, spec: ChipSpec = LOIHI_V1, name: str = "tau") -> int:
    """12-bit current decay register for a synapse time constant.

    ``decayU = round(4095 * d) - 1`` (the current update has an extra offset of one),
    clipped to ``0..4095``.  ``tau == 0`` (no filtering) gives 4095, "no memory".

    Raises
    ------
    DiscretizationError
        ``tau`` is negative/NaN, or so long that the decay rounds to a perfect
        integrator that the current cannot represent (``decayU < 0``).
    """
    tau = _check_tau(name, tau)
    if tau == 0:
        return spec.decay_max
    d = decay_fraction(tau, dt)
    reg = int(round(spec.decay_max * d)) - 1
    if reg < 0:
        raise DiscretizationError(
            f"{name}={tau!r} s at dt={dt!r}: decay fraction {d:.3g} rounds below the "
            f"smallest current decay (1/{spec.decay_max + 1}); use tau <= "
            f"{dt / -math.log1p(-1.5 / spec.decay_max):.3g} s"
        )
    return min(reg, spec.decay_max)


def decay_v_register(tau: float, dt: float, spec: ChipSpec = LOIHI_V1, name: str = "tau_rc") -> int:
    """12-bit voltage decay register ``round(4095 * d)``; ``inf`` gives 0 (integrator).

    Raises
    ------
    DiscretizationError
        ``tau`` is negative or NaN, or finite but rounds to 0 (would silently become
        a perfect integrator).
    """
    tau = _check_tau(name, tau)
    d = decay_fraction(tau, dt)
    reg = int(round(spec.decay_max * d))
    if reg == 0 and d > 0:
        raise DiscretizationError(
            f"{name}={tau!r} s at dt={dt!r}: voltage decay rounds to 0 (a perfect "
            "integrator); use a shorter time constant or an integrate-and-fire neuron"
        )
    return min(reg, spec.decay_max)


def u_retained(decay_u: int | np.ndarray, spec: ChipSpec = LOIHI_V1):
    """Fraction of ``|u|`` kept per step: ``(4095 - decayU) / 4096``."""
    return (spec.decay_max - np.asarray(decay_u)) / (spec.decay_max + 1)


def v_retained(decay_v: int | np.ndarray, spec: ChipSpec = LOIHI_V1):
    """Fraction of ``|v|`` kept per step: ``(4096 - decayV) / 4096``."""
    return (spec.decay_max + 1 - np.asarray(decay_v)) / (spec.decay_max + 1)


def refractory_delay(tau_ref: float, dt: float, spec: ChipSpec = LOIHI_V1, name: str = "tau_ref") -> int:
    """Refractory register ``round(tau_ref/dt) + 1``, as the chip is programmed.

    After a spike the compartment is held at ``v = 0`` for ``register - 1`` steps
    (``SPEC.md`` section 2), i.e. for ``round(tau_ref/dt)`` steps, so the shortest
    period is ``round(tau_ref/dt) + 1`` steps and the chip saturates at
    ``1 / (tau_ref + dt)``.  ``tau_ref = 0`` gives 1: the compartment may spike on
    consecutive steps.

    Parameters
    ----------
    tau_ref
        Refractory period in seconds (``>= 0``).
    dt
        Time step in seconds.
    spec
        The chip, for the register's range.
    name
        Names the parameter in error messages.

    Returns
    -------
    int
        The register value, in ``spec.refractory_min..spec.refractory_max``.

    Raises
    ------
    DiscretizationError
        ``tau_ref`` is negative or NaN, or the register is outside
        ``refractory_min..refractory_max``.
    """
    if not (tau_ref >= 0):
        raise DiscretizationError(f"{name} must be >= 0, got {tau_ref!r}")
    # the register counts the spike step itself: the hold lasts register - 1 steps,
    # and the chip holds for round(tau_ref/dt) steps (the +1 that nengo-loihi writes)
    held = int(round(tau_ref / dt))
    d = held + 1
    if not spec.refractory_min <= d <= spec.refractory_max:
        raise DiscretizationError(
            f"{name}={tau_ref!r} s at dt={dt!r} needs a refractory register of {d} "
            f"({held} held steps + 1); the chip holds {spec.refractory_min}..{spec.refractory_max}, "
            f"i.e. tau_ref <= {(spec.refractory_max - 1) * dt:.6g} s"
        )
    return d


# ------------------------------------------------------------------------- thresholds
def vth_register(vth: float, spec: ChipSpec = LOIHI_V1) -> tuple[int, int]:
    """Split a threshold into ``(mantissa, effective)`` with ``effective = mantissa << vth_shift``.

    Raises
    ------
    DiscretizationError
        ``vth`` rounds to a mantissa outside ``1..vth_mant_max``.
    """
    mant = int(round(float(vth) / (1 << spec.vth_shift)))
    if not 1 <= mant <= spec.vth_mant_max:
        raise DiscretizationError(
            f"vth={vth!r}: mantissa {mant} outside 1..{spec.vth_mant_max} "
            f"(vth must lie in {1 << spec.vth_shift}..{spec.vth_max})"
        )
    return mant, mant << spec.vth_shift


def vmax_register(vth: int, spec: ChipSpec = LOIHI_V1) -> tuple[int, int]:
    """Smallest ``(exponent, vmax)`` with ``vmax = 2**(9+2e) - 1 > vth``.

    Raises
    ------
    DiscretizationError
        No exponent in range gives a vmax above ``vth``.
    """
    for e in range(spec.vmax_exp_max + 1):
        vmax = spec.vmax_for_exponent(e)
        if vmax > vth:
            return e, vmax
    raise DiscretizationError(f"vth={vth} exceeds the largest vmax {spec.vmax_for_exponent(spec.vmax_exp_max)}")


# -------------------------------------------------------------------------------- bias
def bias_registers(bias: np.ndarray, spec: ChipSpec = LOIHI_V1) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-compartment bias as ``(mantissa, exponent, n_clipped)``.

    Each compartment gets the smallest exponent (0..7) that fits its mantissa in
    ``|m| <= 4095``; values beyond ``4095 * 2**7`` are clipped and counted.
    """
    b = np.asarray(bias, dtype=np.float64)
    mmax = spec.bias_mant_max
    mag = np.abs(b)
    exp = np.zeros(b.shape, dtype=np.int32)
    with np.errstate(divide="ignore"):
        need = np.ceil(np.log2(np.maximum(mag, 1e-300) / mmax))
    exp = np.clip(need, 0, spec.bias_exp_max).astype(np.int32)
    mant = np.round(b / 2.0**exp)
    n_clipped = int(np.count_nonzero(np.abs(mant) > mmax))
    mant = np.clip(mant, -mmax, mmax).astype(np.int32)
    return mant, exp, n_clipped


def bias_effective(mant: np.ndarray, exp: np.ndarray) -> np.ndarray:
    """Integer bias added to ``u`` each step: ``mantissa * 2**exponent`` (int64)."""
    return np.asarray(mant, dtype=np.int64) << np.asarray(exp, dtype=np.int64)


# ----------------------------------------------------------------------------- weights
def weight_exponent(max_abs: float, spec: ChipSpec = LOIHI_V1) -> int:
    """Smallest exponent whose scale ``2**(6+e)`` holds ``max_abs`` in the mantissa.

    Returns ``weight_exp_max`` when even that is too small (values will clip) and
    ``weight_exp_min`` for an all-zero group.
    """
    if not max_abs > 0:
        return spec.weight_exp_min
    e = math.ceil(math.log2(max_abs / spec.weight_mant_max)) - spec.weight_shift
    return int(min(max(e, spec.weight_exp_min), spec.weight_exp_max))


def weight_scale(exponent: int, spec: ChipSpec = LOIHI_V1) -> float:
    """Float value of one mantissa unit: ``2**(6 + exponent)``."""
    return 2.0 ** (spec.weight_shift + exponent)


def effective_weights(mant: np.ndarray, exponent: int, spec: ChipSpec = LOIHI_V1) -> np.ndarray:
    """Integers the chip adds to ``q`` per spike: ``m << (6+e)``, or ``m >> -(6+e)``."""
    m = np.asarray(mant, dtype=np.int64)
    s = spec.weight_shift + exponent
    return m << s if s >= 0 else m >> (-s)


@dataclass
class WeightQuantization:
    """Quantised weights of one synapse group and what quantisation cost."""

    mantissa: np.ndarray
    exponent: int
    scale: float
    n_clipped: int
    n_zeroed: int
    bits_lost: float
    max_rel_error: float

    def as_dict(self) -> dict:
        return {
            "exponent": self.exponent,
            "scale": self.scale,
            "n_clipped": self.n_clipped,
            "n_zeroed": self.n_zeroed,
            "bits_lost": round(self.bits_lost, 3),
            "max_rel_error": round(self.max_rel_error, 6),
        }


def quantize_weights(w_int: np.ndarray, spec: ChipSpec = LOIHI_V1) -> WeightQuantization:
    """Quantise float integer-unit weights to mantissas with one group exponent.

    ``bits_lost`` is ``log2`` of the ratio between the ideal and the achieved
    resolution of the group's largest weight; ``n_zeroed`` counts nonzero weights
    that rounded to zero; ``n_clipped`` those beyond the mantissa range.
    """
    w = np.asarray(w_int, dtype=np.float64)
    max_abs = float(np.max(np.abs(w))) if w.size else 0.0
    e = weight_exponent(max_abs, spec)
    scale = weight_scale(e, spec)
    m = np.round(w / scale)
    mmax = spec.weight_mant_max
    n_clipped = int(np.count_nonzero(np.abs(m) > mmax))
    m = np.clip(m, -mmax, mmax)
    n_zeroed = int(np.count_nonzero((m == 0) & (w != 0)))
    achieved = effective_weights(m.astype(np.int64), e, spec).astype(np.float64)
    err = np.abs(achieved - w)
    rel = float(err.max() / max_abs) if max_abs > 0 else 0.0
    bits_lost = math.log2(max(max_abs / mmax, 1e-300) / scale) if max_abs > 0 else 0.0
    return WeightQuantization(m.astype(spec.weight_mant_dtype), e, scale, n_clipped, n_zeroed, -bits_lost, rel)


# ---------------------------------------------------------------------------- reports
@dataclass
class QuantizationReport:
    """What discretisation did to one compartment block."""

    block: str
    voltage_scale: int = 0
    input_scale: float = 0.0
    decay_u: list = field(default_factory=list)
    decay_v: int | None = None
    refractory_delay: int | None = None
    vth_mantissa: int | None = None
    bias_clipped: int = 0
    bias_exponents: list = field(default_factory=list)
    synapse_groups: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "block": self.block,
            "voltage_scale": self.voltage_scale,
            "input_scale": self.input_scale,
            "decay_u": self.decay_u,
            "decay_v": self.decay_v,
            "refractory_delay": self.refractory_delay,
            "vth_mantissa": self.vth_mantissa,
            "bias_clipped": self.bias_clipped,
            "bias_exponents": self.bias_exponents,
            "synapse_groups": {k: v.as_dict() for k, v in self.synapse_groups.items()},
            "notes": list(self.notes),
        }

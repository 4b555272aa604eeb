"""Firing-rate models of discretised chip compartments.

Two flavours: :func:`compartment_period` iterates the exact integer recurrence of
``SPEC.md`` for one compartment with constant input (the golden "discretised rate
model"), and :func:`lif_rates` / :func:`relu_rates` are vectorised float
approximations used when fitting decoders to the chip's behaviour.
"""

from __future__ import annotations

import numpy as np

from .chip import LOIHI_V1, ChipSpec


def compartment_period(
    u2: int,
    decay_v: int,
    vth: int,
    refractory_delay: int,
    vmin: int = 0,
    vmax: int | None = None,
    spec: ChipSpec = LOIHI_V1,
    max_steps: int = 100_000,
) -> int | None:
    """Steps between spikes of a compartment whose ``u + bias`` is constantly ``u2``.

    Iterates the integer voltage update of ``SPEC.md`` from ``v = 0`` just after a
    spike: ``refractory_delay - 1`` held steps (the register is ``round(tau_ref/dt) + 1``
    for a LIF, so ``round(tau_ref/dt)`` of them), then integrating steps up to and
    including the one with ``v > vth``.  Returns ``None`` when the compartment never
    spikes within ``max_steps``.
    """
    vmax = spec.v_max_limit if vmax is None else vmax
    keep = spec.decay_max + 1 - int(decay_v)
    v = 0
    # the refractory_delay - 1 held steps, then integration steps until v > vth
    for k in range(1, max_steps + 1):
        mag = (abs(v) * keep) >> spec.decay_bits
        v = (mag if v >= 0 else -mag) + int(u2)
        v = min(max(v, vmin), vmax)
        if v > vth:
            return int(refractory_delay) - 1 + k
    return None


def compartment_rate(u2: int, decay_v: int, vth: int, refractory_delay: int, dt: float, **kw) -> float:
    """Firing rate (Hz) of :func:`compartment_period`; 0 if it never spikes."""
    p = compartment_period(u2, decay_v, vth, refractory_delay, **kw)
    return 0.0 if p is None else 1.0 / (p * dt)


def lif_rates(J: np.ndarray, decay_v: int, refractory_delay: int, dt: float, amplitude: float = 1.0,
              spec: ChipSpec = LOIHI_V1) -> np.ndarray:
    """Approximate chip LIF rates (Hz) for nengo-unit currents ``J`` (threshold 1).

    With ``u2 = J * S * dv`` the voltage after ``k`` steps from rest is
    ``S * J * (1 - (1-dv)**k)``; the first ``k`` with that above ``S`` is
    ``floor(log(1 - 1/J) / log(1 - dv)) + 1``, and the period adds the
    ``refractory_delay - 1`` held steps (``round(tau_ref/dt)``: the register is
    ``round(tau_ref/dt) + 1``).  The rate is therefore at most
    ``1 / (refractory_delay * dt) = 1 / (tau_ref + dt)``, and at or below nengo's
    continuous LIF rate: this is the curve the chip's decoders are solved on.
    """
    J = np.asarray(J, dtype=np.float64)
    keep = (spec.decay_max + 1 - decay_v) / (spec.decay_max + 1)
    out = np.zeros_like(J)
    on = J > 1
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.floor(np.log1p(-1.0 / J[on]) / np.log(keep)) + 1
    out[on] = amplitude / ((refractory_delay - 1 + k) * dt)
    return out


def relu_rates(J: np.ndarray, dt: float, amplitude: float = 1.0) -> np.ndarray:
    """Approximate chip spiking-ReLU rates: ``v`` gains ``J*dt`` per step, spikes above 1, resets to 0."""
    J = np.asarray(J, dtype=np.float64)
    out = np.zeros_like(J)
    on = J > 0
    k = np.floor(1.0 / (J[on] * dt)) + 1
    out[on] = amplitude / (k * dt)
    return out

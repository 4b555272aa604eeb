"""On-chip PES learning: low-precision pre traces, host error values, learned weights.

The chip's learning engine as this emulator models it (``SPEC.md`` section 8):

* every pre-synaptic compartment ``j`` of a learning synapse group keeps an unsigned
  ``trace_bits`` trace ``x_j``: each step ``x = SR(x * (4096 - decay) / 4096) +
  impulse * spike``, clipped to ``trace_max`` (``SR`` = stochastic rounding);
* the host writes one signed ``error_bits`` error value ``e_i`` per dimension per step;
* the learned weights are one mantissa ``M[j, i]`` per (pre compartment, dimension):
  the synapses from ``j`` to the on decode neurons of dimension ``i`` carry ``+M``,
  those to the off neurons ``-M`` (all with the group's fixed exponent);
* after the step's spikes: ``M[j, i] += SR(-lr_i * 2**-shift * e_i * x_j)``, saturating
  at the mantissa range (saturations are counted).

Everything here is numpy-only and deterministic for a given seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from nhw.errors import DiscretizationError, UnsupportedFeatureError

from . import kernel as _kernel
from .chip import FLOAT32_EXACT_BITS, FLOAT64_EXACT_BITS, LOIHI_V1, ChipSpec


@dataclass(frozen=True)
class TraceRegisters:
    """Decay and per-spike impulse of a pre-synaptic trace."""

    decay: int  # 12-bit, like decayV
    impulse: int  # added per spike
    #: nengo filtered activity (Hz) per trace unit: ``x_hz = x_int * rate_per_unit``
    rate_per_unit: float


def trace_registers(tau: float, dt: float, spec: ChipSpec = LOIHI_V1) -> TraceRegisters:
    """Trace registers for nengo's PES ``pre_synapse`` ``Lowpass(tau)`` (``tau = 0``: none).

    The impulse is chosen so that a compartment spiking every step saturates the
    trace: ``impulse = round(trace_max * d)`` with ``d`` the decay fraction.

    Raises
    ------
    DiscretizationError
        ``tau`` is negative, or so long that the impulse rounds to zero.
    """
    if not tau >= 0:
        raise DiscretizationError(f"PES pre_synapse tau must be >= 0, got {tau!r}")
    d = 1.0 if tau == 0 else -math.expm1(-dt / tau)
    decay = min(int(round(spec.decay_max * d)), spec.decay_max)
    impulse = int(round(spec.trace_max * d))
    if impulse < 1 or decay < 1:
        raise DiscretizationError(
            f"PES pre_synapse tau={tau!r} s at dt={dt!r}: the {spec.trace_bits}-bit trace cannot "
            f"represent it (impulse {spec.trace_max * d:.3g} rounds to 0); use tau <= "
            f"{dt / -math.log1p(-0.5 / spec.trace_max):.3g} s"
        )
    # a spike of amplitude 1/dt through a discrete Lowpass adds d/dt to its state
    return TraceRegisters(decay, impulse, d / (impulse * dt))


def learning_rate_registers(rate: np.ndarray, spec: ChipSpec = LOIHI_V1) -> tuple[np.ndarray, int]:
    """Per-dimension learning rates as ``(mantissa, shift)``: ``rate ~= mantissa * 2**-shift``.

    One shift for the whole group, the smallest that keeps the largest rate's
    mantissa within ``learn_rate_mant_max``.
    """
    rate = np.abs(np.asarray(rate, dtype=np.float64))
    top = float(rate.max(initial=0.0))
    if top == 0:
        return np.zeros(rate.shape, np.int64), 0
    shift = int(math.floor(math.log2(spec.learn_rate_mant_max / top)))
    mant = np.round(rate * 2.0**shift).astype(np.int64)
    return np.minimum(mant, spec.learn_rate_mant_max), shift


@dataclass(eq=False)
class PESRule:
    """Chip registers of one learning synapse group (see the module docstring).

    ``dim[t]``/``sign[t]`` say which error dimension and polarity target compartment
    ``t`` decodes; ``mant_init`` (``n_src x n_dims``) are the initial mantissas.
    """

    label: str
    n_dims: int
    dim: np.ndarray
    sign: np.ndarray
    mant_init: np.ndarray
    trace: TraceRegisters
    lr_mant: np.ndarray
    lr_shift: int
    #: nengo error value per error unit (host side: ``e_int = round(e / error_scale)``)
    error_scale: np.ndarray
    #: the weight update runs every ``epoch`` steps (traces update every step)
    epoch: int = 1
    notes: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "epoch": self.epoch,
            "trace_decay": self.trace.decay,
            "trace_impulse": self.trace.impulse,
            "learning_rate_mantissa": [int(m) for m in self.lr_mant],
            "learning_rate_shift": self.lr_shift,
            "error_scale": [float(e) for e in self.error_scale],
            "notes": list(self.notes),
        }


def quantize_error(e: np.ndarray, rule: PESRule, spec: ChipSpec = LOIHI_V1,
                   weights: LearnedWeights | None = None) -> np.ndarray:
    """Host side: nengo error values to the chip's signed integers (round, clip).

    Parameters
    ----------
    e
        Error values in nengo units, one per dimension of ``rule``.
    rule
        The learning group's registers (its ``error_scale``).
    spec
        The chip spec (its ``error_max``).
    weights
        The group's run-time state: when given, the largest ``|e|`` (in error units)
        is recorded in its :meth:`LearnedWeights.note_error_peak` (clipped steps are
        counted when the result is assigned to ``weights.error``).

    Returns
    -------
    numpy.ndarray
        ``round(e / error_scale)`` clipped to ``+-error_max``, int64.
    """
    # times the reciprocal: the host runs this every step, and the loihi-emu results
    # (golden and parity tests) are defined by this rounding
    q = np.asarray(e, dtype=np.float64) * (1.0 / rule.error_scale)
    if weights is not None:
        weights.note_error_peak(float(np.abs(q).max(initial=0.0)))
    q = np.rint(q)
    # in place: np.clip costs more on the few values of one step
    np.minimum(q, spec.error_max, out=q)
    np.maximum(q, -spec.error_max, out=q)
    return q.astype(np.int64)


#: value of one dither step: the dither's numbers are ``k * 2**-16``, exact in float32
_DITHER_UNIT = np.float32(2.0 ** -16)


class _Dither:
    """Uniform numbers in [0, 1) for stochastic rounding, one per element per call.

    ``U = ((phase + offset) mod 2**16) / 2**16`` with a random 16-bit phase per element
    (drawn once) and a random 16-bit offset per call: each element's sequence is
    i.i.d. uniform over calls (the offsets are), and within one call the phases spread
    the elements' thresholds evenly.  Two draws per call instead of one per element,
    because drawing one number per element made rounding the largest cost of a learning
    step.  Deterministic for a given generator; the returned array is reused by the
    next call.  (The 16-bit resolution is this model's dither, not a chip register: its
    values ``k * 2**-16`` are exact in float32.)
    """

    def __init__(self, shape: tuple, block: int = 256) -> None:
        self.shape, self.block = shape, block
        self.phase = None
        self.offsets = np.zeros(0, np.uint16)
        self.i = 0
        self._k = np.zeros(shape, np.uint16)
        self._u = np.zeros(shape, np.float32)

    def advance(self, rng: np.random.Generator) -> np.uint16:
        """Advance the stream one call; returns the call's offset (the phases are in ``phase``)."""
        if self.phase is None:
            self.phase = rng.integers(0, 1 << 16, self.shape, dtype=np.uint16)
        if self.i >= len(self.offsets):
            self.offsets = rng.integers(0, 1 << 16, self.block, dtype=np.uint16)
            self.i = 0
        self.i += 1
        return self.offsets[self.i - 1]

    def next(self, rng: np.random.Generator, compute: bool = True) -> np.ndarray | None:
        """This call's numbers (``compute=False``: only advance the stream)."""
        offset = self.advance(rng)
        if not compute:
            return None
        np.add(self.phase, offset, out=self._k)  # wraps modulo 2**16
        return np.multiply(self._k, np.float32(2.0 ** -16), out=self._u)


class LearnedWeights:
    """Run-time state of one learning synapse group inside the emulator.

    Parameters
    ----------
    rule
        The group's registers.
    src
        Global compartment indices of the pre-synaptic compartments (a slice).
    tgt
        Global compartment indices of the target compartments (a slice).
    weight_shift
        ``6 + exponent`` of the group: effective weight ``M << weight_shift``.
    spec
        The chip spec.
    """

    def __init__(self, rule: PESRule, src: slice, tgt: slice, weight_shift: int, spec: ChipSpec) -> None:
        self.rule, self.src, self.tgt, self.spec = rule, src, tgt, spec
        self.weight_shift = int(weight_shift)
        if self.weight_shift < 0:
            raise UnsupportedFeatureError(
                f"{rule.label}: a learning group needs a weight exponent >= {-spec.weight_shift} "
                f"(effective weight M * 2**{self.weight_shift} would not be an integer)"
            )
        # float32 is integer arithmetic here while mantissas, the products
        # lr_mant * e * x and the per-step sums of mantissas stay within its 24 exact
        # bits (all Loihi values do); wider chips use float64, exact to 53 bits
        n_src = src.stop - src.start
        need = max(spec.weight_bits, spec.learn_product_bits,
                   (spec.weight_mant_max * max(n_src, 1)).bit_length())
        if need <= FLOAT32_EXACT_BITS:
            self.dtype = np.float32
        elif need <= FLOAT64_EXACT_BITS:
            self.dtype = np.float64
        else:
            raise UnsupportedFeatureError(
                f"{rule.label}: learning values of {need} bits (weight_bits {spec.weight_bits}, "
                f"learning products of {spec.learn_product_bits} bits, {n_src} sources) exceed "
                f"the 2**{FLOAT64_EXACT_BITS} float64 holds exactly"
            )
        self.keep = (spec.decay_max + 1 - rule.trace.decay) / (spec.decay_max + 1)
        # per-dimension step factor of the update, in mantissa units per (e * x)
        self.factor = -rule.lr_mant.astype(np.float64) * 2.0 ** -rule.lr_shift
        # per target: polarity times 2**weight_shift (float64: the products stay exact)
        self._target_scale = rule.sign * float(1 << self.weight_shift)
        self._dim = np.ascontiguousarray(rule.dim, np.intp)
        # the trace step's constants in the trace's type, made once (the step runs every step)
        self._trace_consts = (self.dtype(self.keep), self.dtype(rule.trace.impulse), self.dtype(spec.trace_max))
        self.reset()

    def reset(self) -> None:
        """Initial weights, empty traces, zero error."""
        # mantissas (|m| <= weight_mant_max) and every product lr_mant * e * x
        # (< 2**learn_product_bits) are exact in self.dtype (see __init__), and scaling
        # by 2**-shift is exact too; float32 is faster than int64
        # stored dimension-major (n_dims x n_src): the per-epoch outer product and
        # update then run along contiguous rows of n_src (faster than rows of n_dims)
        dt = self.dtype
        self.mant = np.ascontiguousarray(self.rule.mant_init.T, dtype=dt)
        self.x = np.zeros(self.mant.shape[1], dt)
        self._delta = np.zeros(self.mant.shape, dt)
        self._error = np.zeros(self.rule.n_dims, np.int64)
        self.saturations = 0
        #: steps whose error reached the chip's limit ``+-error_max`` in some dimension
        #: (the host clipped it, or it was exactly at the limit)
        self.error_clipped_steps = 0
        #: steps whose error was sent (clipped or not)
        self.error_steps = 0
        #: largest ``|e / error_scale|`` before clipping, in error units (``None``: the
        #: path that quantised the errors did not report it; at least ``error_max``
        #: when steps were clipped)
        self.error_peak: float | None = None
        #: counters already reported by a clipping warning (see :meth:`clipping_since`)
        self._reported = (0, 0, 0)
        self._peak_since: float | None = None
        #: weight-update epochs run (the engine visits every synapse, whatever the error)
        self.epochs = 0
        self._u_trace = _Dither(self.x.shape)
        self._u_weight = _Dither(self.mant.shape)

    @property
    def error(self) -> np.ndarray:
        """Error integers of the next update; assigning counts a step (and a clipped one)."""
        return self._error

    @error.setter
    def error(self, e_int: np.ndarray) -> None:
        self._error = e_int
        self.error_steps += 1
        top = self.spec.error_max
        for v in np.asarray(e_int).flat:  # a few dimensions: cheaper than numpy reductions
            if v >= top or v <= -top:
                self.error_clipped_steps += 1
                break

    def load_error(self, e_int: np.ndarray) -> None:
        """Set the error without counting a step (the compiled loop counts its own steps)."""
        self._error = e_int

    def note_error_peak(self, peak: float) -> None:
        """Record a largest ``|e / error_scale|`` (error units, before clipping)."""
        if self.error_peak is None or peak > self.error_peak:
            self.error_peak = float(peak)
        if self._peak_since is None or peak > self._peak_since:
            self._peak_since = float(peak)

    def record_errors(self, steps: int, clipped: int, peak: float) -> None:
        """Counters of errors sent by a compiled loop: steps, clipped steps, largest ``|e|`` (error units)."""
        self.error_steps += int(steps)
        self.error_clipped_steps += int(clipped)
        if steps:
            self.note_error_peak(peak)

    def clipping_since(self) -> tuple | None:
        """``(clipped steps, saturations, steps, largest |error| or None)`` since the last call
        (the largest ``|e|`` in error units, ``None`` if not recorded), or ``None`` if
        nothing clipped or saturated.

        The backend calls it after each run to warn once per run about that run's clipping.
        """
        now = (self.error_clipped_steps, self.saturations, self.error_steps)
        new = tuple(a - b for a, b in zip(now, self._reported))
        peak, self._peak_since = self._peak_since, None
        self._reported = now
        return (*new, peak) if (new[0] or new[1]) else None

    def set_error(self, e_int: np.ndarray) -> None:
        """Error integers for the next update (``|e| <= error_max``)."""
        e = np.asarray(e_int, dtype=np.int64).reshape(self.rule.n_dims)
        if np.abs(e).max(initial=0) > self.spec.error_max:
            raise ValueError(f"{self.rule.label}: error values must lie in +-{self.spec.error_max}")
        self.error = e  # counted like the host's errors

    @property
    def mantissas(self) -> np.ndarray:
        """Current learned mantissas ``M`` (``n_src x n_dims``, int64)."""
        return self.mant.T.astype(np.int64)

    def deliver(self, pre_spikes: np.ndarray) -> np.ndarray | None:
        """Synaptic input of the target compartments from this step's active pre rows."""
        if not pre_spikes.any():
            return None
        # exact: a sum of n_src mantissas of 0/1 spikes, within self.dtype's exact bits
        per_dim = self.mant @ pre_spikes.astype(self.dtype)
        return per_dim[self.rule.dim] * self._target_scale

    def deliver_compiled(self, pre_spikes: np.ndarray, q: np.ndarray) -> None:
        """:meth:`deliver` added into ``q`` (all compartments) by the compiled kernel; same values."""
        _kernel.pes_deliver(self.mant, pre_spikes, self._dim, self._target_scale, q, self.tgt.start)

    def learn_compiled(self, pre_spikes: np.ndarray, rng: np.random.Generator, step: int = 0) -> None:
        """:meth:`learn` by the compiled kernel: the same numbers, draws and counters."""
        offset = self._u_trace.advance(rng)  # (draws the phases on the first call)
        keep, impulse, top = self._trace_consts
        _kernel.pes_trace(self.x, keep, self._u_trace.phase, offset, _DITHER_UNIT, pre_spikes, impulse, top)
        if step % self.rule.epoch:
            return
        self.epochs += 1
        compute = bool(self.error.any())
        offset = self._u_weight.advance(rng)
        if not compute:
            return
        step_v = (self.factor * self.error).astype(self.dtype)
        self.saturations += int(_kernel.pes_update(self.mant, step_v, self.x, self._u_weight.phase, offset,
                                                   _DITHER_UNIT, float(self.spec.weight_mant_max)))

    def learn(self, pre_spikes: np.ndarray, rng: np.random.Generator, step: int = 0) -> None:
        """Trace update with this step's spikes, then (once per epoch) the weight update.

        ``step`` is the chip's step counter; the weights update when it is a multiple
        of the rule's epoch.  Every step draws one uniform per trace and every epoch
        one per weight, whether or not the error is zero, so the random stream does not
        depend on the data.
        """
        s = self.spec
        x = self.x
        x *= self.dtype(self.keep)
        x += self._u_trace.next(rng)
        np.floor(x, out=x)
        fired = pre_spikes.nonzero()[0]
        x[fired] = np.minimum(x[fired] + self.dtype(self.rule.trace.impulse), self.dtype(s.trace_max))
        if step % self.rule.epoch:
            return
        self.epochs += 1
        u = self._u_weight.next(rng, compute=bool(self.error.any()))
        if u is None:
            return
        # rows with x = 0 get floor(u) = 0: no change
        step = (self.factor * self.error).astype(self.dtype)
        delta = np.multiply(step[:, None], x, out=self._delta)
        delta += u
        np.floor(delta, out=delta)
        m = self.mant
        m += delta
        top = s.weight_mant_max
        if m.max() > top or m.min() < -top:
            self.saturations += int(np.count_nonzero((m > top) | (m < -top)))
            np.clip(m, -top, top, out=m)


@dataclass(eq=False)
class PESPlan:
    """A PES connection as mapping describes it, in nengo units, before registers exist.

    The learned group feeds ``2 * k`` decode neurons per dimension; target compartment
    ``t`` decodes dimension ``dim[t]`` with polarity ``sign[t]`` and receives
    ``gain[dim[t]] * sign[t] * D[dim[t], j]`` nengo current per spike of pre ``j``
    (``D`` the decoders PES learns).
    """

    label: str
    learning_rate: float
    n_pre: int
    pre_tau: float
    dim: np.ndarray
    sign: np.ndarray
    gain: np.ndarray
    #: largest |weight| (nengo current per spike) the group must be able to hold
    w_max: float
    #: largest |current| (nengo units) the learned input may drive into a target
    current_max: float
    #: nengo error value per error unit, per dimension
    error_scale: np.ndarray
    #: steps per weight update
    epoch: int = 1


def make_rule(plan: PESPlan, mant_init: np.ndarray, exponent: int, to_int: float, dt: float,
              spec: ChipSpec = LOIHI_V1) -> PESRule:
    """Chip registers of ``plan`` for a group with weight ``exponent``.

    ``to_int`` turns a nengo weight into integer units of the targets (``du/dt * c``,
    equal for all targets of the group).  The learning rate per dimension is, in
    mantissa units per (error unit x trace unit), ``kappa * dt / n_pre * gain * to_int
    / 2**(6+e) * error_scale * rate_per_unit`` (nengo's PES step ``-kappa * dt / n *
    e * x`` on the decoders), times the epoch (steps per update).
    """
    trace = trace_registers(plan.pre_tau, dt, spec)
    rate = (plan.learning_rate * dt / plan.n_pre * plan.gain * to_int / 2.0 ** (spec.weight_shift + exponent)
            * plan.error_scale * trace.rate_per_unit * plan.epoch)
    mant, shift = learning_rate_registers(rate, spec)
    rule = PESRule(plan.label, len(plan.gain), np.asarray(plan.dim, np.int64), np.asarray(plan.sign, np.int64),
                   np.asarray(mant_init, np.int64), trace, mant, shift, np.asarray(plan.error_scale, float),
                   int(plan.epoch))
    lost = np.flatnonzero((mant == 0) & (rate > 0))
    if lost.size:
        rule.notes.append(f"learning rate of {lost.size} dimension(s) rounds to 0: they do not learn")
    achieved = mant * 2.0 ** -shift
    nz = rate > 0
    if nz.any():
        rel = float(np.abs(achieved[nz] - rate[nz]).max() / rate[nz].max())
        rule.notes.append(f"learning-rate quantisation error up to {rel:.2%} of the largest rate")
    return rule

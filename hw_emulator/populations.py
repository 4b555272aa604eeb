"""From populations in nengo units to chip blocks and synapse groups (numpy only).

The mapping stage (:mod:`nhw.backends.loihi_emu.mapping`) collects, per on-chip
population, its neuron model, bias and incoming weights in nengo units; this module chooses each compartment's voltage scale,
discretises everything (``SPEC.md`` section 3) and creates the chip objects.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nhw.errors import DiscretizationError

from . import discretize as dz
from .blocks import ChipNetwork, CompartmentBlock, InputAxons, SynapseGroup
from .chip import ChipSpec
from .learning import PESPlan, make_rule
from .neurons import NeuronKind, NeuronParams
from .shared_synapses import SharedSynapseGroup
from .sparse import SparseWeights


@dataclass(eq=False)
class Population:
    """A future block: parameters in nengo units plus incoming synapses ``(source, W_j, tau, owner)``.

    ``W_j[i, j]`` is the nengo current into neuron ``i`` per spike (amplitude 1/dt) of source ``j``.
    """

    label: str
    owner: Any
    kind: NeuronKind
    params: NeuronParams
    n: int
    bias: np.ndarray  # nengo current units
    amplitude: float = 1.0
    incoming: list = field(default_factory=list)  # (source, W_j, tau, owner)
    v_init_frac: np.ndarray | None = None
    hold_init: np.ndarray | None = None
    block: CompartmentBlock | None = None
    #: one voltage scale for the whole block (learned weights are shared across targets)
    uniform_scale: bool = False
    #: incoming learning groups: owner -> :class:`~nhw.hw_emulator.learning.PESPlan`
    learning: dict = field(default_factory=dict)


def weight_ints(pop: "Population", w_j: np.ndarray, tau: float, c: Any, dt: float, spec: ChipSpec) -> np.ndarray:
    """Integer-unit weights ``n_tgt x n_src``; ``c`` is the per-step input scale (per neuron).

    ``w_j`` may be dense or :class:`~nhw.hw_emulator.sparse.SparseWeights` (kept sparse).
    """
    du = (dz.decay_u_register(tau, dt, spec) + 1) / (spec.decay_max + 1)
    c = np.asarray(c, dtype=np.float64)
    if isinstance(w_j, SparseWeights):
        return w_j.scale_rows(du / dt * c)
    return w_j * (du / dt * (c[:, None] if c.ndim else c))


def _row_abs_max(w) -> np.ndarray:
    return w.row_abs_max() if isinstance(w, SparseWeights) else np.abs(w).max(axis=1, initial=0.0)


def _row_sum(w, scale: float = 1.0) -> np.ndarray:
    return w.row_sum() * scale if isinstance(w, SparseWeights) else (w * scale).sum(axis=1)


def _row_sign_sums(w) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(w, SparseWeights):
        return w.row_sign_sums()
    return np.clip(w, 0, None).sum(axis=1), -np.clip(w, None, 0).sum(axis=1)

def make_blocks(pop: "Population", chip: ChipNetwork, dt: float, spec: ChipSpec) -> None:
    """Create the soma block (and dendrite blocks) of ``pop`` in ``chip``; sets ``pop.block``."""
    s, p = spec, pop.params
    s0 = p.voltage_scale
    # Per neuron, shrink S (= vth) by a power of two until its bias and every
    # incoming weight fit their formats.  Per-neuron scales keep one extreme
    # neuron (e.g. an intercept near 1, hence a huge gain and bias) from
    # coarsening the whole block; weights into such a neuron scale with its gain,
    # so its column needs the smaller S anyway.
    limit_w = s.weight_mant_max * 2.0 ** (s.weight_shift + s.weight_exp_max)
    need = np.ones(pop.n)
    for _, w_j, tau, owner in pop.incoming:
        plan = pop.learning.get(owner)
        w_env = w_j if plan is None else np.full(w_j.shape, plan.w_max)
        m = _row_abs_max(weight_ints(pop, w_env, tau, s0 * p.step_gain, dt, spec))
        need = np.maximum(need, m / limit_w)
    need = np.maximum(need, np.abs(pop.bias) * s0 * p.step_gain / s.bias_max)
    # keep u within its 24 bits when every source fires at its top rate (the
    # signed sum: decoded weights mostly cancel, one-signed weights do not)
    # likewise q (22 bits) when every source of one sign spikes in the same step
    # (for q the signed sum is not enough: with dense random weights the excitatory
    # half of the sources spiking together wrapped q hundreds of times a run)
    ubound, qbound = np.zeros(pop.n), np.zeros(pop.n)
    for src, w_j, tau, owner in pop.incoming:
        plan = pop.learning.get(owner)
        if plan is not None:
            # learned weights decode a bounded value: the current stays near plan.current_max
            ubound += plan.current_max * s0 * p.step_gain
            qbound += plan.current_max * s0 * p.step_gain
            continue
        du = (dz.decay_u_register(tau, dt, s) + 1) / (s.decay_max + 1)
        burst = src.max_count if isinstance(src, InputAxons) else 1.0
        rate = burst if isinstance(src, InputAxons) else 1.0 / src.params.refractory_delay
        w_int = weight_ints(pop, w_j, tau, s0 * p.step_gain, dt, spec)
        pos, neg = _row_sign_sums(w_int)
        if isinstance(src, InputAxons):
            # on/off pairs carry opposite weights and never fire together
            ubound += (pos + neg) * burst / 2 / du
            qbound += (pos + neg) * burst / 2
        else:
            ubound += _row_sum(w_int, rate) / du
            qbound += np.maximum(pos, neg) * burst
    need = np.maximum(need, np.abs(ubound) / (s.u_max / 2))
    need = np.maximum(need, qbound / (s.q_max / 2))
    shrink = 2.0 ** np.ceil(np.log2(need))
    if p.min_voltage != 0 or pop.uniform_scale:
        shrink[:] = shrink.max()  # one vth per block: vmin (per core) is relative to it
    scale = np.maximum(np.floor(s0 / shrink), 1 << s.vth_shift)
    vth_m = np.round(scale / (1 << s.vth_shift)).astype(np.int64)
    if vth_m.max() > s.vth_mant_max:
        dz.vth_register(float(scale.max()), s)  # raises with the offending value
    vth = vth_m << s.vth_shift
    c = vth * p.step_gain
    _, vmax = dz.vmax_register(int(vth.max()), s)
    vmin = s.v_min_limit if not np.isfinite(p.min_voltage) else max(int(round(p.min_voltage * vth.max())), s.v_min_limit)
    bm, be, n_clip = dz.bias_registers(pop.bias * c, s)
    taus = Counter(t for _, _, t, _ in pop.incoming)
    soma_tau = taus.most_common(1)[0][0] if taus else 0.0
    q = dz.QuantizationReport(pop.label, int(vth.max()), float(c.max()), decay_v=p.decay_v,
                              refractory_delay=p.refractory_delay, vth_mantissa=int(vth_m.max()),
                              bias_clipped=n_clip, bias_exponents=sorted(set(int(e) for e in be)))
    n_shrunk = int(np.count_nonzero(shrink > 1))
    if n_shrunk:
        q.notes.append(f"{n_shrunk} of {pop.n} compartments use a smaller vth (down to "
                       f"{int(vth.min())}) so that their bias and weights fit")
    if n_clip:
        q.notes.append(f"{n_clip} bias values clipped to +-{s.bias_max}")
    v_init = None if pop.v_init_frac is None else np.clip((pop.v_init_frac * vth).astype(np.int64), vmin, vth)
    pop.block = chip.add_block(CompartmentBlock(
        pop.label, pop.n, dz.decay_u_register(soma_tau, dt, s), p.decay_v, vth, bm, be,
        p.refractory_delay, vmin, vmax, owner=pop.owner, spec=s, quant=q, voltage_scale=vth.astype(float),
        current_scale=c.astype(float), v_init=v_init, hold_init=pop.hold_init,
    ))
    q.decay_u.append({"tau": soma_tau, "decay_u": int(pop.block.decay_u[0]), "compartment": "soma"})
    pop.dendrites = {soma_tau: pop.block}
    for tau in sorted(t for t in taus if t != soma_tau):
        reg = dz.decay_u_register(tau, dt, s)
        pop.dendrites[tau] = chip.add_block(CompartmentBlock(
            f"{pop.label}.dendrite[tau={tau:g}]", pop.n, reg, s.decay_max, vth, 0, 0, 1, 0, vmax,
            parent=pop.block, owner=pop.owner, spec=s, voltage_scale=vth.astype(float),
        ))
        q.decay_u.append({"tau": tau, "decay_u": reg, "compartment": "dendrite"})
    pop.scale = c

def make_group(src: Any, pop: "Population", w_j: np.ndarray, tau: float, owner: Any, owner_name: str,
           chip: ChipNetwork, dt: float, spec: ChipSpec) -> None:
    """Quantise ``w_j`` (nengo units) into one synapse group from ``src`` into ``pop``."""
    if owner in pop.learning:
        _make_learning_group(src, pop, w_j, tau, owner, owner_name, chip, dt, spec)
        return
    target = pop.dendrites[tau]
    if isinstance(w_j, SparseWeights):
        _make_shared_group(src, pop, w_j, tau, owner, owner_name, chip, dt, spec)
        return
    w_int = weight_ints(pop, w_j, tau, pop.scale, dt, spec).T  # n_src x n_tgt
    rows = np.flatnonzero(np.any(w_int != 0, axis=1))
    if rows.size == 0:
        return
    if rows.size > 0.9 * w_int.shape[0]:
        rows = np.arange(w_int.shape[0])  # keep the source contiguous (a slice per step)
    wq = dz.quantize_weights(w_int[rows], spec)
    source = src if isinstance(src, InputAxons) else src.block
    label = f"{owner_name}[{source.label}->{target.label}]"
    if wq.n_clipped:
        _check_clipping(label, pop, wq, np.abs(w_int[rows]), np.asarray(w_j), rows, spec)
    g = SynapseGroup(label, source, target, wq.mantissa, wq.exponent, src_index=rows, owner=owner,
                     quant=wq, spec=spec)
    chip.add_group(g)
    pop.block.quant.synapse_groups[label] = wq


#: Largest ratio of a weight to the largest the format holds that is only warned
#: about: up to this factor a clipped weight keeps at least half its size (one bit
#: of magnitude lost; the current it drives lasts ``tau * ln(ratio)`` shorter);
#: beyond it quantisation would run a different network, and mapping stops.
#: (nengo-loihi refuses any weight that needs an exponent beyond the format.)
CLIP_ERROR_RATIO = 2.0
#: Clipping by less than this ratio is within the rounding of the 8-bit mantissa
#: (the largest weight's own rounding error is up to 0.2%) and is not reported.
CLIP_WARN_RATIO = 1.01


def _check_clipping(label: str, pop: Population, wq: dz.WeightQuantization, w_int_abs: np.ndarray,
                    w_nengo, rows, spec: ChipSpec) -> None:
    """Warn about (or refuse) weights that quantisation clipped at the format's limit.

    ``w_int_abs`` are the group's integer-unit magnitudes (``n_src x n_tgt``, or flat
    for a shared group), ``w_nengo`` the same weights in nengo units (``n_tgt x n_src``
    dense, or flat values in the order of ``w_int_abs``), ``rows`` the source rows kept.
    """
    top = spec.weight_mant_max * wq.scale  # largest representable integer-unit weight
    k = int(np.argmax(w_int_abs))
    ratio = float(w_int_abs.flat[k]) / top
    if ratio <= CLIP_WARN_RATIO:
        return
    # the worst weight in nengo units (its target's scale converts the limit)
    if w_int_abs.ndim == 2:
        j, i = np.unravel_index(k, w_int_abs.shape)
        w_big = float(w_nengo[i, rows[j]]) if w_nengo is not None and np.ndim(w_nengo) == 2 else float("nan")
    else:
        w_big = float(w_nengo.flat[k]) if w_nengo is not None else float("nan")
    limit = abs(w_big) / ratio
    rel = 1.0 - 1.0 / ratio
    fails = ratio > CLIP_ERROR_RATIO
    msg = (f"synapse group {label!r}: {wq.n_clipped} weight(s) exceed the chip's weight format, with the "
           f"threshold of block {pop.label!r} already lowered to vth {int(np.min(pop.block.vth))}; the "
           f"largest, {abs(w_big):.4g} (nengo current per spike: transform x post gain), is {ratio:.3g}x the "
           f"largest representable ({limit:.4g}, mantissa {spec.weight_mant_max} x "
           f"2**{spec.weight_shift + wq.exponent} chip units) and {'would be' if fails else 'is'} clipped to "
           f"it (relative error {rel:.1%})")
    if fails:
        raise DiscretizationError(
            msg + f". Clipping by more than {CLIP_ERROR_RATIO:g}x would run a different network; scale the "
            "connection's transform down (the chip cannot hold it), or run it on 'reference'.")
    pop.block.quant.notes.append(f"{label}: {wq.n_clipped} weight(s) clipped, the largest by {ratio:.3g}x")
    warnings.warn(msg + "; the connection acts weaker than in nengo.", stacklevel=2)


def _make_shared_group(src: Any, pop: "Population", w_j: SparseWeights, tau: float, owner: Any,
                       owner_name: str, chip: ChipNetwork, dt: float, spec: ChipSpec) -> None:
    """Quantise sparse weights with population axons into one shared-list synapse group."""
    target = pop.dendrites[tau]
    w_int = weight_ints(pop, w_j, tau, pop.scale, dt, spec)
    if w_int.nnz == 0:
        return
    wq = dz.quantize_weights(w_int.vals, spec)
    source = src if isinstance(src, InputAxons) else src.block
    label = f"{owner_name}[{source.label}->{target.label}] (shared)"
    if wq.n_clipped:
        _check_clipping(label, pop, wq, np.abs(w_int.vals), np.asarray(w_j.vals), None, spec)
    g = SharedSynapseGroup.from_coo(label, source, target, w_int.cols, w_int.rows, wq.mantissa, wq.exponent,
                                    w_j.axon_of, w_j.atom_of, owner=owner, quant=wq, spec=spec)
    chip.add_group(g)
    pop.block.quant.synapse_groups[label] = wq


def _make_learning_group(src: Any, pop: "Population", w_j: np.ndarray, tau: float, owner: Any,
                         owner_name: str, chip: ChipNetwork, dt: float, spec: ChipSpec) -> None:
    """A PES group: exponent sized for the plan's ``w_max``, one mantissa per (pre, dimension)."""
    plan: PESPlan = pop.learning[owner]
    target = pop.dendrites[tau]
    du = (dz.decay_u_register(tau, dt, spec) + 1) / (spec.decay_max + 1)
    to_int = du / dt * float(np.max(pop.scale))  # uniform_scale: one c for the block
    e = dz.weight_exponent(plan.w_max * to_int, spec)
    scale = dz.weight_scale(e, spec)
    w_int = w_j.T * to_int  # n_src x n_tgt
    # dimension i's mantissas, read from its first "on" target
    first_on = np.array([np.flatnonzero((plan.dim == i) & (plan.sign > 0))[0] for i in range(len(plan.gain))])
    ideal = w_int[:, first_on] / scale
    top = spec.weight_mant_max
    mant = np.clip(np.round(ideal), -top, top).astype(np.int64)
    rule = make_rule(plan, mant, e, to_int, dt, spec)
    expanded = plan.sign[None, :] * mant[:, plan.dim]
    err = np.abs(mant - ideal) * scale
    wq = dz.WeightQuantization(
        expanded.astype(spec.weight_mant_dtype), e, scale, int(np.count_nonzero(np.abs(np.round(ideal)) > top)),
        int(np.count_nonzero((mant == 0) & (ideal != 0))), 0.0,
        float(err.max() / (plan.w_max * to_int)) if err.size else 0.0,
    )
    source = src.block
    label = f"{owner_name}[{source.label}->{target.label}] (PES)"
    chip.add_group(SynapseGroup(label, source, target, wq.mantissa, e, owner=owner, quant=wq, spec=spec,
                                learning=rule))
    pop.block.quant.synapse_groups[label] = wq
    pop.block.quant.notes.extend(f"{label}: {n}" for n in rule.notes)

"""Vectorised integer run loop of the chip (the executable form of ``SPEC.md``).

All compartments of all cores live in flat arrays; the per-step work is a fixed
number of whole-array integer operations plus one row-gather-and-sum per synapse
group whose source spiked.  No Python loop runs over neurons or synapses.
"""

from __future__ import annotations

import numpy as np

from nhw.errors import UnsupportedFeatureError

from .blocks import ChipNetwork, CompartmentBlock, InputAxons
from .chip import FLOAT32_EXACT_BITS, FLOAT64_EXACT_BITS, ChipSpec
from .compiled_run import KERNELS, CompiledRun, choose_kernel
from .discretize import effective_weights
from .learning import LearnedWeights
from .synapse_tables import (
    GroupView,
    deliver,
    distinct_rows,
    synapse_runs,
    synapse_table,
)

# choose_kernel and KERNELS live with the compiled run; importable from here as before
__all__ = ["KERNELS", "Emulator", "choose_kernel", "decay", "wrap"]


def wrap(x: np.ndarray, bits: int) -> np.ndarray:
    """Two's-complement wrap of int64 values to a signed ``bits``-bit range."""
    half = np.int64(1 << (bits - 1))
    return ((x + half) & np.int64((1 << bits) - 1)) - half


def decay(x: np.ndarray, keep: np.ndarray, shift: int) -> np.ndarray:
    """``sign(x) * floor(|x| * keep / 2**shift)`` on int64 (rounds toward zero)."""
    m = (np.abs(x) * keep) >> shift
    return np.where(x < 0, -m, m)


class Emulator(CompiledRun):
    """Runs a :class:`~nhw.hw_emulator.blocks.ChipNetwork` step by step.

    Parameters
    ----------
    net
        The chip program.
    dense_min_size
        Synapse groups with at least this many (mostly nonzero) weights are delivered
        by summing dense weight rows; ``None`` puts every synapse in the sparse table.
        Both paths give identical integers.
    seed
        Seed of the learning engine's stochastic rounding (only learning groups use it).
    kernel
        ``"numba"``: each step (and a run of steps without learning or recorded
        state) is one compiled loop (:mod:`.kernel`); ``"numpy"``: whole-array numpy
        passes (default here; the loihi-emu Simulator defaults to ``"auto"``);
        ``"auto"``: numba when installed.  Both give identical integers; the one in
        use is :attr:`kernel`.  ``dense_min_size`` only shapes the numpy step.
    """

    def __init__(self, net: ChipNetwork, dense_min_size: int | None = 4096, seed: int = 0,
                 kernel: str = "numpy") -> None:
        self.net = net
        self.seed = int(seed)
        #: the step implementation in use (``"numba"`` or ``"numpy"``)
        self.kernel = choose_kernel(kernel)
        self.spec: ChipSpec = net.spec
        s = self.spec
        if not s.float64_state_exact:
            raise UnsupportedFeatureError(
                f"chip spec {s.name!r}: u/v of {s.u_bits}/{s.v_bits} bits with {s.decay_bits}-bit decays "
                f"need {s.decay_product_bits}-bit products (bias up to {s.bias_max}); the emulator's "
                f"float64 state holds integers exactly only up to 2**{FLOAT64_EXACT_BITS}"
            )
        self.offsets: dict = {}
        off = 0
        for b in net.blocks:
            self.offsets[b] = off
            off += b.n
        self.n = off
        self.input_offsets: dict = {}
        hoff = 0
        for a in net.inputs:
            self.input_offsets[a] = hoff
            hoff += a.n
        self.n_inputs = hoff

        cat = lambda attr, dt: (  # noqa: E731
            np.concatenate([np.asarray(getattr(b, attr)) for b in net.blocks]).astype(dt)
            if net.blocks else np.zeros(0, dt)
        )
        self.keep_u = (s.decay_max - cat("decay_u", np.int64)).astype(np.int64)
        self.keep_v = (s.decay_max + 1 - cat("decay_v", np.int64)).astype(np.int64)
        self.vth = cat("vth", np.int64)
        self.bias = np.concatenate([b.bias for b in net.blocks]) if net.blocks else np.zeros(0, np.int64)
        self.ref_delay = cat("refractory_delay", np.int64)
        self.vmin = np.concatenate([np.full(b.n, b.vmin, np.int64) for b in net.blocks]) if net.blocks else np.zeros(0, np.int64)
        self.vmax = np.concatenate([np.full(b.n, b.vmax, np.int64) for b in net.blocks]) if net.blocks else np.zeros(0, np.int64)
        spiking = [np.full(b.n, not b.is_dendrite) for b in net.blocks]
        self.spiking = np.concatenate(spiking) if spiking else np.zeros(0, bool)
        child, parent = [], []
        for b in net.blocks:
            if b.is_dendrite:
                child.append(np.arange(b.n) + self.offsets[b])
                parent.append(np.arange(b.n) + self.offsets[b.parent])
        self.join_child = np.concatenate(child) if child else None
        self.join_parent = np.concatenate(parent) if parent else None
        # a dendrite's own v is never used: keep it at 0 so it costs nothing
        self.groups = [
            GroupView(
                g,
                self.input_offsets[g.source] if isinstance(g.source, InputAxons) else self.offsets[g.source],
                self.offsets[g.target],
                isinstance(g.source, InputAxons),
            )
            for g in net.groups
        ]
        self._q_max, self._q_min = s.q_max, s.q_min
        self._u_half = np.int64(1 << (s.u_bits - 1))
        self._u_mask = np.int64((1 << s.u_bits) - 1)
        self._v_nonneg = bool(np.all(self.vmin >= 0))
        self._has_dendrites = self.join_child is not None
        self._ref_reset = self.ref_delay - 1
        # The state lives in float64 holding integers: |u|, |v| < 2**accumulator_bits
        # and |x| * keep < 2**decay_product_bits (checked above against 2**53), so
        # products, the power-of-two scaling and trunc (round toward zero, the chip's
        # sign(x) * floor(|x| * keep / 2**decay_bits)) are exact, and float64 passes
        # are faster than the int64 ones (abs/shift/sign).
        self._bias_f = self.bias.astype(np.float64)
        self._vth_f = self.vth.astype(np.float64)
        # scalars when uniform: cheaper than broadcasting whole arrays every step
        uniform = lambda a: a[0] if a.size and np.all(a == a[0]) else a  # noqa: E731
        self._vmin_c, self._vmax_c = uniform(self.vmin.astype(np.float64)), uniform(self.vmax.astype(np.float64))
        self._u_max, self._u_min = s.u_max, s.u_min
        # u and v live in one array so the shared decay runs once over both
        self._keep = np.concatenate([self.keep_u, self.keep_v]) / float(1 << s.decay_bits)
        # big, mostly dense chip-to-chip groups (e.g. neuron-to-neuron weights of
        # decoded connections) deliver by summing whole weight rows; the rest go
        # through one table of all remaining synapses
        self._dense = []
        rest = []
        # learning groups change their weights every step: delivered from their own state
        self.learned = {}
        for g in self.groups:
            if g.group.learning is not None:
                if g.src_slice is None or not isinstance(g.tgt, slice) or g.from_input:
                    raise ValueError(f"{g.group.label}: a learning group needs contiguous chip source and target")
                self.learned[g.group.learning] = (g, LearnedWeights(
                    g.group.learning, g.src_slice, g.tgt, s.weight_shift + g.group.exponent, s))
                continue
            if (g.w is not None and isinstance(g.tgt, slice)
                    and dense_min_size is not None and dense_min_size <= g.w.size <= 4_000_000
                    and np.count_nonzero(g.w) >= 0.5 * g.w.size):
                # index into the activity vector [chip spikes | host counts]
                off = self.n if g.from_input else 0
                src = (slice(g.src_slice.start + off, g.src_slice.stop + off)
                       if g.src_slice is not None else g.src + off)
                # Exact in float32 up to max_exact_row_spikes() row-spikes (every
                # weight of a group is a multiple of one power of two with a mantissa
                # of at most weight_mant_max; see ChipSpec), else in float64 (the
                # sums are then bounded by max_abs_weight_sum, checked below).
                burst = g.group.source.max_count if g.from_input else 1
                if self.kernel == "numba":
                    # the compiled step sums in float64 from float32 weights: exact whenever
                    # every weight is a float32 (mantissas of at most 24 bits)
                    dt = np.float32
                    if not np.array_equal(g.w.astype(np.float32).astype(np.int64), g.w):
                        rest.append(g)
                        continue
                else:
                    dt = (np.float32 if g.w.shape[0] * burst <= s.max_exact_row_spikes(FLOAT32_EXACT_BITS)
                          else np.float64)
                self._dense.append((src, g.tgt, *distinct_rows(g.w, dt), g.from_input))
            else:
                rest.append(g)
        if self.kernel == "numba":
            self._table, self._runs = None, synapse_runs(rest, self.n, self.n_inputs)
            self._has_row = np.zeros(self.n + self.n_inputs, bool)
        else:
            self._table, self._has_row = synapse_table(rest, self.n, self.n_inputs)
            self._table_chip_rows = bool(self._has_row[: self.n].any())
        self._q_can_wrap, self._u_can_wrap = self._overflow_possible()
        if self.kernel == "numba":
            self._setup_kernel()
        self.reset()

    def _overflow_possible(self) -> tuple[bool, bool]:
        """Whether q or u can leave their ranges at all (if not, skip the wrap passes).

        ``|q|`` is at most the sum of a compartment's absolute incoming weights times
        the largest per-step count of each source; ``|u|`` is then at most
        ``max|q| * 2**decay_bits / (decayU + 1)`` (a geometric series).  The skip is
        exact: the wrap would be the identity.

        Raises
        ------
        UnsupportedFeatureError
            ``max|q|`` exceeds ``spec.max_abs_weight_sum``, where float64 delivery
            would no longer be exact.
        """
        qmax = np.zeros(self.n)
        s = self.spec
        for g in self.groups:
            mult = g.group.source.max_count if g.from_input else 1
            if g.group.learning is not None:  # learned weights may reach the mantissa limit
                w = np.full(g.w.shape, float(effective_weights(s.weight_mant_max, g.group.exponent, s)))
                col = np.abs(w).sum(axis=0) * mult
            else:
                col = g.col_abs_sum() * mult
            if isinstance(g.tgt, slice):
                qmax[g.tgt] += col
            else:
                np.add.at(qmax, g.tgt, col)
        # every partial sum of q (float64, any delivery path) is at most qmax: exact
        # while qmax stays below max_abs_weight_sum (qmax itself is a float64 sum of
        # nonnegative terms, so it rounds only when it is far above that bound)
        if qmax.max(initial=0) > s.max_abs_weight_sum:
            i = int(np.argmax(qmax))
            raise UnsupportedFeatureError(
                f"chip spec {s.name!r}: compartment {i} can receive |q| up to {qmax[i]:.4g} in one "
                f"step, beyond the {s.max_abs_weight_sum} the emulator's float64 delivery adds "
                f"exactly ({s.weight_bits}-bit weight mantissas)"
            )
        q_wrap = bool(qmax.max(initial=0) > s.q_max)
        ubound = np.minimum(qmax, s.q_max + 1) * (s.decay_max + 1) / (s.decay_max + 1 - self.keep_u)
        return q_wrap, bool(ubound.max(initial=0) > s.u_max)

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Zero all state and counters (time step 0)."""
        n = self.n
        self._x = np.zeros(2 * n)  # [u | v], integers in float64 (exact, see __init__)
        self._hold = np.zeros(n, np.int64)  # last step of the refractory hold
        self._act = np.zeros(n + self.n_inputs, np.int64)  # [spikes of t-1 | host counts]
        self.spikes = np.zeros(n, bool)
        self.spike_count = np.zeros(n, np.int64)
        self.active_count = np.zeros(n, np.int64)
        self.input_count = np.zeros(self.n_inputs, np.int64)
        #: steps in which each compartment's u wrapped (the chip wraps silently;
        #: the backend turns a nonzero count into a warning)
        self.u_overflows = np.zeros(n, np.int64)
        self.q_overflows = 0
        self.n_steps = 0
        self.rng = np.random.Generator(np.random.PCG64(self.seed))
        for _, lw in self.learned.values():
            lw.reset()
        for b in self.net.blocks:
            if b.v_init is not None:
                self._x[self.n:][self.slice_of(b)] = np.asarray(b.v_init, dtype=np.int64)
            if b.hold_init is not None:
                self._hold[self.slice_of(b)] = np.asarray(b.hold_init, dtype=np.int64)

    @property
    def u(self) -> np.ndarray:
        """Current ``u`` of every compartment (int64 copy)."""
        return self._x[: self.n].astype(np.int64)

    @property
    def v(self) -> np.ndarray:
        """Voltage ``v`` of every compartment (int64 copy)."""
        return self._x[self.n:].astype(np.int64)

    def voltages(self, sl: slice) -> np.ndarray:
        """Voltages of compartments ``sl`` without copying all of ``v`` (integers in float64)."""
        return self._x[self.n + sl.start:self.n + sl.stop]

    def currents(self, sl: slice) -> np.ndarray:
        """Input ``u + bias`` of compartments ``sl`` as this step's voltage update used it
        (dendrites joined into their soma; integers in float64)."""
        u = self._x[: self.n]
        if self._has_dendrites:
            u = u.copy()
            np.add.at(u, self.join_parent, self._x[self.join_child])
        return u[sl] + self._bias_f[sl]

    def state(self, attr: str, sl: slice) -> np.ndarray:
        """``"voltage"`` or ``"input"`` (current) of compartments ``sl``."""
        return self.voltages(sl) if attr == "voltage" else self.currents(sl)

    @property
    def refractory(self) -> np.ndarray:
        """Steps each compartment will still be held at ``v = 0``."""
        return np.maximum(self._hold - self.n_steps, 0)

    def slice_of(self, block: CompartmentBlock) -> slice:
        """Global index range of ``block``'s compartments."""
        o = self.offsets[block]
        return slice(o, o + block.n)

    def input_slice(self, axons: InputAxons) -> slice:
        """Global index range of host input axons ``axons``."""
        o = self.input_offsets[axons]
        return slice(o, o + axons.n)

    def set_voltage(self, block: CompartmentBlock, v: np.ndarray) -> None:
        """Set voltages of ``block`` (e.g. staggered phases)."""
        self._x[self.n:][self.slice_of(block)] = np.asarray(v, dtype=np.int64)

    # ------------------------------------------------------------------- step
    def step(self, host_counts: np.ndarray | None = None, count_inputs: bool = True,
             count_spikes: bool = True) -> np.ndarray:
        """Advance one time step; returns the boolean spike vector of this step.

        Parameters
        ----------
        host_counts
            Spike counts per host input axon for this step (int, length
            ``n_inputs``), or ``None`` for no host input.

        Notes
        -----
        The order is that of ``SPEC.md``: deliver (spikes of step t-1, host spikes of
        step t) -> q (q_bits wrap) -> u decay + q (u_bits wrap) -> dendrite joins ->
        u2 = u + bias -> v decay + u2 (clip) -> refractory hold -> threshold, reset.
        Operations are in place so a step is a fixed, small number of array passes.
        """
        if self.kernel == "numba":
            return self._step_compiled(host_counts, count_inputs, count_spikes)
        s, n = self.spec, self.n
        t, act = self._begin_step(host_counts, count_inputs)
        # decay u and v together: sign(x) * floor(|x| * keep / 2**decay_bits), exact (see __init__)
        a = self._x * self._keep
        np.trunc(a, out=a)
        u, v = a[:n], a[n:]
        q = None
        if self._table is not None:
            if self._table_chip_rows:
                idx = act.nonzero()[0]
                idx = idx[self._has_row[idx]]  # sources whose synapses all sit in dense groups
            else:
                idx = act[n:].nonzero()[0] + n  # only host axons use the table
            if idx.size:
                q = deliver(self._table, idx, act[idx] if self.n_inputs else None, n)
        prev = self.spikes  # chip spikes of step t-1 (bool: faster to scan than act)
        for src, tgt, rowmap, w, counted in self._dense:
            a_src = act[src] if counted else prev[src]
            idx = a_src.nonzero()[0]
            if idx.size:
                if rowmap is not None:  # spikes per distinct row, then one small product
                    c = np.bincount(rowmap[idx], a_src[idx] if counted else None, len(w))
                    d = c.astype(w.dtype) @ w
                elif counted:  # host axons carry counts; the dot stays exact (see __init__)
                    # gathering the active rows pays only when few are active
                    d = (a_src[idx].astype(w.dtype) @ w[idx] if 4 * idx.size < len(w)
                         else a_src.astype(w.dtype) @ w)
                else:
                    d = w[idx].sum(axis=0)
                if q is None and tgt.start == 0 and tgt.stop == n:
                    q = d.astype(np.float64)
                else:
                    if q is None:
                        q = np.zeros(n)
                    q[tgt] += d
        for g, lw in self.learned.values():
            d = lw.deliver(prev[g.src_slice])
            if d is not None:
                if q is None:
                    q = np.zeros(n)
                q[g.tgt] += d
        if q is not None:
            if self._q_can_wrap and (q.max() > self._q_max or q.min() < self._q_min):
                self.q_overflows += int(np.count_nonzero((q > self._q_max) | (q < self._q_min)))
                q = wrap(q.astype(np.int64), s.q_bits)
            u += q
        if self._u_can_wrap and (u.max() > self._u_max or u.min() < self._u_min):
            # (in range, the wrap is the identity and is skipped)
            self.u_overflows += (u > self._u_max) | (u < self._u_min)
            ui = u.astype(np.int64)
            ui += self._u_half  # two's-complement wrap to u_bits
            ui &= self._u_mask
            ui -= self._u_half
            u[:] = ui
        if self._has_dendrites:
            # multi-compartment join: each dendrite's current adds to its soma
            uj = u.copy()
            np.add.at(uj, self.join_parent, u[self.join_child])
            v += uj
        else:
            v += u
        v += self._bias_f
        np.maximum(v, self._vmin_c, out=v)
        np.minimum(v, self._vmax_c, out=v)
        v *= self._hold < t  # refractory compartments are held at 0
        spk = v > self._vth_f  # held compartments are at 0 < vth, so they cannot spike
        if self._has_dendrites:
            spk &= self.spiking
        fired = spk.nonzero()[0]  # few: index writes beat whole-array masked passes
        if fired.size:
            v[fired] = 0
            self._hold[fired] = self._ref_reset[fired] + t
            if count_spikes:
                self.spike_count[fired] += 1
        self._x = a
        for g, lw in self.learned.values():
            lw.learn(spk[g.src_slice], self.rng, t)
        act[:n] = spk
        self.spikes = spk
        self.active_count += v != 0
        return spk

    def _begin_step(self, host_counts: np.ndarray | None, count_inputs: bool) -> tuple[int, np.ndarray]:
        """Advance the step counter and load this step's host spikes; returns ``(t, act)``."""
        n = self.n
        self.n_steps += 1
        act = self._act
        if self.n_inputs:
            if host_counts is None:
                act[n:] = 0
            else:
                act[n:] = host_counts
                if count_inputs:
                    self.input_count += host_counts
        return self.n_steps, act

    def run(self, steps: int, host_counts: np.ndarray | None = None, record: np.ndarray | None = None,
            record_v: list | None = None) -> tuple[np.ndarray, list]:
        """Run ``steps`` steps; returns spikes of compartments ``record`` and voltages.

        Parameters
        ----------
        steps
            Number of steps.
        host_counts
            ``steps x n_inputs`` spike counts of host axons, or ``None``.
        record
            Global compartment indices whose spikes to return (``steps x len``).
        record_v
            Slices of compartments whose voltages to return (one array each), or
            ``(attr, slice)`` pairs for :meth:`state` (``"voltage"`` or ``"input"``).
        """
        record = np.zeros(0, np.intp) if record is None else np.asarray(record, np.intp)
        # all spikes are kept (one copy per step) and counted/selected once at the end
        full = np.zeros((steps, self.n), bool)
        what = [("voltage", r) if isinstance(r, slice) else r for r in (record_v or [])]
        volts = [np.zeros((steps, sl.stop - sl.start), np.int64) for _, sl in what]
        if host_counts is not None:
            self.input_count += np.asarray(host_counts).sum(axis=0)
        if self.kernel == "numba" and not self.learned and not what and steps:
            self._run_compiled(steps, host_counts, full)  # the whole run is one compiled loop
            self.spike_count += full.sum(axis=0)
            return full[:, record], volts
        for i in range(steps):
            full[i] = self.step(None if host_counts is None else host_counts[i], count_inputs=False,
                                count_spikes=False)
            for rec, (attr, sl) in zip(volts, what):
                rec[i] = self.state(attr, sl)
        self.spike_count += full.sum(axis=0)
        return full[:, record], volts

    def set_error(self, rule, e_int: np.ndarray) -> None:
        """Host write of the error integers of learning rule ``rule`` (a :class:`PESRule`)."""
        self.learned[rule][1].set_error(e_int)

    # --------------------------------------------------------------- counters
    def synaptic_ops(self) -> dict:
        """Total synaptic operations per synapse group since reset (spikes x fan-out)."""
        out = {}
        for g in self.groups:
            counts = self.input_count if g.from_input else self.spike_count
            src = counts[g.src]
            out[g.group] = int(src @ g.row_nnz)
        return out

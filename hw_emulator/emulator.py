"""Vectorised integer run loop of the chip (the executable form of ``SPEC.md``).

All compartments of all cores live in flat arrays; the per-step work is a fixed
number of whole-array integer operations plus one row-gather-and-sum per synapse
group whose source spiked.  No Python loop runs over neurons or synapses.
"""

from __future__ import annotations

import numpy as np

from .blocks import ChipNetwork, CompartmentBlock, InputAxons
from .chip import FLOAT32_EXACT_BITS, FLOAT64_EXACT_BITS, ChipSpec
from .discretize import effective_weights
from . import kernel as _kernel
from .learning import LearnedWeights
from nhw.errors import ConfigError, UnsupportedFeatureError

#: Step implementations an :class:`Emulator` can use (``kernel=``); ``"auto"`` picks
#: ``"numba"`` when numba is installed, else ``"numpy"``.
KERNELS = ("auto", "numba", "numpy")


def choose_kernel(kernel: str) -> str:
    """The step implementation ``kernel`` (one of :data:`KERNELS`) resolves to.

    Raises
    ------
    nhw.errors.ConfigError
        ``kernel`` is not one of :data:`KERNELS`, or is ``"numba"`` and numba is not installed.
    """
    if kernel not in KERNELS:
        raise ConfigError(f"emulator kernel: expected one of {', '.join(map(repr, KERNELS))}; got {kernel!r}")
    if kernel == "auto":
        return "numba" if _kernel.AVAILABLE else "numpy"
    if kernel == "numba" and not _kernel.AVAILABLE:
        raise ConfigError("emulator kernel 'numba': numba is not installed (pip install 'nhw[fast]'); "
                          "use kernel='numpy' or 'auto'")
    return kernel


def wrap(x: np.ndarray, bits: int) -> np.ndarray:
    """Two's-complement wrap of int64 values to a signed ``bits``-bit range."""
    half = np.int64(1 << (bits - 1))
    return ((x + half) & np.int64((1 << bits) - 1)) - half


def decay(x: np.ndarray, keep: np.ndarray, shift: int) -> np.ndarray:
    """``sign(x) * floor(|x| * keep / 2**shift)`` on int64 (rounds toward zero)."""
    m = (np.abs(x) * keep) >> shift
    return np.where(x < 0, -m, m)


class _Group:
    """Flattened synapse group: global source/target indices and effective weights."""

    __slots__ = ("from_input", "src", "src_slice", "tgt", "w", "coo", "row_nnz", "group")

    def __init__(self, group, src_offset: int, tgt_offset: int, from_input: bool) -> None:
        self.group = group
        self.from_input = from_input
        self.src = group.src_index + src_offset
        self.src_slice = _as_slice(self.src)
        tgt = group.tgt_index + tgt_offset
        self.tgt = _as_slice(tgt) or tgt
        if group.shared:
            # shared (population-axon) lists, expanded into their synapses: the
            # same integers reach the same compartments; never held dense
            s, t, w = group.effective_coo()
            self.w = None
            self.coo = (s, t, w)  # local source row, local target column, weight
            self.row_nnz = np.bincount(s, minlength=len(group.src_index)).astype(np.int64)
        else:
            self.w = np.ascontiguousarray(group.weights, dtype=np.int64)
            self.coo = None  # the dense rows are the synapses (see the synapse table)
            self.row_nnz = np.count_nonzero(group.synapse_mask, axis=1).astype(np.int64)

    def col_abs_sum(self) -> np.ndarray:
        """``sum_j |w[j, i]|`` per target column."""
        if self.w is not None:
            return np.abs(self.w).sum(axis=0)
        _, t, w = self.coo
        return np.bincount(t, np.abs(w).astype(np.float64), minlength=len(self.group.tgt_index))


def _as_slice(idx: np.ndarray) -> slice | None:
    if idx.size and idx[0] + idx.size - 1 == idx[-1] and np.all(np.diff(idx) == 1):
        return slice(int(idx[0]), int(idx[-1]) + 1)
    return None


def _distinct_rows(w: np.ndarray, dtype) -> tuple[np.ndarray | None, np.ndarray]:
    """``(rowmap, rows)`` with ``w == rows[rowmap]`` when ``w`` repeats rows a lot, else ``(None, w)``.

    Decode neurons of one dimension and polarity all carry the same outgoing weights
    (e.g. PES's 320 decode rows into a 16-d ensemble are 32 distinct rows): summing
    spike counts per distinct row first turns a gather of every active row into one
    small product.  Exact: ``count * weight`` and every partial sum are sums of
    row-spikes, as in the plain gather.
    """
    rows, rowmap = np.unique(w, axis=0, return_inverse=True)
    if 4 * len(rows) > len(w):
        return None, np.ascontiguousarray(w, dtype=dtype)
    return rowmap.reshape(-1).astype(np.intp), np.ascontiguousarray(rows, dtype=dtype)


def _distinct_cols(rowmap: np.ndarray | None,
                   w: np.ndarray) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """``(rowmap, w, colmap)`` of a dense group (rows as :func:`_distinct_rows` left them)
    with its distinct columns stored once when it has at most a quarter as many as columns.

    Target ``j`` then receives column ``colmap[j]`` of the new ``w``: the same weights, so
    the same sums (the compiled step adds each distinct column once, then copies it to
    every target that shares it). Fewer columns can repeat rows that differed only in
    the dropped ones; those rows are merged too (``rowmap`` composed).
    """
    cols, colmap = np.unique(w, axis=1, return_inverse=True)
    if 4 * cols.shape[1] > w.shape[1]:
        return rowmap, w, None
    new_map, cols = _distinct_rows(cols, w.dtype)
    if new_map is not None:
        rowmap = new_map if rowmap is None else new_map[rowmap]
    return rowmap, np.ascontiguousarray(cols), colmap.reshape(-1).astype(np.intp)


class Emulator:
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
            _Group(
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
                self._dense.append((src, g.tgt, *_distinct_rows(g.w, dt), g.from_input))
            else:
                rest.append(g)
        self._table_groups = rest
        if self.kernel == "numba":
            self._table, self._runs = None, self._synapse_runs()
            self._has_row = np.zeros(self.n + self.n_inputs, bool)
        else:
            self._table = self._synapse_table()
        self._q_can_wrap, self._u_can_wrap = self._overflow_possible()
        if self.kernel == "numba":
            self._setup_kernel()
        self.reset()

    def _setup_kernel(self) -> None:
        """Per-compartment arrays of the compiled step, all full length (no scalars)."""
        s, n = self.spec, self.n
        self._lim = np.array([self._q_can_wrap, s.q_min, s.q_max, 1 << (s.q_bits - 1), (1 << s.q_bits) - 1,
                              self._u_can_wrap, s.u_min, s.u_max, 1 << (s.u_bits - 1), (1 << s.u_bits) - 1],
                             np.int64)
        self._vmin_a, self._vmax_a = self.vmin.astype(np.float64), self.vmax.astype(np.float64)
        z = np.zeros(0, np.intp)
        self._join = ((z, z) if self.join_child is None
                      else (self.join_child.astype(np.intp), self.join_parent.astype(np.intp)))
        self._uj = np.zeros(n)
        self._q = np.zeros(n)
        self._ref_reset_i = np.ascontiguousarray(self._ref_reset, np.int64)
        self._no_host = np.zeros((0, 0), np.int64)
        # dense groups, flat (see kernel.deliver_dense); sources index act = [chip | host]
        meta, srcs, rowmaps, ws = [], [np.zeros(0, np.intp)], [np.zeros(0, np.intp)], [np.zeros(0, np.float32)]
        colmaps = [np.zeros(0, np.intp)]
        k = w0 = c0 = 0
        for src, tgt, rowmap, w, _ in self._dense:
            idx = np.arange(src.start, src.stop) if isinstance(src, slice) else np.asarray(src)
            n_tgt = w.shape[1]
            rowmap, w, colmap = _distinct_cols(rowmap, w)
            srcs.append(idx.astype(np.intp))
            rowmaps.append(np.arange(len(idx), dtype=np.intp) if rowmap is None else rowmap.astype(np.intp))
            ws.append(w.reshape(-1))
            meta.append((k, k + len(idx), w.shape[0], w0, w.shape[1], tgt.start, n_tgt,
                         -1 if colmap is None else c0))
            if colmap is not None:
                colmaps.append(colmap)
                c0 += n_tgt
            k += len(idx)
            w0 += w.size
        self._dense_args = (np.array(meta, np.int64).reshape(-1, 8), np.concatenate(srcs), np.concatenate(rowmaps),
                            np.concatenate(ws).astype(np.float32), np.concatenate(colmaps).astype(np.intp),
                            np.zeros(2 * max([m[2] for m in meta], default=0), np.int64),
                            np.zeros(max([m[4] for m in meta if m[7] >= 0], default=0)))

    def _kernel_args(self) -> tuple:
        """Arguments of :func:`.kernel.step_kernel` from ``act`` to ``ref_reset``."""
        return (self._keep, self._act, *self._dense_args, *self._runs, self._q, self._lim, self.u_overflows, *self._join,
                self._uj, self._bias_f, self._vmin_a, self._vmax_a, self._hold, self._vth_f, self.spiking,
                self._ref_reset_i)

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

    def _table_coo(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(row, column, weight)`` of every synapse of the table groups, rows sorted.

        Rows index the activity vector (compartments, then host axons), columns the
        target compartments; weights are integers in float64.
        """
        rows, cols, vals = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0)]
        for g in self._table_groups:
            if g.coo is not None:
                r, c, w = g.coo
            else:
                r, c = np.nonzero(g.w)
                w = g.w[r, c]
            n_tgt = len(g.group.tgt_index)
            tgt = np.arange(n_tgt) + g.tgt.start if isinstance(g.tgt, slice) else g.tgt
            rows.append(g.src[r] + (self.n if g.from_input else 0))
            cols.append(tgt[c])
            vals.append(w)
        rows, cols, vals = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
        order = np.argsort(rows, kind="stable")
        return rows[order], cols[order].astype(np.intp), vals[order].astype(np.float64)

    def _synapse_runs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The table groups' synapses as ``(run_ptr, runs, vals)`` over the activity vector
        (:func:`.kernel.deliver_runs`): per source, runs of consecutive target columns.

        ``vals`` is float32 when every weight is a float32 (the kernel multiplies and sums
        in float64, so the integers are the same), else float64.
        """
        rows, cols, vals = self._table_coo()
        n_rows = self.n + self.n_inputs
        brk = np.ones(len(rows), bool)  # a run starts at a new source or a gap in the targets
        brk[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1] + 1)
        starts = np.flatnonzero(brk)
        runs = np.stack([cols[starts], starts, np.diff(np.append(starts, len(rows)))], axis=1)
        runs = runs.astype(np.int64)
        run_ptr = np.zeros(n_rows + 1, np.int64)
        np.cumsum(np.bincount(rows[starts], minlength=n_rows), out=run_ptr[1:])
        v32 = vals.astype(np.float32)
        return run_ptr, runs.reshape(-1, 3), v32 if np.array_equal(v32, vals) else vals

    def _synapse_table(self) -> tuple | None:
        """All synapses as rows indexed by source axon (compartments, then host axons).

        Stored padded ("ELL": every row as long as the longest, padding pointing at
        a dummy compartment ``n``) when that at most doubles the storage, since the
        per-step gather is then two fancy-index operations; otherwise as CSR.
        """
        if not self._table_groups:
            self._has_row = np.zeros(self.n + self.n_inputs, bool)
            return None
        rows, cols, vals = self._table_coo()
        n_rows = self.n + self.n_inputs
        length = np.bincount(rows, minlength=n_rows)
        self._has_row = length > 0
        self._table_chip_rows = bool(self._has_row[: self.n].any())
        indptr = np.zeros(n_rows + 1, np.int64)
        np.cumsum(length, out=indptr[1:])
        width = int(length.max(initial=0))
        nonempty = np.flatnonzero(length)
        if width and (len(nonempty) + 1) * width <= 2 * len(vals) + 64:
            # rows without synapses all map to one trailing padding-only row
            rowmap = np.full(n_rows, len(nonempty), np.intp)
            rowmap[nonempty] = np.arange(len(nonempty))
            ell_c = np.full((len(nonempty) + 1, width), self.n, np.intp)
            ell_v = np.zeros((len(nonempty) + 1, width), np.float64)
            pos = np.arange(len(vals)) - indptr[rows]
            ell_c[rowmap[rows], pos] = cols
            ell_v[rowmap[rows], pos] = vals
            return ("ell", ell_c, ell_v, rowmap)
        return ("csr", indptr, cols, vals)

    def _deliver(self, idx: np.ndarray, mult: np.ndarray | None) -> np.ndarray:
        """Synaptic input per compartment from active source rows ``idx`` (float64, exact).

        float64 holds every partial sum exactly (``|sum| <= spec.max_abs_weight_sum <
        2**53``, checked at build), which lets ``np.bincount`` do the scatter-add in one call.
        """
        t = self._table
        if t[0] == "ell":
            r = t[3][idx]
            c, w = t[1][r], t[2][r]
            if mult is not None:
                w = w * mult[:, None]
            return np.bincount(c.reshape(-1), w.reshape(-1), self.n + 1)[: self.n]
        indptr, cols, vals = t[1], t[2], t[3]
        start = indptr[idx]
        length = indptr[idx + 1] - start
        total = int(length.sum())
        ends = np.cumsum(length)
        sel = np.repeat(start - ends + length, length) + np.arange(total)
        w = vals[sel] if mult is None else vals[sel] * np.repeat(mult, length)
        return np.bincount(cols[sel], w, self.n)

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
                q = self._deliver(idx, act[idx] if self.n_inputs else None)
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

    def _step_compiled(self, host_counts: np.ndarray | None, count_inputs: bool, count_spikes: bool) -> np.ndarray:
        """:meth:`step` as one call of the compiled kernel, and compiled learning updates."""
        n = self.n
        t, act = self._begin_step(host_counts, count_inputs)
        q = self._q
        q[:] = 0.0
        prev = self.spikes
        for g, lw in self.learned.values():
            lw.deliver_compiled(prev[g.src_slice], q)
        spk = np.empty(n, bool)  # a new array per step: callers may keep the previous one
        self.q_overflows += _kernel.step_kernel(t, self._x, *self._kernel_args(), spk, count_spikes,
                                                self.spike_count, self.active_count)
        for g, lw in self.learned.values():
            lw.learn_compiled(spk[g.src_slice], self.rng, t)
        self.spikes = spk
        return spk

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
            # the whole run is one compiled loop
            host = self._compiled_host(host_counts, steps)
            spk = np.empty(self.n, bool)
            self.q_overflows += _kernel.run_kernel(self.n_steps, steps, self._x, *self._kernel_args()[:1],
                                                   self._act, host, *self._kernel_args()[2:], spk,
                                                   self.spike_count, self.active_count, full)
            self.n_steps += steps
            self.spikes = spk
            self.spike_count += full.sum(axis=0)
            return full[:, record], volts
        for i in range(steps):
            full[i] = self.step(None if host_counts is None else host_counts[i], count_inputs=False,
                                count_spikes=False)
            for rec, (attr, sl) in zip(volts, what):
                rec[i] = self.state(attr, sl)
        self.spike_count += full.sum(axis=0)
        return full[:, record], volts

    def _compiled_host(self, host_counts: np.ndarray | None, steps: int) -> np.ndarray:
        """Host axon counts as the compiled loops take them (``steps x n_inputs``, or the
        empty block when there are none, in which case the input axons are silenced)."""
        if host_counts is not None and self.n_inputs:
            return np.ascontiguousarray(host_counts, dtype=np.int64).reshape(steps, self.n_inputs)
        if self.n_inputs:
            self._act[self.n:] = 0
        return self._no_host

    @property
    def can_run_decoded(self) -> bool:
        """Whether :meth:`run_decoded` is available (compiled kernel, no learning groups)."""
        return self.kernel == "numba" and not self.learned

    def run_decoded(self, steps: int, host_counts: np.ndarray | None, cols: np.ndarray,
                    dec: np.ndarray) -> np.ndarray:
        """Run ``steps`` steps and return the spikes of compartments ``cols`` times ``dec``.

        Equal, bit for bit, to ``scipy.sparse.csr_matrix(s, dtype=float) @ dec`` of the
        spikes ``s = run(steps, host_counts, cols)[0]``, without the raster: the compiled
        loop adds the rows of the compartments that fired, in ascending order.

        Parameters
        ----------
        steps
            Number of steps.
        host_counts
            ``steps x n_inputs`` spike counts of host axons, or ``None``.
        cols
            Ascending global compartment indices, one per row of ``dec``.
        dec
            ``len(cols) x n_out`` float64 matrix.

        Raises
        ------
        nhw.errors.ConfigError
            The emulator has no compiled kernel or has learning groups (:attr:`can_run_decoded`).
        """
        if not self.can_run_decoded:
            raise ConfigError(
                f"Emulator.run_decoded needs kernel='numba' and no learning groups; this emulator has "
                f"kernel={self.kernel!r} and {len(self.learned)} learning group(s)"
            )
        cols = np.ascontiguousarray(cols, np.intp)
        dec = np.ascontiguousarray(dec, np.float64)
        y = np.zeros((steps, dec.shape[1]))
        if not steps:
            return y
        host = self._compiled_host(host_counts, steps)
        if host is not self._no_host:
            self.input_count += host.sum(axis=0)
        spk = np.empty(self.n, bool)
        args = self._kernel_args()
        self.q_overflows += _kernel.run_decode_kernel(self.n_steps, steps, self._x, args[0], self._act, host,
                                                      *args[2:], spk, self.spike_count, self.active_count,
                                                      cols, dec, y)
        self.n_steps += steps
        self.spikes = spk
        return y

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

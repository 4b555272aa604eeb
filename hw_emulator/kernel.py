"""The emulator's per-step work as one compiled loop (optional: needs numba).

:class:`~nhw.hw_emulator.emulator.Emulator` runs a step as a fixed number of
whole-array numpy passes; each pass costs a few microseconds of call overhead
however small the network, so small and medium networks are bound by the number of
passes, not by the arithmetic.  Here the same step (``SPEC.md`` order, the same
float64-held integers, the same wraps and counters) is one loop over the active
synapse rows and one over the compartments, compiled by numba when it is
installed (``pip install nhw[fast]``).  Both forms give identical integers (the
float64 operations are the same IEEE operations on exactly representable values);
``tests/unit/test_hw_kernel.py`` checks that.

Without numba, :data:`AVAILABLE` is ``False`` and the emulator runs its numpy
step; asking for ``kernel="numba"`` then raises.
"""

from __future__ import annotations

import numpy as np

try:  # optional accelerator
    import numba
except ImportError:  # pragma: no cover - depends on the installation
    numba = None

#: Whether the compiled kernel can be used (numba importable).
AVAILABLE = numba is not None


def _jit(fn):
    # cache=True keeps the machine code next to this module: later processes skip the compile
    return numba.njit(cache=True, nogil=True)(fn) if AVAILABLE else fn


@_jit
def deliver_dense(act, q, dense_meta, dense_src, dense_rowmap, dense_w, dense_colmap, counts,
                  acc):  # pragma: no cover - compiled
    """Add dense groups' rows of the active sources to ``q``.

    ``dense_meta`` has one row per group: ``src_ptr, src_stop, n_rows, w_offset, n_cols,
    tgt_start, n_targets, colmap_offset``; ``dense_src[k]`` indexes ``act`` and
    ``dense_rowmap[k]`` names the group's distinct weight row of source ``k`` (groups
    repeating rows store each once, ``dense_w`` flat, row-major).  A group whose targets
    repeat columns (e.g. the decode neurons of one dimension and sign all receive the
    same weights) stores its distinct columns once (``colmap_offset >= 0``): its rows are
    summed into the scratch ``acc`` and target ``j`` receives
    ``acc[dense_colmap[colmap_offset + j]]``; otherwise ``n_cols == n_targets`` and
    ``colmap_offset == -1``.  ``counts`` is scratch of twice the largest group's row
    count: spike counts per distinct row, then the rows that have any.  Every product
    and partial sum is an integer below ``2**53`` (the emulator checks the bound), so
    the result is exact in any summation order.
    """
    for g in range(dense_meta.shape[0]):
        k0, k1, n_rows, w0, n_cols, t0 = (dense_meta[g, 0], dense_meta[g, 1], dense_meta[g, 2],
                                          dense_meta[g, 3], dense_meta[g, 4], dense_meta[g, 5])
        n_tgt, cm0 = dense_meta[g, 6], dense_meta[g, 7]
        counts[:n_rows] = 0
        active = False
        for k in range(k0, k1):
            c = act[dense_src[k]]
            if c != 0:
                counts[dense_rowmap[k]] += c
                active = True
        if not active:
            continue
        rows = counts[n_rows:2 * n_rows]
        n_act = 0
        for r in range(n_rows):
            if counts[r] != 0:
                rows[n_act] = r
                n_act += 1
        # slices (views), not offset indexing: LLVM vectorises these loops; four rows per
        # pass load and store q a quarter as often
        if cm0 >= 0:
            qt = acc[:n_cols]
            qt[:] = 0.0
        else:
            qt = q[t0:t0 + n_cols]
        i = 0
        while i + 4 <= n_act:
            r0, r1, r2, r3 = rows[i], rows[i + 1], rows[i + 2], rows[i + 3]
            c0, c1, c2, c3 = float(counts[r0]), float(counts[r1]), float(counts[r2]), float(counts[r3])
            a0 = dense_w[w0 + r0 * n_cols:w0 + (r0 + 1) * n_cols]
            a1 = dense_w[w0 + r1 * n_cols:w0 + (r1 + 1) * n_cols]
            a2 = dense_w[w0 + r2 * n_cols:w0 + (r2 + 1) * n_cols]
            a3 = dense_w[w0 + r3 * n_cols:w0 + (r3 + 1) * n_cols]
            for j in range(n_cols):
                qt[j] += (c0 * a0[j] + c1 * a1[j]) + (c2 * a2[j] + c3 * a3[j])
            i += 4
        while i < n_act:
            r0 = rows[i]
            c0 = float(counts[r0])
            a0 = dense_w[w0 + r0 * n_cols:w0 + (r0 + 1) * n_cols]
            for j in range(n_cols):
                qt[j] += c0 * a0[j]
            i += 1
        if cm0 >= 0:
            qg = q[t0:t0 + n_tgt]
            cm = dense_colmap[cm0:cm0 + n_tgt]
            for j in range(n_tgt):
                qg[j] += qt[cm[j]]


@_jit
def deliver_runs(act, q, run_ptr, runs, vals):  # pragma: no cover - compiled
    """Add the table synapses of the active sources to ``q``.

    Source ``r``'s synapses are the runs ``run_ptr[r]:run_ptr[r + 1]`` of ``runs``, each
    ``target_start, value_offset, length``: ``length`` consecutive targets whose weights
    are consecutive in ``vals``.  Synapses of one weight matrix reach blocks of adjacent
    compartments, so a run is a contiguous (vectorised) add instead of a scatter.
    Products and sums are integers below ``2**53``: exact in any order.
    """
    for r in range(act.shape[0]):
        c = act[r]
        if c != 0:
            cf = float(c)
            for k in range(run_ptr[r], run_ptr[r + 1]):
                t0, v0, m = runs[k, 0], runs[k, 1], runs[k, 2]
                qt = q[t0:t0 + m]
                vv = vals[v0:v0 + m]
                for j in range(m):
                    qt[j] += vv[j] * cf


@_jit
def update_compartments(t, x, keep, q, lim, u_overflows, join_child, join_parent, uj, bias, vmin, vmax, hold,
                        vth, spiking, ref_reset, spk, count_spikes, spike_count, active_count,
                        act):  # pragma: no cover - compiled
    """The compartment half of :func:`step_kernel` (after delivery into ``q``); returns the
    number of compartments whose ``q`` wrapped.

    Split into passes without data-dependent branches (the decay and input passes with
    their range, the clip, hold and threshold pass, the counters), which LLVM vectorises;
    the wraps run only when a value left its range, the resets only for those that fired.
    """
    n = spk.shape[0]
    q_wrap, q_min, q_max, q_half, q_mask = lim[0] != 0, lim[1], lim[2], lim[3], lim[4]
    u_wrap, u_min, u_max, u_half, u_mask = lim[5] != 0, lim[6], lim[7], lim[8], lim[9]
    n_q = 0
    xu, xv, ku, kv = x[:n], x[n:], keep[:n], keep[n:]
    if q_wrap:
        out = 0
        for i in range(n):
            out += (q[i] > q_max) | (q[i] < q_min)
        if out:  # (in range, the wrap is the identity)
            for i in range(n):
                qi = q[i]
                if qi > q_max or qi < q_min:
                    n_q += 1
                    q[i] = float(((np.int64(qi) + q_half) & q_mask) - q_half)
    out = 0
    for i in range(n):
        u = np.trunc(xu[i] * ku[i]) + q[i]
        xu[i] = u
        out += (u > u_max) | (u < u_min)
    if u_wrap and out:
        for i in range(n):
            u = xu[i]
            if u > u_max or u < u_min:
                u_overflows[i] += 1
                xu[i] = float(((np.int64(u) + u_half) & u_mask) - u_half)
    uj[:] = xu
    for k in range(join_child.shape[0]):
        uj[join_parent[k]] += xu[join_child[k]]
    for i in range(n):
        v = np.trunc(xv[i] * kv[i]) + uj[i] + bias[i]
        v = min(max(v, vmin[i]), vmax[i])
        v = v if hold[i] < t else 0.0  # refractory compartments are held at 0
        xv[i] = v
        spk[i] = (v > vth[i]) & spiking[i]
    for i in range(n):
        if spk[i]:
            xv[i] = 0.0
            hold[i] = ref_reset[i] + t
            if count_spikes:
                spike_count[i] += 1
    for i in range(n):
        active_count[i] += xv[i] != 0.0
        act[i] = spk[i]
    return n_q


@_jit
def step_kernel(t, x, keep, act, dense_meta, dense_src, dense_rowmap, dense_w, dense_colmap, counts, acc,
                run_ptr, runs, vals, q, lim, u_overflows,
                join_child, join_parent, uj, bias, vmin, vmax, hold, vth, spiking, ref_reset,
                spk, count_spikes, spike_count, active_count):  # pragma: no cover - compiled
    """One chip step in place; returns the number of compartments whose ``q`` wrapped.

    ``x`` is ``[u | v]`` (integers in float64), ``act`` ``[spikes of t-1 | host counts]``,
    the ``dense_*`` arrays and ``counts`` the dense groups (:func:`deliver_dense`),
    ``(run_ptr, runs, vals)`` every other synapse as runs of adjacent targets per
    entry of ``act`` (:func:`deliver_runs`), ``q`` the input
    already delivered by other paths (learning groups; zeros otherwise).  ``lim`` holds
    ``q_can_wrap, q_min, q_max, q_half, q_mask, u_can_wrap, u_min, u_max, u_half, u_mask``.
    """
    deliver_dense(act, q, dense_meta, dense_src, dense_rowmap, dense_w, dense_colmap, counts, acc)
    deliver_runs(act, q, run_ptr, runs, vals)
    return update_compartments(t, x, keep, q, lim, u_overflows, join_child, join_parent, uj, bias, vmin, vmax,
                               hold, vth, spiking, ref_reset, spk, count_spikes, spike_count, active_count, act)


@_jit
def run_kernel(t0, steps, x, keep, act, host, dense_meta, dense_src, dense_rowmap, dense_w, dense_colmap, counts,
               acc, run_ptr, runs, vals, q, lim, u_overflows,
               join_child, join_parent, uj, bias, vmin, vmax, hold, vth, spiking, ref_reset,
               spk, spike_count, active_count, raster):  # pragma: no cover - compiled
    """``steps`` calls of :func:`step_kernel` (no learning, no recorded state); spikes into
    ``raster`` (``steps x n``), host counts from ``host`` (``steps x n_inputs``, or ``0 x 0``
    for none).  Returns the number of ``q`` wraps."""
    n = spk.shape[0]
    n_q = 0
    for k in range(steps):
        if host.shape[0]:
            for j in range(host.shape[1]):
                act[n + j] = host[k, j]
        q[:] = 0.0
        n_q += step_kernel(t0 + k + 1, x, keep, act, dense_meta, dense_src, dense_rowmap, dense_w, dense_colmap,
                           counts, acc, run_ptr, runs, vals, q, lim, u_overflows,
                           join_child, join_parent, uj, bias, vmin, vmax, hold, vth, spiking, ref_reset,
                           spk, False, spike_count, active_count)
        raster[k] = spk
    return n_q


@_jit
def run_decode_kernel(t0, steps, x, keep, act, host, dense_meta, dense_src, dense_rowmap, dense_w, dense_colmap,
                      counts, acc, run_ptr, runs, vals, q, lim, u_overflows,
                      join_child, join_parent, uj, bias, vmin, vmax, hold, vth, spiking, ref_reset,
                      spk, spike_count, active_count, dec_cols, dec, y):  # pragma: no cover - compiled
    """:func:`run_kernel` that decodes instead of recording spikes: ``y[k] = sum of dec[j]``
    over the ``dec_cols[j]`` that spiked in step ``k``.

    The rows are added in ascending ``j`` onto zeros, the order of a CSR product of the
    spike raster with ``dec`` (``dec_cols`` ascending), so ``y`` equals that product bit
    for bit. Spikes are counted into ``spike_count``. Returns the number of ``q`` wraps.
    """
    n = spk.shape[0]
    n_q = 0
    n_out = dec.shape[1]
    for k in range(steps):
        if host.shape[0]:
            for j in range(host.shape[1]):
                act[n + j] = host[k, j]
        q[:] = 0.0
        n_q += step_kernel(t0 + k + 1, x, keep, act, dense_meta, dense_src, dense_rowmap, dense_w, dense_colmap,
                           counts, acc, run_ptr, runs, vals, q, lim, u_overflows,
                           join_child, join_parent, uj, bias, vmin, vmax, hold, vth, spiking, ref_reset,
                           spk, True, spike_count, active_count)
        yk = y[k]
        for j in range(dec_cols.shape[0]):
            if spk[dec_cols[j]]:
                row = dec[j]
                for m in range(n_out):
                    yk[m] += row[m]
    return n_q


@_jit
def pes_deliver(mant, pre, dim, scale, q, t0):  # pragma: no cover - compiled
    """Add a learning group's input to ``q[t0:]``: ``(mant @ pre)[dim] * scale``.

    Every partial sum is an integer within the mantissa type's exact range (see
    :class:`~nhw.hw_emulator.learning.LearnedWeights`), so any summation order gives the
    numpy product's value. Returns whether any pre compartment spiked (nothing added if not).
    """
    n_dims, n_src = mant.shape
    idx = np.empty(n_src, np.intp)  # the pre compartments that spiked (few): only their columns
    n_act = 0
    for j in range(n_src):
        if pre[j]:
            idx[n_act] = j
            n_act += 1
    if n_act == 0:
        return False
    per_dim = np.zeros(n_dims)
    for d in range(n_dims):
        s = 0.0
        row = mant[d]
        for k in range(n_act):
            s += row[idx[k]]
        per_dim[d] = s
    for k in range(dim.shape[0]):
        q[t0 + k] += per_dim[dim[k]] * scale[k]
    return True


@_jit
def pes_trace(x, keep, phase, offset, unit, pre, impulse, trace_max):  # pragma: no cover - compiled
    """A learning group's trace step in the trace's type (float32 for Loihi):
    ``x = floor(x * keep + U)`` with dither ``U = ((phase + offset) mod 2**16) * unit``,
    then ``x = min(x + impulse, trace_max)`` where ``pre`` spiked."""
    for j in range(x.shape[0]):
        u = np.float32(np.uint16(phase[j] + offset)) * unit  # float32, as the numpy dither
        v = np.floor(x[j] * keep + u)
        if pre[j]:
            v = min(v + impulse, trace_max)
        x[j] = v


@_jit
def pes_update(mant, step, x, phase, offset, unit, top):  # pragma: no cover - compiled
    """A learning group's weight update ``M += floor(step_d * x_j + U)``, then the clip to
    ``+-top``; returns the number of mantissas clipped (counted after the whole update)."""
    n_dims, n_src = mant.shape
    over = 0
    for d in range(n_dims):
        sd = step[d]
        for j in range(n_src):
            u = np.float32(np.uint16(phase[d, j] + offset)) * unit
            m = mant[d, j] + np.floor(sd * x[j] + u)
            mant[d, j] = m
            over += (m > top) | (m < -top)  # a count, not a branch: the loop vectorises
    if over:
        for d in range(n_dims):
            for j in range(n_src):
                m = mant[d, j]
                mant[d, j] = min(max(m, -top), top)
    return over

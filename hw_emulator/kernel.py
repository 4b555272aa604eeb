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
def deliver_dense(act, q, dense_meta, dense_src, dense_rowmap, dense_w, counts):  # pragma: no cover - compiled
    """Add dense groups' rows of the active sources to ``q``.

    ``dense_meta`` has one row per group: ``src_ptr, src_stop, n_rows, w_offset, n_cols,
    tgt_start``; ``dense_src[k]`` indexes ``act`` and ``dense_rowmap[k]`` names the
    group's distinct weight row of source ``k`` (groups repeating rows store each once,
    ``dense_w`` flat, row-major).  Counts are summed per distinct row first; every
    product and partial sum is an integer below ``2**53``, so the result is exact.
    """
    for g in range(dense_meta.shape[0]):
        k0, k1, n_rows, w0, n_cols, t0 = (dense_meta[g, 0], dense_meta[g, 1], dense_meta[g, 2],
                                          dense_meta[g, 3], dense_meta[g, 4], dense_meta[g, 5])
        counts[:n_rows] = 0
        active = False
        for k in range(k0, k1):
            c = act[dense_src[k]]
            if c != 0:
                counts[dense_rowmap[k]] += c
                active = True
        if not active:
            continue
        for r in range(n_rows):
            c = counts[r]
            if c != 0:
                cf = float(c)
                # slices (views), not offset indexing: LLVM vectorises this loop
                row = dense_w[w0 + r * n_cols:w0 + (r + 1) * n_cols]
                qt = q[t0:t0 + n_cols]
                for j in range(n_cols):
                    qt[j] += cf * row[j]


@_jit
def step_kernel(t, x, keep, act, dense_meta, dense_src, dense_rowmap, dense_w, counts,
                indptr, cols, vals, q, lim, u_overflows,
                join_child, join_parent, uj, bias, vmin, vmax, hold, vth, spiking, ref_reset,
                spk, count_spikes, spike_count, active_count):  # pragma: no cover - compiled
    """One chip step in place; returns the number of compartments whose ``q`` wrapped.

    ``x`` is ``[u | v]`` (integers in float64), ``act`` ``[spikes of t-1 | host counts]``,
    the ``dense_*`` arrays and ``counts`` the dense groups (:func:`deliver_dense`),
    ``(indptr, cols, vals)`` every other synapse as CSR rows over ``act``, ``q`` the input
    already delivered by other paths (learning groups; zeros otherwise).  ``lim`` holds
    ``q_can_wrap, q_min, q_max, q_half, q_mask, u_can_wrap, u_min, u_max, u_half, u_mask``.
    """
    n = spk.shape[0]
    deliver_dense(act, q, dense_meta, dense_src, dense_rowmap, dense_w, counts)
    for r in range(act.shape[0]):
        c = act[r]
        if c != 0:
            for j in range(indptr[r], indptr[r + 1]):
                q[cols[j]] += vals[j] * c
    q_wrap, q_min, q_max, q_half, q_mask = lim[0] != 0, lim[1], lim[2], lim[3], lim[4]
    u_wrap, u_min, u_max, u_half, u_mask = lim[5] != 0, lim[6], lim[7], lim[8], lim[9]
    n_q = 0
    for i in range(n):
        qi = q[i]
        if q_wrap and (qi > q_max or qi < q_min):
            n_q += 1
            qi = float(((np.int64(qi) + q_half) & q_mask) - q_half)
        u = np.trunc(x[i] * keep[i]) + qi
        if u_wrap and (u > u_max or u < u_min):
            u_overflows[i] += 1
            u = float(((np.int64(u) + u_half) & u_mask) - u_half)
        x[i] = u
        uj[i] = u
    for k in range(join_child.shape[0]):
        uj[join_parent[k]] += x[join_child[k]]
    for i in range(n):
        v = np.trunc(x[n + i] * keep[n + i]) + uj[i] + bias[i]
        v = max(v, vmin[i])
        v = min(v, vmax[i])
        if hold[i] >= t:  # refractory compartments are held at 0
            v = 0.0
        s = v > vth[i] and spiking[i]
        if s:
            v = 0.0
            hold[i] = ref_reset[i] + t
            if count_spikes:
                spike_count[i] += 1
        x[n + i] = v
        if v != 0.0:
            active_count[i] += 1
        spk[i] = s
        act[i] = s
    return n_q


@_jit
def run_kernel(t0, steps, x, keep, act, host, dense_meta, dense_src, dense_rowmap, dense_w, counts,
               indptr, cols, vals, q, lim, u_overflows,
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
        n_q += step_kernel(t0 + k + 1, x, keep, act, dense_meta, dense_src, dense_rowmap, dense_w, counts,
                           indptr, cols, vals, q, lim, u_overflows,
                           join_child, join_parent, uj, bias, vmin, vmax, hold, vth, spiking, ref_reset,
                           spk, False, spike_count, active_count)
        raster[k] = spk
    return n_q


@_jit
def run_decode_kernel(t0, steps, x, keep, act, host, dense_meta, dense_src, dense_rowmap, dense_w, counts,
                      indptr, cols, vals, q, lim, u_overflows,
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
        n_q += step_kernel(t0 + k + 1, x, keep, act, dense_meta, dense_src, dense_rowmap, dense_w, counts,
                           indptr, cols, vals, q, lim, u_overflows,
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
    active = False
    for j in range(n_src):
        if pre[j]:
            active = True
            break
    if not active:
        return False
    per_dim = np.zeros(n_dims)
    for d in range(n_dims):
        s = 0.0
        row = mant[d]
        for j in range(n_src):
            if pre[j]:
                s += row[j]
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
            if m > top or m < -top:
                over += 1
    if over:
        for d in range(n_dims):
            for j in range(n_src):
                m = mant[d, j]
                mant[d, j] = min(max(m, -top), top)
    return over

"""A chunk of closed-loop ``loihi-emu`` steps with PES learning as one compiled loop (optional: numba).

Each step runs, in the order of the per-step simulator loop
(:meth:`.simulator.Simulator._run_stepwise`): the learning rule's error (its filtered
input as the host holds it) and its quantisation, one chip step (the learned group's
input, the chip kernel, the trace and weight updates) on the host spikes of the
previous step, the decode of the chip outputs through their Lowpass bank (the host
reads filtered rows a step late, :meth:`.codec.OutputDecoder.host_view`), then the
host's late pass of passthrough Nodes and the filtered host connections leaving
them.  Every piece calls the compiled function the per-step loop calls
(or repeats its operations in its order), so the results are identical bit for bit
(``tests/unit/test_emu_speed_loop.py``).

The host values live in one float64 workspace ``ws``; the host program is a list of
scalar adds (a Node's or the error's input sum) and of elementwise-weighted Lowpass
connections, both as index arrays (:class:`.closed_loop.LoopPlan` builds them).
"""

from __future__ import annotations

import numpy as np
from nhw.hw_emulator import kernel as _k

from . import host_kernels

__all__ = ["run_chunk"]


@_k._jit
def _sums(ws, ptr, tgt_off, tgt_size, src, dst, s):  # pragma: no cover - compiled
    """Target ``s``'s input: zeros, then ``ws[dst] += ws[src]`` for its adds in order."""
    o = tgt_off[s]
    for j in range(tgt_size[s]):
        ws[o + j] = 0.0
    for a in range(ptr[s], ptr[s + 1]):
        ws[dst[a]] += ws[src[a]]


@_k._jit
def _loop(t0, steps, ws, bulk, bulk_dst,  # pragma: no cover - compiled
          node_ptr, node_off, node_size, node_src, node_dst,
          conn_ptr, conn_pre, conn_w, conn_off, conn_e,
          tap_ptr, tap_off, tap_size, tap_src, tap_dst, inv_scale, error_max, error,
          x, ka, spk, prev, spike_count, active_count, counts, n_inputs,
          mant, src0, tgt0, dim, scale, trace, tconst, t_phase, t_offs, w_phase, w_offs, factor, epoch, top, unit,
          dec_idx, dec_sub, bank_e, lagged, ystate, y_off, yrec, node_lo, nrec, stats):
    n = spk.shape[0]
    act = ka[1]
    q = ka[12]
    n_src = trace.shape[0]
    n_out = dec_sub.shape[1]
    for k in range(steps):
        t = t0 + k + 1
        # --- the early filtered values of this step; the error the host sends now
        for j in range(bulk_dst.shape[0]):
            ws[bulk_dst[j]] = bulk[k, j]
        _sums(ws, tap_ptr, tap_off, tap_size, tap_src, tap_dst, 0)
        err_any = False
        at_limit = False
        for j in range(error.shape[0]):
            raw = ws[tap_off[0] + j] * inv_scale[j]
            stats[4] = max(stats[4], abs(raw))  # the largest |error| (error units), before clipping
            v = np.rint(raw)
            v = min(v, error_max)
            v = max(v, -error_max)
            error[j] = np.int64(v)
            err_any = err_any or error[j] != 0
            at_limit = at_limit or abs(v) >= error_max
        if at_limit:
            stats[3] += 1  # a step whose error reached the chip's limit (counted as clipped)
        # --- chip step (Emulator._step_compiled)
        if n_inputs:
            for j in range(n_inputs):
                act[n + j] = counts[k, j]
        q[:] = 0.0
        _k.pes_deliver(mant, prev[src0:src0 + n_src], dim, scale, q, tgt0)
        stats[0] += _k.step_kernel(t, x, ka[0], ka[1], ka[2], ka[3], ka[4], ka[5], ka[6], ka[7], ka[8], ka[9],
                                   ka[10], ka[11], ka[12], ka[13], ka[14], ka[15], ka[16], ka[17], ka[18], ka[19],
                                   ka[20], ka[21], ka[22], ka[23], ka[24], spk, True, spike_count, active_count)
        pre = spk[src0:src0 + n_src]
        _k.pes_trace(trace, tconst[0], t_phase, t_offs[k], unit, pre, tconst[1], tconst[2])
        if t % epoch == 0:
            stats[1] += 1
            if err_any:
                step_v = np.empty(error.shape[0], mant.dtype)
                for d in range(error.shape[0]):
                    step_v[d] = factor[d] * error[d]
                stats[2] += _k.pes_update(mant, step_v, trace, w_phase, w_offs[k], unit, top)
        prev[:] = spk
        # --- decode through the Lowpass bank; the host reads filtered rows a step late
        y = host_kernels.decode_lowpass_step(spk, dec_idx, dec_sub, ystate, bank_e)
        for m in range(n_out):
            ws[y_off + m] = ystate[m] if lagged[m] else y[m]
            ystate[m] = y[m]
            yrec[k, m] = ws[y_off + m]
        # --- host late pass: Node sums, the filtered connections leaving them
        for s in range(node_off.shape[0]):
            _sums(ws, node_ptr, node_off, node_size, node_src, node_dst, s)
        for c in range(conn_off.shape[0]):
            e = conn_e[c]
            o = conn_off[c]
            for j in range(conn_ptr[c + 1] - conn_ptr[c]):
                a = conn_ptr[c] + j
                v = conn_w[a] * ws[conn_pre[a]]
                ws[o + j] = e * ws[o + j] + (1.0 - e) * v
        for m in range(nrec.shape[1]):
            nrec[k, m] = ws[node_lo + m]


def run_chunk(t0: int, steps: int, ws: np.ndarray, bulk: np.ndarray, plan: tuple, error: np.ndarray,
              chip: tuple, learn: tuple, decode: tuple, yrec: np.ndarray, node_lo: int,
              nrec: np.ndarray) -> np.ndarray:
    """Run ``steps`` closed-loop steps after step ``t0``; returns ``[q wraps, epochs, saturations,
    steps whose error reached +-error_max, largest |error| in error units]`` (float64).

    ``plan``, ``chip``, ``learn`` and ``decode`` are the argument groups
    :class:`.closed_loop.LoopPlan` assembles; ``bulk`` holds the early filtered
    connection values of each step, ``yrec`` receives the decoded outputs per step and
    ``nrec`` the late Nodes' values (``ws[node_lo:node_lo + nrec.shape[1]]``) per step.
    """
    stats = np.zeros(5, np.float64)
    _loop(t0, steps, ws, bulk, *plan, error, *chip, *learn, *decode, yrec, node_lo, nrec, stats)
    return stats

"""Compiled loops of the ``loihi-emu`` host work over a chunk of steps (optional: numba).

The host's per-chunk work has recurrences along the steps (the spike encoder's
running sum, a Lowpass filtered row by row) that numpy runs either as many small
calls or with a different rounding.  These loops run the same IEEE operations, in
the same order, as the numpy code they replace (:meth:`.codec.SpikeEncoder.encode`,
:meth:`.filters.HostFilter.run_rows`), so results are identical bit for bit
(``tests/unit/test_emu_speed.py``).  Without numba, :data:`AVAILABLE` is ``False``
and the callers keep their numpy code.
"""

from __future__ import annotations

import numpy as np
from nhw.hw_emulator.kernel import AVAILABLE, _jit

__all__ = ["AVAILABLE", "decode_lowpass_step", "encode_counts", "lowpass_rows", "lowpass_step", "quantize_error"]


@_jit
def _encode(y, acc, amp, kmax, on, off, counts, over):  # pragma: no cover - compiled
    steps, rows = y.shape
    for r in range(rows):
        a, am, km = acc[r], amp[r], kmax[r]
        for k in range(steps):
            # one step of SpikeEncoder.encode: the residual plus this value, its whole
            # spikes out, the rest carried (so any split of the steps gives the same counts)
            a = a + y[k, r]
            d = np.floor(a / am)
            a = a - d * am
            if abs(d) > km:
                over[r] = True
                d = min(max(d, -km), km)
            counts[k, on[r]] = np.int64(max(d, 0.0))
            counts[k, off[r]] = np.int64(max(-d, 0.0))
        acc[r] = a


def encode_counts(y: np.ndarray, acc: np.ndarray, amp: np.ndarray, kmax: np.ndarray, on: np.ndarray,
                  off: np.ndarray, n_inputs: int) -> tuple[np.ndarray, np.ndarray]:
    """Sigma-delta spike counts of a chunk of encoder values, compiled.

    Parameters
    ----------
    y
        ``steps x rows`` encoder values (``signal @ T.T``).
    acc
        Residual per row, updated in place.
    amp, kmax
        Value per spike and largest count per step, per row.
    on, off
        Input axon of each row's positive and negative spikes.
    n_inputs
        Host input axons of the emulator.

    Returns
    -------
    counts : numpy.ndarray
        ``steps x n_inputs`` int64 spike counts.
    over : numpy.ndarray
        Per row, whether a count was clipped to ``kmax``.
    """
    counts = np.zeros((len(y), n_inputs), np.int64)
    over = np.zeros(len(amp), np.bool_)
    _encode(np.ascontiguousarray(y, np.float64), acc, np.ascontiguousarray(amp, np.float64),
            np.ascontiguousarray(kmax, np.float64), np.ascontiguousarray(on, np.intp),
            np.ascontiguousarray(off, np.intp), counts, over)
    return counts, over


@_jit
def _lowpass(state, e, x, out):  # pragma: no cover - compiled
    for k in range(x.shape[0]):
        for j in range(x.shape[1]):
            # e * y + (1 - e) * x, the closed form of HostFilter.__call__, term by term
            state[j] = e[j] * state[j] + (1.0 - e[j]) * x[k, j]
            out[k, j] = state[j]


def lowpass_rows(state: np.ndarray, decay: float | np.ndarray, x: np.ndarray) -> np.ndarray:
    """Lowpass-filter the rows of ``x`` one after another, ``state`` updated in place.

    Equal to ``state = decay * state + (1 - decay) * row`` per row.
    """
    x = np.ascontiguousarray(x, np.float64)
    e = np.ascontiguousarray(np.broadcast_to(np.asarray(decay, np.float64), state.shape))
    out = np.empty_like(x)
    _lowpass(state, e, x, out)
    return out


@_jit
def lowpass_step(state, e, x):  # pragma: no cover - compiled
    """One step of :class:`~.filters.HostFilter`'s Lowpass, ``e * state + (1 - e) * x``, as a
    new array (callers may hold the previous one); ``e`` a float or one decay per value."""
    out = np.empty(state.shape[0])
    for j in range(state.shape[0]):
        out[j] = e * state[j] + (1.0 - e) * x[j]
    return out


@_jit
def decode_lowpass_step(spk, cols, dec, state, e):  # pragma: no cover - compiled
    """A closed-loop step's decoded outputs through the Lowpass bank, as a new array.

    ``y`` is the sum of ``dec[j]`` over the ``cols[j]`` that spiked, added in ascending
    ``j`` starting from the first such row (numpy's ``dec[idx].sum(axis=0)``; zeros if
    none); then ``e * state + (1 - e) * y`` per value (``e`` one decay per value).
    """
    n_out = dec.shape[1]
    y = np.zeros(n_out)
    first = True
    for j in range(cols.shape[0]):
        if spk[cols[j]]:
            row = dec[j]
            if first:
                y[:] = row
                first = False
            else:
                for m in range(n_out):
                    y[m] += row[m]
    out = np.empty(n_out)
    for m in range(n_out):
        out[m] = e[m] * state[m] + (1.0 - e[m]) * y[m]
    return out


@_jit
def quantize_error(e, inv_scale, error_max):  # pragma: no cover - compiled
    """:func:`nhw.hw_emulator.learning.quantize_error` with the reciprocal scale given:
    ``rint(e * inv_scale)`` clipped to ``+-error_max``, int64; the same IEEE operations."""
    out = np.empty(e.shape[0], np.int64)
    for j in range(e.shape[0]):
        v = np.rint(e[j] * inv_scale[j])
        v = min(v, error_max)
        v = max(v, -error_max)
        out[j] = np.int64(v)
    return out

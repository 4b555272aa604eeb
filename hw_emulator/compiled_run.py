"""The emulator's compiled step and runs (numba, :mod:`.kernel`): their flat arguments and entry points.

:class:`CompiledRun` is the part of :class:`~nhw.hw_emulator.emulator.Emulator` that
drives the compiled kernels: it lays the dense groups and the synapse runs out as the
flat arrays the kernels take, and runs one step, a whole run, or a run whose spikes
are decoded inside the loop (:meth:`CompiledRun.run_decoded`).  The integers are those
of the numpy step (``tests/unit/test_hw_kernel.py`` compares them bit for bit).
"""

from __future__ import annotations

import numpy as np

from nhw.errors import ConfigError

from . import kernel as _kernel
from .synapse_tables import distinct_cols

#: Step implementations an :class:`~nhw.hw_emulator.emulator.Emulator` can use
#: (``kernel=``); ``"auto"`` picks ``"numba"`` when numba is installed, else ``"numpy"``.
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


class CompiledRun:
    """The compiled-kernel methods of :class:`~nhw.hw_emulator.emulator.Emulator` (a mixin).

    They read the emulator's state (``_x``, ``_act``, ``_hold``, the counters) and the
    delivery layout it built (``_dense``, ``_runs``); :meth:`_setup_kernel` runs once
    at construction when ``kernel == "numba"``.
    """

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
            rowmap, w, colmap = distinct_cols(rowmap, w)
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

    def _run_compiled(self, steps: int, host_counts: np.ndarray | None, full: np.ndarray) -> None:
        """A whole :meth:`run` without learning or recorded state as one compiled loop
        (spikes of every step into ``full``)."""
        host = self._compiled_host(host_counts, steps)
        spk = np.empty(self.n, bool)
        self.q_overflows += _kernel.run_kernel(self.n_steps, steps, self._x, *self._kernel_args()[:1],
                                               self._act, host, *self._kernel_args()[2:], spk,
                                               self.spike_count, self.active_count, full)
        self.n_steps += steps
        self.spikes = spk

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

"""Closed-loop ``loihi-emu`` runs whose host side is plain arithmetic, a chunk of steps per compiled call.

The common PES network (an error Node ``error = post - stim``: a passthrough Node fed
by a decoded chip output and by Lowpass-filtered connections, feeding the rule through
a Lowpass connection) needs no Python per step: its host pass is sums, elementwise
weights and Lowpass filters.  :class:`LoopPlan` checks a mapped network for that
shape and writes its host pass as index arrays for :mod:`.loop_kernel`; networks
with anything else on the late host path (a Node function, a non-Lowpass synapse, a
dense transform, several learning rules, voltage probes, per-step chip input)
keep the per-step loop.  Early Nodes (those not reading the chip) are still
evaluated in Python a chunk ahead (:class:`.early.EarlyRun`), user callables in
order, as before.
"""

from __future__ import annotations

from typing import Any

import nengo
import numpy as np
from nhw.hw_emulator.learning import _DITHER_UNIT

from . import host_kernels, loop_kernel
from .filters import lowpass_decay


class LoopPlan:
    """The host program of a closed-loop network whose late host pass is arithmetic only.

    Build with :meth:`make` (``None`` when the network does not qualify).
    """

    def __init__(self, sim: Any) -> None:
        self.sim = sim
        host, dec = sim.host, sim.decoder
        self.tap = sim.mapped.learning[0]
        self.late_nodes = host.passes["late"][0]
        self.late_conns = host.passes["late"][1]
        self.bulk = [c for c in host.bulk_conns]
        # workspace: decoded outputs, late Node values, filtered connection values, the error
        off = dec.n_out
        self.y_off = 0
        self.node_off = {}
        self.node_lo = off  # the late Nodes' values are contiguous (recorded per step)
        for nd in self.late_nodes:
            self.node_off[nd] = off
            off += host.nspec[nd][0]
        self.node_hi = off
        self.conn_off = {}
        for c in self.bulk + self.late_conns:
            self.conn_off[c] = off
            off += c.size_out
        self.tap_off = off
        off += host.nspec[self.tap][0]
        self.ws_size = off
        self.probed_nodes = {what for kind, what in sim.mapped.probe_plans.values() if kind == "node"}
        self.bulk_dst = np.concatenate(
            [self.conn_off[c] + np.arange(c.size_out) for c in self.bulk] + [np.zeros(0, int)]
        ).astype(np.intp)

    @classmethod
    def make(cls, sim: Any) -> LoopPlan | None:
        """The plan of ``sim``'s closed loop, or ``None`` where it needs the per-step loop."""
        try:
            return cls._make(sim)
        except _NotArithmetic:
            return None

    @classmethod
    def _make(cls, sim: Any) -> LoopPlan:
        host, dec, em, m = sim.host, sim.decoder, sim.emulator, sim.mapped
        _need(sim.fast_host and host_kernels.AVAILABLE and em.kernel == "numba")
        _need(len(m.learning) == 1 and len(em.learned) == 1 and not m.voltages)
        _need(dec.lowpass_only and dec.sub.size > 0)
        _need(em.n_inputs == 0 or (host.signal_early and sim.encoder.transform.size > 0))
        g, lw = next(iter(em.learned.values()))
        _need(g.src_slice.step in (None, 1) and len(lw.x) == g.src_slice.stop - g.src_slice.start)
        # decoded outputs, sums of them, and Node values are recorded per chunk; voltages are not
        _need(all(plan[0] in ("output", "sum", "node") for plan in m.probe_plans.values()))
        for nd in host.passes["late"][0]:
            _need(host.nspec[nd][3])  # passthrough Nodes only
        for c in host.passes["late"][1]:
            _need(c.function is None and type(c.synapse) is nengo.Lowpass
                  and type(c.transform) in (nengo.transforms.Dense, nengo.transforms.NoTransform)
                  and np.ndim(host.conn_w[c]) <= 1)
        plan = cls(sim)
        plan._program()
        return plan

    def _sources(self, kind: str, item: Any) -> np.ndarray:
        """Workspace indices of one input of a late Node or of the error."""
        host, sim = self.sim.host, self.sim
        if kind == "chip":
            return self.y_off + np.arange(sim.decoder.n_out)[host.out_rows[item]]
        _need(host.cspec[item][3] and item in self.conn_off)  # filtered, early (bulk) or late
        return self.conn_off[item] + np.arange(item.size_out)

    def _sum_program(self, targets: list, offsets: list) -> tuple:
        host = self.sim.host
        ptr, src, dst = [0], [], []
        for tgt, off in zip(targets, offsets):
            for kind, item in host.node_in[tgt]:
                s = self._sources(kind, item)
                d = off + host.post_idx[item]
                _need(len(s) == len(d) and len(np.unique(d)) == len(d))
                src.append(s)
                dst.append(d)
            ptr.append(sum(len(x) for x in src))
        cat = (lambda xs: np.concatenate(xs).astype(np.intp) if xs else np.zeros(0, np.intp))
        sizes = np.array([host.nspec[t][0] for t in targets], np.intp)
        return np.array(ptr, np.intp), np.array(offsets, np.intp), sizes, cat(src), cat(dst)

    def _program(self) -> None:
        host = self.sim.host
        nodes = self._sum_program(self.late_nodes, [self.node_off[nd] for nd in self.late_nodes])
        taps = self._sum_program([self.tap], [self.tap_off])
        cptr, cpre, cw, coff, ce = [0], [], [], [], []
        for c in self.late_conns:
            pre, pre_slice, _, _ = host.cspec[c]
            x_idx = self.node_off[pre] + np.arange(host.nspec[pre][0])[pre_slice]
            w = np.asarray(host.conn_w[c], np.float64)
            _need(c.size_out == len(x_idx) and (w.ndim == 0 or w.shape == x_idx.shape))
            w = np.broadcast_to(w, x_idx.shape)
            cpre.append(x_idx)
            cw.append(w)
            cptr.append(cptr[-1] + len(x_idx))
            coff.append(self.conn_off[c])
            ce.append(lowpass_decay(c.synapse, self.sim.dt))
        conns = (np.array(cptr, np.intp),
                 np.concatenate(cpre).astype(np.intp) if cpre else np.zeros(0, np.intp),
                 np.ascontiguousarray(np.concatenate(cw) if cw else np.zeros(0)),
                 np.array(coff, np.intp), np.array(ce, np.float64))
        tap, sim = self.tap, self.sim
        inv = 1.0 / np.broadcast_to(np.asarray(tap.rule_regs.error_scale, np.float64), (host.nspec[tap][0],))
        # _sums takes (ptr, off, size, src, dst); nodes and taps pass them in that order
        self.program = (self.bulk_dst, nodes[0], nodes[1], nodes[2], nodes[3], nodes[4],
                        *conns, taps[0], taps[1], taps[2], taps[3], taps[4],
                        np.ascontiguousarray(inv), float(sim.emulator.spec.error_max))

    # ------------------------------------------------------------------ run
    def _load(self) -> np.ndarray:
        """The workspace from the host's current state."""
        host, ws = self.sim.host, np.zeros(self.ws_size)
        ws[self.y_off:self.y_off + len(host.y_all)] = host.y_all
        for nd, off in self.node_off.items():
            ws[off:off + host.nspec[nd][0]] = host.node_val[nd]
        for c in self.late_conns:
            o = self.conn_off[c]
            ws[o:o + c.size_out] = host.conn_filters[c].y
        return ws

    def _store(self, ws: np.ndarray) -> None:
        """The host's state from the workspace after a chunk (as the per-step loop leaves it)."""
        host, dec = self.sim.host, self.sim.decoder
        dec.bank.y = self.ystate.copy()
        dec.prev = self.ystate.copy()
        host.y_all = ws[self.y_off:self.y_off + len(dec.bank.y)].copy()
        for nd, off in self.node_off.items():
            host.node_val[nd] = ws[off:off + host.nspec[nd][0]].copy()
        for c in self.late_conns:
            o = self.conn_off[c]
            y = ws[o:o + c.size_out].copy()
            host.conn_filters[c].y = y
            host.conn_next[c] = y

    def run(self, steps: int) -> None:
        """Run ``steps`` steps, ``sim.early_chunk`` at a time, and record the probes."""
        sim = self.sim
        em, host, dec = sim.emulator, sim.host, sim.decoder
        g, lw = next(iter(em.learned.values()))
        src0 = g.src_slice.start
        done = 0
        n0 = sim.n_steps
        while done < steps:
            chunk = min(sim.early_chunk, steps - done)
            t0 = n0 + done
            early = sim._early(t0, chunk, signal=host.signal_early)
            if em.n_inputs:
                # host spikes take one step to arrive (SpikeEncoder.arrive)
                counts = np.ascontiguousarray(sim.encoder.arrive(sim.encoder.encode(early.signal)), np.int64)
                em.input_count += counts.sum(axis=0)
            else:
                counts = np.zeros((chunk, 0), np.int64)
            bulk = np.zeros((chunk, len(self.bulk_dst)))
            col = 0
            for c in self.bulk:
                rows = np.reshape(early._delivered[c], (chunk, -1))
                bulk[:, col:col + rows.shape[1]] = rows
                col += rows.shape[1]
            # the learning's random draws, in the order the per-step loop makes them
            t_offs = np.zeros(chunk, np.uint16)
            w_offs = np.zeros(chunk, np.uint16)
            epoch = int(lw.rule.epoch)
            for k in range(chunk):
                t_offs[k] = lw._u_trace.advance(em.rng)
                if (t0 + k + 1) % epoch == 0:
                    w_offs[k] = lw._u_weight.advance(em.rng)
            # (no epoch in this chunk yet: the weight dither has no phases, and none are read)
            w_phase = lw._u_weight.phase if lw._u_weight.phase is not None else np.zeros(lw.mant.shape, np.uint16)
            ws = self._load()
            self.ystate = np.array(dec.prev, np.float64, copy=True)  # the Lowpass bank's state
            yrec = np.empty((chunk, dec.n_out))
            nrec = np.empty((chunk, self.node_hi - self.node_lo))
            error = np.zeros(len(lw.error), np.int64)
            spk = np.empty(em.n, bool)
            prev = np.array(em.spikes, bool, copy=True)
            chip = (em._x, em._kernel_args(), spk, prev, em.spike_count, em.active_count, counts, em.n_inputs)
            learn = (lw.mant, src0, lw.tgt.start, lw._dim, np.asarray(lw._target_scale, np.float64), lw.x,
                     np.array(lw._trace_consts, lw.dtype), lw._u_trace.phase, t_offs, w_phase, w_offs,
                     np.ascontiguousarray(lw.factor, np.float64), epoch, float(lw.spec.weight_mant_max),
                     _DITHER_UNIT)
            decode = (np.ascontiguousarray(dec.cols, np.intp), dec.sub / sim.dt, dec.bank.lowpass,
                      np.ascontiguousarray(dec.lagged), self.ystate, self.y_off)
            stats = loop_kernel.run_chunk(t0, chunk, ws, bulk, self.program, error, chip, learn, decode, yrec,
                                          self.node_lo, nrec)
            em.n_steps += chunk
            em.q_overflows += int(stats[0])
            lw.epochs += int(stats[1])
            lw.saturations += int(stats[2])
            lw.record_errors(chunk, int(stats[3]), float(stats[4]))
            lw.load_error(error)
            em.spikes = spk
            self._store(ws)
            early.finish()
            node_rec = {}
            for nd in self.probed_nodes:
                if nd in self.node_off:
                    o = self.node_off[nd] - self.node_lo
                    node_rec[nd] = nrec[:, o:o + host.nspec[nd][0]]
                else:  # an early Node: its values of the chunk, as the open-loop path records them
                    node_rec[nd] = early.values[nd]
            sim.probes.record_chunk(yrec, node_rec, {}, t0, chunk)
            done += chunk


class _NotArithmetic(Exception):
    """The network's late host pass is not plain arithmetic (internal: :meth:`LoopPlan.make` returns None)."""


def _need(ok: bool) -> None:
    if not ok:
        raise _NotArithmetic


__all__ = ["LoopPlan"]

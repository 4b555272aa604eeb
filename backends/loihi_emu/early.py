"""Host nodes of the ``loihi-emu`` target that do not depend on the chip, run ahead.

A node is *early* when nothing it reads comes from the chip (transitively); the
rest are *late*.  Early nodes can be evaluated for a whole chunk of steps before
the chip runs: their values, the chip's input signal and the filtered host
connections leaving them are recorded per step, and each step of the late pass
(nodes that read chip outputs) sees exactly the early values of its own step.

Without the record, a late node read the early values of the chunk's *last* step
(a filtered connection from a time-varying Node into a node reading the chip was
off by up to the signal's full range).
"""

from __future__ import annotations

from typing import Any

import numpy as np


class EarlyRun:
    """Early host values of ``steps`` steps starting after step ``n0``, recorded.

    Parameters
    ----------
    sim
        The loihi-emu Simulator (its early nodes, filtered connections and signal).
    n0
        Steps already run; the chunk covers steps ``n0 + 1 .. n0 + steps``.
    steps
        Steps in the chunk.
    signal
        Also record the chip's input signal (only when every signal source is early).
    """

    def __init__(self, sim: Any, n0: int, steps: int, signal: bool) -> None:
        self._sim = sim
        nodes, looped = sim._early_nodes, sim._pass["early"][1]
        self.values = {nd: np.zeros((steps, sim._nspec[nd][1])) for nd in nodes}
        # what each filtered connection delivers in a step was computed the step before
        self._delivered = {c: np.zeros((steps,) + np.shape(sim._conn_next[c])) for c in looped}
        ts = (n0 + 1 + np.arange(steps)) * sim.dt
        node_val, conn_next = sim._node_val, sim._conn_next
        for i in range(steps):
            for c, rec in self._delivered.items():
                rec[i] = conn_next[c]
            sim._eval_nodes(ts[i], "early")
            for nd, rec in self.values.items():
                rec[i] = node_val[nd]
        self._final_next = {c: conn_next[c] for c in looped}
        self._final_val = {nd: node_val[nd] for nd in nodes}
        # connections read only by late nodes: filtered over the whole chunk at once
        for c in sim._bulk_conns:
            y = sim._conn_filters[c].run(ts, self._conn_input(c))
            self._delivered[c] = np.concatenate([np.reshape(conn_next[c], (1, -1)), y[:-1]])
            self._final_next[c] = y[-1]
        self.signal = self._signal() if signal and sim._enc_t.size else None

    def _rows(self, node: Any, sl: Any, fn: Any, size: int) -> np.ndarray:
        """``fn(x[sl])`` of an early node's recorded values, one row per step."""
        x = self.values[node][:, sl]
        if fn is None:
            return x
        return np.array([np.asarray(fn(row), dtype=np.float64) for row in x]).reshape(len(x), size)

    def _conn_input(self, c: Any) -> np.ndarray:
        """A host connection's transformed value for every step of the chunk."""
        sim = self._sim
        pre, pre_slice, function, _ = sim._cspec[c]
        x = self._rows(pre, pre_slice, function, c.size_mid)
        w = sim._conn_w[c]
        return x @ w.T if sim._conn_w_2d[c] else w * x

    def _signal(self) -> np.ndarray:
        """The chip's input signal (every source is early) for every step of the chunk."""
        parts = [self._rows(*spec) for spec in self._sim._sig_specs]
        return np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]

    def restore(self, i: int) -> None:
        """Make step ``i`` of the chunk's early values current (before its late pass)."""
        node_val, conn_next = self._sim._node_val, self._sim._conn_next
        for nd, rec in self.values.items():
            node_val[nd] = rec[i]
        for c, rec in self._delivered.items():
            conn_next[c] = rec[i]

    def finish(self) -> None:
        """Leave the early state as after the chunk's last step (the next chunk starts there)."""
        self._sim._node_val.update(self._final_val)
        self._sim._conn_next.update(self._final_next)

"""Host nodes of the ``loihi-emu`` target that do not depend on the chip, run ahead.

A node is *early* when nothing it reads comes from the chip (transitively); the
rest are *late*.  Early nodes can be evaluated for a whole chunk of steps before
the chip runs: their values, the chip's input signal and the filtered host
connections leaving them are recorded per step, and each step of the late pass
(nodes that read chip outputs) sees exactly the early values of its own step
(not those of the chunk's last step).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .host import Host


class EarlyRun:
    """Early host values of ``steps`` steps starting after step ``n0``, recorded.

    Parameters
    ----------
    host
        The host side (its early nodes, filtered connections and encoder signal).
    n0
        Steps already run; the chunk covers steps ``n0 + 1 .. n0 + steps``.
    steps
        Steps in the chunk.
    signal
        Also record the chip's input signal (only when every signal source is early).
    """

    def __init__(self, host: Host, n0: int, steps: int, signal: bool, tables: bool = True) -> None:
        self._host = host
        nodes, looped = host.early_nodes, host.passes["early"][1]
        ts = (n0 + 1 + np.arange(steps)) * host.dt
        # source nodes whose whole chunk is one array expression (constants, Piecewise, ...)
        table = host.source_tables(ts) if tables and steps else {}
        self.values = {nd: table[nd] if nd in table else np.zeros((steps, host.nspec[nd][1])) for nd in nodes}
        # what each filtered connection delivers in a step was computed the step before
        self._delivered = {c: np.zeros((steps,) + np.shape(host.conn_next[c])) for c in looped}
        rest = [nd for nd in nodes if nd not in table]
        node_val, conn_next = host.node_val, host.conn_next
        if rest or looped:
            rec_rest = [(nd, self.values[nd]) for nd in rest]
            rec_table = [(nd, table[nd]) for nd in table]
            for i in range(steps):
                for c, rec in self._delivered.items():
                    rec[i] = conn_next[c]
                for nd, rec in rec_table:
                    node_val[nd] = rec[i]
                host.eval_nodes(ts[i], "early", rest)
                for nd, rec in rec_rest:
                    rec[i] = node_val[nd]
        for nd, rec in table.items():
            node_val[nd] = rec[-1]
        self._final_next = {c: conn_next[c] for c in looped}
        self._final_val = {nd: node_val[nd] for nd in nodes}
        # connections read only by late nodes: filtered over the whole chunk at once
        for c in host.bulk_conns:
            y = host.conn_filters[c].run(ts, self._conn_input(c))
            self._delivered[c] = np.concatenate([np.reshape(conn_next[c], (1, -1)), y[:-1]])
            self._final_next[c] = y[-1]
        self.signal = self._signal() if signal else None

    def _rows(self, node: Any, sl: Any, fn: Any, size: int) -> np.ndarray:
        """``fn(x[sl])`` of an early node's recorded values, one row per step."""
        x = self.values[node][:, sl]
        if fn is None:
            return x
        return np.array([np.asarray(fn(row), dtype=np.float64) for row in x]).reshape(len(x), size)

    def _conn_input(self, c: Any) -> np.ndarray:
        """A host connection's transformed value for every step of the chunk."""
        host = self._host
        pre, pre_slice, function, _ = host.cspec[c]
        x = self._rows(pre, pre_slice, function, c.size_mid)
        w = host.conn_w[c]
        return x @ w.T if host.conn_w_2d[c] else w * x

    def _signal(self) -> np.ndarray:
        """The chip's input signal (every source is early) for every step of the chunk."""
        parts = [self._rows(*spec) for spec in self._host.sig_specs]
        return np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]

    def restore(self, i: int) -> None:
        """Make step ``i`` of the chunk's early values current (before its late pass)."""
        node_val, conn_next = self._host.node_val, self._host.conn_next
        for nd, rec in self.values.items():
            node_val[nd] = rec[i]
        for c, rec in self._delivered.items():
            conn_next[c] = rec[i]

    def finish(self) -> None:
        """Leave the early state as after the chunk's last step (the next chunk starts there)."""
        self._host.node_val.update(self._final_val)
        self._host.conn_next.update(self._final_next)

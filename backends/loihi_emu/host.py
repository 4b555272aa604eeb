"""The host side of ``loihi-emu``: Nodes, the connections between them, and their values.

Nodes run on the host, as in nengo: a Node's output function (or nengo Process,
stepped by its own ``make_step`` with nengo's seeding) is called once per step with
the sum of its inputs; filtered host connections, and decoded chip outputs with a
synapse, deliver their value one step later, as nengo's do.  A Node is *early* when nothing it reads comes from the chip
(transitively) and *late* otherwise; early nodes can run ahead of the chip a chunk
of steps at a time (:mod:`.early`).
"""

from __future__ import annotations

from graphlib import CycleError, TopologicalSorter
from typing import Any, Callable

import numpy as np
from nengo.connection import LearningRule
from nengo.exceptions import SimulationError
from nengo.node import Node
from nengo.processes import Process

from . import time_nodes
from .chip_rules import describe
from .conv import conv_dense, is_conv
from .filters import HostFilter
from .taps import MappedModel


class Host:
    """Host Nodes and connections of a mapped model, evaluated step by step.

    Parameters
    ----------
    mapped
        The mapped model (its ``nodes``, ``host_connections``, ``outputs`` and
        ``learning`` taps).
    model
        The built nengo model (connection weights as nengo built them).
    dt
        Time step in seconds.
    out_rows
        Rows of the decoded chip outputs (``y_all``) that each ``ChipOutput`` reads.
    sig_specs
        ``(node, pre_slice, function, size)`` of each host value the chip's input
        encoder reads, in encoder column order.

    Attributes
    ----------
    y_all
        The chip's decoded outputs as the host reads them in the current step (rows with
        a synapse: the filter's value after the previous step, as nengo's "update"-mode
        filters; rows without: this step's value; :meth:`.codec.OutputDecoder.host_view`);
        set by the simulator after the chip step, before the late pass.
    node_val
        Current output of every Node.
    conn_next
        What each filtered host connection delivers in the next step.
    """

    def __init__(self, mapped: MappedModel, model: Any, dt: float, out_rows: dict, sig_specs: list) -> None:
        self.mapped, self.dt, self.out_rows, self.sig_specs = mapped, dt, out_rows, sig_specs
        nodes = mapped.nodes
        self.node_order = self._node_order()
        # host sinks: nodes, and learning rules keyed by their tap (a LearningRule
        # hashes all its parameters, far too slow for a per-step lookup)
        sink = {n: n for n in nodes}
        sink.update({tap.rule: tap for tap in mapped.learning})
        self.node_in: dict = {k: [] for k in sink.values()}
        for c in mapped.host_connections:
            self.node_in[sink[c.post_obj]].append(("node", c))
        for o in mapped.outputs:
            post = getattr(o.key, "post_obj", None)
            if isinstance(post, (Node, LearningRule)) and post in sink:
                self.node_in[sink[post]].append(("chip", o))
        # host nodes reading chip outputs are evaluated after the chip in batch mode
        self.late_nodes = {nd for nd in nodes if self._depends_on_chip(nd)}
        self.post_idx = {c: np.arange(c.post_obj.size_in)[c.post_slice] for c in mapped.host_connections}
        self.post_idx.update({o: np.arange(o.key.post_obj.size_in)[o.key.post_slice] for o in mapped.outputs
                              if isinstance(getattr(o.key, "post_obj", None), (Node, LearningRule))})
        self.filtered_conns = [c for c in mapped.host_connections if c.synapse is not None]
        # early nodes (not reading the chip) run ahead of it, a chunk of steps at a time
        self.early_nodes = [nd for nd in self.node_order if nd not in self.late_nodes]
        early_conns = [c for c in self.filtered_conns if c.pre_obj not in self.late_nodes]
        # those read only by late nodes or learning rules are computed a chunk at a time
        early_set = set(self.early_nodes)
        self.bulk_conns = [c for c in early_conns if c.post_obj not in early_set]
        self.passes = {
            "early": (self.early_nodes, [c for c in early_conns if c.post_obj in early_set]),
            "late": ([nd for nd in self.node_order if nd in self.late_nodes],
                     [c for c in self.filtered_conns if c.pre_obj in self.late_nodes]),
        }
        # early sources that may have a whole-chunk form (time_nodes decides per chunk)
        self.table_nodes = [nd for nd in self.early_nodes if nd.size_in == 0 and time_nodes.may_table(nd)]
        self.signal_early = all(nd not in self.late_nodes for nd, *_ in sig_specs)
        # nengo parameter reads cost microseconds each; the per-step host code reads copies
        self.nspec = {n: (n.size_in, n.size_out, isinstance(n.output, Process), n.output is None) for n in nodes}
        self.nspec.update({tap: (tap.rule.size_in, 0, False, True) for tap in mapped.learning})
        self.cspec = {c: (c.pre_obj, c.pre_slice, c.function, c.synapse is not None)
                      for c in mapped.host_connections}
        self.conn_w = {}
        for c in mapped.host_connections:
            sig = model.sig[c].get("weights")
            w = 1.0 if sig is None else sig.initial_value  # None: NoTransform
            self.conn_w[c] = conv_dense(c.transform, w) if is_conv(c.transform) else w
        self.conn_w_2d = {c: np.ndim(w) == 2 for c, w in self.conn_w.items()}
        self.y_all = np.zeros(0)

    def _node_order(self) -> list:
        """Host Nodes ordered so that values passed without a synapse are computed first."""
        deps: dict = {n: set() for n in self.mapped.nodes}
        for c in self.mapped.host_connections:
            if c.synapse is None and c.post_obj in deps:  # (a learning rule reads its input later)
                deps[c.post_obj].add(c.pre_obj)
        try:
            return list(TopologicalSorter(deps).static_order())
        except CycleError as e:
            raise SimulationError(
                f"Nodes form an algebraic loop (connections without synapse): {e.args[1]}"
            ) from None

    def _depends_on_chip(self, node: Node, seen: frozenset = frozenset()) -> bool:
        if node in seen:
            return False
        for kind, item in self.node_in.get(node, ()):
            if kind == "chip" or self._depends_on_chip(item.pre_obj, seen | {node}):
                return True
        return False

    def reset(self, rng: np.random.RandomState, n_out: int) -> None:
        """Fresh node functions, values and filters; ``n_out`` decoded output rows."""
        m = self.mapped
        # processes draw their seeds from the simulator's rng in turn, as in nengo
        self.node_fn = {n: self._make_node_fn(n, rng) for n in m.nodes}
        self.node_val = {n: np.zeros(n.size_out) for n in m.nodes}
        self.conn_filters = {c: HostFilter(c.synapse, c.size_out, self.dt) for c in m.host_connections}
        self.conn_next = {c: np.zeros(c.size_out) for c in self.filtered_conns}
        self.y_all = np.zeros(n_out)

    def _make_node_fn(self, node: Node, rng: np.random.RandomState) -> Callable:
        out = node.output
        if out is None:
            return lambda t, x: x
        if isinstance(out, Process):
            shape_in, shape_out = (node.size_in,), (node.size_out,)
            state = out.make_state(shape_in, shape_out, self.dt)
            # a seeded process ignores the simulator's seed, as in nengo
            step = out.make_step(shape_in, shape_out, self.dt, out.get_rng(rng), state)
            return (lambda t, x: step(t)) if node.size_in == 0 else step
        if callable(out):
            return (lambda t, x: out(t)) if node.size_in == 0 else out
        value = np.asarray(out, dtype=np.float64)
        return lambda t, x: value

    def out_value(self, o: Any) -> np.ndarray:
        """This step's decoded value of the chip output ``o``."""
        return self.y_all[self.out_rows[o]]

    def node_input(self, node: Any, t: float) -> np.ndarray:
        """The summed input of ``node`` (or of a learning tap: the rule's error) at time ``t``."""
        x = np.zeros(self.nspec[node][0])
        for kind, item in self.node_in[node]:
            if kind == "node":
                y = self.conn_next[item] if self.cspec[item][3] else self.conn_value(item, t)
            else:
                y = self.out_value(item)
            x[self.post_idx[item]] += y
        return x

    def conn_value(self, c: Any, t: float) -> np.ndarray:
        """A host connection's filtered value ``synapse(w @ f(x[pre_slice]))`` at time ``t``."""
        pre, pre_slice, function, _ = self.cspec[c]
        x = self.node_val[pre][pre_slice]
        if function is not None:
            x = np.atleast_1d(np.asarray(function(x), dtype=np.float64))
        w = self.conn_w[c]
        y = w @ x if self.conn_w_2d[c] else w * x
        return self.conn_filters[c](t, np.atleast_1d(y))

    def source_tables(self, ts: np.ndarray) -> dict:
        """Outputs at times ``ts`` (one row per step) of the early Nodes that need no call per step.

        Nodes without input whose output is a constant or a process with a
        vectorised form (:data:`.time_nodes.VECTORISED`) are evaluated for all of
        ``ts`` at once, with the values their step function would return.
        """
        out = {}
        for node in self.table_nodes:
            rows = time_nodes.table(node, ts, self.dt, check_output)
            if rows is not None:
                out[node] = rows
        return out

    def eval_nodes(self, t: float, which: str, nodes: list | None = None) -> None:
        """Evaluate the ``"early"`` (not reading the chip) or ``"late"`` host nodes at time ``t``.

        ``nodes``: evaluate only these of the pass's nodes (the others' values are set).
        """
        all_nodes, conns = self.passes[which]
        nodes = all_nodes if nodes is None else nodes
        for node in nodes:
            size_in, size_out, is_process, passthrough = self.nspec[node]
            x = self.node_input(node, t) if size_in else None
            if passthrough:  # its input is a sum of already checked values
                self.node_val[node] = x
                continue
            y = self.node_fn[node](t, x)
            if size_out:
                if is_process:
                    # nengo does not validate process outputs (None becomes NaN)
                    y = np.asarray(np.nan if y is None else y, dtype=np.float64)
                    self.node_val[node] = np.broadcast_to(y, (size_out,)).copy()
                else:
                    self.node_val[node] = check_output(node, y, size_out)
        for c in conns:
            # filtered host connections deliver next step, as nengo's do
            self.conn_next[c] = self.conn_value(c, t)

    def signal(self) -> np.ndarray:
        """The host values the chip's input encoder reads, concatenated, at this step."""
        sig = []
        vals = self.node_val
        for node, sl, fn, size in self.sig_specs:
            x = vals[node][sl]
            if fn is not None:
                x = np.asarray(fn(x), dtype=np.float64).reshape(size)
            sig.append(x)
        return np.concatenate(sig) if len(sig) > 1 else sig[0]


def check_output(node: Node, y: Any, size_out: int) -> np.ndarray:
    """Node output as a float vector; ``None``, non-numeric or non-finite values are errors.

    Raises
    ------
    nengo.exceptions.SimulationError
        The output is ``None``, not ``size_out`` numbers, or contains NaN or Inf.
    """
    if y is None:
        raise SimulationError(f"{describe(node)}: output function returned None; expected {size_out} values")
    try:
        y = np.asarray(y, dtype=np.float64).reshape(size_out)
    except (TypeError, ValueError) as e:
        raise SimulationError(f"{describe(node)}: output {y!r} is not {size_out} numbers ({e})") from None
    if not np.isfinite(y).all():  # the method: no fromnumeric wrapper (called every step)
        raise SimulationError(f"{describe(node)}: output contains NaN or Inf: {y}")
    return y

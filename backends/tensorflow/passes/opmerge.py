"""nengo's operator merger, with its dependency bookkeeping in bitsets.

The simulator merges operators with nengo's own optimizer (the reference
simulator's: the same mergers, signal checks and merge order, so merged operators
and signals line up). On large models nengo 4.1's optimizer spends most of its time
and memory on dependency bookkeeping, not on merging:

- every pass recomputes each operator's set of dependents (its transitive closure)
  as explicit sets. After the first merges, operators upstream of a merged operator
  all reach everything downstream of it, so the sets grow quadratically with the
  model (for a chain of one-dimensional ensembles, tens of millions of entries in
  one pass);
- "is any of these dependents merged?" is asked element by element in Python;
- merging removes the merged operators from every neighbour's ordered edge sets one
  element at a time;
- the block-sparse merge of ``DotInc`` operators checks its inputs pairwise.

Here every pass numbers the operators in a reverse topological order and keeps each
operator's closure (itself and everything that depends on it) as one Python integer
used as a bitset, so a closure costs a few word-wide ORs and every query
("depends on a merged operator?", "independent of the group being formed?") is one
AND. :class:`MergePass` is nengo's ``OpMergePass`` with only the methods that touch
dependents replaced; it makes the merges nengo's optimizer makes, asked in the same
order with the same answers, except that candidates are visited in the graph's
order where nengo iterates a set of operators: nengo's merges (and the
simulator's kernels and timings) changed from run to run with the operators' ids;
ours are the same in every build (:func:`stable_toposort` does the same for the step
order). :func:`optimize` runs nengo's ``optimize`` with
this pass, edge sets whose bulk removal is a dictionary rebuild and a linear-time
``DotInc`` merger (:class:`DotIncMerger`). A chain of 4000 one-dimensional
ensembles: 13.7 s with only the closures replaced, 6.2 s with all three.
"""

from __future__ import annotations

import threading
from typing import Iterable

import numpy as np
import nengo.builder.optimizer as _nengo_optimizer
import nengo.utils.graphs as _nengo_graphs
from nengo.builder.operator import BsrDotInc, DotInc, reshape_dot
from nengo.builder.optimizer import OpInfo, OpMerger, OpsToMerge, SigMerger
from nengo.builder.signal import Signal
from nengo.exceptions import BuildError
from nengo.rc import rc
from nengo.utils.stdlib import OrderedSet

#: the names replaced are module globals of nengo; swapping them is serialised
#: so concurrent builds never restore each other's
_SWAP = threading.Lock()
_REVERSE_EDGES = _nengo_graphs.reverse_edges


def closure_bitsets(edges: dict) -> tuple[dict, dict]:
    """Number a DAG's vertices and return each vertex's closure as a bitset.

    Parameters
    ----------
    edges
        ``{a: {b, c}}`` where ``b`` and ``c`` depend on ``a`` (every vertex a key).

    Raises
    ------
    nengo.exceptions.BuildError
        If the graph has a cycle.

    Returns
    -------
    index : dict
        ``{vertex: bit}``; a vertex's bit is above those of everything depending on
        it (a reverse topological numbering, from a depth-first post-order), so a
        closure's integer is as long as the vertex's own bit.
    closed : dict
        ``{vertex: int}`` with the bits of the vertex and of every vertex reachable
        from it.
    """
    index: dict = {}
    closed: dict = {}
    for root in edges:
        if root in index:
            continue
        index[root] = -1  # on the stack
        stack = [(root, iter(edges[root]))]
        while stack:
            vertex, children = stack[-1]
            for child in children:
                if child not in index:
                    index[child] = -1
                    stack.append((child, iter(edges[child])))
                    break
                if index[child] == -1:  # on the stack: the edge closes a cycle
                    raise BuildError(
                        f"operator graph has a cycle through {child}; this happens when connections "
                        "with no synapse (synapse=None) form a loop: give one of them a synapse "
                        "(synapse=0 is enough)"
                    )
            else:
                stack.pop()
                bit = len(closed)
                mask = 1 << bit
                for child in edges[vertex]:
                    mask |= closed[child]
                index[vertex] = bit
                closed[vertex] = mask
    return index, closed


class _Group:
    """Operators being merged, with the attributes nengo's mergers read.

    nengo's ``check_signals`` methods read ``ops`` and ``all_signals``; the
    dependency state nengo keeps as sets (``all_dependents``) is a bitset here.
    """

    def __init__(self, op, bit: int, closed: int):
        self.ops = [op]
        self.optype = type(op)
        self.all_signals = set(op.all_signals)
        self.members = bit
        self.reached = closed
        # views as they are now: merges earlier in this pass may have turned the
        # signals of operators not yet visited into views (nengo reads them afresh
        # here, while the pass's visiting order uses the views of the pass's start)
        self.opinfo = OpInfo()

    @property
    def last_op(self):
        return self.ops[-1]

    def ends_before(self, op) -> bool:
        """Whether a gap separates the last member's view from ``op``'s."""
        last = self.opinfo.get(self.ops[-1])
        return last.v_offset + last.v_size < self.opinfo.get(op).v_offset

    def add(self, op, bit: int, closed: int) -> None:
        self.ops.append(op)
        self.all_signals.update(op.all_signals)
        self.members |= bit
        self.reached |= closed


class MergePass(_nengo_optimizer.OpMergePass):
    """nengo's optimizer pass with dependents kept as bitsets (see the module docstring)."""

    def __init__(self, dg):
        super().__init__(dg)
        # nengo keeps the candidates in a set, so the order operators are tried in
        # (and with it which merges win) changed from run to run with their ids:
        # the same network compiled to different kernels (pes16 b32 136-149
        # us/step between builds). In the graph's order, a build is reproducible.
        self.might_merge = EdgeSet(dg)
        self.index: dict = {}
        self.closed: dict = {}
        self.merged_mask = 0
        self.merged_dependents_mask = 0

    def __call__(self, only_merge_ops_with_view: bool) -> None:
        self.index, self.closed = closure_bitsets(self.dg.forward)
        self.only_merge_ops_with_view = only_merge_ops_with_view
        self.merged.clear()
        self.merged_mask = 0
        self.merged_dependents_mask = 0
        self.opinfo.clear()
        self.perform_merges()

    def _mark_merged(self, ops: Iterable) -> None:
        for op in ops:
            if op not in self.merged:
                self.merged.add(op)
                bit = self.index.get(op)  # operators made in this pass have no bit
                if bit is not None:
                    self.merged_mask |= 1 << bit

    def _bit(self, op) -> int:
        return 1 << self.index[op]

    def _blocked(self, op) -> bool:
        """Whether ``op`` is merged, a dependent of a merged group or reaches a merged operator."""
        return (
            op in self.merged
            or bool(self._bit(op) & self.merged_dependents_mask)
            or bool(self.closed[op] & self.merged_mask)
        )

    def _independent(self, op, group: _Group) -> bool:
        """Whether ``op`` is neither a dependent of ``group``'s operators nor depended on by them."""
        bit = self._bit(op)
        # strict closures (nengo's dependents exclude the operator itself); members
        # never reach each other, so removing their own bits leaves their dependents
        return not (bit & (group.reached ^ group.members) or (self.closed[op] ^ bit) & group.members)

    def _joins(self, op, group: _Group) -> bool:
        """nengo's ``OpMerger.is_mergeable`` with the dependency tests as ANDs."""
        merger = OpMerger.mergers.get(group.optype)
        return (
            type(op) is group.optype
            and merger is not None
            and self._independent(op, group)
            and not self._blocked(op)
            and OpsToMerge.check_signals(group.last_op, op)
            and merger.check_signals(op, group)
            and merger.is_mergeable(group.last_op, op)
        )

    def perform_merges_for_view_subset(self, subset: list) -> None:
        """Greedily merge operators whose first views are consecutive on one base.

        The operators are visited by view offset; each one not blocked by this
        pass's earlier merges starts a group that takes every later operator whose
        view continues the group's memory and that nengo's merger accepts.
        """
        info = [self.opinfo.get(op) for op in subset]
        offsets = np.array([i.v_offset for i in info], dtype=rc.float_dtype)
        order = np.argsort(offsets, kind="stable")  # ties keep the graph's order
        offsets = offsets[order]
        ops = [subset[i] for i in order]
        sizes = [info[i].v_size for i in order]

        for i, op in enumerate(ops):
            if self._blocked(op):
                continue
            group = _Group(op, self._bit(op), self.closed[op])
            # a view that continues the group starts where op's ends, or later
            start = int(np.searchsorted(offsets, offsets[i] + sizes[i], side="left"))
            for op2 in ops[start:]:
                if group.ends_before(op2):
                    break  # a gap: no later operator can continue the group
                if op2 not in self.merged and self._joins(op2, group):
                    group.add(op2, self._bit(op2), self.closed[op2])
            if len(group.ops) > 1:
                self.merge(group)
            elif self.only_merge_ops_with_view:
                self.might_merge.remove(op)

    def merge(self, tomerge: _Group) -> None:
        """Replace ``tomerge``'s operators by nengo's merged operator and update the signals."""
        merged_op, replaced = OpMerger.merge(tomerge.ops)
        # as a dict (ordered, hashed once): the graph removes these from each
        # neighbour's edge set, which would otherwise hash the list once per neighbour
        self.dg.merge(dict.fromkeys(tomerge.ops), merged_op)
        self.might_merge.difference_update(tomerge.ops)
        self.might_merge.add(merged_op)
        self._mark_merged(tomerge.ops)
        self.merged_dependents_mask |= tomerge.reached ^ tomerge.members
        # operators sharing a signal with a merged one wait for the next pass,
        # when their signals have been replaced (nengo's rule)
        for op in tomerge.ops:
            for sig in op.all_signals:
                self._mark_merged(self.sig2ops[sig])
        self.resolve_views_on_replaced_signals(replaced)
        self.sig_replacements.update(replaced)
        self.replace_op_signals(replaced)
        self.update_signal_indexing(merged_op, replaced)


class DotIncMerger(_nengo_optimizer.DotIncMerger):
    """nengo's ``DotInc`` merger with a linear-time block-sparse merge.

    Merging ``DotInc`` operators with different inputs makes one ``BsrDotInc``
    whose blocks are the operators' matrices. nengo's merge first asserts that no
    two inputs are the same object, comparing every pair: 8 million comparisons
    (2.6 s) for the encoders of 4000 ensembles. The mergers' signal checks already
    guarantee it (a group shares one input or none); this merge checks it with one
    set and builds the same operator and signals.
    """

    @staticmethod
    def merge(ops: list) -> tuple:
        if len({id(op.X) for op in ops}) < len(ops) or ops[0].A.ndim < 2:
            # one shared input (a plain merge), or what nengo rejects with its own error
            return _nengo_optimizer.DotIncMerger.merge(ops)
        blocks = np.array([op.A.initial_value for op in ops], dtype=rc.float_dtype)
        X, x_replaced = SigMerger.merge([op.X for op in ops])
        Y, y_replaced = SigMerger.merge([op.Y for op in ops])
        A = Signal(blocks, name=f"bsr_merged<{ops[0].A.name}, ..., {ops[-1].A.name}>",
                   readonly=all(op.A.readonly for op in ops))
        block_bytes = A.itemsize * int(np.prod(A.shape[1:]))
        a_replaced = {
            op.A: Signal(blocks[i], name=f"{op.A.name}[{i}]", base=A, offset=i * block_bytes, readonly=A.readonly)
            for i, op in enumerate(ops)
        }
        n = len(ops)
        reshape = reshape_dot(ops[0].A.initial_value, ops[0].X.initial_value, ops[0].Y.initial_value,
                              tag=ops[0].tag)
        merged = BsrDotInc(A, X, Y, indices=np.arange(n, dtype=rc.int_dtype),
                           indptr=np.arange(n + 1, dtype=rc.int_dtype), reshape=reshape)
        return merged, {**x_replaced, **y_replaced, **a_replaced}


class EdgeSet(OrderedSet):
    """nengo's ordered edge set with a bulk ``difference_update``."""

    def difference_update(self, other) -> None:
        data = self.data
        if len(data) <= 8 * len(other):
            drop = other if isinstance(other, (set, frozenset, dict)) else set(other)
            self.data = {k: None for k in data if k not in drop}
        else:
            for value in other:
                data.pop(value, None)


def reverse_edges(edges: dict) -> dict:
    """nengo's ``reverse_edges`` (the optimizer's backward graph) with :class:`EdgeSet` values."""
    return {vertex: EdgeSet(parents) for vertex, parents in _REVERSE_EDGES(edges).items()}


def optimize(model, dg: dict, merge_pass: type = MergePass) -> dict:
    """Merge ``model``'s operators with nengo's optimizer; returns the new dependency graph.

    Parameters
    ----------
    model : nengo.builder.Model
        The built model (its operators and signals are replaced, as nengo does).
    dg : dict
        Its operator dependency graph (``nengo.utils.simulator.operator_dependency_graph``).
    merge_pass
        The pass class nengo's ``optimize`` runs (:class:`MergePass` or a subclass).
    """
    graph = {op: EdgeSet(children) for op, children in dg.items()}
    swaps = [(_nengo_optimizer, "OpMergePass", merge_pass),
             (_nengo_graphs, "reverse_edges", reverse_edges)]
    mergers = OpMerger.mergers
    with _SWAP:
        originals = [getattr(module, name) for module, name, _ in swaps]
        original_dotinc = mergers[DotInc]
        try:
            for module, name, replacement in swaps:
                setattr(module, name, replacement)
            mergers[DotInc] = DotIncMerger
            _nengo_optimizer.optimize(model, graph)
        finally:
            for (module, name, _), original in zip(swaps, originals):
                setattr(module, name, original)
            mergers[DotInc] = original_dotinc
    return graph


def stable_toposort(dg: dict) -> list:
    """nengo's ``toposort`` of ``dg`` with each operator's dependents visited in ``dg``'s order.

    nengo's graph merge gives a merged operator a plain ``set`` of dependents, so
    the step order (and with it which operators share a kernel, and the order
    increments of one signal are summed in) followed the operators' ids and
    changed from run to run. Ordered by their position in ``dg`` (itself
    reproducible, see :class:`MergePass`), the same network gets the same order.
    """
    pos = {op: i for i, op in enumerate(dg)}
    return _nengo_graphs.toposort({op: sorted(children, key=pos.__getitem__) for op, children in dg.items()})

"""nengo's operator merger, with its graph bookkeeping done at C speed.

The simulator merges operators with nengo's own optimizer (the reference
simulator's, so merged operators, signals and random streams line up). Its
running time on large models is not in the merging but in two pieces of graph
bookkeeping, both quadratic in pure Python on models with thousands of
connections (a chain of 1000 one-dimensional ensembles: 34 s of nengo 4.1's
optimizer, 25 s of it in these):

- ``transitive_closure``, recomputed on every pass, builds each operator's set of
  dependents as an ordered set and hashes it element by element in Python to
  share equal sets;
- merging operators removes the merged ones from every neighbour's ordered edge
  sets (forward and backward) one element at a time.

:func:`optimize` runs nengo's ``optimize`` unchanged but with a closure built
from built-in frozensets (same contents, same sharing; hashing is done in C) and
edge sets whose bulk removal is a dictionary rebuild. The merges nengo makes do
not depend on either (the optimizer only tests membership and disjointness of
these sets), so the result is what nengo's optimizer produces.
"""

from __future__ import annotations

import threading

import nengo.builder.optimizer as _nengo_optimizer
import nengo.utils.graphs as _nengo_graphs
from nengo.utils.graphs import toposort
from nengo.utils.stdlib import OrderedSet

#: the functions replaced are module globals of nengo; swapping them is
#: serialised so concurrent builds never restore each other's functions
_SWAP = threading.Lock()
_REVERSE_EDGES = _nengo_graphs.reverse_edges


def transitive_closure(edges: dict, topo_sorted=None) -> dict:
    """``{vertex: frozenset of every vertex reachable from it}`` for a DAG.

    Parameters
    ----------
    edges
        ``{a: {b, c}}`` where ``b`` and ``c`` depend on ``a``.
    topo_sorted
        A topological order of the vertices (computed when omitted).
    """
    order = toposort(edges) if topo_sorted is None else topo_sorted
    reach: dict = {}
    shared: dict = {}
    for vertex in reversed(order):
        out = set(edges[vertex])
        for child in edges[vertex]:
            out |= reach[child]
        frozen = frozenset(out)
        # equal sets are stored once (upstream operators of a merged one share
        # most of their dependents); frozenset hashes are computed in C, once
        reach[vertex] = shared.setdefault(frozen, frozen)
    return reach


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


def optimize(model, dg: dict) -> dict:
    """Merge ``model``'s operators with nengo's optimizer; returns the new dependency graph.

    Parameters
    ----------
    model : nengo.builder.Model
        The built model (its operators and signals are replaced, as nengo does).
    dg : dict
        Its operator dependency graph (``nengo.utils.simulator.operator_dependency_graph``).
    """
    graph = {op: EdgeSet(children) for op, children in dg.items()}
    swaps = [(_nengo_optimizer, "transitive_closure", transitive_closure),
             (_nengo_graphs, "reverse_edges", reverse_edges)]
    with _SWAP:
        originals = [getattr(module, name) for module, name, _ in swaps]
        try:
            for module, name, fn in swaps:
                setattr(module, name, fn)
            _nengo_optimizer.optimize(model, graph)
        finally:
            for (module, name, _), fn in zip(swaps, originals):
                setattr(module, name, fn)
    return graph

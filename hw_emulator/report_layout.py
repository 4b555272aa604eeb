"""The part of a hardware report that depends only on the placement, computed once.

A placed network's resources (compartments, axons and synapse memory per core, memory
per synapse group) and the tables that turn activity counters into per-core figures
(which core each compartment and each synapse sits on) do not change while it runs or
when it is reset.  :func:`report_layout` computes them once; a report then only reads
the emulator's counters through them (:func:`~nhw.hw_emulator.report.build_report`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .allocate import Placement
from .blocks import CompartmentBlock, InputAxons


@dataclass(frozen=True)
class GroupFanout:
    """Synapses of one group per (source row, target core): ``synops = counts[rows] * mult``
    summed into ``cores``.

    ``source`` is the group's source (a block or host axons), ``rows`` its local source
    rows, ``cores`` the core of each pair's target, ``mult`` how many synapses the pair
    stands for; ``per_core`` counts the group's synapses on each core (for the learning
    engine's updates, ``None`` for a fixed group); ``rule`` is the group's learning rule.
    """

    source: CompartmentBlock | InputAxons
    rows: np.ndarray
    cores: np.ndarray
    mult: np.ndarray
    per_core: np.ndarray | None
    rule: object = None


@dataclass(frozen=True)
class ReportLayout:
    """What :func:`~nhw.hw_emulator.report.build_report` needs of a placement (see :func:`report_layout`).

    ``cores`` holds the static fields of each :class:`~nhw.hw_emulator.report.CoreReport`
    (core, chip, contents, resources and their limits), in ``CoreReport``'s order.
    """

    placement: Placement
    n_cores: int
    cores: tuple
    compartments: np.ndarray
    block_cores: tuple
    groups: tuple
    synapse_groups: tuple


def report_layout(placement: Placement) -> ReportLayout:
    """Compute the placement-only part of a hardware report of ``placement``.

    Parameters
    ----------
    placement
        Result of :func:`~nhw.hw_emulator.allocate.allocate`.
    """
    net, spec = placement.net, placement.board.chip
    n_cores = len(placement.cores)
    comps = np.zeros(n_cores, np.int64)
    block_cores = []
    for b in net.blocks:
        cores = np.asarray(placement.core_of[b])
        comps += np.bincount(cores, minlength=n_cores)
        block_cores.append((b, cores))
    groups = []
    for g in net.groups:
        src, tgt, _ = g.coo()
        tcore = np.asarray(placement.core_of[g.target])[tgt]
        # one entry per (source row, target core), counted: a report then sums
        # count * multiplicity over far fewer terms than synapses
        pair, mult = np.unique(src.astype(np.int64) * n_cores + tcore, return_counts=True)
        per_core = None if g.learning is None else np.bincount(tcore, minlength=n_cores).astype(np.int64)
        groups.append(GroupFanout(g.source, pair // n_cores, pair % n_cores, mult.astype(np.int64), per_core,
                                  g.learning))
    cores = tuple(
        (c.index, c.chip, c.describe(), c.compartments, spec.compartments_per_core,
         c.input_axons, spec.input_axons_per_core, c.output_axons, spec.output_axons_per_core,
         c.synapse_bits / 8, spec.synapse_memory_bytes)
        for c in placement.cores
    )
    return ReportLayout(placement, n_cores, cores, comps, tuple(block_cores), tuple(groups),
                        tuple(synapse_group_memory(placement)))


def synapse_group_memory(placement: Placement) -> list:
    """Synapse memory of every synapse group as placed, with its discrete-synapse equivalent.

    Returns
    -------
    list of dict
        Per group: ``label``, ``format`` (``"shared"``: lists shared through population
        axons, e.g. a convolution; ``"discrete"``: one list per source row),
        ``synapses`` (synapses it stands for), ``stored`` (weight entries held),
        ``synapse_memory_bytes`` (summed over the cores its target is placed on) and
        ``dense_equivalent_bytes`` (the same synapses as discrete lists on those cores).
    """
    pieces: dict = {}
    for core in placement.cores:
        for p in core.pieces:
            pieces.setdefault(p.block, []).append((p.start, p.stop))
    out = []
    for g in placement.net.groups:
        owner = g.target.parent or g.target  # dendrites live on their soma's pieces
        spans = pieces.get(owner, [(0, owner.n)])
        bits = sum(g.piece_cost(a, b)[0] for a, b in spans)
        dense = sum(g.discrete_cost(a, b) for a, b in spans)
        shared = bool(getattr(g, "shared", False))
        out.append({
            "label": g.label,
            "format": "shared" if shared else "discrete",
            "synapses": int(g.n_synapses),
            "stored": int(g.n_stored if shared else g.n_synapses),
            "weight_lists": len(g.lists) if shared else None,
            "synapse_memory_bytes": bits / 8,
            "dense_equivalent_bytes": dense / 8,
        })
    return out

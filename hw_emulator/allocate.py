"""Place compartment blocks on cores and chips, checking every per-core capacity.

Blocks bigger than a core (in compartments, synapse memory or input axons) are split
into pieces; a piece whose compartments would need more output axons than a core has
(one per compartment and target piece) is split further; small pieces are packed
several to a core (first fit, only with blocks sharing ``vmin``/``vmax``, which the
chip sets per core); cores fill chips in order.  A board with ``n_chips=None`` gets as
many chips as the cores need.  Anything that cannot fit raises
:class:`~nhw.errors.ResourceError` naming the object and the used vs available amount.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nhw.errors import ResourceError

from .blocks import ChipNetwork, CompartmentBlock, InputAxons
from .chip import BoardSpec, ChipSpec


def kib(bits: float) -> str:
    """Format a bit count as KiB with one decimal."""
    return f"{bits / 8 / 1024:.1f} KiB"


@dataclass
class Piece:
    """Neurons ``start:stop`` of a block (and of its dendrite children)."""

    block: CompartmentBlock
    start: int
    stop: int
    compartments: int
    synapse_bits: int
    input_axons: int
    #: estimate used while packing: one output axon per (compartment, target block)
    output_axons_est: int = 0

    @property
    def label(self) -> str:
        return f"{self.block.label}[{self.start}:{self.stop}]"


@dataclass
class Core:
    """One core's contents and resource use."""

    index: int
    chip: int
    pieces: list = field(default_factory=list)
    compartments: int = 0
    synapse_bits: int = 0
    input_axons: int = 0
    output_axons: int = 0
    output_axons_est: int = 0
    vrange: tuple | None = None

    @property
    def label(self) -> str:
        return f"Core {self.index}"

    def describe(self) -> str:
        return ", ".join(p.label for p in self.pieces)


@dataclass
class Placement:
    """Result of :func:`allocate`: the cores used and where each compartment lives."""

    net: ChipNetwork
    board: BoardSpec
    cores: list
    #: block -> int array of core index per neuron
    core_of: dict

    @property
    def n_chips(self) -> int:
        return 1 + max((c.chip for c in self.cores), default=0)


def _group_columns(net: ChipNetwork, block: CompartmentBlock) -> list:
    """Incoming synapse groups of a block and its dendrites."""
    members = [block] + list(block.children)
    return [g for g in net.groups if g.target in members]


def _piece_cost(groups: list, start: int, stop: int, spec: ChipSpec) -> tuple[int, int]:
    """``(synapse_bits, input_axons)`` of neurons ``start:stop`` of a block.

    Each group states its own cost in its storage format (discrete synapse lists or
    lists shared through population axons).
    """
    bits = axons = 0
    for g in groups:
        b, a = g.piece_cost(start, stop)
        bits += b
        axons += a
    return bits, axons


def _axon_advice(groups: list, piece: Piece, spec: ChipSpec) -> str:
    """What the input axons of an over-full one-neuron piece come from, and what to change."""
    host, chip = [], 0
    for g in groups:
        axons = g.piece_cost(piece.start, piece.stop)[1]
        if not axons:
            continue
        if isinstance(g.source, InputAxons):
            host.append((axons, g.source))
        else:
            chip += axons
    if not host:
        return (f" (all from on-chip sources: {chip} source compartments reach it); reduce its fan-in, "
                "e.g. route decoded connections through decode neurons (decode='neurons')")
    n_host = sum(a for a, _ in host)
    a, src = max(host, key=lambda h: h[0])
    k = src.max_count
    pairs = a // k // 2
    free = spec.input_axons_per_core - chip - (n_host - a)
    fit = free // (2 * pairs) if pairs else 0
    if fit >= 1:
        fix = f"lower input_pairs (a loihi-emu option) to {fit} or less, or "
    else:
        fix = ""
    others = f" and {chip} from on-chip sources" if chip else ""
    return (f": {n_host} of them are host spike generators, {a} for {src.label!r} (2 x {pairs} dimension(s) "
            f"reaching it x input_pairs {k}){others}; {fix}split the host input into several Nodes feeding "
            "several ensembles, or feed the values through an on-chip ensemble")


def _reach_pairs(g) -> tuple[np.ndarray, np.ndarray]:
    """``(source compartment, target compartment)`` of every synapse of a group."""
    src, tgt, _ = g.coo()
    return src, tgt


def _split(net: ChipNetwork, block: CompartmentBlock, per_core: int, spec: ChipSpec) -> list:
    cpn = 1 + len(block.children)
    size = max(per_core // cpn, 0)
    if size == 0:
        raise ResourceError(
            f"Block {block.label!r}: one neuron needs {cpn} compartments; a core holds {per_core}"
        )
    groups = _group_columns(net, block)
    while True:
        n_pieces = -(-block.n // size)
        bounds = np.linspace(0, block.n, n_pieces + 1).round().astype(int)
        pieces = []
        worst = None
        for a, b in zip(bounds[:-1], bounds[1:]):
            bits, axons = _piece_cost(groups, a, b, spec)
            p = Piece(block, int(a), int(b), int(b - a) * cpn, bits, axons)
            pieces.append(p)
            if bits > spec.synapse_memory_bits or axons > spec.input_axons_per_core:
                worst = p
        if worst is None:
            return pieces
        if size == 1:
            if worst.synapse_bits > spec.synapse_memory_bits:
                raise ResourceError(
                    f"Block {block.label!r} neuron {worst.start}: synapse memory "
                    f"{kib(worst.synapse_bits)} exceeds {kib(spec.synapse_memory_bits)} per core"
                )
            raise ResourceError(
                f"Block {block.label!r} neuron {worst.start}: {worst.input_axons} input axons "
                f"exceed {spec.input_axons_per_core} per core" + _axon_advice(groups, worst, spec)
            )
        size = max(size // 2, 1)


def _piece_index(splits: dict) -> dict:
    """Block -> piece index of every neuron."""
    piece_of = {}
    for b, pieces in splits.items():
        idx = np.zeros(b.n, np.int64)
        for k, p in enumerate(pieces):
            idx[p.start:p.stop] = k
        piece_of[b] = idx
    return piece_of


def _output_reach(net: ChipNetwork, block: CompartmentBlock, splits: dict, piece_of: dict) -> np.ndarray:
    """Per neuron of ``block``: the target pieces it has synapses in (one output axon each)."""
    reach: dict = {}  # target population -> bool (n_src, n_target_pieces)
    for g in net.groups:
        if g.source is not block:
            continue
        owner = g.target.parent or g.target  # dendrites live on their soma's core
        r = reach.setdefault(owner, np.zeros((block.n, len(splits[owner])), bool))
        src, tgt = _reach_pairs(g)
        r[src, piece_of[owner][tgt]] = True
    return sum((r.sum(axis=1) for r in reach.values()), np.zeros(block.n, np.int64))


def _split_output_axons(net: ChipNetwork, somas: list, splits: dict, spec: ChipSpec) -> dict:
    """Split pieces whose compartments need more output axons than a core has.

    A compartment needs one output axon per target piece it reaches.  A piece over
    ``spec.output_axons_per_core`` is cut into consecutive runs of neurons whose sum
    fits.  Cutting a piece can add target pieces for the blocks feeding it (a
    recurrent block feeds itself), so the estimate is redone until nothing changes.
    Updates ``splits`` in place and returns block -> output axons per neuron.

    Raises
    ------
    ResourceError
        One neuron alone reaches more target pieces than a core has output axons.
    """
    limit = spec.output_axons_per_core
    # every split adds at least one piece and a block has at most n pieces: this bounds the loop
    for _ in range(1 + sum(b.n for b in somas)):
        piece_of = _piece_index(splits)
        reach = {b: _output_reach(net, b, splits, piece_of) for b in somas}
        changed = False
        for block in somas:
            per_neuron = reach[block]
            worst = int(np.argmax(per_neuron)) if block.n else 0
            if block.n and per_neuron[worst] > limit:
                raise ResourceError(
                    f"Block {block.label!r} neuron {worst}: {int(per_neuron[worst])} output axons "
                    f"(one per target core) exceed {limit} per core"
                )
            new = []
            for p in splits[block]:
                if int(per_neuron[p.start:p.stop].sum()) <= limit:
                    new.append(p)
                    continue
                changed = True
                groups = _group_columns(net, block)
                a = p.start
                while a < p.stop:
                    # the longest run from a whose output axons fit
                    csum = np.cumsum(per_neuron[a:p.stop])
                    b = a + max(int(np.searchsorted(csum, limit, side="right")), 1)
                    bits, axons = _piece_cost(groups, a, b, spec)
                    new.append(Piece(block, a, b, (b - a) * (p.compartments // (p.stop - p.start)), bits, axons))
                    a = b
            splits[block] = new
        if not changed:
            return reach
    raise AssertionError("output-axon splitting did not settle")  # unreachable: see the bound above


def allocate(
    net: ChipNetwork,
    board: BoardSpec | None = None,
    max_compartments_per_core: int | None = None,
    pack: bool = True,
) -> Placement:
    """Place ``net`` on cores and chips.

    Parameters
    ----------
    net
        The chip program.
    board
        The board (chip spec and number of chips; ``n_chips=None`` is unbounded).
    max_compartments_per_core
        A lower per-core compartment limit than the chip's (to spread work).
    pack
        Put several pieces on one core when they fit.

    Raises
    ------
    ResourceError
        A neuron, core or the board exceeds a capacity; the message names the
        object and gives used vs limit.
    """
    board = board or BoardSpec(net.spec)
    spec = board.chip
    per_core = spec.compartments_per_core
    if max_compartments_per_core is not None:
        if not 1 <= int(max_compartments_per_core) <= per_core:
            raise ResourceError(
                f"max_compartments_per_core={max_compartments_per_core}: must be in 1..{per_core}"
            )
        per_core = int(max_compartments_per_core)
    cores: list[Core] = []
    core_of: dict = {}
    somas = [b for b in net.blocks if not b.is_dendrite]
    splits = {b: _split(net, b, per_core, spec) for b in somas}
    reach = _split_output_axons(net, somas, splits, spec)
    for block in somas:
        core_of[block] = np.zeros(block.n, np.int64)
        per_neuron = reach[block]
        for p in splits[block]:
            # estimate: one axon per (compartment, target piece); exact count after placement
            p.output_axons_est = int(per_neuron[p.start:p.stop].sum())
            vr = (block.vmin, block.vmax)
            target = None
            if pack:
                for c in cores:
                    if (c.vrange == vr and c.compartments + p.compartments <= per_core
                            and c.synapse_bits + p.synapse_bits <= spec.synapse_memory_bits
                            and c.input_axons + p.input_axons <= spec.input_axons_per_core
                            and c.output_axons_est + p.output_axons_est <= spec.output_axons_per_core):
                        target = c
                        break
            if target is None:
                target = Core(len(cores), len(cores) // spec.cores_per_chip, vrange=vr)
                cores.append(target)
            target.pieces.append(p)
            target.compartments += p.compartments
            target.synapse_bits += p.synapse_bits
            target.input_axons += p.input_axons
            target.output_axons_est += p.output_axons_est
            core_of[block][p.start:p.stop] = target.index
    for block in net.blocks:
        if block.is_dendrite:
            core_of[block] = core_of[block.parent]
    _count_output_axons(net, cores, core_of)
    max_cores = board.max_cores
    if max_cores is not None and len(cores) > max_cores:
        raise ResourceError(
            f"Board: the network needs {len(cores)} cores; {board.n_chips} chip(s) x "
            f"{spec.cores_per_chip} cores = {max_cores} available, {board.chips_for(len(cores))} chip(s) "
            "needed (pass n_chips=None to size the board to the network, or more chips)"
        )
    for c in cores:
        if c.output_axons > spec.output_axons_per_core:
            raise ResourceError(
                f"{c.label} ({c.describe()}): {c.output_axons} output axons exceed "
                f"{spec.output_axons_per_core} per core"
            )
    return Placement(net, board, cores, core_of)


def _count_output_axons(net: ChipNetwork, cores: list, core_of: dict) -> None:
    """One output axon per (source compartment, target core) pair with a synapse."""
    reach: dict = {}  # source block -> bool (n_src, n_cores)
    for g in net.groups:
        if isinstance(g.source, InputAxons):
            continue
        r = reach.setdefault(g.source, np.zeros((g.source.n, len(cores)), bool))
        src, tgt = _reach_pairs(g)
        r[src, core_of[g.target][tgt]] = True
    for block, r in reach.items():
        per_src = r.sum(axis=1)
        counts = np.bincount(core_of[block], weights=per_src, minlength=len(cores))
        for i in np.flatnonzero(counts):
            cores[i].output_axons += int(counts[i])

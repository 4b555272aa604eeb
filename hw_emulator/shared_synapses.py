"""Synapses shared through population axons: a convolution's kernel stored once.

On the chip a convolution does not need one synapse list per source compartment.
Each input *pixel* gets one population axon; a spike on it carries its channel as the
*atom*.  The axon's configuration names a weight list and a compartment *base*; the
list holds, per atom, ``(target offset, weight)`` entries, and the target of an entry
is ``base + offset``.  All pixels whose kernel footprint is the same (every interior
pixel of a convolution, and each kind of border pixel) point at one stored list.

:class:`SharedSynapseGroup` builds that structure from any quantised coordinate list by
grouping equal per-axon patterns (so it also covers strides, padding, groups,
channels-first images and transposed convolutions), expands it back to synapses for
the emulator (identical integers) and states its synapse memory per core piece
(``SPEC.md`` section 5).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nhw.errors import DiscretizationError

from .blocks import CompartmentBlock, InputAxons
from .chip import LOIHI_V1, ChipSpec
from .discretize import WeightQuantization, effective_weights


@dataclass(eq=False)
class WeightList:
    """One stored list: per entry its atom, target offset (from the axon's base) and mantissa,
    sorted by offset then atom."""

    atom: np.ndarray
    offset: np.ndarray
    mantissa: np.ndarray

    @property
    def size(self) -> int:
        return int(self.offset.size)


@dataclass(eq=False)
class SharedSynapseGroup:
    """Synapses from population axons of ``source`` into ``target`` with shared weight lists.

    Use :meth:`from_coo` to build one.  ``axon_list[p]`` is the list of axon ``p``
    (``-1``: the axon has no synapses), ``axon_base[p]`` its compartment base;
    ``axon_of``/``atom_of`` give every source compartment's axon and atom.
    """

    label: str
    source: CompartmentBlock | InputAxons
    target: CompartmentBlock
    lists: list
    axon_list: np.ndarray
    axon_base: np.ndarray
    axon_of: np.ndarray
    atom_of: np.ndarray
    exponent: int
    owner: Any = None
    quant: WeightQuantization | None = None
    spec: ChipSpec = LOIHI_V1
    #: shared groups do not learn (the learning engine updates one weight per synapse)
    learning: Any = None
    #: marks the population-axon format for code handling both group kinds
    shared: bool = field(default=True, init=False)

    def __post_init__(self) -> None:
        s = self.spec
        if not s.weight_exp_min <= self.exponent <= s.weight_exp_max:
            raise DiscretizationError(
                f"SharedSynapseGroup {self.label!r}: exponent {self.exponent} outside "
                f"{s.weight_exp_min}..{s.weight_exp_max}"
            )
        for lst in self.lists:
            if lst.size and np.abs(lst.mantissa.astype(np.int64)).max() > s.weight_mant_max:
                raise DiscretizationError(
                    f"SharedSynapseGroup {self.label!r}: weight mantissa exceeds {s.weight_mant_max}")
            lst.mantissa = lst.mantissa.astype(s.weight_mant_dtype, copy=False)
        self.src_index = np.arange(self.source.n)
        self.tgt_index = np.arange(self.target.n)
        # (axon, atom) -> source compartment, for expanding lists back into synapses
        n_axons = len(self.axon_list)
        n_atoms = int(self.atom_of.max(initial=-1)) + 1
        self._comp = np.full((n_axons, max(n_atoms, 1)), -1, np.int64)
        self._comp[self.axon_of, self.atom_of] = np.arange(self.source.n)

    # ------------------------------------------------------------ construction
    @classmethod
    def from_coo(cls, label: str, source: Any, target: CompartmentBlock, src: np.ndarray, tgt: np.ndarray,
                 mantissa: np.ndarray, exponent: int, axon_of: np.ndarray, atom_of: np.ndarray,
                 **kw) -> "SharedSynapseGroup":
        """Group synapses ``src[k] -> tgt[k]`` (with ``mantissa[k]``) into shared lists.

        Parameters
        ----------
        src, tgt, mantissa
            Source compartment, target compartment and weight mantissa per synapse.
        axon_of, atom_of
            Per source compartment: its population axon and atom.  Two compartments
            must not share both.
        """
        src, tgt = np.asarray(src, np.int64), np.asarray(tgt, np.int64)
        mantissa = np.asarray(mantissa, np.int64)
        axon_of, atom_of = np.asarray(axon_of, np.int64), np.asarray(atom_of, np.int64)
        keep = mantissa != 0
        src, tgt, mantissa = src[keep], tgt[keep], mantissa[keep]
        n_axons = int(axon_of.max(initial=-1)) + 1
        pairs = axon_of * (int(atom_of.max(initial=0)) + 1) + atom_of
        if np.unique(pairs).size != pairs.size:
            raise ValueError(f"SharedSynapseGroup {label!r}: two source compartments share an (axon, atom)")
        ax, at = axon_of[src], atom_of[src]
        base = np.full(n_axons, np.iinfo(np.int64).max)
        np.minimum.at(base, ax, tgt)
        off = tgt - base[ax]
        order = np.lexsort((at, off, ax))
        ax, at, off, mantissa = ax[order], at[order], off[order], mantissa[order]
        bounds = np.flatnonzero(np.diff(ax)) + 1
        starts = np.concatenate([[0], bounds]) if ax.size else np.zeros(0, np.int64)
        stops = np.concatenate([bounds, [ax.size]]) if ax.size else np.zeros(0, np.int64)
        axon_list = np.full(n_axons, -1, np.int64)
        # equal patterns, found per pattern length as equal rows of one array (no loop
        # per axon); lists are numbered in the order their first axon appears
        lengths = stops - starts
        firsts, segments, members = [], [], []
        for n in np.unique(lengths):
            sel = np.flatnonzero(lengths == n)
            idx = starts[sel][:, None] + np.arange(n)
            key = np.concatenate([at[idx], off[idx], mantissa[idx]], axis=1)
            _, first, inv = np.unique(key, axis=0, return_index=True, return_inverse=True)
            firsts.append(sel[first])
            segments.extend(starts[sel[first]])
            members.append((sel, len(firsts[-1]), inv.reshape(-1)))
        firsts = np.concatenate(firsts) if firsts else np.zeros(0, np.int64)
        rank = np.empty(len(firsts), np.int64)
        rank[np.argsort(firsts, kind="stable")] = np.arange(len(firsts))
        offset = 0
        for sel, n_unique, inv in members:
            axon_list[ax[starts[sel]]] = rank[offset + inv]
            offset += n_unique
        lists: list = [None] * len(firsts)
        for k, a in zip(rank, segments):
            b = a + lengths[np.searchsorted(starts, a)]
            lists[k] = WeightList(at[a:b].copy(), off[a:b].copy(), mantissa[a:b].copy())
        base[axon_list < 0] = 0
        return cls(label, source, target, lists, axon_list, base, axon_of, atom_of, exponent, **kw)

    # ------------------------------------------------------------- synapses
    def _axons_of_list(self, k: int) -> np.ndarray:
        """The axons using list ``k``, ascending (one sort for all lists, not a scan per list)."""
        if getattr(self, "_by_list", None) is None or len(self._by_list[0]) != len(self.axon_list):
            order = np.argsort(self.axon_list, kind="stable")
            bounds = np.searchsorted(self.axon_list[order], np.arange(len(self.lists) + 1))
            self._by_list = (order, bounds)
        order, bounds = self._by_list
        return order[bounds[k]:bounds[k + 1]]

    def coo(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every synapse as ``(source compartment, target compartment, mantissa)``."""
        src, tgt, mant = [], [], []
        for k, lst in enumerate(self.lists):
            axons = self._axons_of_list(k)
            comp = self._comp[axons[:, None], lst.atom[None, :]]
            ok = comp >= 0  # an atom the list names but the axon's pixel lacks adds nothing
            src.append(comp[ok])
            tgt.append((self.axon_base[axons][:, None] + lst.offset[None, :])[ok])
            mant.append(np.broadcast_to(lst.mantissa, comp.shape)[ok])
        if not src:
            z = np.zeros(0, np.int64)
            return z, z, z
        return np.concatenate(src), np.concatenate(tgt), np.concatenate(mant).astype(np.int64)

    @property
    def n_synapses(self) -> int:
        """Synapses the lists stand for (each counted once per axon using it)."""
        return int(self.coo()[0].size)

    @property
    def n_stored(self) -> int:
        """Entries actually stored (each shared list once)."""
        return sum(lst.size for lst in self.lists)

    def effective_coo(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`coo` with the effective integer weights added to ``q`` per spike."""
        s, t, m = self.coo()
        return s, t, effective_weights(m, self.exponent, self.spec)

    # ------------------------------------------------------------- resources
    def piece_cost(self, start: int, stop: int) -> tuple[int, int]:
        """``(synapse_bits, input_axons)`` for target compartments ``start:stop`` on one core.

        A core stores, once, each distinct part of a list that falls in its range
        (one list header plus ``synapse_bits`` per entry) and has one input axon per
        population axon reaching it.  Interior axons all share one stored list.
        """
        spec = self.spec
        copies = self.source.max_count if isinstance(self.source, InputAxons) else 1
        keys, axons = set(), 0
        bits = 0
        for k, lst in enumerate(self.lists):
            p = self._axons_of_list(k)
            if not p.size:
                continue
            base = self.axon_base[p]
            lo = np.searchsorted(lst.offset, start - base, side="left")
            hi = np.searchsorted(lst.offset, stop - base, side="left")
            used = hi > lo
            axons += int(np.count_nonzero(used))
            for a, b in set(zip(lo[used].tolist(), hi[used].tolist())):
                if (k, a, b) not in keys:
                    keys.add((k, a, b))
                    bits += spec.synapse_list_header_bits + (b - a) * spec.synapse_bits
        return copies * bits, copies * axons

    def discrete_cost(self, start: int, stop: int) -> int:
        """Synapse bits of the same synapses stored per source compartment (no sharing):
        the dense-equivalent format of a :class:`~nhw.hw_emulator.blocks.SynapseGroup`."""
        spec = self.spec
        src, tgt, _ = self.coo()
        inside = (tgt >= start) & (tgt < stop)
        rows = np.unique(src[inside]).size
        copies = self.source.max_count if isinstance(self.source, InputAxons) else 1
        return copies * (int(inside.sum()) * spec.synapse_bits + rows * spec.synapse_list_header_bits)

    def __repr__(self) -> str:
        return (f"SharedSynapseGroup({self.label!r}, {self.source.label!r} -> {self.target.label!r}, "
                f"{len(self.lists)} lists)")

"""Chip objects: compartment blocks, input axon groups and synapse groups.

These are the "program" of the chip, independent of nengo: the loihi-emu backend's
mapping (:mod:`nhw.backends.loihi_emu.mapping`) creates them, :mod:`allocate` places
them on cores and :mod:`emulator` runs them.
All arrays hold chip integers with explicit dtypes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nhw.errors import DiscretizationError

from .chip import LOIHI_V1, ChipSpec
from .discretize import QuantizationReport, WeightQuantization, effective_weights


def _arr(x, n: int, dtype, name: str, label: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim == 0:
        a = np.full(n, a)
    if a.shape != (n,):
        raise ValueError(f"Block {label!r}: {name} has shape {a.shape}; expected ({n},)")
    return a.astype(dtype)


@dataclass(eq=False)
class CompartmentBlock:
    """``n`` compartments sharing a role (an ensemble, decode neurons, dendrites).

    Parameters are per compartment (scalars broadcast).  A block with ``parent``
    set is a *dendrite* block: compartment ``i`` does not spike and its current
    ``u`` is added to compartment ``i`` of ``parent`` each step (a multi-compartment
    join).  ``vmin``/``vmax`` are per block because the chip sets them per core and
    :mod:`allocate` only packs blocks with equal values together.
    """

    label: str
    n: int
    decay_u: Any
    decay_v: Any = 0
    vth: Any = None  # None: the smallest threshold, 1 << spec.vth_shift
    bias_mant: Any = 0
    bias_exp: Any = 0
    refractory_delay: Any = 1
    vmin: int = 0
    vmax: int | None = None  # None: the top of v, spec.v_max_limit
    parent: "CompartmentBlock | None" = None
    owner: Any = None
    spec: ChipSpec = LOIHI_V1
    quant: QuantizationReport | None = None
    #: Scale(s) that turn ``v`` into nengo voltage (``v / vth``); set by mapping.
    voltage_scale: Any = 1.0
    #: Scale(s) that turn the input ``u + bias`` into nengo current ``J``; set by mapping.
    current_scale: Any = 1.0
    #: Initial voltages (e.g. staggered phases of decode neurons); ``None`` = 0.
    v_init: Any = None
    #: Initial refractory hold in steps (nengo's initial ``refractory_time``); ``None`` = 0.
    hold_init: Any = None
    children: list = field(default_factory=list)

    def __post_init__(self) -> None:
        n, s, lab = int(self.n), self.spec, self.label
        if self.vth is None:
            self.vth = 1 << s.vth_shift
        if self.vmax is None:
            self.vmax = s.v_max_limit
        if n <= 0:
            raise ValueError(f"Block {lab!r}: needs at least one compartment, got n={n}")
        self.n = n
        self.decay_u = _arr(self.decay_u, n, np.int32, "decay_u", lab)
        self.decay_v = _arr(self.decay_v, n, np.int32, "decay_v", lab)
        self.vth = _arr(self.vth, n, np.int64, "vth", lab)
        self.bias_mant = _arr(self.bias_mant, n, np.int32, "bias_mant", lab)
        self.bias_exp = _arr(self.bias_exp, n, np.int32, "bias_exp", lab)
        self.refractory_delay = _arr(self.refractory_delay, n, np.int32, "refractory_delay", lab)
        checks = [
            ("decay_u", self.decay_u, 0, s.decay_max),
            ("decay_v", self.decay_v, 0, s.decay_max),
            ("vth", self.vth, 1 << s.vth_shift, s.vth_max),
            ("bias_mant", self.bias_mant, -s.bias_mant_max, s.bias_mant_max),
            ("bias_exp", self.bias_exp, 0, s.bias_exp_max),
            ("refractory_delay", self.refractory_delay, s.refractory_min, s.refractory_max),
        ]
        for name, a, lo, hi in checks:
            if a.size and (a.min() < lo or a.max() > hi):
                bad = a[(a < lo) | (a > hi)][0]
                raise DiscretizationError(f"Block {lab!r}: {name} value {bad} outside {lo}..{hi}")
        if np.any(self.vth & ((1 << s.vth_shift) - 1)):
            raise DiscretizationError(f"Block {lab!r}: vth must be a multiple of {1 << s.vth_shift}")
        if not s.v_min_limit <= self.vmin <= 0 or not 0 < self.vmax <= s.v_max_limit:
            raise DiscretizationError(
                f"Block {lab!r}: vmin/vmax {self.vmin}/{self.vmax} outside "
                f"{s.v_min_limit}..0 / 1..{s.v_max_limit}"
            )
        if self.parent is not None:
            if self.parent.n != n:
                raise ValueError(
                    f"Dendrite block {lab!r} has {n} compartments; its parent "
                    f"{self.parent.label!r} has {self.parent.n}"
                )
            self.parent.children.append(self)

    @property
    def bias(self) -> np.ndarray:
        """Effective integer bias per compartment (int64)."""
        return self.bias_mant.astype(np.int64) << self.bias_exp.astype(np.int64)

    @property
    def is_dendrite(self) -> bool:
        return self.parent is not None

    def __repr__(self) -> str:
        return f"CompartmentBlock({self.label!r}, n={self.n})"


@dataclass(eq=False)
class InputAxons:
    """``n`` host-driven input axons; each may carry up to ``max_count`` spikes per step.

    ``max_count`` models that many physical axons (spike generators) with identical
    synapses; resource accounting counts all of them.
    """

    label: str
    n: int
    max_count: int = 1
    owner: Any = None

    def __repr__(self) -> str:
        return f"InputAxons({self.label!r}, n={self.n}, max_count={self.max_count})"


@dataclass(eq=False)
class SynapseGroup:
    """Synapses from a source (block or input axons) to a target block, one weight exponent.

    ``mantissa`` has shape ``(len(src_index), len(tgt_index))`` (dense; zeros are
    absent synapses).  ``src_index``/``tgt_index`` default to the whole source/target.
    """

    label: str
    source: CompartmentBlock | InputAxons
    target: CompartmentBlock
    mantissa: np.ndarray
    exponent: int
    src_index: np.ndarray | None = None
    tgt_index: np.ndarray | None = None
    owner: Any = None
    quant: WeightQuantization | None = None
    spec: ChipSpec = LOIHI_V1
    #: On-chip learning (PES) of this group; ``mantissa`` then holds the initial weights.
    learning: Any = None
    #: discrete synapses (one list per source row); see ``shared_synapses`` for the shared format
    shared: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        src_n = self.source.n
        self.src_index = np.arange(src_n) if self.src_index is None else np.asarray(self.src_index, dtype=np.int64)
        self.tgt_index = (
            np.arange(self.target.n) if self.tgt_index is None else np.asarray(self.tgt_index, dtype=np.int64)
        )
        mant = np.asarray(self.mantissa)
        # checked before the cast to the mantissa dtype, which would wrap wider values
        if mant.size and np.abs(mant.astype(np.int64)).max() > self.spec.weight_mant_max:
            raise DiscretizationError(
                f"SynapseGroup {self.label!r}: weight mantissa exceeds {self.spec.weight_mant_max}"
            )
        self.mantissa = mant.astype(self.spec.weight_mant_dtype, copy=False)
        shape = (len(self.src_index), len(self.tgt_index))
        if self.mantissa.shape != shape:
            raise ValueError(
                f"SynapseGroup {self.label!r}: weights have shape {self.mantissa.shape}; expected {shape}"
            )
        if not self.spec.weight_exp_min <= self.exponent <= self.spec.weight_exp_max:
            raise DiscretizationError(
                f"SynapseGroup {self.label!r}: exponent {self.exponent} outside "
                f"{self.spec.weight_exp_min}..{self.spec.weight_exp_max}"
            )

    @property
    def weights(self) -> np.ndarray:
        """Effective integer weights added to ``q`` per spike (int64)."""
        return effective_weights(self.mantissa, self.exponent, self.spec)

    @property
    def synapse_mask(self) -> np.ndarray:
        """Which synapses exist: nonzero weights, or all of a learning group (weights change)."""
        if self.learning is not None:
            return np.ones(self.mantissa.shape, bool)
        return self.mantissa != 0

    @property
    def n_synapses(self) -> int:
        return int(np.count_nonzero(self.synapse_mask))

    def coo(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every synapse as ``(source compartment, target compartment, mantissa)``."""
        r, c = np.nonzero(self.synapse_mask)
        return self.src_index[r], self.tgt_index[c], self.mantissa[r, c].astype(np.int64)

    def piece_cost(self, start: int, stop: int) -> tuple[int, int]:
        """``(synapse_bits, input_axons)`` for target compartments ``start:stop`` on one core:
        per source row reaching them a list header, plus ``synapse_bits`` per synapse
        (host axons count ``max_count`` times)."""
        spec = self.spec
        mask = (self.tgt_index >= start) & (self.tgt_index < stop)
        if not mask.any():
            return 0, 0
        nnz_rows = np.count_nonzero(self.synapse_mask[:, mask], axis=1)
        rows = int(np.count_nonzero(nnz_rows))
        copies = self.source.max_count if isinstance(self.source, InputAxons) else 1
        return (copies * (int(nnz_rows.sum()) * spec.synapse_bits + rows * spec.synapse_list_header_bits),
                rows * copies)

    def discrete_cost(self, start: int, stop: int) -> int:
        """Synapse bits in ``start:stop`` (discrete synapses are their own dense equivalent)."""
        return self.piece_cost(start, stop)[0]

    def __repr__(self) -> str:
        return f"SynapseGroup({self.label!r}, {self.source.label!r} -> {self.target.label!r})"


@dataclass
class ChipNetwork:
    """Everything that runs on the chip: blocks, host input axons, synapse groups."""

    blocks: list = field(default_factory=list)
    inputs: list = field(default_factory=list)
    groups: list = field(default_factory=list)
    spec: ChipSpec = LOIHI_V1

    def add_block(self, block: CompartmentBlock) -> CompartmentBlock:
        self._check_spec(block)
        self.blocks.append(block)
        return block

    def add_input(self, axons: InputAxons) -> InputAxons:
        self.inputs.append(axons)
        return axons

    def add_group(self, group: SynapseGroup) -> SynapseGroup:
        self._check_spec(group)
        self.groups.append(group)
        return group

    def _check_spec(self, obj) -> None:
        # an object validated against another chip's formats would run with this one's
        if obj.spec is not self.spec and obj.spec != self.spec:
            raise ValueError(
                f"{obj!r} was made for chip spec {obj.spec.name!r}, not this network's {self.spec.name!r}"
            )

    @property
    def n_compartments(self) -> int:
        return sum(b.n for b in self.blocks)

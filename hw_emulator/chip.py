"""The chip specification: every bit width, range and capacity in one frozen object.

Nothing else in :mod:`nhw.hw_emulator` hard-codes a chip number; functions take a
:class:`ChipSpec` (default :data:`LOIHI_V1`) so a different chip generation is a new
instance, not an edit.  See ``SPEC.md`` for how these numbers are used.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class EnergyModel:
    """Published per-event energy (pJ) and time (ns) figures, pre-silicon at 0.75 V.

    Anything computed from these numbers is an *estimate* and is labelled so.
    """

    synop_pj: float = 23.6
    synop_ns: float = 3.5
    synupdate_pj: float = 120.0
    synupdate_ns: float = 6.1
    compartment_active_pj: float = 81.0
    compartment_active_ns: float = 8.4
    compartment_inactive_pj: float = 52.0
    compartment_inactive_ns: float = 5.3
    spike_in_tile_pj: float = 1.7
    spike_in_tile_ns: float = 2.1
    static_power_w_per_chip: float = 0.1
    source: str = "Davies et al., IEEE Micro 38(1) 2018, Table 2 (pre-silicon, 0.75 V)"


@dataclass(frozen=True)
class ChipSpec:
    """Bit widths, value ranges and per-core capacities of one neuromorphic chip.

    Attributes are grouped as compartment state, parameter formats, weight format and
    capacities.  All ranges are inclusive.
    """

    name: str = "loihi-v1"
    version: str = "1.0"

    # --- compartment state --------------------------------------------------
    u_bits: int = 24  # signed, wraps (two's complement)
    v_bits: int = 24  # signed, clipped to [vmin, vmax]
    q_bits: int = 22  # signed synaptic accumulator, wraps before it is added to u
    decay_bits: int = 12  # decayU, decayV in 0..4095

    # --- parameter formats --------------------------------------------------
    vth_mant_bits: int = 17  # unsigned mantissa
    vth_shift: int = 6  # vth = mantissa << 6
    bias_mant_bits: int = 13  # signed: |mantissa| <= 4095
    bias_exp_max: int = 7  # bias = mantissa * 2**exponent, exponent 0..7
    refractory_min: int = 1
    refractory_max: int = 63
    vmax_exp_max: int = 7  # vmax = 2**(9 + 2*e) - 1, e in 0..7

    # --- weights --------------------------------------------------------------
    weight_bits: int = 8  # magnitude bits of the mantissa (plus a sign)
    weight_exp_min: int = -7
    weight_exp_max: int = 7
    weight_shift: int = 6  # effective weight = mantissa * 2**(6 + exponent)

    # --- learning engine (PES, our model: SPEC.md section 8) -------------------
    trace_bits: int = 7  # unsigned pre-synaptic trace, 0..127
    error_bits: int = 8  # signed error value written by the host, |e| <= 127
    learn_rate_bits: int = 8  # learning-rate mantissa (times 2**-shift)

    # --- capacities per core / chip -------------------------------------------
    compartments_per_core: int = 1024
    input_axons_per_core: int = 4096
    output_axons_per_core: int = 4096
    synapse_memory_bytes: int = 128 * 1024
    cores_per_chip: int = 128
    delay_bits: int = 6

    # --- synapse memory layout (our model of the format, see SPEC.md) -------
    synapse_index_bits: int = 10  # target compartment index within the core
    synapse_list_header_bits: int = 32  # per (input axon, synapse list)

    energy: EnergyModel = field(default_factory=EnergyModel)

    # --- derived limits -------------------------------------------------------
    @property
    def u_min(self) -> int:
        return -(1 << (self.u_bits - 1))

    @property
    def u_max(self) -> int:
        return (1 << (self.u_bits - 1)) - 1

    @property
    def v_min_limit(self) -> int:
        return -(1 << (self.v_bits - 1)) + 1

    @property
    def v_max_limit(self) -> int:
        return (1 << (self.v_bits - 1)) - 1

    @property
    def q_min(self) -> int:
        return -(1 << (self.q_bits - 1))

    @property
    def q_max(self) -> int:
        return (1 << (self.q_bits - 1)) - 1

    @property
    def decay_max(self) -> int:
        return (1 << self.decay_bits) - 1

    @property
    def vth_mant_max(self) -> int:
        return (1 << self.vth_mant_bits) - 1

    @property
    def vth_max(self) -> int:
        return self.vth_mant_max << self.vth_shift

    @property
    def bias_mant_max(self) -> int:
        return (1 << (self.bias_mant_bits - 1)) - 1

    @property
    def bias_max(self) -> int:
        return self.bias_mant_max << self.bias_exp_max

    @property
    def weight_mant_max(self) -> int:
        return (1 << self.weight_bits) - 1

    @property
    def trace_max(self) -> int:
        return (1 << self.trace_bits) - 1

    @property
    def error_max(self) -> int:
        return (1 << (self.error_bits - 1)) - 1

    @property
    def learn_rate_mant_max(self) -> int:
        return (1 << self.learn_rate_bits) - 1

    @property
    def synapse_bits(self) -> int:
        """Bits one synapse occupies: sign + weight mantissa + target index."""
        return 1 + self.weight_bits + self.synapse_index_bits

    @property
    def synapse_memory_bits(self) -> int:
        return 8 * self.synapse_memory_bytes

    def vmax_for_exponent(self, e: int) -> int:
        """vmax register value for exponent ``e`` (0..vmax_exp_max)."""
        return (1 << (9 + 2 * int(e))) - 1

    def with_limits(self, **changes) -> "ChipSpec":
        """A copy with some fields changed (e.g. a smaller core for tests)."""
        return replace(self, **changes)


#: The default chip: Loihi generation 1 as described in ``loihi-model.md``.
LOIHI_V1 = ChipSpec()


@dataclass(frozen=True)
class BoardSpec:
    """A board of ``n_chips`` identical chips.

    Attributes
    ----------
    chip
        The chip every slot holds.
    n_chips
        Number of chips; ``None`` means "as many as needed" (unbounded board).
    """

    chip: ChipSpec = LOIHI_V1
    n_chips: int | None = 1

    @property
    def max_cores(self) -> int | None:
        return None if self.n_chips is None else self.n_chips * self.chip.cores_per_chip

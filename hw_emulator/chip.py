"""The chip specification: every bit width, range and capacity in one frozen object.

Nothing else in :mod:`nhw.hw_emulator` hard-codes a chip number; functions take a
:class:`ChipSpec` (default :data:`LOIHI_V1`) so a different chip generation is a new
instance, not an edit.  See ``SPEC.md`` for how these numbers are used.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

#: IEEE float32 has a 24-bit significand: every integer of magnitude <= 2**24 is exact.
FLOAT32_EXACT_BITS = 24
#: IEEE float64 has a 53-bit significand: every integer of magnitude <= 2**53 is exact.
FLOAT64_EXACT_BITS = 53


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

    @property
    def weight_max(self) -> int:
        """Largest ``|effective weight|``: ``weight_mant_max << (weight_shift + weight_exp_max)``."""
        return self.weight_mant_max << max(self.weight_shift + self.weight_exp_max, 0)

    @property
    def weight_mant_dtype(self) -> str:
        """Smallest signed numpy integer type holding every weight mantissa (``int16`` on Loihi).

        Mantissas are stored in this type; a narrower one would wrap wide mantissas.
        """
        for name, bits in (("int16", 16), ("int32", 32)):
            if self.weight_bits < bits:
                return name
        return "int64"

    # --- exactness of the emulator's float arithmetic -------------------------
    # The emulator computes with integers held in floats; each bound below is the
    # condition under which every intermediate value is an exactly representable
    # integer (or a multiple of a power of two), so float and integer arithmetic agree.
    @property
    def accumulator_bits(self) -> int:
        """Magnitude bits of the state values ``u`` and ``v`` (``max(u_bits, v_bits) - 1``)."""
        return max(self.u_bits, self.v_bits) - 1

    @property
    def decay_product_bits(self) -> int:
        """Bits of ``|x| * keep`` in the state decay (``|x| < 2**accumulator_bits``,
        ``keep <= 2**decay_bits``): 35 on Loihi."""
        return self.accumulator_bits + self.decay_bits

    @property
    def float64_state_exact(self) -> bool:
        """Whether the emulator's float64 state arithmetic is exact on this chip.

        The decay ``trunc(x * keep / 2**decay_bits)`` needs ``|x| * keep`` exact (the
        division by a power of two is then exact too), and ``v + u + bias`` (clipped
        afterwards) needs a few bits above the larger of the state and bias ranges.
        float64 holds every integer up to ``2**53``.
        """
        sum_bits = max(self.accumulator_bits, self.bias_max.bit_length()) + 2
        return max(self.decay_product_bits, sum_bits) <= FLOAT64_EXACT_BITS

    def max_exact_row_spikes(self, exact_bits: int = FLOAT32_EXACT_BITS) -> int:
        """Most row-spikes whose weights one float sum adds exactly (65793 in float32 on Loihi).

        Every weight of one synapse group is ``m * 2**k`` with ``|m| <= weight_mant_max``
        (or, for ``k < 0``, an integer of magnitude ``<= weight_mant_max``), so any
        partial sum of ``N`` row-spikes (a row times its per-step spike count) is a
        multiple of ``2**k`` of magnitude ``<= N * weight_mant_max * 2**k``: exact in a
        float with ``exact_bits`` significand bits when ``N * weight_mant_max <=
        2**exact_bits``.
        """
        return (1 << exact_bits) // max(self.weight_mant_max, 1)

    @property
    def max_abs_weight_sum(self) -> int:
        """Largest ``|q|`` sum (before the wrap) that float64 delivery adds exactly: ``2**53``
        less the top of ``u``, since ``q`` is then added to ``u`` in float64 too."""
        return (1 << FLOAT64_EXACT_BITS) - (1 << self.accumulator_bits)

    @property
    def learn_product_bits(self) -> int:
        """Bits of ``|lr_mant * e * x|`` in the learning update (22 on Loihi).

        ``lr_mant < 2**learn_rate_bits``, ``|e| < 2**(error_bits - 1)``, ``x < 2**trace_bits``;
        the scaling by ``2**-shift`` is exact in binary floats.
        """
        return self.learn_rate_bits + self.error_bits - 1 + self.trace_bits

    @property
    def lif_voltage_scale(self) -> int:
        """Default voltage scale ``S`` (= ``vth``) of LIF compartments: ``2**(v_bits - 6)``.

        ``2**18`` on Loihi: 5 bits of ``v`` above the threshold; the mapping shrinks it
        per neuron when a weight or bias does not fit.  Never above ``vth_max``.
        """
        return self._voltage_scale(5)

    @property
    def if_voltage_scale(self) -> int:
        """Default voltage scale ``S`` of integrate-and-fire compartments: ``2**(v_bits - 3)``.

        ``2**21`` on Loihi: a finer input resolution (``c = S * dt``) than LIF, with 2 bits
        of ``v`` above the threshold (``v`` overshoots it by at most one step's input).
        """
        return self._voltage_scale(2)

    def _voltage_scale(self, headroom_bits: int) -> int:
        s = 1 << (self.v_bits - 1 - headroom_bits)
        return min(s, 1 << (self.vth_max.bit_length() - 1))

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
        """Cores on the board; ``None`` for an unbounded board."""
        return None if self.n_chips is None else self.n_chips * self.chip.cores_per_chip

    def chips_for(self, n_cores: int) -> int:
        """Chips that ``n_cores`` cores fill (cores fill chips in order; at least 1).

        Parameters
        ----------
        n_cores
            Cores a placement uses.
        """
        return max(1, -(-int(n_cores) // self.chip.cores_per_chip))

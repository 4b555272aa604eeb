"""What the mapping stage hands the host: options, host-chip taps and the mapped model.

A :class:`MappedModel` holds the :class:`~nhw.hw_emulator.blocks.ChipNetwork` (what runs
on the chip) and the taps the host side needs: :class:`ChipInput` (a host value
entering as spikes), :class:`ChipOutput` (spikes leaving the chip, decoded on the
host), :class:`VoltageOutput` (a compartment state read out), :class:`LearningTap`
(a PES error sent to the chip) and the probe plans.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from nengo.connection import Connection, LearningRule
from nengo.probe import Probe
from nhw.hw_emulator.blocks import ChipNetwork, CompartmentBlock, InputAxons
from nhw.hw_emulator.chip import LOIHI_V1, ChipSpec
from nhw.hw_emulator.learning import PESPlan

#: Mappings of decoded chip -> chip connections (``MapOptions.decode``).
DECODE_STRATEGIES = ("auto", "weights", "neurons")
#: Where decode neurons apply a connection's synapse (``MapOptions.decode_synapse``).
DECODE_SYNAPSES = ("post", "pre")
#: Rate curves the decoders of chip ensembles can be solved on (``MapOptions.decoder_rates``).
DECODER_RATES = ("chip", "nengo")


@dataclass(frozen=True)
class MapOptions:
    """Choices of the mapping stage.

    Parameters
    ----------
    decode
        How decoded connections between chip ensembles are mapped.  ``"weights"``:
        neuron-to-neuron weights ``encoders @ transform @ decoders`` (exact up to
        weight quantisation; ``n_pre x n_post`` synapses).  ``"neurons"``: on-chip
        decode neurons (``2 x decode_pairs`` per dimension) re-encode the decoded value,
        as nengo-loihi does (``(n_pre + n_post) x 2 x decode_pairs x d`` synapses).
        ``"auto"`` (default): per target ensemble, weights while all its incoming
        synapses fit the synapse memory and input axons of ``auto_core_factor`` times
        the cores its compartments need; otherwise its largest decoded connections
        switch to decode neurons until they fit (``SPEC.md`` section 4).
    auto_core_factor
        With ``decode="auto"``: how many times the cores a target's compartments need
        its incoming weights may occupy before decode neurons replace them.  Weights
        are exact up to quantisation, decode neurons add noise and delay, so a few
        extra cores for weights are worth it; a dense 1000 x 1000 matrix (about 30
        cores for one core of neurons) is not.
    input_pairs
        On/off spike generators per dimension for host -> chip values.
    input_range
        Largest value per dimension (times the post radius) the host encoder can send.
    decode_pairs
        On/off decode-neuron pairs per dimension (``decode="neurons"``).
    decode_rate
        Bias firing rate (Hz) of each decode neuron (at a decoded value of 0).
    decode_tau
        Synapse time constant from decode neurons to the post ensemble when
        ``decode_synapse="pre"`` (and for decode neurons of PES connections).
    decode_synapse
        Where a decoded connection mapped to decode neurons applies its own synapse.
        ``"post"`` (default; nengo-loihi's own arrangement is ``"pre"`` with a 5 ms
        ``decode_tau``): the decode neurons integrate the pre
        spikes unfiltered and the connection's synapse filters their spikes into the
        post, so each hop has nengo's single filter.  ``"pre"``: the connection's
        synapse filters the decode neurons' input and ``decode_tau`` their output
        (an extra filter, hence extra delay, per hop).
    decoder_rates
        Which rate curve the decoders of decoded connections (and probes) from chip
        ensembles are solved on.  ``"chip"`` (default): the connection's solver is run
        again on the chip's discretised LIF / spiking-ReLU rates (integer periods,
        discretised voltage decay, the chip's refractory hold) at the connection's
        evaluation points, as nengo-loihi does, so decoded values are unbiased on the
        chip.  ``"nengo"``: keep the decoders nengo solved on its continuous rate
        curve (the chip then decodes values biased by the difference of the curves).
        Connections with user-given decoders (``NoSolver``) always keep them.
    error_range
        Largest PES error value per dimension (times the post radius) the host can
        send to the chip; larger errors are clipped to it.
    learn_epoch
        Steps per PES weight update (1..64); each update applies ``learn_epoch``
        steps' worth of learning with the traces and error of that step.
    """

    decode: str = "auto"
    auto_core_factor: int = 4
    input_pairs: int = 16
    input_range: float = 2.0
    decode_pairs: int = 10
    decode_rate: float = 200.0
    decode_tau: float = 0.002
    decode_synapse: str = "post"
    decoder_rates: str = "chip"
    error_range: float = 1.0
    learn_epoch: int = 4
    spec: ChipSpec = LOIHI_V1

    def __post_init__(self) -> None:
        if self.decode not in DECODE_STRATEGIES:
            raise ValueError(f"decode={self.decode!r}; expected one of {', '.join(DECODE_STRATEGIES)}")
        if isinstance(self.auto_core_factor, bool) or not isinstance(self.auto_core_factor, int) \
                or self.auto_core_factor < 1:
            raise ValueError(f"auto_core_factor={self.auto_core_factor!r}; expected an integer >= 1")
        if self.decode_synapse not in DECODE_SYNAPSES:
            raise ValueError(
                f"decode_synapse={self.decode_synapse!r}; expected one of {', '.join(DECODE_SYNAPSES)}"
            )
        if self.decoder_rates not in DECODER_RATES:
            raise ValueError(
                f"decoder_rates={self.decoder_rates!r}; expected one of {', '.join(DECODER_RATES)}"
            )
        for name in ("input_pairs", "decode_pairs"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if not 1 <= int(self.learn_epoch) <= 64:
            raise ValueError(f"learn_epoch must be in 1..64 steps, got {self.learn_epoch!r}")
        if not self.error_range > 0:
            raise ValueError(f"error_range must be > 0, got {self.error_range!r}")


@dataclass(eq=False)
class ChipInput:
    """A host value (``transform @ function(node_output[pre_slice])``) sent as spikes."""

    conn: Connection
    axons: InputAxons
    transform: np.ndarray  # size_out x size_mid
    amplitude: np.ndarray  # value per spike count, per dimension
    pairs: int


@dataclass(eq=False)
class ChipOutput:
    """Spikes of ``block`` decoded on the host: ``decoders @ spikes / dt``, then ``synapse``."""

    key: Any  # a Connection or a Probe
    block: CompartmentBlock
    decoders: np.ndarray | None  # size_out x n, None: amplitude * identity
    amplitude: float
    synapse: Any


@dataclass(eq=False)
class VoltageOutput:
    """State readout of ``block`` in nengo units: ``attr`` ``"voltage"`` (``v / vth``) or
    ``"input"`` (the current ``J``: ``(u + bias) / c``, dendrites joined into their soma)."""

    probe: Probe
    block: CompartmentBlock
    attr: str = "voltage"


@dataclass(eq=False)
class LearningTap:
    """Host side of an on-chip PES rule: its error input is sent to ``rule_regs`` each step."""

    rule: LearningRule
    conn: Connection
    plan: PESPlan
    rule_regs: Any = None  # the group's PESRule, set when the group is created


@dataclass
class MappedModel:
    """The chip program plus the host taps that drive and read it."""

    chip: ChipNetwork
    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    voltages: list = field(default_factory=list)
    host_connections: list = field(default_factory=list)
    nodes: list = field(default_factory=list)
    ensemble_blocks: dict = field(default_factory=dict)
    probe_plans: dict = field(default_factory=dict)
    quantization: dict = field(default_factory=dict)
    learning: list = field(default_factory=list)
    options: MapOptions = field(default_factory=MapOptions)
    #: decoded chip -> chip connection -> ``"weights"`` or ``"neurons"`` (what was
    #: built; ``"weights+neurons"`` when sources of a collapsed node differ)
    decode_choices: dict = field(default_factory=dict)


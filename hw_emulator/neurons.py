"""How each supported neuron model is discretised onto chip compartments.

A registry maps a neuron-model name to a :class:`NeuronKind`; the loihi-emu backend
(:mod:`nhw.backends.loihi_emu.chip_rules`) looks nengo's neuron types up by name
here, so adding a chip neuron model is one registry entry and no if/elif chain.
numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import discretize as dz
from . import rates as rt
from .chip import ChipSpec


@dataclass(frozen=True)
class NeuronParams:
    """Chip registers shared by every compartment of one population."""

    decay_v: int
    refractory_delay: int
    #: per-step voltage gain: ``u2 = J * S * step_gain`` (dv for LIF, dt for IF)
    step_gain: float
    #: default voltage scale S (= vth); reduced when weights or biases overflow
    voltage_scale: int
    #: lower voltage clip in units of S (nengo ``min_voltage``)
    min_voltage: float


@dataclass(frozen=True)
class NeuronKind:
    """One chip neuron model: how to get its registers and its rate curve."""

    name: str
    params: Callable[[object, float, ChipSpec], NeuronParams]
    rates: Callable[[np.ndarray, NeuronParams, float, float], np.ndarray]


def _lif_params(nt, dt: float, spec: ChipSpec) -> NeuronParams:
    dv = dz.decay_v_register(nt.tau_rc, dt, spec, name=f"{nt}.tau_rc")
    ref = dz.refractory_delay(nt.tau_ref, dt, spec, name=f"{nt}.tau_ref")
    return NeuronParams(dv, ref, dv / (spec.decay_max + 1), spec.lif_voltage_scale,
                        float(getattr(nt, "min_voltage", 0.0)))


def _lif_rates(J, p: NeuronParams, dt: float, amplitude: float) -> np.ndarray:
    return rt.lif_rates(J, p.decay_v, p.refractory_delay, dt, amplitude)


def _if_params(nt, dt: float, spec: ChipSpec) -> NeuronParams:
    # integrate-and-fire: no leak (decayV = 0), may spike every step
    return NeuronParams(0, 1, dt, spec.if_voltage_scale, 0.0)


def _if_rates(J, p: NeuronParams, dt: float, amplitude: float) -> np.ndarray:
    return rt.relu_rates(J, dt, amplitude)


#: Chip neuron models by nengo neuron-type class name.
NEURON_KINDS: dict[str, NeuronKind] = {
    "LIF": NeuronKind("LIF", _lif_params, _lif_rates),
    "SpikingRectifiedLinear": NeuronKind("SpikingRectifiedLinear", _if_params, _if_rates),
}

#: The kind used for on-chip decode neurons (integrate-and-fire).
DECODE_KIND = NEURON_KINDS["SpikingRectifiedLinear"]

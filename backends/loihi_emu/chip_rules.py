"""What the chip can run, and nengo's built values as dense matrices.

Helpers of the mapping stage (:mod:`.mapping`, :mod:`.chip_decoders`): the checks that
name an unsupported synapse or neuron type, the conversions of built weights,
slices and chained synapses into the matrices the chip's synapse groups are made of,
and the per-core cost estimate behind ``decode="auto"``.
"""

from __future__ import annotations

from typing import Any

import nengo
import numpy as np
from nengo.ensemble import Ensemble
from nhw.backends.neuron_types import NEURON_TYPES
from nhw.hw_emulator.chip import ChipSpec
from nhw.hw_emulator.neurons import NEURON_KINDS, NeuronKind
from nhw.hw_emulator.sparse import SparseWeights

from nhw.errors import UnsupportedFeatureError


def describe(obj: Any) -> str:
    label = getattr(obj, "label", None)
    return f"{type(obj).__name__} {label!r}" if label else str(obj)


def synapse_tau(synapse: Any, owner: Any) -> float:
    """Time constant of a chip synapse: ``None`` -> 0, ``Lowpass(tau)`` -> tau.

    Raises
    ------
    UnsupportedFeatureError
        Any other synapse (the chip's current is a first-order filter).
    """
    if synapse is None:
        return 0.0
    if type(synapse) is nengo.Lowpass:
        return float(synapse.tau)
    raise UnsupportedFeatureError(
        f"{describe(owner)}: synapse {synapse} cannot run on the chip (its current is a "
        "first-order filter); use nengo.Lowpass(tau) or synapse=None"
    )


# the chip's neuron models, attached to the nengo types they implement
for _name, _kind in NEURON_KINDS.items():
    NEURON_TYPES.attach(getattr(nengo, _name), "loihi-emu", _kind)
del _name, _kind


#: rate types whose ``nengo.RegularSpiking`` form runs as a chip model: the chip
#: model of the spiking type with the same rate curve, as nengo-loihi maps them
REGULAR_SPIKING_BASES = {nengo.LIFRate: "LIF", nengo.RectifiedLinear: "SpikingRectifiedLinear"}


def _supported() -> str:
    plain = [f"nengo.{k}" for k in NEURON_TYPES.supported("loihi-emu")]
    wrapped = [f"nengo.RegularSpiking(nengo.{t.__name__}())" for t in REGULAR_SPIKING_BASES]
    return ", ".join(plain + wrapped)


def chip_neuron(nt: Any, owner: Any) -> tuple[NeuronKind, Any]:
    """``(chip model, registers' source)`` of neuron type ``nt``.

    The registers' source is the neuron type whose parameters (``tau_rc``,
    ``tau_ref``, ``min_voltage``) set the chip registers: ``nt`` itself, or the base
    type of a ``RegularSpiking``; the output spikes' ``amplitude`` is always ``nt``'s.
    Exact types only: a subclass may carry parameters the chip model does not read.

    Raises
    ------
    UnsupportedFeatureError
        A type (or ``RegularSpiking`` base type) the chip has no model of, or a
        ``RegularSpiking`` base with ``amplitude != 1`` (nengo-loihi refuses it too:
        it would change each neuron's effective ``dt``), naming ``owner``.
    """
    kind = NEURON_TYPES.lookup(type(nt), "loihi-emu", exact=True)
    if kind is not None:
        return kind, nt
    base = getattr(nt, "base_type", None) if type(nt) is nengo.RegularSpiking else None
    name = REGULAR_SPIKING_BASES.get(type(base))
    if name is None:
        raise UnsupportedFeatureError(
            f"{describe(owner)}: neuron type {nt} cannot run on the chip; use one of {_supported()}"
        )
    if base.amplitude != 1:
        raise UnsupportedFeatureError(
            f"{describe(owner)}: {nt} has a base type with amplitude={base.amplitude}; the chip "
            "supports amplitude only on the RegularSpiking itself (expected base amplitude 1): "
            f"use nengo.RegularSpiking({type(base).__name__}(...), amplitude={base.amplitude})"
        )
    return NEURON_KINDS[name], base


def neuron_kind(ens: Ensemble) -> NeuronKind:
    """The chip model of ``ens.neuron_type`` (see :func:`chip_neuron`)."""
    return chip_neuron(ens.neuron_type, ens)[0]


FAIL = object()


def combine(a: Any, b: Any) -> Any:
    """One synapse for two in series: fine when at most one filters, else ``FAIL``."""
    if a is None:
        return b
    if b is None:
        return a
    return FAIL


def dense_matrix(w: Any, size_out: int, size_in: int, owner: Any) -> np.ndarray:
    """Built connection weights as a dense ``size_out x size_in`` matrix."""
    if hasattr(w, "toarray"):
        w = w.toarray()
    w = np.asarray(w, dtype=np.float64)
    if w.ndim == 0:
        return w * np.eye(size_out, size_in)
    if w.ndim == 1:
        return np.diag(w)
    if w.shape != (size_out, size_in):
        raise UnsupportedFeatureError(f"{describe(owner)}: weights of shape {w.shape} cannot be mapped")
    return w


def select_matrix(size_mid: int, n: int, pre_slice: Any) -> np.ndarray:
    """``size_mid x n`` selection matrix of ``pre_slice``."""
    idx = np.arange(n)[pre_slice]
    sel = np.zeros((len(idx), n))
    sel[np.arange(len(idx)), idx] = 1.0
    return sel


def post_matrix(size_out: int, size_in: int, post_slice: Any) -> np.ndarray:
    """``size_in x size_out`` matrix placing a connection's output into ``post_slice``."""
    return select_matrix(size_out, size_in, post_slice).T



def incoming_cost(w_j: np.ndarray, copies: int, pieces: int, spec: ChipSpec) -> tuple[int, int]:
    """Synapse memory (bits) and input axons (per piece) of one incoming weight matrix.

    Parameters
    ----------
    w_j
        ``n_target x n_source`` weights; nonzero entries become synapses.
    copies
        Physical axons per source (``InputAxons.max_count``; 1 for a block).
    pieces
        Cores the target is spread over: every piece stores one synapse-list header
        per source axon that reaches it (the same estimate as the allocator's).
    spec
        The chip, for ``synapse_bits``, ``synapse_list_header_bits``.

    Returns
    -------
    tuple of int
        ``(synapse_bits, input_axons)``; ``input_axons`` is an upper bound per piece
        (every used source row may reach every piece).
    """
    if isinstance(w_j, SparseWeights):
        # shared lists (a convolution) cost at most this as discrete synapses
        rows, nnz = w_j.n_source_rows, w_j.nnz
    else:
        nz = w_j != 0
        rows = int(np.count_nonzero(nz.any(axis=0)))
        nnz = int(np.count_nonzero(nz))
    bits = int(copies) * (nnz * spec.synapse_bits + rows * int(pieces) * spec.synapse_list_header_bits)
    return bits, rows * int(copies)


def fits_cores(n: int, compartments_per_neuron: int, costs: list, spec: ChipSpec) -> tuple[bool, int]:
    """Whether incoming ``costs`` fit in the cores ``n`` neurons need for their compartments alone.

    Parameters
    ----------
    n
        Neurons of the target population.
    compartments_per_neuron
        1 plus one dendrite compartment per extra synapse time constant.
    costs
        ``(synapse_bits, input_axons)`` pairs from :func:`incoming_cost`.
    spec
        The chip, for per-core compartments, synapse memory and input axons.

    Returns
    -------
    tuple
        ``(fits, cores)``: ``cores`` is the compartment-bound core count,
        ``ceil(n * compartments_per_neuron / compartments_per_core)``.
    """
    cores = max(1, -(-int(n) * int(compartments_per_neuron) // spec.compartments_per_core))
    bits = sum(b for b, _ in costs)
    axons = sum(a for _, a in costs)
    return bits <= cores * spec.synapse_memory_bits and axons <= spec.input_axons_per_core, cores

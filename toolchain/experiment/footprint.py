"""Refuse a network that cannot be built in this machine's memory, before building it.

nengo's builder allocates as it goes: an ensemble of ten million neurons with a decoded
output asks for an activity matrix of ``2 n`` evaluation points by ``n`` neurons while
solving its decoders, and the process is killed (or the machine swaps) long after the
user pressed enter. The estimate below counts the few allocations that dominate (decoder
solves, dense weight matrices, encoders) and is compared with the memory available now.
"""

from __future__ import annotations

import os

import nengo
from nengo.utils.builder import default_n_eval_points

from nhw.errors import DeployError

_FLOAT = 8  # nengo builds in float64


def _solve_bytes(ens: nengo.Ensemble) -> int:
    n_eval = ens.n_eval_points or default_n_eval_points(ens.n_neurons, ens.dimensions)
    return n_eval * ens.n_neurons * _FLOAT * 2  # activities and their Gram/least-squares work


def estimate(network: nengo.Network) -> tuple[list[tuple[int, object]], list[tuple[int, object]]]:
    """Bytes of the largest allocations of building ``network``, with the object each is for.

    Returns
    -------
    tuple
        ``(kept, transient)``: what the built model keeps (encoders, dense weights), and the
        decoder solves, which run one at a time and are freed after each.
    """
    decoded = {c.pre_obj for c in network.all_connections if isinstance(c.pre_obj, nengo.Ensemble)}
    kept = [(ens.n_neurons * (ens.dimensions + 4) * _FLOAT, ens) for ens in network.all_ensembles]
    transient = [(_solve_bytes(ens), ens) for ens in network.all_ensembles if ens in decoded]
    for conn in network.all_connections:
        transform = conn.transform
        if isinstance(transform, nengo.transforms.Dense) and len(transform.shape) == 2:
            kept.append((transform.shape[0] * transform.shape[1] * _FLOAT, conn))
    return kept, transient


def available_bytes() -> int | None:
    """Memory available to new allocations now (Linux ``MemAvailable``), or None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits(network: nengo.Network, target: str, available: int | None = None) -> None:
    """Raise :class:`DeployError` if building ``network`` needs more memory than is available.

    Parameters
    ----------
    network
        The network about to be built.
    target
        Named in the message.
    available
        Bytes available (default: :func:`available_bytes`); nothing is checked if unknown.
    """
    available = available_bytes() if available is None else available
    if available is None:
        return
    kept, transient = estimate(network)
    total = sum(size for size, _ in kept) + max((size for size, _ in transient), default=0)
    if total <= available:
        return
    size, biggest = max(kept + transient, key=lambda item: item[0])
    raise DeployError(f"target {target!r}: building the network needs about {total / 2**30:,.1f} GiB "
                      f"(largest: {biggest}, {size / 2**30:,.1f} GiB) but {available / 2**30:,.1f} GiB is "
                      "available; expected a network that fits in memory (fewer neurons per ensemble, or "
                      "set n_eval_points)")

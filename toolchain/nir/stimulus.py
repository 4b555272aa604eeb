"""An exported network's input signals, carried inside the NIR file.

A NIR ``Input`` node declares only a shape, so a network whose input Node generates
its own signal (a ``WhiteSignal``, a function of time) would come back from a round
trip as an all-zero input. nhw's export records what each such Node emits over the
exported run, sampled on nengo's reference simulator with the run's seed and ``dt``,
in the ``Input`` node's metadata; the importer replays it, so the imported network
sees the very input the original saw. Peers ignore the metadata.
"""

from __future__ import annotations

import nengo
import numpy as np

from nhw.errors import NIRError

#: metadata keys on a NIR Input node
STIMULUS_KEY = "nhw_stimulus"
STIMULUS_DT_KEY = "nhw_stimulus_dt"


def self_driven(inputs: dict[str, nengo.Node], fed: str | None = None) -> dict[str, nengo.Node]:
    """The inputs that generate their own signal (not fed from data, not passthrough)."""
    return {name: node for name, node in inputs.items()
            if name != fed and node.size_in == 0 and node.output is not None}


def record(network: nengo.Network, inputs: dict[str, nengo.Node], *, n_steps: int, dt: float,
           seed: int) -> dict[str, np.ndarray]:
    """What each Node in ``inputs`` emits over ``n_steps`` steps of nengo's reference simulator.

    Probes are added for the run and removed afterwards, so ``network`` is left as it was.

    Returns
    -------
    dict
        Input name -> array of shape ``(n_steps, size_out)``.
    """
    if not inputs:
        return {}
    with network:
        probes = {name: nengo.Probe(node, synapse=None) for name, node in inputs.items()}
    try:
        with nengo.Simulator(network, dt=dt, seed=seed, progress_bar=False) as sim:
            sim.run_steps(n_steps)
            return {name: np.asarray(sim.data[p], dtype=np.float64) for name, p in probes.items()}
    finally:
        for p in probes.values():
            network.probes.remove(p)


def attach(graph, names: dict[str, str], recorded: dict[str, np.ndarray], dt: float) -> None:
    """Store ``recorded`` (input name -> samples) on the graph's Input nodes named by ``names``."""
    for name, data in recorded.items():
        node = graph.nodes[names.get(name, name)]
        node.metadata = dict(node.metadata or {}, **{STIMULUS_KEY: data, STIMULUS_DT_KEY: float(dt)})


def replay(name: str, metadata: dict | None, size: int) -> nengo.Node | None:
    """A Node replaying the stimulus stored on Input ``name``, or None if it has none.

    Raises
    ------
    NIRError
        The stored samples are not a finite ``(steps, size)`` array or their ``dt`` is not positive.
    """
    meta = metadata or {}
    if STIMULUS_KEY not in meta:
        return None
    data = np.asarray(meta[STIMULUS_KEY])
    dt = float(np.asarray(meta.get(STIMULUS_DT_KEY, np.nan)))
    if data.ndim != 2 or data.shape[1] != size or data.shape[0] == 0 or not np.issubdtype(data.dtype, np.number):
        raise NIRError(f"node '{name}': metadata {STIMULUS_KEY} must be a numeric (steps, {size}) array, "
                       f"got {data.dtype} {data.shape}")
    if not np.all(np.isfinite(data)):
        raise NIRError(f"node '{name}': metadata {STIMULUS_KEY} holds NaN or Inf")
    if not (np.isfinite(dt) and dt > 0):
        raise NIRError(f"node '{name}': metadata {STIMULUS_DT_KEY} must be a positive time step, got {dt}")
    return nengo.Node(nengo.processes.PresentInput(data, presentation_time=dt), label=name)


def steps(metadata: dict | None) -> int | None:
    """Length in steps of the stimulus stored in an Input node's ``metadata`` (None: none stored)."""
    data = (metadata or {}).get(STIMULUS_KEY)
    return None if data is None else int(np.asarray(data).shape[0])

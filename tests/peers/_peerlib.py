"""Running NIR graphs in the peer libraries (snnTorch, Norse) for the peer test tier."""

import logging

import nir
import numpy as np
import pytest

#: how to get the tier's environment (docs/testing.md)
INSTALL = "bash scripts/peers-venv.sh (CPU torch, snntorch, norse in /tmp/peers)"


def require() -> None:
    """Skip the calling module unless torch, snnTorch and Norse import."""
    for name in ("torch", "snntorch", "norse"):
        pytest.importorskip(name, reason=f"the peer tier needs {name}: {INSTALL}")


def only(graph: nir.NIRGraph, keep: str) -> nir.NIRGraph:
    """The sub-graph feeding Output ``keep`` (nirtorch 2.6 loops forever on several Outputs)."""
    live, edges = {keep}, [tuple(e) for e in graph.edges]
    while True:
        new = {a for a, b in edges if b in live} - live
        if not new:
            break
        live |= new
    nodes = {k: v for k, v in graph.nodes.items() if k in live}
    return nir.NIRGraph(nodes=nodes, edges=[e for e in edges if set(e) <= live], metadata=graph.metadata)


def module(peer: str, graph: nir.NIRGraph, dt: float):
    """The peer's own torch module for ``graph`` (its NIR reader, unmodified)."""
    logging.disable(logging.WARNING)  # Norse warns about r; nothing here depends on it
    if peer == "snntorch":
        from snntorch.import_nir import import_from_nir
        return import_from_nir(graph)
    import norse.torch
    return norse.torch.from_nir(graph, dt=dt)


def run(peer: str, mod, x: np.ndarray, n_steps: int) -> np.ndarray:
    """Sum of the peer's per-step outputs over ``n_steps`` steps of constant input ``x``
    (a batch: ``(B, ...)``), from a fresh state; shape ``(B, n_out)``."""
    import torch

    xt = torch.tensor(np.asarray(x), dtype=torch.float32)
    total, state = 0, None
    with torch.no_grad():
        if peer == "snntorch":
            for m in mod.modules():  # a fresh state per call
                if hasattr(m, "reset_mem"):
                    m.reset_mem()
        for _ in range(n_steps):
            if peer == "snntorch":
                out = mod(xt)
            else:
                out, state = mod(xt, state)
            out = out[0] if isinstance(out, tuple) else out
            total = total + out.numpy().reshape(len(xt), -1)
    return np.asarray(total)

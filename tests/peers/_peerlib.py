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


def module(peer: str, graph: nir.NIRGraph, dt: float, batch_size: int = 1):
    """The peer's own torch module for ``graph`` (its NIR reader, unmodified); sinabs
    builds its layers for a fixed ``batch_size`` and has no ``dt``."""
    logging.disable(logging.WARNING)  # Norse warns about r; nothing here depends on it
    if peer == "snntorch":
        from snntorch.import_nir import import_from_nir
        return import_from_nir(graph)
    if peer == "sinabs":
        import sinabs
        return sinabs.from_nir(graph, batch_size=batch_size)
    import norse.torch
    return norse.torch.from_nir(graph, dt=dt)


def steps(peer: str, mod, x: np.ndarray, n_steps: int) -> np.ndarray:
    """The peer's per-step outputs for items ``x`` (``(B, ...)``), each held for ``n_steps``
    steps from a zero state (the items run as one batch); shape ``(B, n_steps, n_out)``."""
    import torch

    def fresh():
        if peer == "snntorch":  # its modules keep their state (init_hidden)
            for m in mod.modules():
                if hasattr(m, "reset_mem"):
                    m.reset_mem()

    def one(xt, state):
        if peer == "snntorch":
            out = mod(xt)
        else:
            out, state = mod(xt, state)
        out = out[0] if isinstance(out, tuple) else out
        return out.numpy().reshape(len(xt), -1), state

    x = np.asarray(x, dtype=np.float32)
    if peer == "sinabs":  # one call: (batch * time, ...) in, batch-major
        with torch.no_grad():
            for m in mod.modules():
                if hasattr(m, "reset_states"):
                    m.reset_states()
            out = mod(torch.tensor(np.repeat(x[:, None], n_steps, axis=1).reshape(len(x) * n_steps, *x.shape[1:])))
        out = out[0] if isinstance(out, tuple) else out
        return out.numpy().reshape(len(x), n_steps, -1)
    fresh()
    state, per, xt = None, [], torch.tensor(x)
    with torch.no_grad():
        for _ in range(n_steps):
            out, state = one(xt, state)
            per.append(out)
    return np.stack(per, axis=1)


def run(peer: str, mod, x: np.ndarray, n_steps: int) -> np.ndarray:
    """Sum of the peer's per-step outputs over ``n_steps`` steps of constant input ``x``
    (a batch: ``(B, ...)``), from a fresh state; shape ``(B, n_out)``."""
    return steps(peer, mod, x, n_steps).sum(1)

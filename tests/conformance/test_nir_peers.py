"""nhw's peer-profile NIR exports loaded and run by the real peer libraries.

Optional tier: needs CPU torch, snnTorch and Norse, kept out of the project's
environment, e.g.::

    python -m venv --system-site-packages /tmp/peers
    /tmp/peers/bin/pip install torch==2.13.0 snntorch norse   # CPU torch wheel
    /tmp/peers/bin/python -m pytest -q -p no:randomly tests/conformance/test_nir_peers.py

Both peers run at dt = 1e-4 s (snnTorch's hard-coded step); nengo runs the original
network at the same dt.  Peers run graphs with one ``Output`` only (nirtorch 2.6
loops forever on several), so each probed layer is run on its own sub-graph.
"""

import logging
import sys
from pathlib import Path

import nengo
import nir
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("snntorch")
pytest.importorskip("norse")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from nhw.toolchain.nir.export import export_nir
from test_nir_profiles import _ff

DT, T = 1e-4, 0.3


def _only(graph, keep):
    """The sub-graph of ``graph`` that feeds Output ``keep``."""
    live, edges = {keep}, [tuple(e) for e in graph.edges]
    while True:
        new = {a for a, b in edges if b in live} - live
        if not new:
            break
        live |= new
    nodes = {k: v for k, v in graph.nodes.items() if k in live}
    return nir.NIRGraph(nodes=nodes, edges=[e for e in edges if set(e) <= live], metadata=graph.metadata)


def _peer_counts(peer, graph, x):
    logging.disable(logging.WARNING)
    if peer == "snntorch":
        from snntorch.import_nir import import_from_nir
        module = import_from_nir(graph)
    else:
        import norse.torch
        module = norse.torch.from_nir(graph, dt=DT)
    x = torch.tensor(x, dtype=torch.float32)[None]
    counts, state = 0, None
    with torch.no_grad():
        for _ in range(round(T / DT)):
            if peer == "snntorch":
                out = module(x)
            else:
                out, state = module(x, state)
            out = out[0] if isinstance(out, tuple) else out
            counts = counts + out.numpy().reshape(-1)
    return counts


@pytest.mark.parametrize("peer", ["snntorch", "norse"])
@pytest.mark.parametrize("synapse, layer, tol", [
    (None, "a_spikes", 1),  # LIF hidden layer
    (0.005, "b_spikes", 1),  # CubaLIF second layer (spikes in through the synapse)
    (0.005, "a_spikes", 3),  # CubaLIF: the bias passes the synapse (start-up transient)
])
def test_peer_reproduces_hidden_spike_counts(peer, synapse, layer, tol):
    net = _ff(synapse=synapse)
    names = {p: p.label for p in net.all_probes}
    names.update({n: n.label for n in net.all_nodes if n.output is not None and n.size_in == 0})
    with nengo.Simulator(net, dt=DT, progress_bar=False) as sim:
        sim.run(T)
    ref = {p.label: (sim.data[p] > 0).sum(0) for p in net.all_probes}
    graph = export_nir(net, dt=DT, names=names, profile=peer).graph
    counts = _peer_counts(peer, _only(graph, layer), np.asarray(net.all_nodes[0].output))
    assert ref[layer].sum() > 50  # the layer is active
    assert np.abs(counts - ref[layer]).max() <= tol, (ref[layer], counts)

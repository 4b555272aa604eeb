"""nhw's peer-profile NIR exports loaded and run by the real peer libraries.

Both peers run at dt = 1e-4 s (snnTorch's hard-coded step); nengo runs the original
network at the same dt.  Peers run graphs with one ``Output`` only (nirtorch 2.6
loops forever on several), so each probed layer is run on its own sub-graph.
"""

import sys
from pathlib import Path

import nengo
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _peerlib  # noqa: E402

_peerlib.require()
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from nhw.toolchain.nir.export import export_nir  # noqa: E402
from test_nir_profiles import ZERO_V, _ff  # noqa: E402

DT, T = 1e-4, 0.3
PEERS = ["snntorch", "norse"]


def _reference(net):
    with nengo.Simulator(net, dt=DT, progress_bar=False) as sim:
        sim.run(T)
    return {p.label: (sim.data[p] > 0).sum(0) for p in net.all_probes}


def _names(net):
    names = {p: p.label for p in net.all_probes}
    names.update({n: n.label for n in net.all_nodes if n.output is not None and n.size_in == 0})
    return names


def _peer_counts(peer, net, layer):
    graph = export_nir(net, dt=DT, names=_names(net), profile=peer).graph
    mod = _peerlib.module(peer, _peerlib.only(graph, layer), DT)
    x = np.asarray(net.all_nodes[0].output)
    shape = graph.nodes[net.all_nodes[0].label].input_type["input"]
    return _peerlib.run(peer, mod, x.reshape(1, *shape), round(T / DT))[0]


@pytest.mark.parametrize("peer", PEERS)
@pytest.mark.parametrize("synapse, layer, tol", [
    (None, "a_spikes", 1),  # LIF hidden layer
    (0.005, "b_spikes", 1),  # CubaLIF second layer (spikes in through the synapse)
    (0.005, "a_spikes", 3),  # CubaLIF: the bias passes the synapse (start-up transient)
])
def test_peer_reproduces_hidden_spike_counts(peer, synapse, layer, tol):
    net = _ff(synapse=synapse)
    ref = _reference(net)[layer]
    counts = _peer_counts(peer, net, layer)
    assert ref.sum() > 50  # the layer is active
    assert np.abs(counts - ref).max() <= tol, (ref, counts)


def _conv_net(seed=5):
    """Input (1, 8, 8) -> Conv2d 2 filters 3x3 -> 72 LIF neurons (per-channel gain and bias)."""
    rng = np.random.RandomState(seed)
    with nengo.Network(seed=seed) as net:
        stim = nengo.Node(rng.uniform(0, 1, 64), label="image")
        ens = nengo.Ensemble(72, 1, neuron_type=nengo.LIF(tau_ref=0, initial_state=ZERO_V),
                             gain=nengo.dists.Choice([1.5]), bias=nengo.dists.Choice([0.4]), label="conv_lif")
        conv = nengo.Convolution(2, (1, 8, 8), kernel_size=(3, 3), channels_last=False,
                                 init=rng.uniform(-0.1, 0.5, (3, 3, 1, 2)))
        nengo.Connection(stim, ens.neurons, transform=conv, synapse=None)
        nengo.Probe(ens.neurons, label="c_spikes")
    return net


@pytest.mark.parametrize("peer", PEERS)
def test_peer_reproduces_conv2d_spike_counts(peer):
    net = _conv_net()
    ref = _reference(net)["c_spikes"]
    counts = _peer_counts(peer, net, "c_spikes")
    assert ref.sum() > 200 and (ref > 0).mean() > 0.5
    assert np.abs(counts - ref).max() <= 1, (ref, counts)

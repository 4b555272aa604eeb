"""NIR export names: probe labels become Output names exactly and survive round trips."""

import nengo
import nir
import numpy as np

from nhw.toolchain.nir.export import export_nir
from nhw.toolchain.nir.importer import import_nir


def _network():
    with nengo.Network(seed=0) as net:
        stim = nengo.Node(np.zeros(2), label="stim")
        a = nengo.Ensemble(20, 2, label="a")
        nengo.Connection(stim, a, synapse=0.005)
        # "x" collides with a helper-free name; "a" collides with the ensemble's label
        x = nengo.Probe(a, synapse=0.01, label="x")
        spikes = nengo.Probe(a.neurons, label="a")
    return net, x, spikes


def _outputs(graph) -> set[str]:
    return {name for name, node in graph.nodes.items() if isinstance(node, nir.Output)}


def test_probe_label_wins_over_an_object_labelled_the_same():
    net, x, spikes = _network()
    result = export_nir(net)
    assert result.names[x] == "x" and result.names[spikes] == "a"
    assert _outputs(result.graph) == {"x", "a"}
    ens = next(iter(net.all_ensembles))
    assert result.names[ens] == "a_1"  # the ensemble, not the probe, takes the suffix
    assert isinstance(result.graph.nodes["a_1"], (nir.LIF, nir.CubaLIF))


def test_probe_names_survive_repeated_round_trips():
    net, _, _ = _network()
    graph = export_nir(net).graph
    for _ in range(3):
        imported = import_nir(graph)
        assert set(imported.outputs) == {"x", "a"}
        graph = export_nir(imported.network).graph
        assert _outputs(graph) == {"x", "a"}


def test_helper_node_never_overwrites_a_labelled_object():
    with nengo.Network(seed=1) as net:
        stim = nengo.Node(np.zeros(1), label="stim")
        a = nengo.Ensemble(10, 1, label="a")
        b = nengo.Ensemble(10, 1, label="x_syn")  # what the probe's filter would be named
        nengo.Connection(stim, a)
        nengo.Connection(a, b)
        x = nengo.Probe(a, synapse=0.02, label="x")
    result = export_nir(net)
    assert result.names[b] == "x_syn" and isinstance(result.graph.nodes["x_syn"], (nir.LIF, nir.CubaLIF))
    assert isinstance(result.graph.nodes["x_syn_1"], nir.LI)  # the probe's filter moved aside
    assert result.names[x] == "x" and ("x_syn_1", "x") in result.graph.edges


def test_probes_sharing_a_label_are_suffixed_in_order():
    with nengo.Network(seed=2) as net:
        stim = nengo.Node(np.zeros(1), label="stim")
        a = nengo.Ensemble(10, 1, label="a")
        nengo.Connection(stim, a)
        first = nengo.Probe(a, label="out")
        second = nengo.Probe(a.neurons, label="out")
        bare = [nengo.Probe(a), nengo.Probe(a)]
    result = export_nir(net)
    assert [result.names[p] for p in (first, second, *bare)] == ["out", "out_1", "probe", "probe_1"]
    assert _outputs(result.graph) == {"out", "out_1", "probe", "probe_1"}

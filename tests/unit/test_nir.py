"""NIR export/import: the mapping, and a clear error for everything it cannot express."""

import nengo
import nir
import numpy as np
import pytest

from nhw.errors import NIRError
from nhw.toolchain.nir.export import export_nir
from nhw.toolchain.nir.importer import NODE_TYPES, import_nir, read_graph


def _chain(neuron_type=nengo.LIF(), synapse=0.005):
    with nengo.Network(seed=1) as net:
        stim = nengo.Node([0.5], label="stim")
        a = nengo.Ensemble(8, 1, neuron_type=neuron_type, label="a")
        nengo.Connection(stim, a, synapse=synapse)
        nengo.Probe(a, synapse=0.01, label="out")
    return net


def test_lif_folds_gain_bias_and_synapse():
    net = _chain()
    result = export_nir(net)
    g = result.graph
    assert set(g.nodes) == {"stim", "a", "conn", "out_decoders", "out_syn", "out"}
    a = g.nodes["a"]
    assert isinstance(a, nir.CubaLIF)  # the single Lowpass(0.005) input synapse folded in
    with nengo.Simulator(net, progress_bar=False) as sim:
        assert np.allclose(a.r, sim.data[net.ensembles[0]].gain)
        assert np.allclose(a.v_leak, sim.data[net.ensembles[0]].bias)
    assert np.allclose(a.tau_syn, 0.005) and np.allclose(a.tau_mem, 0.02)
    assert a.metadata["tau_ref"] == 0.002 and len(a.metadata["v_init"]) == 8
    assert ("a", "out_decoders") in g.edges and ("out_syn", "out") in g.edges


def test_unfiltered_input_gives_plain_lif():
    assert isinstance(export_nir(_chain(synapse=None)).graph.nodes["a"], nir.LIF)


def test_spiking_relu_is_if_with_nengo_reset_semantics():
    node = export_nir(_chain(nengo.SpikingRectifiedLinear())).graph.nodes["a"]
    assert isinstance(node, nir.IF) and node.metadata["reset"] == "subtract"


@pytest.mark.parametrize("build, message", [
    (lambda: nengo.Ensemble(5, 1, neuron_type=nengo.LIFRate(), label="rates"), "neuron type LIFRate cannot"),
    (lambda: nengo.Node(lambda t, x: x, size_in=1, label="py"), "Python function"),
    (lambda: nengo.Probe(nengo.Ensemble(5, 1, label="e").neurons, "voltage"), "Neurons.voltage"),
])
def test_unexpressible_objects_are_named(build, message):
    with nengo.Network() as net:
        build()
    with pytest.raises(NIRError, match=message):
        export_nir(net)


def test_learning_rule_error_and_partial_export():
    with nengo.Network(seed=0) as net:
        a = nengo.Ensemble(10, 1, label="pre")
        b = nengo.Ensemble(10, 1, label="post")
        nengo.Connection(a, b, learning_rule_type=nengo.PES())
        nengo.Probe(b, label="p")
    with pytest.raises(NIRError, match="learning rules cannot be expressed"):
        export_nir(net)
    result = export_nir(net, allow_partial=True)
    assert any("learning rules" in r for r in result.remainder)
    assert {"pre", "post", "p"} <= set(result.graph.nodes)


def test_other_synapses_rejected():
    with pytest.raises(NIRError, match="Alpha.*only Lowpass or None"):
        export_nir(_chain(synapse=nengo.Alpha(0.01)))


def _graph(nodes, edges):
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def test_import_shape_mismatch_names_edge():
    g = _graph({"in": nir.Input(input_type={"input": np.array([3])}),
                "w": nir.Linear(np.ones((2, 4))),
                "out": nir.Output(output_type={"output": np.array([2])})},
               [("in", "w"), ("w", "out")])
    with pytest.raises(NIRError, match="edge 'in' -> 'w': 'in' emits 3 values, 'w' expects 4"):
        import_nir(g)


def test_import_unknown_node_type_lists_supported():
    g = _graph({"in": nir.Input(input_type={"input": np.array([1])}),
                "sub": _graph({}, [])}, [("in", "sub")])  # nested graphs are not imported
    with pytest.raises(NIRError, match="node 'sub': NIR type NIRGraph has no nengo mapping; supported: .*LIF"):
        import_nir(g)


def test_import_rejects_nonzero_reset_and_foreign_if():
    one = np.ones(2)
    lif = nir.LIF(tau=0.02 * one, r=one, v_leak=0 * one, v_threshold=one, v_reset=0.5 * one)
    with pytest.raises(NIRError, match="node 'n': v_reset must be 0"):
        import_nir(_graph({"n": lif}, []))
    with pytest.raises(NIRError, match="node 'n': NIR IF resets to v_reset"):
        import_nir(_graph({"n": nir.IF(r=one, v_threshold=one)}, []))
    imported = import_nir(_graph({"n": nir.IF(r=one, v_threshold=one)}, []), allow_subtractive_if=True)
    assert isinstance(imported.objects["n"].neuron_type, nengo.SpikingRectifiedLinear)


def test_import_threshold_scales_gain_and_bias():
    one = np.ones(2)
    lif = nir.LIF(tau=0.02 * one, r=4 * one, v_leak=1 * one, v_threshold=2 * one)
    ens = import_nir(_graph({"n": lif}, [])).objects["n"]
    assert np.allclose(ens.gain, 2) and np.allclose(ens.bias, 0.5)


def test_import_nonuniform_tau_is_an_error():
    lif = nir.LIF(tau=np.array([0.02, 0.03]), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2))
    with pytest.raises(NIRError, match="node 'n': tau must be equal for all neurons"):
        import_nir(_graph({"n": lif}, []))


def test_read_graph_errors(tmp_path):
    with pytest.raises(NIRError, match="no such file"):
        read_graph(tmp_path / "missing.nir")
    junk = tmp_path / "junk.nir"
    junk.write_bytes(b"this is not hdf5")
    with pytest.raises(NIRError, match="not a readable NIR file"):
        read_graph(junk)


def test_every_supported_type_is_registered():
    assert {nir.LIF, nir.CubaLIF, nir.IF, nir.LI, nir.CubaLI, nir.I, nir.Affine, nir.Linear, nir.Scale,
            nir.Input, nir.Output, nir.Flatten} <= set(NODE_TYPES)


@pytest.mark.parametrize("tau", [0.0, -0.02, np.nan])
@pytest.mark.parametrize("make, what", [
    (lambda t, one: nir.LIF(tau=t * one, r=one, v_leak=0 * one, v_threshold=one), "tau"),
    (lambda t, one: nir.LI(tau=t * one, r=one, v_leak=0 * one), "tau"),
    (lambda t, one: nir.CubaLIF(tau_mem=t * one, tau_syn=0.005 * one, r=one, v_leak=0 * one,
                                v_threshold=one, w_in=one), "tau_mem"),
])
def test_import_refuses_a_time_constant_that_is_not_positive(make, what, tau):
    """nhw's error naming the node (it was nengo's traceback naming no NIR node)."""
    one = np.ones(2)
    with pytest.raises(NIRError, match=f"node 'n': {what} must be a time constant > 0 s"):
        import_nir(_graph({"n": make(tau, one)}, []))

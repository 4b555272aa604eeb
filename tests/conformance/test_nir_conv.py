"""NIR convolution, pooling, Threshold and Delay: round trips and analytic checks.

Round trip: a small spiking convolutional network is exported, written with
``nir.write``, read back and imported; on nengo's reference simulator the imported
network must reproduce the original probes (to 1e-9) and spikes (exactly), for both
``channels_last`` layouts.  Import-only nodes are checked against numpy pooling /
correlation and the analytic Heaviside and delay responses.
"""

import nengo
import nir
import numpy as np
import pytest

from nhw.errors import NIRError
from nhw.toolchain.nir.export import export_nir
from nhw.toolchain.nir.importer import import_nir

N_STEPS = 150


def _conv_net(channels_last: bool, second: dict):
    """image 6x6x1 -> conv 4x3x3 'same' -> LIF -> conv (``second``) -> SpikingReLU -> Dense -> Node."""
    image = np.random.RandomState(0).uniform(0, 1, 36)
    with nengo.Network(seed=3) as net:
        inp = nengo.Node(image, label="image")
        c1 = nengo.Convolution(4, (6, 6, 1) if channels_last else (1, 6, 6), kernel_size=(3, 3), padding="same",
                               channels_last=channels_last)
        a = nengo.Ensemble(c1.output_shape.size, 1, neuron_type=nengo.LIF(), label="layer1")
        nengo.Connection(inp, a.neurons, transform=c1, synapse=0.005)
        c2 = nengo.Convolution(4, c1.output_shape.shape, kernel_size=(3, 3), channels_last=channels_last, **second)
        # IF carries no bias in a tensor-shaped NIR node (see nir_export): bias 0
        b = nengo.Ensemble(c2.output_shape.size, 1, neuron_type=nengo.SpikingRectifiedLinear(),
                           gain=nengo.dists.Choice([2.0]), bias=nengo.dists.Choice([0.0]), label="layer2")
        nengo.Connection(a.neurons, b.neurons, transform=c2, synapse=0.01)
        out = nengo.Node(size_in=3, label="readout")
        nengo.Connection(b.neurons, out, synapse=0.02,
                         transform=nengo.Dense((3, b.n_neurons), init=nengo.dists.Uniform(-0.01, 0.01)))
        probes = {"out": nengo.Probe(out, label="out"), "spikes1": nengo.Probe(a.neurons, label="spikes1"),
                  "spikes2": nengo.Probe(b.neurons, label="spikes2")}
    return net, probes


def _run(network, probes, n_steps=N_STEPS):
    with nengo.Simulator(network, progress_bar=False) as sim:
        sim.run_steps(n_steps)
        return {k: np.array(sim.data[p]) for k, p in probes.items()}


def _round_trip(net, probes, tmp_path):
    exported = export_nir(net)
    path = tmp_path / "conv.nir"
    nir.write(str(path), exported.graph)
    imported = import_nir(nir.read(str(path)))
    for node in net.all_nodes:
        name = exported.names[node]
        if name in imported.inputs:
            data = np.asarray(node.output, float)
            if node in exported.layouts:  # an Input expects NIR's channels-first order
                data = data[exported.layouts[node][1]]
            imported.inputs[name].output = data
    got = _run(imported.network, {k: imported.outputs[exported.names[p]] for k, p in probes.items()})
    return exported, imported, got


@pytest.mark.parametrize("second", [{"strides": (2, 2)}, {"groups": 2}], ids=["stride2", "groups2"])
@pytest.mark.parametrize("channels_last", [True, False], ids=["channels_last", "channels_first"])
def test_conv_network_round_trip_is_spike_identical(channels_last, second, tmp_path):
    net, probes = _conv_net(channels_last, second)
    original = _run(net, probes)
    exported, imported, got = _round_trip(net, probes, tmp_path)
    convs = [n for n in exported.graph.nodes.values() if isinstance(n, nir.Conv2d)]
    assert len(convs) == 2 and convs[0].weight.shape == (4, 1, 3, 3) and convs[1].weight.shape == (4, 4, 3, 3)
    assert tuple(convs[0].padding) == (1, 1) and tuple(convs[1].padding) == (0, 0)  # 'same', 'valid'
    assert tuple(exported.graph.nodes["layer1"].r.shape) == (4, 6, 6)  # channels-first tensor
    for spikes in ("spikes1", "spikes2"):
        assert original[spikes].sum() > 0
        assert np.array_equal(got[spikes], original[spikes]), spikes
    assert np.allclose(got["out"], original["out"], atol=1e-9, rtol=0)
    if "groups" in second:  # exported block-diagonally, grouped again on import
        assert convs[1].groups == 1 and convs[1].metadata["nengo_groups"] == 2
        groups = [c.transform.groups for c in imported.network.all_connections
                  if isinstance(c.transform, nengo.Convolution)]
        assert sorted(groups) == [1, 2]


def test_conv1d_round_trip(tmp_path):
    signal = np.random.RandomState(1).uniform(0, 1, 20)
    with nengo.Network(seed=2) as net:
        inp = nengo.Node(signal, label="signal")  # (10 positions, 2 channels), channels last
        conv = nengo.Convolution(3, (10, 2), kernel_size=(3,), strides=(1,), padding="same")
        ens = nengo.Ensemble(conv.output_shape.size, 1, label="ens")
        nengo.Connection(inp, ens.neurons, transform=conv, synapse=None)
        probes = {"spikes": nengo.Probe(ens.neurons, label="spikes")}
    original = _run(net, probes)
    exported, _, got = _round_trip(net, probes, tmp_path)
    node = next(n for n in exported.graph.nodes.values() if isinstance(n, nir.Conv1d))
    assert node.weight.shape == (3, 2, 3) and tuple(node.input_type["input"]) == (2, 10)
    assert original["spikes"].sum() > 0 and np.array_equal(got["spikes"], original["spikes"])


def _export_error(build):
    with nengo.Network() as net:
        build()
    with pytest.raises(NIRError) as info:
        export_nir(net)
    return str(info.value)


def test_asymmetric_same_padding_names_connection():
    def build():
        a = nengo.Node(np.zeros(16), label="img")
        b = nengo.Node(size_in=16)
        nengo.Connection(a, b, transform=nengo.Convolution(1, (4, 4, 1), kernel_size=(2, 2), padding="same"),
                         label="even_kernel")
    assert "even_kernel" in (msg := _export_error(build)) and "pads asymmetrically" in msg


def test_convolution_into_ensemble_round_trip(tmp_path):
    # the Ensemble's decoded input is a vector: the export flattens and encodes
    image = np.random.RandomState(6).uniform(-1, 1, 16)
    with nengo.Network(seed=4) as net:
        inp = nengo.Node(image, label="img")
        conv = nengo.Convolution(2, (4, 4, 1), kernel_size=(3, 3))  # (2, 2, 2) channels last
        ens = nengo.Ensemble(40, conv.size_out, label="ens")
        nengo.Connection(inp, ens, transform=conv, synapse=0.005)
        probes = {"spikes": nengo.Probe(ens.neurons, label="spikes"),
                  "value": nengo.Probe(ens, synapse=0.01, label="value")}
    original = _run(net, probes)
    _, _, got = _round_trip(net, probes, tmp_path)
    assert original["spikes"].sum() > 0 and np.array_equal(got["spikes"], original["spikes"])
    assert np.allclose(got["value"], original["value"], atol=1e-9, rtol=0)


def test_dense_into_tensor_shaped_object_names_connection():
    def build():
        img = nengo.Node(np.zeros(16), label="img")
        mid = nengo.Node(size_in=4, label="mid")
        nengo.Connection(img, mid, transform=nengo.Convolution(1, (4, 4, 1), kernel_size=(3, 3)))
        nengo.Connection(nengo.Node(np.zeros(4)), mid, transform=np.eye(4), label="dense_in")
    msg = _export_error(build)
    assert "dense_in" in msg and "no node reshapes" in msg


def test_biased_spiking_relu_behind_convolution_names_ensemble():
    def build():
        img = nengo.Node(np.zeros(16), label="img")
        relu = nengo.Ensemble(4, 1, neuron_type=nengo.SpikingRectifiedLinear(), label="biased_relu")
        nengo.Connection(img, relu.neurons, transform=nengo.Convolution(1, (4, 4, 1), kernel_size=(3, 3)))
    msg = _export_error(build)
    assert "biased_relu" in msg and "biased SpikingRectifiedLinear" in msg


# --- import-only nodes ---------------------------------------------------------------
def _import_run(nodes, edges, value, n_steps=1, dt=0.001, write_to=None):
    graph = nir.NIRGraph(nodes=nodes, edges=edges)  # type-checked: shapes inferred by nir
    if write_to is not None:
        nir.write(str(write_to), graph)
        graph = nir.read(str(write_to))
    imported = import_nir(graph, dt=dt)
    imported.inputs["in"].output = value
    with nengo.Simulator(imported.network, dt=dt, progress_bar=False) as sim:
        sim.run_steps(n_steps)
        return sim.trange(), sim.data[imported.outputs["out"]], imported


def _correlate(x, w, stride, pad, dilation=(1, 1), groups=1, bias=None):
    """Direct PyTorch-style conv2d on a (C, H, W) array: the reference."""
    x = np.pad(x, ((0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    c_out, cg, kh, kw = w.shape
    oh = (x.shape[1] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (x.shape[2] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    y = np.zeros((c_out, oh, ow))
    for co in range(c_out):
        g = co // (c_out // groups)
        for i in range(oh):
            for j in range(ow):
                patch = x[g * cg:(g + 1) * cg, i * stride[0]:i * stride[0] + dilation[0] * (kh - 1) + 1:dilation[0],
                          j * stride[1]:j * stride[1] + dilation[1] * (kw - 1) + 1:dilation[1]]
                y[co, i, j] = np.sum(patch * w[co]) + (0 if bias is None else bias[co])
    return y


@pytest.mark.parametrize("stride, padding, dilation, groups", [
    ((1, 1), (1, 1), (1, 1), 1),   # nengo 'same'
    ((2, 1), (0, 0), (1, 1), 2),   # nengo 'valid', grouped
    ((2, 2), (1, 2), (2, 1), 1),   # explicit padding and dilation: Sparse
], ids=["same", "valid-groups", "sparse"])
def test_imported_conv2d_matches_numpy(stride, padding, dilation, groups, tmp_path):
    rng = np.random.RandomState(4)
    x = rng.uniform(-1, 1, (2, 7, 6))
    w, bias = rng.uniform(-1, 1, (4, 2 // groups, 3, 3)), rng.uniform(-1, 1, 4)
    conv = nir.Conv2d(input_shape=(7, 6), weight=w, stride=stride, padding=padding, dilation=dilation,
                      groups=groups, bias=bias)
    want = _correlate(x, w, stride, padding, dilation, groups, bias)
    nodes = {"in": nir.Input(input_type=np.array(x.shape)), "conv": conv,
             "out": nir.Output(output_type=np.array(want.shape))}
    # nir derives a grouped Conv's input channels from weight.shape[1]: type-check only groups=1
    graph = nir.NIRGraph(nodes=nodes, edges=[("in", "conv"), ("conv", "out")], type_check=groups == 1)
    if groups == 1:
        nir.write(str(tmp_path / "conv.nir"), graph)
        graph = nir.read(str(tmp_path / "conv.nir"))
    imported = import_nir(graph)
    imported.inputs["in"].output = x.reshape(-1)
    with nengo.Simulator(imported.network, progress_bar=False) as sim:
        sim.run_steps(1)
    assert np.allclose(sim.data[imported.outputs["out"]][0], want.reshape(-1), atol=1e-12)
    uses_sparse = any(isinstance(c.transform, nengo.Sparse) for c in imported.network.all_connections)
    assert uses_sparse == (dilation != (1, 1))


@pytest.mark.parametrize("kind", [nir.SumPool2d, nir.AvgPool2d])
@pytest.mark.parametrize("padding", [0, 1])
def test_imported_pooling_matches_numpy(kind, padding, tmp_path):
    x = np.random.RandomState(5).uniform(0, 1, (3, 6, 6))
    xp = np.pad(x, ((0, 0), (padding, padding), (padding, padding)))
    n = (6 + 2 * padding - 2) // 2 + 1
    windows = xp[:, :2 * n, :2 * n].reshape(3, n, 2, n, 2)
    want = windows.sum(axis=(2, 4)) if kind is nir.SumPool2d else windows.mean(axis=(2, 4))
    pool = kind(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([padding, padding]))
    nodes = {"in": nir.Input(input_type=np.array([3, 6, 6])), "pool": pool,
             "out": nir.Output(output_type=np.array(want.shape))}
    _, got, _ = _import_run(nodes, [("in", "pool"), ("pool", "out")], x.reshape(-1), write_to=tmp_path / "p.nir")
    assert np.allclose(got[0], want.reshape(-1), atol=1e-12)


def test_imported_threshold_is_heaviside_of_input():
    thr = np.array([0.0205, 0.05, -1.0])
    nodes = {"in": nir.Input(input_type=np.array([3])), "thr": nir.Threshold(thr),
             "out": nir.Output(output_type=np.array([3]))}
    t, got, _ = _import_run(nodes, [("in", "thr"), ("thr", "out")], lambda t: [t, t, -t], n_steps=100)
    ramp = np.stack([t, t, -t], axis=1)  # the input, in the same step (no synapse)
    assert np.array_equal(got, (ramp > thr).astype(float))
    assert np.argmax(got[:, 0]) == 20  # first step with t = 0.021 > 0.0205


@pytest.mark.parametrize("dt", [0.001, 0.0005])
def test_imported_delay_shifts_by_whole_steps(dt):
    delay = np.array([0.005, 0.0, 0.0034])  # 0.0034 s rounds to a whole number of steps
    nodes = {"in": nir.Input(input_type=np.array([3])), "d": nir.Delay(delay),
             "out": nir.Output(output_type=np.array([3]))}
    n_steps = 60
    _, got, _ = _import_run(nodes, [("in", "d"), ("d", "out")], lambda t: np.sin(t * 200) * np.ones(3),
                            n_steps=n_steps, dt=dt)
    x = np.sin(np.arange(1, n_steps + 1) * dt * 200)
    for i, k in enumerate(np.round(delay / dt).astype(int)):
        want = np.concatenate([np.zeros(k), x[:n_steps - k]])
        assert np.allclose(got[:, i], want, atol=1e-12, rtol=0), (dt, i, k)


def test_conv_weight_disagreeing_with_input_shape_names_node():
    def graph(weight):
        nodes = {"in": nir.Input(input_type=np.array([1, 6, 6])),
                 "bad_conv": nir.Conv2d(input_shape=(6, 6), weight=weight, stride=1, padding=0, dilation=1,
                                        groups=1, bias=np.zeros(weight.shape[0]))}
        return nir.NIRGraph(nodes=nodes, edges=[("in", "bad_conv")], type_check=False)

    with pytest.raises(NIRError, match=r"node 'bad_conv': kernel \(7, 7\).*does not fit input_shape \(6, 6\)"):
        import_nir(graph(np.ones((4, 1, 7, 7))))
    with pytest.raises(NIRError, match=r"node 'bad_conv': weight has shape \(4, 1, 3\), expected"):
        import_nir(graph(np.ones((4, 1, 3))))

"""Convolutions on loihi-emu: shared synapse lists on population axons vs nengo's reference.

A ``nengo.Convolution`` / ``ConvolutionTranspose`` between neurons is mapped to weight
lists shared through population axons (SPEC.md section 4, "Convolutions").  The chip
must compute exactly what the same matrix as discrete synapses computes (bit for bit),
follow nengo's reference within the chip's own rate error, and state a synapse memory
smaller than the discrete equivalent.
"""

import numpy as np
import nengo
import pytest

from nhw.backends.loihi_emu import Simulator
from nhw.backends.loihi_emu.conv import conv_dense

#: tolerance vs reference: rmse of the filtered rates of the post neurons, relative to
#: their largest rate (the chip's integer firing periods alone give 3-6%)
RATE_RMSE_TOL = 0.1


def _transforms():
    rng = np.random.RandomState(3)
    return {
        "2d-last-stride2-same": nengo.Convolution(
            4, (6, 6, 2), kernel_size=(3, 3), strides=(2, 2), padding="same", init=rng.randn(3, 3, 2, 4) * 0.01),
        "2d-first-valid": nengo.Convolution(
            3, (2, 6, 5), kernel_size=(3, 3), channels_last=False, init=rng.randn(3, 3, 2, 3) * 0.01),
        "1d-groups2-last": nengo.Convolution(
            4, (7, 2), kernel_size=(3,), strides=(1,), padding="same", groups=2, init=rng.randn(3, 1, 4) * 0.01),
        "1d-groups2-first": nengo.Convolution(
            4, (2, 7), kernel_size=(3,), strides=(1,), groups=2, channels_last=False,
            init=rng.randn(3, 1, 4) * 0.01),
        "transpose-2d-last": nengo.transforms.ConvolutionTranspose(
            3, (5, 5, 2), kernel_size=(3, 3), init=rng.randn(3, 3, 2, 3) * 0.01),
        "transpose-2d-first-stride2": nengo.transforms.ConvolutionTranspose(
            2, (2, 4, 4), kernel_size=(3, 3), strides=(2, 2), padding="same", channels_last=False,
            init=rng.randn(3, 3, 2, 2) * 0.01),
    }


TRANSFORMS = _transforms()


def _net(transform, x, dense=False):
    """Node -> a.neurons (spiking ReLU) -> transform -> b.neurons (LIF), b's filtered spikes probed."""
    with nengo.Network(seed=0) as net:
        inp = nengo.Node(x)
        a = nengo.Ensemble(len(x), 1, neuron_type=nengo.SpikingRectifiedLinear(),
                           gain=nengo.dists.Choice([1.0]), bias=nengo.dists.Choice([0.0]))
        nengo.Connection(inp, a.neurons, transform=100.0, synapse=None)
        b = nengo.Ensemble(transform.size_out, 1, neuron_type=nengo.LIF(),
                           gain=nengo.dists.Choice([2.0]), bias=nengo.dists.Choice([1.0]))
        w = conv_dense(transform, transform.init) if dense else transform
        conn = nengo.Connection(a.neurons, b.neurons, transform=w, synapse=0.005)
        p = nengo.Probe(b.neurons, synapse=0.05)
    return net, conn, p


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_conv_between_neurons(name):
    tr = TRANSFORMS[name]
    x = np.ravel(np.random.RandomState(1).rand(*tr.input_shape.shape))
    net, conn, p = _net(tr, x)
    with Simulator(net) as sim:
        sim.run(0.3)
        report = sim.hardware_report()
    shared = [g for g in sim.mapped.chip.groups if getattr(g, "shared", False)]
    assert [g.owner for g in shared] == [conn]
    # the same matrix as discrete synapses: bit for bit the same spikes
    net2, _, p2 = _net(tr, x, dense=True)
    with Simulator(net2) as sim2:
        sim2.run(0.3)
    assert not any(getattr(g, "shared", False) for g in sim2.mapped.chip.groups)
    np.testing.assert_array_equal(sim.data[p], sim2.data[p2])
    # and nengo's reference within the chip's rate error
    with nengo.Simulator(net, progress_bar=False) as ref:
        ref.run(0.3)
    r, e = ref.data[p][-100:].mean(axis=0), sim.data[p][-100:].mean(axis=0)
    assert r.max() > 50  # the post neurons are driven
    assert np.sqrt(np.mean((r - e) ** 2)) <= RATE_RMSE_TOL * r.max()
    g = next(g for g in report.synapse_groups if g["format"] == "shared")
    assert 0 < g["synapse_memory_bytes"] < g["dense_equivalent_bytes"]


def test_conv_from_node_and_to_node():
    """Node -> conv -> Ensemble (the host convolves, then encodes) and Neurons -> conv -> Node
    (decoded on the host): decoded values follow reference."""
    rng = np.random.RandomState(0)
    tr_in = nengo.Convolution(2, (3, 3, 1), kernel_size=(3, 3), init=rng.uniform(-0.3, 0.3, (3, 3, 1, 2)))
    tr_out = nengo.Convolution(1, (2, 2, 1), kernel_size=(2, 2), init=np.full((2, 2, 1, 1), 0.25))
    with nengo.Network(seed=1) as net:
        inp = nengo.Node(lambda t: np.sin(2 * np.pi * t + np.arange(9)))
        ens = nengo.Ensemble(200, 2)
        nengo.Connection(inp, ens, transform=tr_in, synapse=0.005)
        p_ens = nengo.Probe(ens, synapse=0.03)
        a = nengo.Ensemble(4, 1, neuron_type=nengo.SpikingRectifiedLinear(),
                           gain=nengo.dists.Choice([1.0]), bias=nengo.dists.Choice([50.0]))
        out = nengo.Node(size_in=1)
        nengo.Connection(a.neurons, out, transform=tr_out, synapse=0.03)
        p_out = nengo.Probe(out)
    with nengo.Simulator(net, progress_bar=False) as ref:
        ref.run(1.0)
    with Simulator(net) as sim:
        sim.run(1.0)
    ideal = ref.data[p_ens]
    assert np.sqrt(np.mean((sim.data[p_ens] - ideal) ** 2)) < 0.1
    # four neurons at 50 Hz, each 0.25 of the output: about 50 (spike amplitude 1/dt)
    assert np.allclose(sim.data[p_out][-300:].mean(), ref.data[p_out][-300:].mean(), rtol=0.05)


def test_conv_report_states_shared_memory():
    """The resource report states each group's synapse memory; a convolution's shared lists
    cost less than the same synapses stored per source, and the cores count the shared cost."""
    rng = np.random.RandomState(0)
    tr = nengo.Convolution(8, (12, 12, 4), kernel_size=(3, 3), init=rng.randn(3, 3, 4, 8) * 0.01)
    x = np.ravel(rng.rand(*tr.input_shape.shape))
    net, conn, _ = _net(tr, x)
    with Simulator(net) as sim:
        sim.run(0.01)
        report = sim.hardware_report()
    # the convolution (the host input into a's 576 neurons, one synapse per axon, is held
    # as population axons too, its lists shared by the pixels of equal weight)
    g = max((g for g in report.synapse_groups if g["format"] == "shared"), key=lambda g: g["synapses"])
    # 10 x 10 x 8 outputs, 3 x 3 x 4 inputs each: 28800 synapses; 9 x 4 x 8 kernel entries
    assert g["synapses"] == 10 * 10 * 8 * 3 * 3 * 4
    assert g["stored"] < g["synapses"] / 4
    assert g["synapse_memory_bytes"] < g["dense_equivalent_bytes"] / 4
    # the cores' synapse memory is the shared cost (plus the host input's lists)
    host = [h for h in report.synapse_groups if h is not g]
    assert len(host) == 1 and host[0]["synapses"] == 2 * 576 and host[0]["stored"] <= 2 * 576
    total = sum(c.synapse_memory_bytes for c in report.cores)
    assert total == pytest.approx(g["synapse_memory_bytes"] + sum(h["synapse_memory_bytes"] for h in host))
    assert "shared synapses" in report.to_table()
    assert report.as_dict()["synapse_groups"][0]["label"]

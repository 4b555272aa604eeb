"""The OpenCL adapter: device choice without prompts, clear errors for nengo-ocl's
gaps on nengo 4.1, and exact host execution of noise processes."""

import nengo
import numpy as np
import pytest

import backends

pytestmark = pytest.mark.skipif("opencl" not in backends.available(), reason="no OpenCL device")


def _net(build):
    with nengo.Network(seed=0) as net:
        build()
    return net


def _sim(net, **kw):
    return backends.get("opencl")(net, progress_bar=False, **kw)


@pytest.mark.parametrize(
    "neuron_type", [nengo.RegularSpiking(nengo.LIFRate()), nengo.PoissonSpiking(nengo.LIFRate()), nengo.Tanh()]
)
def test_unsupported_neuron_names_ensemble(neuron_type):
    net = _net(lambda: nengo.Ensemble(10, 1, neuron_type=neuron_type, label="picky"))
    name = type(neuron_type).__name__
    with pytest.raises(backends.UnsupportedFeatureError, match=f"Ensemble 'picky'.*{name} is not implemented"):
        _sim(net)


def test_conv_groups_rejected():
    def build():
        a = nengo.Node(np.ones(4 * 4 * 4), label="img")
        b = nengo.Node(size_in=4 * 4 * 4, label="out")
        conv = nengo.Convolution(4, (4, 4, 4), kernel_size=(3, 3), padding="same", groups=2)
        nengo.Connection(a, b, transform=conv)

    with pytest.raises(backends.UnsupportedFeatureError, match="groups=2"):
        _sim(_net(build))


def test_conv_transpose_rejected():
    def build():
        a = nengo.Node(np.ones(3 * 3 * 2), label="img")
        conv = nengo.ConvolutionTranspose(2, (3, 3, 2), kernel_size=(3, 3))
        b = nengo.Node(size_in=conv.output_shape.size, label="out")
        nengo.Connection(a, b, transform=conv)

    with pytest.raises(backends.UnsupportedFeatureError, match="ConvolutionTranspose"):
        _sim(_net(build))


def test_plain_conv_matches_reference():
    def build():
        a = nengo.Node(np.linspace(-1, 1, 5 * 5 * 2), label="img")
        b = nengo.Node(size_in=5 * 5 * 3, label="out")
        nengo.Connection(a, b, transform=nengo.Convolution(3, (5, 5, 2), kernel_size=(3, 3), padding="same"))
        build.p = nengo.Probe(b)

    net = _net(build)
    with _sim(net) as sim, backends.get("reference")(net, progress_bar=False) as ref:
        sim.run_steps(3)
        ref.run_steps(3)
        assert np.allclose(sim.data[build.p], ref.data[build.p], atol=1e-5)


@pytest.mark.parametrize(
    "process",
    [nengo.processes.WhiteNoise(), nengo.processes.FilteredNoise(), nengo.processes.BrownNoise(), nengo.processes.WhiteSignal(1, 5)],
    ids=lambda p: type(p).__name__,
)
def test_noise_processes_match_reference(process):
    def build():
        node = nengo.Node(process, size_out=2, label="noise")
        build.p = nengo.Probe(node)

    net = _net(build)
    with _sim(net, seed=5) as sim, backends.get("reference")(net, seed=5, progress_bar=False) as ref:
        sim.run_steps(50)
        ref.run_steps(50)
        assert np.std(ref.data[build.p]) > 0
        assert np.allclose(sim.data[build.p], ref.data[build.p], atol=1e-5)


def test_device_by_index_and_name():
    from backends.opencl_device import make_context

    assert make_context(0, 0) is make_context(0, 0)  # cached, no prompt
    import pyopencl as cl

    platform_name = cl.get_platforms()[0].name
    assert make_context(platform_name[:4].lower()) is make_context(0, 0)


def test_bad_device_choice():
    from backends.opencl_device import make_context

    with pytest.raises(backends.BackendUnavailableError, match="platform index 99 out of range; available platforms: 0:"):
        make_context(99)
    with pytest.raises(backends.BackendUnavailableError, match="no OpenCL device matches 'no-such-gpu'"):
        make_context(0, "no-such-gpu")

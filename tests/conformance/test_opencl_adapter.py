"""The OpenCL adapter: device choice without prompts, clear errors for nengo-ocl's
gaps on nengo 4.1, and exact host execution of noise processes."""

import nengo
import numpy as np
import pytest

from nhw import backends

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
    from nhw.backends.opencl_device import make_context

    assert make_context(0, 0) is make_context(0, 0)  # cached, no prompt
    import pyopencl as cl

    platform_name = cl.get_platforms()[0].name
    assert make_context(platform_name[:4].lower()) is make_context(0, 0)


def test_bad_device_choice():
    from nhw.backends.opencl_device import make_context

    with pytest.raises(backends.BackendUnavailableError, match="platform index 99 out of range; available platforms: 0:"):
        make_context(99)
    with pytest.raises(backends.BackendUnavailableError, match="no OpenCL device matches 'no-such-gpu'"):
        make_context(0, "no-such-gpu")


def test_ensemble_noise_increments_current():
    # Regression: nengo-ocl's host processes overwrote the input current instead of
    # adding to it (mode="inc"), so Ensemble.noise replaced the encoded input.
    def build():
        stim = nengo.Node(0.5, label="stim")
        ens = nengo.Ensemble(20, 1, noise=nengo.processes.WhiteNoise(nengo.dists.Gaussian(0, 0.1)), label="noisy")
        nengo.Connection(stim, ens)
        build.p = nengo.Probe(ens, synapse=0.02)

    net = _net(build)
    with _sim(net, seed=2) as sim, backends.get("reference")(net, seed=2, progress_bar=False) as ref:
        sim.run_steps(200)
        ref.run_steps(200)
        assert np.allclose(sim.data[build.p], ref.data[build.p], atol=1e-3)
        assert abs(sim.data[build.p][-50:].mean() - 0.5) < 0.1


def test_reset_with_new_seed_changes_noise_and_restores_state():
    def build():
        node = nengo.Node(nengo.processes.FilteredNoise(), size_out=1, label="noise")
        build.p = nengo.Probe(node)

    with _sim(_net(build), seed=0) as sim:
        sim.run_steps(20)
        first = np.array(sim.data[build.p])
        sim.reset()
        sim.run_steps(20)
        assert np.allclose(sim.data[build.p], first)  # filter state and RNG restored
        sim.reset(seed=1)
        sim.run_steps(20)
        assert not np.allclose(sim.data[build.p], first)


def test_seed_follows_network_seed_like_nengo():
    with nengo.Network(seed=41) as net:
        nengo.Ensemble(5, 1)
    with _sim(net) as sim:
        assert sim.seed == 42


def test_cannot_reopen():
    from nengo.exceptions import SimulatorClosed

    sim = _sim(nengo.Network())
    sim.close()
    with pytest.raises(SimulatorClosed, match="closed"):
        with sim:
            pass


def test_lif_min_voltage_rejected():
    net = _net(lambda: nengo.Ensemble(10, 1, neuron_type=nengo.LIF(min_voltage=-1), label="floor"))
    with pytest.raises(backends.UnsupportedFeatureError, match="Ensemble 'floor'.*min_voltage=-1"):
        _sim(net)


def test_rls_rejected():
    def build():
        a = nengo.Ensemble(10, 1, label="pre")
        b = nengo.Ensemble(10, 1, label="post")
        nengo.Connection(a, b, learning_rule_type=nengo.RLS())

    with pytest.raises(backends.UnsupportedFeatureError, match="RLS learning rule"):
        _sim(_net(build))

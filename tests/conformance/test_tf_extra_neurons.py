"""Extra neuron types: numpy reference equations vs the TensorFlow simulator."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

import nengo  # noqa: E402
from nengo.exceptions import ValidationError  # noqa: E402

import nhw.backends.tensorflow.builders.neuron_extras  # noqa: E402,F401  (registers the step functions)
from nhw.backends.tensorflow import Simulator  # noqa: E402
from nhw.backends.tensorflow.builders.neuron_extras import soft_lif_rate  # noqa: E402
from nhw.backends.neurons import LeakyReLU, SoftLIFRate, SpikingLeakyReLU  # noqa: E402

NEURON_TYPES = [
    SoftLIFRate(sigma=0.5, tau_rc=0.03, tau_ref=0.001, amplitude=0.5),
    SoftLIFRate(),
    LeakyReLU(negative_slope=0.2, amplitude=0.01),
    SpikingLeakyReLU(negative_slope=0.2, amplitude=0.01),
]


def driven_ensemble(neuron_type, seed=0):
    with nengo.Network(seed=seed) as net:
        stim = nengo.Node(lambda t: np.sin(8 * t))
        ens = nengo.Ensemble(30, 1, neuron_type=neuron_type)
        out = nengo.Node(size_in=1)
        nengo.Connection(stim, ens)
        nengo.Connection(ens, out, synapse=None)
        net.p_neurons = nengo.Probe(ens.neurons)
        net.p_value = nengo.Probe(out, synapse=0.01)
        if "voltage" in neuron_type.state:
            net.p_voltage = nengo.Probe(ens.neurons, "voltage")
    return net


@pytest.mark.parametrize("neuron_type", NEURON_TYPES, ids=lambda n: repr(n))
def test_matches_reference(neuron_type):
    net = driven_ensemble(neuron_type)
    steps = 400
    with nengo.Simulator(net, seed=0, progress_bar=False) as ref:
        ref.run_steps(steps)
    with Simulator(net, seed=0, progress_bar=False, dtype="float64") as sim:
        sim.run_steps(steps)
    assert np.allclose(sim.data[net.p_neurons], ref.data[net.p_neurons], atol=1e-6)
    assert np.allclose(sim.data[net.p_value], ref.data[net.p_value], atol=1e-8)
    if neuron_type.spiking:
        assert np.allclose(sim.data[net.p_voltage], ref.data[net.p_voltage], atol=1e-8)
        # spikes of both signs happen (the negative slope is non-zero)
        assert (ref.data[net.p_neurons] < 0).any() and (ref.data[net.p_neurons] > 0).any()
    # the decoded value follows the input
    t = ref.trange()
    err = ref.data[net.p_value][100:, 0] - np.sin(8 * (t[100:] - 0.01))
    assert np.sqrt(np.mean(err**2)) < 0.2


def test_soft_lif_rate_approaches_lif_rate():
    J = np.linspace(-2, 5, 71)
    lif = np.zeros_like(J)
    nengo.LIFRate(tau_rc=0.02, tau_ref=0.002).step(1.0, J, lif)
    soft = np.zeros_like(J)
    SoftLIFRate(sigma=1e-4, tau_rc=0.02, tau_ref=0.002).step(1.0, J, soft)
    # convergence at the threshold itself is only logarithmic in sigma (the rate
    # at J = 1 is 1 / (tau_ref + tau_rc * log1p(1 / (sigma * log 2))), ~5 Hz here)
    assert np.allclose(soft, lif, atol=6.0)
    # away from threshold the difference is tiny: below it the soft rate decays
    # like sigma / (tau_rc * |J - 1|) (exactly, not flushed to 0 where p underflows)
    far = np.abs(J - 1) > 0.2
    assert np.allclose(soft[far], lif[far], rtol=1e-3, atol=0.03)
    below = J < 0.8
    assert np.allclose(soft[below], 1e-4 / (0.02 * (1 - J[below])), rtol=0.01)
    # and with large sigma the curve is smooth and positive below threshold
    SoftLIFRate(sigma=1.0).step(1.0, J, soft)
    assert np.all(soft > 0) and np.all(np.diff(soft) > 0)


def test_soft_lif_rate_tf_matches_numpy_and_has_finite_gradients():
    J = np.array([-1e4, -50.0, -5.0, 0.0, 0.9, 1.0, 1.0 + 1e-9, 1.1, 3.0, 100.0, 1e6])
    for dtype in ("float32", "float64"):
        Jt = tf.Variable(J.astype(dtype))
        for sigma in (1e-3, 0.02, 1.0):
            with tf.GradientTape() as tape:
                r = soft_lif_rate(Jt, sigma, 0.02, 0.002, 1.0)
            grad = tape.gradient(r, Jt).numpy()
            ref = np.zeros_like(J)
            SoftLIFRate(sigma=sigma).step(1.0, J, ref)
            assert r.dtype == Jt.dtype
            assert np.allclose(r.numpy(), ref, rtol=1e-4, atol=1e-4), (dtype, sigma)
            assert np.all(np.isfinite(grad)), (dtype, sigma, grad)
            assert np.all(grad >= 0)
    # the gradient matches a finite difference
    J = tf.constant(np.linspace(-1, 3, 9))
    with tf.GradientTape() as tape:
        tape.watch(J)
        r = soft_lif_rate(J, 0.3, 0.02, 0.002, 2.0)
    h = 1e-6
    fd = (soft_lif_rate(J + h, 0.3, 0.02, 0.002, 2.0) - soft_lif_rate(J - h, 0.3, 0.02, 0.002, 2.0)) / (2 * h)
    assert np.allclose(tape.gradient(r, J).numpy(), fd.numpy(), rtol=1e-5)


def test_spiking_leaky_relu_mean_rate_matches_rate_model():
    nt = SpikingLeakyReLU(negative_slope=0.3, amplitude=2.0)
    J = np.array([-40.0, -7.5, -1.0, 0.0, 3.0, 25.0, 61.0])
    dt, steps = 0.001, 4000
    voltage = np.zeros_like(J)
    out = np.zeros_like(J)
    total = np.zeros_like(J)
    for _ in range(steps):
        nt.step(dt, J, out, voltage)
        total += out
    rate = np.zeros_like(J)
    LeakyReLU(negative_slope=0.3, amplitude=2.0).step(dt, J, rate)
    # an integrate-and-fire count is off by at most one spike over the run
    assert np.allclose(total / steps, rate, atol=2.0 / (steps * dt) + 1e-9)
    assert np.allclose(nt.rates(J, np.ones(1), np.zeros(1))[:, 0], rate)


def test_spiking_leaky_relu_tf_mean_rate():
    with nengo.Network(seed=1) as net:
        stim = nengo.Node([-0.8, 0.6])
        ens = nengo.Ensemble(2, 1, neuron_type=SpikingLeakyReLU(negative_slope=0.3), gain=[50.0, 50.0], bias=[0.0, 0.0])
        nengo.Connection(stim, ens.neurons, synapse=None)
        p = nengo.Probe(ens.neurons)
    with Simulator(net, seed=0, progress_bar=False, dtype="float64") as sim:
        sim.run_steps(2000)
    mean = sim.data[p].mean(axis=0)
    expected = np.array([0.3 * -40.0, 30.0])
    assert np.allclose(mean, expected, atol=1.0 / (2000 * 0.001) + 1e-9)


def test_leaky_relu_gain_bias_and_rates():
    nt = LeakyReLU(negative_slope=0.1)
    gain, bias = nt.gain_bias(np.array([100.0, 200.0]), np.array([-0.5, 0.2]))
    max_rates, intercepts = nt.max_rates_intercepts(gain, bias)
    assert np.allclose(max_rates, [100, 200]) and np.allclose(intercepts, [-0.5, 0.2])
    r = nt.rates(np.array([-1.0, 1.0]), gain, bias)
    assert np.allclose(r[1], [100, 200])
    assert np.all(r[0] < 0)  # negative side leaks


@pytest.mark.parametrize(
    "make, attr",
    [
        (lambda: SoftLIFRate(sigma=0), "sigma"),
        (lambda: SoftLIFRate(tau_rc=-1), "tau_rc"),
        (lambda: LeakyReLU(negative_slope=-0.1), "negative_slope"),
        (lambda: SpikingLeakyReLU(amplitude=0), "amplitude"),
    ],
)
def test_bad_parameters(make, attr):
    with pytest.raises(ValidationError) as info:
        make()
    assert info.value.attr == attr


def test_float32_simulator_close_to_reference():
    net = driven_ensemble(SoftLIFRate(sigma=0.2))
    with nengo.Simulator(net, seed=0, progress_bar=False) as ref:
        ref.run_steps(200)
    with Simulator(net, seed=0, progress_bar=False, dtype="float32") as sim:
        sim.run_steps(200)
    assert np.allclose(sim.data[net.p_neurons], ref.data[net.p_neurons], rtol=1e-4, atol=1e-3)

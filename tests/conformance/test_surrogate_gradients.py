"""Surrogate gradients of spiking-aware training (issue 29 item 2)."""

from __future__ import annotations

import math

import nengo
import numpy as np
import pytest
import tensorflow as tf
from nengo.exceptions import ValidationError

from nhw.backends.tensorflow import configure_settings
from nhw.backends.tensorflow.builders import surrogates
from nhw.backends.tensorflow.settings import get_setting

from tf_training_helpers import make_sim


@pytest.mark.parametrize("name,slope", [("fast_sigmoid", 25.0), ("fast_sigmoid", 5.0), ("arctan", 2.0),
                                        ("arctan", 7.5)])
def test_surrogate_derivative_matches_formula(name, slope):
    x = np.linspace(-2, 2, 101)
    if name == "fast_sigmoid":
        want = 1.0 / (1.0 + slope * np.abs(x)) ** 2
    else:
        want = (slope / 2) / (1 + (math.pi / 2 * slope * x) ** 2)
    assert np.allclose(surrogates.derivative(name, slope, x), want)
    # the gradient TF takes through the spike (forward: the exact step function)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        s = surrogates.spike_with_surrogate(xt > 0, xt, surrogates.antiderivative(name, slope))
    g = tape.gradient(s, xt).numpy()
    assert np.array_equal(s.numpy(), (x > 0).astype(float))
    assert np.allclose(g, want, rtol=1e-6, atol=1e-12)


def test_defaults_and_unknown_names():
    assert surrogates.check_surrogate("fast_sigmoid") == ("fast_sigmoid", 10.0)
    assert surrogates.check_surrogate("fast_sigmoid", 25) == ("fast_sigmoid", 25.0)  # snnTorch's slope
    assert surrogates.check_surrogate("arctan") == ("arctan", 2.0)
    assert surrogates.check_surrogate("rate") == ("rate", None)
    with pytest.raises(ValidationError, match="'fast_sigmoid', 'arctan', 'rate'.*'sigmoidish'"):
        surrogates.check_surrogate("sigmoidish")
    with pytest.raises(ValidationError, match="takes no slope"):
        surrogates.check_surrogate("rate", 3.0)
    with nengo.Network() as net:
        with pytest.raises(ValidationError, match="surrogate must be .*'fast_sigmoid'.*got 'superspike'"):
            configure_settings(surrogate="superspike")
        with pytest.raises(ValidationError, match="surrogate_slope must be"):
            configure_settings(surrogate_slope=-1)
        configure_settings(surrogate="arctan", surrogate_slope=4)
    assert get_setting(net, "surrogate") == "arctan" and get_setting(net, "surrogate_slope") == 4


def _silent_net(neuron_type, surrogate):
    """Input -> 4 neurons all driven below threshold (silent) -> probe of their spikes."""
    with nengo.Network(seed=0) as net:
        configure_settings(training_mode="spiking_aware", surrogate=surrogate)
        net.inp = nengo.Node(np.zeros(1), label="inp")
        # J = x * gain + bias = 0.5 * x + 0.3 with x in [0, 1]: J < 1, never fires
        # (and for the rectifier, -0.5 * x - 0.1 < 0: never fires either)
        sign = -1 if isinstance(neuron_type, nengo.SpikingRectifiedLinear) else 1
        net.ens = nengo.Ensemble(4, 1, neuron_type=neuron_type, gain=0.5 * np.ones(4),
                                 bias=sign * np.array([0.3, 0.1, 0.2, 0.4]), encoders=sign * np.ones((4, 1)))
        nengo.Connection(net.inp, net.ens, synapse=None)
        net.p = nengo.Probe(net.ens.neurons, synapse=None)
    return net


def _bias_grad(net):
    from tf_training_helpers import var_of

    with make_sim(net, batch=2) as sim:
        x = tf.constant(np.full((2, 20, 1), 0.5, dtype="float32"))
        with tf.GradientTape() as tape:
            y = sim.keras_model({"inp": x}, training=True)["probe"]
            loss = tf.reduce_sum(y)
        spikes = y.numpy()
        view = var_of(sim, net.ens, "bias")
        g = tape.gradient(loss, view.group.variable)
    g = tf.convert_to_tensor(g).numpy()[view.offset:view.offset + view.size]
    return spikes, g


@pytest.mark.parametrize("neuron_type", [nengo.LIF(), nengo.SpikingRectifiedLinear(), nengo.AdaptiveLIF()])
@pytest.mark.parametrize("surrogate", ["fast_sigmoid", "arctan"])
def test_silent_neurons_receive_gradient(neuron_type, surrogate):
    spikes, g = _bias_grad(_silent_net(neuron_type, surrogate))
    assert np.all(spikes == 0)
    assert np.all(np.isfinite(g)) and np.all(g > 0), g


def test_rate_surrogate_keeps_zero_gradient_for_silent_lif():
    # the old behaviour stays available (and is what the surrogates fix)
    spikes, g = _bias_grad(_silent_net(nengo.LIF(), "rate"))
    assert np.all(spikes == 0) and np.all(g == 0)


def test_lif_surrogate_gradient_is_the_formula_one_step():
    """One step from rest: d out / d bias = amplitude/dt * sigma'(v - 1) * dv/dJ."""
    from tf_training_helpers import var_of

    bias = np.array([0.5, 2.0, 10.0, 30.0])
    lif = nengo.LIF(initial_state={"voltage": nengo.dists.Choice([0.0])})
    with nengo.Network(seed=0) as net:
        configure_settings(training_mode="spiking_aware", surrogate="fast_sigmoid", surrogate_slope=10)
        net.inp = nengo.Node(np.zeros(1), label="inp")
        net.ens = nengo.Ensemble(4, 1, neuron_type=lif, gain=np.ones(4), bias=bias, encoders=np.ones((4, 1)))
        nengo.Connection(net.inp, net.ens, synapse=None)
        net.p = nengo.Probe(net.ens.neurons, synapse=None)
    with make_sim(net, batch=1) as sim:
        x = tf.zeros((1, 1, 1))
        with tf.GradientTape() as tape:
            out = sim.keras_model({"inp": x}, training=True)["probe"]
            loss = tf.reduce_sum(out)
        view = var_of(sim, net.ens, "bias")
        g = tf.convert_to_tensor(tape.gradient(loss, view.group.variable)).numpy()
        g = g[view.offset:view.offset + view.size]
    dvdj = -np.expm1(-0.001 / 0.02)
    v = bias * dvdj
    assert np.array_equal(out.numpy().ravel() > 0, v > 1)  # forward: exact spikes
    want = 1000.0 * dvdj / (1 + 10 * np.abs(v - 1)) ** 2
    assert np.allclose(g, want, rtol=1e-4), (g, want)

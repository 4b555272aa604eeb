"""Chip neuron models in training (``configure_settings(target="loihi-emu")``, issue 29 item 1)."""

from __future__ import annotations

import nengo
import numpy as np
import pytest
import tensorflow as tf
from nengo.exceptions import ValidationError

from nhw.backends.tensorflow import configure_settings
from nhw.backends.tensorflow.builders import chip_neurons
from nhw.hw_emulator import rates as chip_rates
from nhw.hw_emulator.discretize import decay_v_register, refractory_delay

from tf_training_helpers import make_sim

DT = 0.001


@pytest.mark.parametrize("neuron_type", [nengo.LIF(amplitude=0.5), nengo.SpikingRectifiedLinear(amplitude=0.5)])
def test_rate_form_is_the_chip_rate_curve(neuron_type):
    J = np.linspace(-1, 40, 400)
    step = chip_neurons.rate_step(neuron_type, DT)
    r, _ = step(neuron_type, DT, tf.constant(J), {}, None)
    if isinstance(neuron_type, nengo.LIF):
        want = chip_rates.lif_rates(J, decay_v_register(0.02, DT), refractory_delay(0.002, DT), DT, 0.5)
    else:
        want = chip_rates.relu_rates(J, DT, 0.5)
    assert np.allclose(r.numpy(), want, rtol=1e-9)
    # the backward pass is smooth: non-zero, finite where the neuron fires
    Jt = tf.constant(J)
    with tf.GradientTape() as tape:
        tape.watch(Jt)
        r, _ = step(neuron_type, DT, Jt, {}, None)
    g = tape.gradient(r, Jt).numpy()
    on = J > (1.0 if isinstance(neuron_type, nengo.LIF) else 0.0)
    assert np.all(np.isfinite(g)) and np.all(g[on] > 0) and np.all(g[~on] == 0)


@pytest.mark.parametrize("neuron_type", [nengo.LIF(), nengo.SpikingRectifiedLinear()])
def test_spiking_form_fires_with_the_chip_period(neuron_type):
    J = np.array([1.5, 3.0, 9.0, 25.0]) if isinstance(neuron_type, nengo.LIF) else np.array([23.0, 90.0, 333.0])
    step = chip_neurons.spiking_step(neuron_type, DT, None)
    s = {"voltage": tf.zeros(len(J), tf.float64)}
    if isinstance(neuron_type, nengo.LIF):
        s["refractory_time"] = tf.zeros(len(J), tf.float64)
    spikes = []
    for _ in range(600):
        out, s = step(neuron_type, DT, tf.constant(J), s, None)
        spikes.append(out.numpy() > 0)
    spikes = np.array(spikes)
    times = [np.flatnonzero(spikes[:, i]) for i in range(len(J))]
    periods = [np.unique(np.diff(t)) for t in times]
    if isinstance(neuron_type, nengo.LIF):
        want = chip_rates.lif_rates(J, decay_v_register(0.02, DT), refractory_delay(0.002, DT), DT)
    else:
        want = chip_rates.relu_rates(J, DT)
    for p, w in zip(periods, want):
        assert len(p) == 1 and np.isclose(1.0 / (p[0] * DT), w), (p, w)


def test_target_setting_validated_and_training_uses_chip_forms():
    with nengo.Network():
        with pytest.raises(ValidationError, match="target must be None or 'loihi-emu'; got 'loihi2'"):
            configure_settings(target="loihi2")
    for mode in ("rate", "spiking_aware"):
        with nengo.Network(seed=0) as net:
            configure_settings(target="loihi-emu", training_mode=mode)
            inp = nengo.Node(np.zeros(1), label="inp")
            ens = nengo.Ensemble(5, 1, neuron_type=nengo.LIF(), gain=np.ones(5),
                                 bias=np.array([0.5, 1.5, 3.0, 9.0, 25.0]), encoders=np.ones((5, 1)))
            nengo.Connection(inp, ens, synapse=None)
            p = nengo.Probe(ens.neurons, synapse=None)
        with make_sim(net, batch=1) as sim:
            x = tf.zeros((1, 100 if mode == "spiking_aware" else 1, 1))
            with tf.GradientTape() as tape:
                y = sim.keras_model({"inp": x}, training=True)["probe"]
                loss = tf.reduce_sum(y)
            grads = tape.gradient(loss, sim.keras_model.trainable_weights)
            infer = sim.predict({inp: np.zeros((1, 100, 1))})[p]
        rate = y.numpy().reshape(-1, 5).mean(0)
        want = chip_rates.lif_rates(np.array([0.5, 1.5, 3.0, 9.0, 25.0]), decay_v_register(0.02, DT),
                                    refractory_delay(0.002, DT), DT)
        if mode == "rate":
            assert np.allclose(rate, want)
        else:  # 100 steps from nengo's random initial voltages: about the chip's rate
            assert np.all(np.abs(rate - want) <= 10.0 + 0.05 * want), (rate, want)
        assert all(g is not None and np.all(np.isfinite(tf.convert_to_tensor(g).numpy())) for g in grads)
        # inference keeps nengo's LIF: faster than the chip at high input
        assert infer[0, :, -1].mean() > want[-1]

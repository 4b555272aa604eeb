"""configure_settings(learning_phase=...) on nhw.dl, as NengoDL 3.3+ documents it:
True runs every call in training mode (spiking neurons as their rate models), False
every call in inference mode, None (default) trains fit in training mode only."""

from __future__ import annotations

import nengo
import numpy as np
import pytest

pytest.importorskip("tensorflow")

import nhw.dl as nengo_dl


def lif_net(neuron_type, phase):
    with nengo.Network(seed=0) as net:
        if phase is not None:
            nengo_dl.configure_settings(learning_phase=phase)
        net.inp = nengo.Node([0.5], label="inp")
        ens = nengo.Ensemble(20, 1, neuron_type=neuron_type, label="ens")
        nengo.Connection(net.inp, ens, synapse=None)
        net.p = nengo.Probe(ens.neurons, label="p")
    return net


def run(net, steps=20):
    with nengo_dl.Simulator(net, progress_bar=False) as sim:
        sim.run_steps(steps)
        ran = sim.data[net.p].copy()
        predicted = sim.predict(n_steps=steps)[net.p][0]
        x = {"inp": np.full((1, steps, 1), 0.5, np.float32)}
        trained = np.asarray(sim.keras_model(x, training=True)["p"])[0]
    return ran, predicted, trained


def test_learning_phase_true_simulates_spiking_neurons_as_their_rate_model():
    ran, predicted, trained = run(lif_net(nengo.LIF(), True))
    rate, _, _ = run(lif_net(nengo.LIFRate(), None))
    assert np.allclose(ran, rate, atol=1e-4) and np.allclose(predicted, rate, atol=1e-4)
    assert np.allclose(trained, rate, atol=1e-4)
    assert 0 < rate[-1].max() < 1000        # rates, not 1/dt spikes


def test_default_phase_spikes_outside_training_and_false_spikes_in_training_too():
    ran, predicted, trained = run(lif_net(nengo.LIF(), None))
    assert set(np.unique(ran)) <= {0.0, 1000.0} and ran.max() == 1000.0
    assert not set(np.unique(trained)) <= {0.0, 1000.0}     # fit's mode: rates
    _, _, trained_false = run(lif_net(nengo.LIF(), False))
    assert set(np.unique(trained_false)) <= {0.0, 1000.0}   # inference mode even for training

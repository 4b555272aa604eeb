"""Trainability resolution as NengoDL 3.6 documents it (docs/config.rst, "trainable"); no TensorFlow.

``config[nengo.Ensemble].trainable`` (or an ensemble's own value) controls the encoders
*and* the biases; ``config[ens.neurons]`` / ``config[nengo.ensemble.Neurons]`` control
the biases separately; lower sub-networks and instances take priority.
"""

from __future__ import annotations

import nengo
from nengo.ensemble import Neurons
from nhw.backends.tensorflow.settings import configure_settings, trainable_map


def _net(trainable=None):
    with nengo.Network() as net:
        configure_settings(trainable=trainable)
        a = nengo.Ensemble(5, 1)
        b = nengo.Ensemble(5, 1)
        c = nengo.Connection(a, b)
    return net, a, b, c


def test_instance_false_freezes_encoders_and_biases():
    net, a, b, _ = _net()
    net.config[a].trainable = False
    flags = trainable_map(net)
    assert flags[a] is False and flags[a.neurons] is False
    assert flags[b] is True and flags[b.neurons] is True


def test_class_false_freezes_encoders_and_biases():
    net, a, b, c = _net()
    net.config[nengo.Ensemble].trainable = False
    flags = trainable_map(net)
    assert flags[a] is False and flags[a.neurons] is False
    assert flags[b] is False and flags[b.neurons] is False
    assert flags[c] is True


def test_neurons_config_controls_biases_separately():
    net, a, b, _ = _net()
    net.config[a].trainable = False
    net.config[a.neurons].trainable = True  # biases only
    net.config[Neurons].trainable = False  # every other ensemble's biases
    flags = trainable_map(net)
    assert flags[a] is False and flags[a.neurons] is True
    assert flags[b] is True and flags[b.neurons] is False


def test_configure_settings_value_is_a_neurons_value_too():
    # NengoDL's configure_settings(trainable=True) sets the Neurons default as well, so an
    # ensemble set to False keeps trainable biases (tensor_graph.mark_signals)
    net, a, _, _ = _net(trainable=True)
    net.config[a].trainable = False
    flags = trainable_map(net)
    assert flags[a] is False and flags[a.neurons] is True


def test_connections_instance_class_and_subnetwork_priority():
    with nengo.Network() as net:
        configure_settings(trainable=None)
        a = nengo.Ensemble(5, 1)
        c1 = nengo.Connection(a, a)
        with nengo.Network() as sub:
            configure_settings(trainable=False)
            s = nengo.Ensemble(5, 1)
            c2 = nengo.Connection(s, a)
            c3 = nengo.Connection(a, s)
        net.config[nengo.Connection].trainable = False
        net.config[c1].trainable = True  # an instance beats the class
        sub.config[c3].trainable = True
    flags = trainable_map(net)
    assert flags[c1] is True
    assert flags[c2] is False and flags[c3] is True  # the sub-network's settings win
    assert flags[s] is False and flags[s.neurons] is False


def test_parent_config_can_configure_an_object_of_a_subnetwork():
    with nengo.Network() as net:
        configure_settings(trainable=None)
        with nengo.Network():
            inner = nengo.Ensemble(5, 1)
        net.config[inner].trainable = False
    flags = trainable_map(net)
    assert flags[inner] is False and flags[inner.neurons] is False

"""NengoDL 3.6's handling of input lists of the wrong length, and its warning for one
step through synaptic filters, on ``nhw.dl``.

Written from NengoDL's documented behaviour (``Simulator.predict`` and friends), not
from its tests: a list with more or fewer arrays than input Nodes warns and is paired
with the Nodes in order; ``n_steps=1`` on a network with a synapse warns unless the
call is stateful.
"""

from __future__ import annotations

import warnings

import nengo
import numpy as np
import pytest

import nhw.dl as nengo_dl


def two_inputs(synapse=None):
    with nengo.Network(seed=0) as net:
        a = nengo.Node(np.zeros(1), label="a")
        b = nengo.Node([0.5], label="b")
        out = nengo.Node(size_in=2)
        nengo.Connection(a, out[0], synapse=synapse)
        nengo.Connection(b, out[1], synapse=synapse)
        p = nengo.Probe(out, synapse=synapse)
    return net, p


def test_a_longer_list_warns_and_drops_the_extra_arrays():
    net, p = two_inputs()
    x = [np.full((1, 3, 1), 1.0), np.full((1, 3, 1), 2.0), np.full((1, 3, 1), 3.0)]
    with nengo_dl.Simulator(net, progress_bar=False) as sim, \
            pytest.warns(UserWarning, match=r"list of 3 input array\(s\) for 2 input Node"):
        out = sim.predict(x, verbose=0)
    assert np.allclose(out[p][0, -1], [1.0, 2.0])


def test_a_shorter_list_warns_and_the_other_nodes_compute_their_output():
    net, p = two_inputs()
    with nengo_dl.Simulator(net, progress_bar=False) as sim, \
            pytest.warns(UserWarning, match=r"list of 1 input array\(s\) for 2 input Node"):
        out = sim.predict([np.full((1, 3, 1), 1.0)], verbose=0)
    assert np.allclose(out[p][0, -1], [1.0, 0.5])


def test_a_list_of_the_right_length_does_not_warn():
    net, _ = two_inputs()
    with nengo_dl.Simulator(net, progress_bar=False) as sim, warnings.catch_warnings():
        warnings.simplefilter("error")
        sim.predict([np.ones((1, 3, 1)), np.ones((1, 3, 1))], verbose=0)


def test_one_step_through_a_synapse_warns_unless_stateful():
    net, _ = two_inputs(synapse=0.01)
    with nengo_dl.Simulator(net, progress_bar=False) as sim:
        with pytest.warns(UserWarning, match="n_steps=1.*synapse=Lowpass"):
            sim.predict(n_steps=1, verbose=0)
        with pytest.warns(UserWarning, match="n_steps=1"):
            sim.predict_on_batch(n_steps=1, verbose=0)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            sim.predict(n_steps=1, stateful=True, verbose=0)
            sim.predict(n_steps=2, verbose=0)


def test_one_step_without_synapses_does_not_warn():
    net, _ = two_inputs(synapse=None)
    with nengo_dl.Simulator(net, progress_bar=False) as sim, warnings.catch_warnings():
        warnings.simplefilter("error")
        sim.predict(n_steps=1, verbose=0)

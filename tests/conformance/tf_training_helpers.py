"""Small networks and accessors shared by the TF training tests (imported by name:
pytest puts this folder on ``sys.path``)."""

from __future__ import annotations

import numpy as np
import nengo

from nhw.backends.tensorflow import Simulator


# --- networks -------------------------------------------------------------------
def regression_net(neuron_type=None, n_neurons=20, seed=0, probe_label=None, second_probe=False,
                   function=lambda x: 0):
    """Node -> ensemble -> Node, no synapses: a one-step static regression."""
    with nengo.Network(seed=seed) as net:
        net.inp = nengo.Node(np.zeros(1), label="inp")
        net.ens = nengo.Ensemble(n_neurons, 1, neuron_type=neuron_type or nengo.LIFRate(), label="ens")
        net.out = nengo.Node(size_in=1, label="out")
        nengo.Connection(net.inp, net.ens, synapse=None)
        net.conn = nengo.Connection(net.ens, net.out, synapse=None, function=function)
        net.p = nengo.Probe(net.out, synapse=None, label=probe_label)
        if second_probe:
            net.p2 = nengo.Probe(net.ens, synapse=None, label="p2")
    return net


def square_data(n=16, steps=1):
    x = np.linspace(-1, 1, n).reshape(n, 1, 1).repeat(steps, axis=1)
    return x, x ** 2


def make_sim(net, batch=8, **kwargs):
    kwargs.setdefault("progress_bar", False)
    kwargs.setdefault("seed", 0)
    return Simulator(net, minibatch_size=batch, **kwargs)


def compile_fast(sim, *args, **kwargs):
    """``sim.compile`` without XLA: compiling the step takes seconds on a small CPU
    (the tests marked ``xla`` keep the default)."""
    kwargs.setdefault("jit_compile", False)
    sim.compile(*args, **kwargs)


def weights(sim):
    return {v.path: v.numpy().copy() for v in sim.keras_model.weights}


def changed(before, after):
    return {k for k in before if not np.allclose(before[k], after[k])}


def var_of(sim, obj, key):
    vs = [p.variable for p in sim._params if p.obj is obj and p.key == key]
    assert len(vs) == 1, f"{obj}/{key} is not trained: {[p.name for p in sim._params]}"
    return vs[0]


def has_param(sim, obj, key=None):
    return any(p.obj is obj and (key is None or p.key == key) for p in sim._params)


def lif_chain(seed=0, n=20):
    with nengo.Network(seed=seed) as net:
        net.inp = nengo.Node(np.zeros(1), label="inp")
        net.a = nengo.Ensemble(n, 1, label="a")
        net.b = nengo.Ensemble(n, 1, label="b")
        net.out = nengo.Node(size_in=1, label="out")
        nengo.Connection(net.inp, net.a, synapse=None)
        nengo.Connection(net.a, net.b, synapse=0.005)
        nengo.Connection(net.b, net.out, synapse=0.01, function=lambda x: 0)
        net.p = nengo.Probe(net.out, label="out")
    return net

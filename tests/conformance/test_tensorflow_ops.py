"""Operator families of the TensorFlow simulator against nengo's reference (float64).

Several operators share one network so each test builds few simulators.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import nengo  # noqa: E402

from nhw.errors import UnsupportedFeatureError  # noqa: E402
from nhw.backends.tensorflow import Simulator  # noqa: E402

DETERMINISTIC_NEURONS = [
    nengo.RectifiedLinear(),
    nengo.SpikingRectifiedLinear(),
    nengo.Sigmoid(),
    nengo.Tanh(),
    nengo.LIFRate(),
    nengo.LIF(),
    nengo.LIF(min_voltage=-1),
    nengo.AdaptiveLIFRate(),
    nengo.AdaptiveLIF(),
    nengo.Izhikevich(),
    nengo.RegularSpiking(nengo.LIFRate()),
]


def compare(net, probes, steps, atol, minibatch_size=None):
    with nengo.Simulator(net, seed=0, progress_bar=False) as ref:
        ref.run_steps(steps)
    with Simulator(net, seed=0, progress_bar=False, dtype="float64", minibatch_size=minibatch_size) as sim:
        sim.run_steps(steps)
    for p in probes:
        got = sim.data[p] if minibatch_size is None else sim.data[p][-1]
        assert got.shape == ref.data[p].shape, p
        assert np.allclose(got, ref.data[p], atol=atol), (p, np.abs(got - ref.data[p]).max())
    return ref, sim


def test_neuron_types_match_reference():
    probes = []
    with nengo.Network(seed=3) as net:
        stim = nengo.Node(lambda t: [np.sin(8 * t), np.cos(3 * t)])
        for nt in DETERMINISTIC_NEURONS:
            ens = nengo.Ensemble(12, 2, neuron_type=nt)
            nengo.Connection(stim, ens)
            probes.append(nengo.Probe(ens.neurons))
            probes.append(nengo.Probe(ens, synapse=0.01))
        direct = nengo.Ensemble(1, 2, neuron_type=nengo.Direct())
        nengo.Connection(stim, direct, function=lambda x: x**2)
        probes.append(nengo.Probe(direct))
    compare(net, probes, 200, atol=1e-7, minibatch_size=2)


@pytest.mark.parametrize("nt", [nengo.StochasticSpiking(nengo.LIFRate()), nengo.PoissonSpiking(nengo.LIFRate())])
def test_stochastic_neurons_rates(nt):
    with nengo.Network(seed=1) as net:
        ens = nengo.Ensemble(30, 1, neuron_type=nt)
        stim = nengo.Node(0.5)
        nengo.Connection(stim, ens)
        p = nengo.Probe(ens.neurons)
    with Simulator(net, progress_bar=False, seed=2) as sim:
        sim.run(1.0)
        rates = sim.data[p].mean(axis=0)
    from nengo.builder.ensemble import get_activities

    expected = get_activities(sim.data[ens], ens, np.array([[0.5]]))[0]
    # one second of spikes: Poisson counts have standard deviation sqrt(rate)
    assert np.all(np.abs(rates - expected) <= 5 * np.sqrt(expected) + 2)
    with Simulator(net, progress_bar=False, seed=2) as sim2:
        sim2.run(1.0)
    assert np.array_equal(sim.data[p], sim2.data[p])  # reproducible from the seed


def test_processes_and_synapses_match_reference():
    dt = 0.001
    with nengo.Network(seed=4) as net:
        procs = [
            nengo.processes.WhiteNoise(),
            nengo.processes.FilteredNoise(synapse=nengo.Alpha(0.01)),
            nengo.processes.BrownNoise(),
            nengo.processes.WhiteSignal(0.5, high=10),
            nengo.processes.PresentInput([[0.1, 0.2], [0.3, 0.4], [-1, 1]], 0.01),
            nengo.processes.Piecewise({0: [0, 1], 0.05: [1, 0]}),
        ]
        probes = []
        nodes = []
        for proc in procs:
            node = nengo.Node(proc, size_out=2)
            nodes.append(node)
            probes.append(nengo.Probe(node))
        synapses = [
            nengo.Lowpass(0.01),
            nengo.Alpha(0.005),
            nengo.LinearFilter([1], [0.001, 0.05, 1]),
            nengo.LinearFilter([0.5, 1], [0.02, 1]),  # passthrough (D != 0)
            nengo.LinearFilter([2], [1], analog=False),  # stateless gain
            nengo.synapses.Triangle(0.01),
        ]
        for syn in synapses:
            out = nengo.Node(size_in=2)
            nengo.Connection(nodes[3], out, synapse=syn)
            probes.append(nengo.Probe(out))
            probes.append(nengo.Probe(nodes[5], synapse=syn))
        ens = nengo.Ensemble(20, 2, noise=nengo.processes.WhiteNoise(nengo.dists.Gaussian(0, 0.1)))
        conn = nengo.Connection(nodes[3], ens, transform=[[0.5, 0.1], [0.2, 1.0]])
        # a rank-2 signal through a synapse
        probes.append(nengo.Probe(conn, "weights", synapse=0.01))
        probes.append(nengo.Probe(ens, synapse=0.01))
    compare(net, probes, 150, atol=1e-8)
    del dt


def test_learning_rules_match_reference():
    with nengo.Network(seed=5) as net:
        stim = nengo.Node(lambda t: [np.sin(10 * t), np.cos(7 * t)])
        a = nengo.Ensemble(20, 2)
        b = nengo.Ensemble(20, 2)
        nengo.Connection(stim, a)
        probes = []
        for rule in [nengo.BCM(1e-8), nengo.Oja(1e-7)]:
            conn = nengo.Connection(a.neurons, b.neurons, transform=np.eye(20) * 0.01, learning_rule_type=rule)
            probes.append(nengo.Probe(conn, "weights", sample_every=0.02))
        c = nengo.Ensemble(20, 2)
        conn = nengo.Connection(stim, c, learning_rule_type=nengo.Voja(1e-2))
        nengo.Connection(nengo.Node(0.5), conn.learning_rule)
        probes.append(nengo.Probe(conn.learning_rule, "scaled_encoders", sample_every=0.02))
        d = nengo.Node(size_in=2)
        rls = nengo.Connection(a, d, learning_rule_type=nengo.RLS(), function=lambda x: [0, 0])
        nengo.Connection(d, rls.learning_rule)
        nengo.Connection(stim, rls.learning_rule, transform=-1)
        probes.append(nengo.Probe(d, synapse=0.01))
    compare(net, probes, 200, atol=1e-7)


def test_sparse_and_advanced_indexing_match_reference():
    import scipy.sparse

    with nengo.Network(seed=6) as net:
        stim = nengo.Node(lambda t: np.sin(np.arange(5) + 10 * t))
        out = nengo.Node(size_in=4)
        mat = scipy.sparse.random(4, 5, density=0.5, random_state=0, format="csr")
        nengo.Connection(stim, out, transform=nengo.transforms.Sparse((4, 5), init=mat), synapse=None)
        out2 = nengo.Node(size_in=3)
        nengo.Connection(stim[[0, 0, 4, 2]], out2[[2, 2, 0, 1]], synapse=None)
        probes = [nengo.Probe(out), nengo.Probe(out2)]
    compare(net, probes, 20, atol=1e-12)


def test_python_node_with_input_runs_per_sample():
    with nengo.Network() as net:
        stim = nengo.Node([0.0], label="stim")
        f = nengo.Node(lambda t, x: x * 2 + t, size_in=1)
        nengo.Connection(stim, f, synapse=None)
        p = nengo.Probe(f)
    with Simulator(net, minibatch_size=2, progress_bar=False) as sim:
        sim.run_steps(3, data={stim: np.array([[[1.0]] * 3, [[2.0]] * 3])})
    t = 0.001 * np.arange(1, 4)
    assert np.allclose(sim.data[p][:, :, 0], [2 + t, 4 + t])


def test_user_neuron_type_runs_its_numpy_step_with_a_notice():
    # NengoDL runs a neuron type without a TensorFlow step through its numpy step
    class MyNeurons(nengo.RectifiedLinear):
        def step(self, dt, J, output):
            output[...] = 2 * J

    with nengo.Network(seed=1) as net:
        ens = nengo.Ensemble(3, 1, neuron_type=MyNeurons())
        p = nengo.Probe(ens.neurons)
    with pytest.warns(UserWarning, match="MyNeurons"):
        sim = Simulator(net, progress_bar=False)
    with sim:
        sim.run_steps(5)
    with nengo.Simulator(net, progress_bar=False) as ref:
        ref.run_steps(5)
    np.testing.assert_allclose(sim.data[p], ref.data[p], rtol=1e-5, atol=1e-5)


def test_convolutions_match_reference():
    transforms = [
        nengo.Convolution(4, (6, 6, 2), kernel_size=(3, 3), strides=(1, 2)),
        nengo.Convolution(3, (10, 2), kernel_size=(3,), strides=(2,), padding="same"),
        nengo.transforms.ConvolutionTranspose(3, (5, 5, 2), kernel_size=(3, 3), strides=(2, 2), padding="same"),
        nengo.Convolution(4, (6, 6, 4), kernel_size=(3, 3), groups=2),
        nengo.Convolution(4, (2, 6, 6), kernel_size=(3, 3), channels_last=False, padding="same"),
    ]
    probes = []
    with nengo.Network(seed=0) as net:
        for tr in transforms:
            stim = nengo.Node(lambda t, n=tr.input_shape.size: np.sin(np.arange(n) + 5 * t))
            out = nengo.Node(size_in=tr.output_shape.size)
            nengo.Connection(stim, out, transform=tr, synapse=None)
            probes.append(nengo.Probe(out))
    compare(net, probes, 3, atol=1e-12, minibatch_size=2)


def test_exception_in_python_node_reaches_the_caller():
    class NodeFailure(RuntimeError):
        pass

    def fail(t, x):
        if t > 0.002:
            raise NodeFailure("boom")
        return x

    with nengo.Network() as net:
        stim = nengo.Node([1.0])
        f = nengo.Node(fail, size_in=1)
        nengo.Connection(stim, f)
    with Simulator(net, progress_bar=False) as sim:
        with pytest.raises(NodeFailure, match="boom"):
            sim.run_steps(5)


def test_signals_view_reports_current_values():
    with nengo.Network() as net:
        stim = nengo.Node([2.0])
        out = nengo.Node(size_in=1)
        nengo.Connection(stim, out, synapse=None)
    with Simulator(net, progress_bar=False, minibatch_size=2) as sim:
        sim.run_steps(2)
        sig = sim.model.sig[out]["in"]
        assert sim.signals[sig].shape == (2, 1)
        assert np.allclose(sim.signals[sig], 2.0)
        assert len(sim.signals) > 0

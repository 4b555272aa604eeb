"""benchmarks/chip_accuracy.py: which ideal each standard network gets, and its table."""

from __future__ import annotations

import nengo
import numpy as np
import pytest

from benchmarks.chip_accuracy import ProbeError, ideal, ideal_mode, table
from nhw.toolchain.parity_networks import NETWORKS


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_ideal_mode_of_standard_networks(name):
    # neuron objects (a Neurons connection or probe, a learning rule) cannot run on
    # nengo.Direct: those networks are compared with their rate-mode twin
    want = "rate" if name in ("neuron_chain", "pes_learning") else "direct"
    assert ideal_mode(NETWORKS[name].case(None, 10, 0).network) == want


def test_taught_ideal_is_the_function_learning_converges_to():
    # pes_learning's error is post - stim: its ideal is the channel stim -> pre -> post
    case = NETWORKS["pes_learning"].case(None, 10, 0)
    mode, data = ideal(case, seed=0)
    assert mode == "taught"
    assert not any(c.learning_rule_type for c in case.network.all_connections)
    assert all(isinstance(e.neuron_type, nengo.Direct) for e in case.network.all_ensembles)
    stim = next(n for n in case.network.all_nodes if n.label == "stim")
    with nengo.Network() as channel:  # built independently: stim -> pre -> post, nengo's default synapses
        node = nengo.Node(stim.output)
        pre, post = (nengo.Ensemble(1, stim.size_out, neuron_type=nengo.Direct()) for _ in range(2))
        nengo.Connection(node, pre)
        nengo.Connection(pre, post)
        p = nengo.Probe(post, synapse=0.02)
    with nengo.Simulator(channel, progress_bar=False) as sim:
        sim.run_steps(case.n_steps)
    assert np.allclose(data["post"], sim.data[p]) and np.abs(sim.data[p]).max() > 0.3


def test_rate_ideal_is_the_rate_network():
    with nengo.Network(seed=0) as net:
        stim = nengo.Node(0.5)
        a = nengo.Ensemble(20, 1, neuron_type=nengo.LIF(tau_rc=0.03))
        b = nengo.Ensemble(20, 1, neuron_type=nengo.SpikingRectifiedLinear())
        nengo.Connection(stim, a, synapse=None)
        nengo.Connection(a.neurons, b.neurons, transform=np.eye(20) * 0.01)
        pa = nengo.Probe(a.neurons)
    from nhw.toolchain.parity_networks import Case

    mode, data = ideal(Case(net, {"a": pa}, 50), seed=0)
    assert mode == "rate"
    assert isinstance(a.neuron_type, nengo.LIFRate) and a.neuron_type.tau_rc == 0.03
    assert isinstance(b.neuron_type, nengo.RectifiedLinear)
    # rate neurons: a constant input gives constant rates (spikes would be 0 or 1/dt)
    assert np.allclose(data["a"][-1], data["a"][-10])
    assert 0 < data["a"].max() < 1000


def test_table_marks_exact_probes_and_ratios():
    rows = [ProbeError("n", "x", "direct", (0.0, 0.0), (0.0, 0.0), (0.0,), (0.0,)),
            ProbeError("n", "y", "direct", (0.1, 0.3), (0.2, 0.4), (0.05,), (0.2,))]
    assert np.isnan(rows[0].ratio) and rows[1].ratio == pytest.approx(1.5)
    text = table(rows)
    assert "| n | x | direct | 0 | 0 | exact |" in text
    assert "| 1.50 | 0.05 | 0.2 |" in text


def test_ideal_refuses_a_neuron_type_without_rate_twin():
    from nhw.errors import UnsupportedFeatureError
    from nhw.toolchain.parity_networks import Case

    with nengo.Network() as net:
        a = nengo.Ensemble(5, 1, neuron_type=nengo.AdaptiveLIF(), label="adaptive")
        nengo.Connection(a.neurons, a.neurons, transform=np.zeros((5, 5)))
    with pytest.raises(UnsupportedFeatureError, match=r"Ensemble 'adaptive'.*expected one of LIF"):
        ideal(Case(net, {}, 1), seed=0)

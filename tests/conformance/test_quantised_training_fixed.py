"""Quantisation-aware training (issue 29 follow-ups): what the quantiser does with
``trainable=False`` values, ``Neurons -> Ensemble`` connections and passthrough Nodes,
each compared with what loihi-emu programs."""

from __future__ import annotations

import nengo
import numpy as np
import pytest
from nhw.backends.loihi_emu.mapping import map_model
from nhw.backends.tensorflow import Simulator, configure_settings
from nhw.backends.tensorflow.builders import chip_quantize
from nhw.hw_emulator import LOIHI_V1
from nhw.hw_emulator import discretize as dz
from nhw.hw_emulator.blocks import InputAxons
from test_quantised_training import N_IN, _emulator_weights, _net

SRN = nengo.SpikingRectifiedLinear


def _frozen_ab(sparse=False, everything=False):
    net, inp, a, b, ab, p = _net(sparse=sparse)
    with net:
        configure_settings(trainable=False if everything else None)
        net.config[ab].trainable = False
        net.config[b.neurons].trainable = False
    return net, inp, a, b, ab, p


def _built(net):
    model = nengo.builder.Model(dt=0.001)
    model.build(net)
    return model


@pytest.mark.parametrize("sparse", [False, True])
def test_fixed_weights_and_biases_are_quantised_as_loihi_emu_programs(sparse):
    net, _inp, _a, b, ab, _p = _frozen_ab(sparse)
    with Simulator(net, minibatch_size=4, progress_bar=False) as sim:
        assert not [pp for pp in sim._params if pp.obj is ab]  # a constant of the simulation
        q = chip_quantize.quantize_for_chip(sim)
        chip = q.chip_values()
        report = q.report()
    for name in ("Connection:ab/weights", "Ensemble:b/bias"):
        assert report["quantized"][name]["trainable"] is False
        assert report["quantized"][name]["max_abs_error"] > 0  # the chip's grid moved them
    assert report["quantized"]["Ensemble:a/bias"]["trainable"] is True
    assert not set(report["skipped"]) & {"Connection:ab/weights", "Ensemble:b/bias"}
    model = _built(net)
    w = model.sig[ab]["weights"].initial_value
    _, ks = chip_quantize.chip_factors(model, {}, {ab: np.asarray(w.data if sparse else w)})
    emu, mapped = _emulator_weights(model, ab, ks[ab])
    tf_w = chip["Connection:ab/weights"]
    if sparse:
        idx = np.asarray(w.indices)
        tf_w = np.zeros(emu.shape)
        tf_w[idx[:, 0], idx[:, 1]] = chip["Connection:ab/weights"]
    assert np.allclose(tf_w, emu, rtol=1e-9, atol=0), np.abs(tf_w - emu).max()
    blk = mapped.ensemble_blocks[b]
    emu_b = dz.bias_effective(blk.bias_mant, blk.bias_exp) / np.asarray(blk.current_scale)
    assert np.allclose(chip["Ensemble:b/bias"], emu_b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("everything", [False, True])
def test_the_simulator_computes_with_the_fixed_chip_values(everything):
    net, inp, _a, _b, _ab, p = _frozen_ab(everything=everything)
    # 20 steps: over 10, with the Node input arriving a step late (as on the chip), the
    # outputs came out allclose before and after quantisation
    x = np.random.RandomState(2).uniform(0, 1, (8, 20, N_IN)).astype(np.float32)
    with Simulator(net, minibatch_size=8, progress_bar=False) as sim:
        before = sim.predict({inp: x})[p]
        q = chip_quantize.quantize_for_chip(sim)
        after = sim.predict({inp: x})[p]
        chip = q.chip_values()
    # the same network, everything trainable, with the chip values written in
    net2, inp2, a2, b2, ab2, p2 = _net()
    ab2.transform = chip["Connection:ab/weights"]
    with Simulator(net2, minibatch_size=8, progress_bar=False) as sim2:
        for ens in (a2, b2):
            pv = next(pp for pp in sim2._params if pp.name == f"Ensemble:{ens.label}/bias")
            pv.variable.assign(chip[pv.name])
        exact = sim2.predict({inp2: x})[p2]
    assert not np.allclose(before, after)
    assert np.allclose(after, exact, atol=1e-5)


def test_neurons_to_ensemble_is_listed_with_the_folded_encoders_reason():
    rng = np.random.RandomState(0)
    with nengo.Network(seed=0) as net:
        configure_settings(target="loihi-emu")
        inp = nengo.Node(np.zeros(4))
        a = nengo.Ensemble(10, 1, neuron_type=SRN(), label="a")
        b = nengo.Ensemble(8, 2, neuron_type=SRN(), label="b")
        nengo.Connection(inp, a.neurons, transform=rng.randn(10, 4))
        ab = nengo.Connection(a.neurons, b, transform=rng.randn(2, 10) * 0.01, label="ab")
        nengo.Probe(b.neurons)
    with Simulator(net, minibatch_size=2, progress_bar=False) as sim:
        skipped = dict(chip_quantize.quantize_for_chip(sim).skipped)
    reason = skipped["Connection:ab/weights"]
    assert "decoded" not in reason and "encoders times this transform" in reason
    # what loihi-emu programs: one synapse per (pre neuron, post neuron), the post
    # encoders times the transform (to the chip's rounding), not the transform
    model = _built(net)
    mapped = map_model(model)
    (g,) = [g for g in mapped.chip.groups if g.owner is ab]
    blk = mapped.ensemble_blocks[b]
    du = (dz.decay_u_register(0.005, 0.001, LOIHI_V1) + 1) / (LOIHI_V1.decay_max + 1)
    k = du / 0.001 * np.asarray(blk.current_scale) * np.ones(b.n_neurons)
    eff = dz.effective_weights(g.mantissa, g.exponent, LOIHI_V1).astype(np.float64).T / k[:, None]
    want = model.params[b].scaled_encoders @ model.sig[ab]["weights"].initial_value
    assert eff.shape == (b.n_neurons, a.n_neurons)
    assert np.allclose(eff, want, atol=np.abs(want).max() / 100)


def _passthrough_net(first_synapse):
    rng = np.random.RandomState(0)
    with nengo.Network(seed=0) as net:
        configure_settings(target="loihi-emu")
        inp = nengo.Node(np.zeros(4), label="inp")
        a = nengo.Ensemble(10, 1, neuron_type=SRN(), label="a")
        b = nengo.Ensemble(8, 1, neuron_type=SRN(), label="b")
        nengo.Connection(inp, a.neurons, transform=rng.randn(10, 4), label="inp_a")
        hp = nengo.Node(size_in=4, label="hp")  # host -> passthrough -> chip
        nengo.Connection(inp, hp, transform=rng.randn(4, 4), label="inp_hp")
        nengo.Connection(hp, b.neurons, transform=rng.randn(8, 4), label="hp_b")
        cp = nengo.Node(size_in=3, label="cp")  # chip -> passthrough -> passthrough -> chip
        cp2 = nengo.Node(size_in=3, label="cp2")
        nengo.Connection(a.neurons, cp, transform=rng.randn(3, 10) * 0.01, synapse=first_synapse, label="a_cp")
        nengo.Connection(cp, cp2, transform=rng.randn(3, 3), synapse=None, label="cp_cp2")
        nengo.Connection(cp2, b.neurons, transform=rng.randn(8, 3), synapse=0.005, label="cp2_b")
        nengo.Probe(b.neurons)
    return net


@pytest.mark.parametrize("first_synapse", [None, 0.005])
def test_passthrough_legs_are_listed_only_when_loihi_emu_folds_them(first_synapse):
    net = _passthrough_net(first_synapse)
    with Simulator(net, minibatch_size=2, progress_bar=False) as sim:
        skipped = dict(chip_quantize.quantize_for_chip(sim).skipped)
    mapped = map_model(_built(net))
    by_label = {c.label: c for c in net.all_connections}
    chip_fed = {g.owner.label for g in mapped.chip.groups if not isinstance(g.source, InputAxons)}
    host_nodes = {n.label for n in mapped.nodes}
    legs = ["Connection:a_cp/weights", "Connection:cp_cp2/weights", "Connection:cp2_b/weights"]
    if first_synapse is None:
        # one filter along the path: loihi-emu folds it into a -> b synapses
        assert "cp2_b" in chip_fed and not {"cp", "cp2"} & host_nodes
        for leg in legs:
            assert "folds into chip synapses" in skipped[leg], skipped
    else:
        # two filters in series: the nodes run on the host, every leg is float there
        assert "cp2_b" not in chip_fed and "cp" in host_nodes
        assert not set(legs) & set(skipped), skipped
    # a host value through a passthrough Node is host-side either way
    assert "hp" in host_nodes or "hp_b" not in chip_fed
    assert not {"Connection:inp_hp/weights", "Connection:hp_b/weights"} & set(skipped)
    assert by_label["hp_b"] is not None

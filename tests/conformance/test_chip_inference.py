"""Chip neuron models at inference in the TF simulator (``configure_settings(target="loihi-emu")``, issue 29).

A network trained for the chip runs its spiking neurons as the chip's integer
compartments at inference, so the TF simulator's spikes are loihi-emu's: checked
here step for step, for single neurons and for a small layer.
"""

from __future__ import annotations

import nengo
import numpy as np
import pytest
from nengo.exceptions import ValidationError
from nhw.backends.tensorflow import configure_settings
from nhw.backends.tensorflow.builders.chip_inputs import insert_chip_operators

from nhw import backends

STEPS = 500


def _spikes(target: str, net: nengo.Network, probe: nengo.Probe, steps: int = STEPS) -> np.ndarray:
    with backends.get(target)(net, seed=0, progress_bar=False) as sim:
        sim.run_steps(steps)
        return np.asarray(sim.data[probe]) > 0


def _population(neuron_type, bias: np.ndarray, chip: bool) -> tuple[nengo.Network, nengo.Probe]:
    with nengo.Network(seed=0) as net:
        if chip:
            # quantize: the TF simulator computes with the bias registers loihi-emu programs
            configure_settings(target="loihi-emu", quantize=True)
        ens = nengo.Ensemble(len(bias), 1, neuron_type=neuron_type, gain=np.ones(len(bias)), bias=bias,
                             encoders=np.ones((len(bias), 1)))
        p = nengo.Probe(ens.neurons, synapse=None)
    return net, p


_BIASES = {
    # currents from below threshold to near the chip's highest rate (LIF), and up to
    # where an IF bias still fits the chip's bias register at the default vth (above
    # that loihi-emu lowers vth, which the TF form does not model)
    "LIF": (nengo.LIF(), np.random.RandomState(0).uniform(0.5, 30, 40)),
    "SpikingRectifiedLinear": (nengo.SpikingRectifiedLinear(), np.random.RandomState(0).uniform(-10, 240, 40)),
}


@pytest.mark.parametrize("kind", sorted(_BIASES))
def test_single_neurons_spike_as_on_loihi_emu(kind):
    neuron_type, bias = _BIASES[kind]
    emu = _spikes("loihi-emu", *_population(neuron_type, bias, chip=True))
    tf_chip = _spikes("tensorflow", *_population(neuron_type, bias, chip=True))
    # every neuron, every step: the same integer voltage update
    assert emu.sum() > 1000
    np.testing.assert_array_equal(tf_chip, emu)
    # nengo's own neurons (the default without a target) do not: the check can fail
    tf_nengo = _spikes("tensorflow", *_population(neuron_type, bias, chip=False))
    assert np.count_nonzero(tf_nengo != emu) > 1000


def _layer(neuron_type, synapse) -> tuple[nengo.Network, nengo.Probe]:
    rng = np.random.RandomState(1)
    with nengo.Network(seed=0) as net:
        # quantize: the TF simulator computes with the weights and biases loihi-emu programs
        configure_settings(target="loihi-emu", quantize=True)
        a = nengo.Ensemble(20, 1, neuron_type=nengo.SpikingRectifiedLinear(), gain=np.ones(20),
                           bias=rng.uniform(50, 300, 20), encoders=np.ones((20, 1)))
        b = nengo.Ensemble(10, 1, neuron_type=neuron_type, gain=np.ones(10), bias=rng.uniform(0, 2, 10),
                           encoders=np.ones((10, 1)))
        nengo.Connection(a.neurons, b.neurons, transform=rng.uniform(-0.01, 0.03, (10, 20)), synapse=synapse)
        p = nengo.Probe(b.neurons, synapse=None)
    return net, p


@pytest.mark.parametrize("neuron_type", [nengo.SpikingRectifiedLinear(), nengo.LIF()], ids=["IF", "LIF"])
def test_a_filtered_layer_spikes_as_on_loihi_emu(neuron_type):
    # the synapse is the chip's integer current (decayed and truncated each step) in
    # both: ChipLowpass replaces nengo's float Lowpass at spiking inference
    net, p = _layer(neuron_type, nengo.Lowpass(0.005))
    emu = _spikes("loihi-emu", net, p, 1000)
    got = _spikes("tensorflow", net, p, 1000)
    assert emu.sum() > 100
    np.testing.assert_array_equal(got, emu)


def test_a_filtered_layer_with_nengos_filter_differs(monkeypatch):
    # nengo's float filter (ChipLowpass's training branch) moves spikes by a step (in
    # this IF layer; the LIF layer above happens to spike the same with either filter)
    from nhw.backends.tensorflow.builders.chip_inputs import ChipLowpassBuilder

    chip_step = ChipLowpassBuilder.step

    def float_filter(self, sc):
        training, sc.training = sc.training, True
        try:
            chip_step(self, sc)
        finally:
            sc.training = training

    monkeypatch.setattr(ChipLowpassBuilder, "step", float_filter)
    net, p = _layer(nengo.SpikingRectifiedLinear(), nengo.Lowpass(0.005))
    emu = _spikes("loihi-emu", net, p, 1000)
    got = _spikes("tensorflow", net, p, 1000)
    assert np.count_nonzero(got != emu) > 0
    near = emu | np.roll(emu, 1, axis=0) | np.roll(emu, -1, axis=0)
    assert np.all(near[got])  # every TF spike has a loihi-emu spike within a step


@pytest.mark.parametrize("neuron_type", [nengo.SpikingRectifiedLinear(), nengo.LIF()], ids=["IF", "LIF"])
def test_an_unfiltered_layer_spikes_as_on_loihi_emu(neuron_type):
    # with synapse=None nengo delivers a spike in the step it is emitted; the chip
    # delivers it the next step (SPEC.md step 1), and so does the chip form (ChipDelay)
    net, p = _layer(neuron_type, None)
    emu = _spikes("loihi-emu", net, p, 1000)
    got = _spikes("tensorflow", net, p, 1000)
    assert emu.sum() > 100
    np.testing.assert_array_equal(got, emu)
    # without the delay the layer runs one step ahead: the check can fail
    with net:
        configure_settings(chip_inference=False)
    assert np.count_nonzero(_spikes("tensorflow", net, p, 1000) != emu) > 100


def _node_layer(neuron_type, synapse=None) -> tuple[nengo.Network, nengo.Probe]:
    rng = np.random.RandomState(2)
    with nengo.Network(seed=0) as net:
        configure_settings(target="loihi-emu")
        # values beyond the encoder's range (2 per step) too: the chip clips their counts
        inp = nengo.Node(nengo.processes.PresentInput(rng.uniform(0, 1, (20, 8)), 0.01), label="input")
        # gains and biases that fit the registers at the default vth (the mapping's lowered
        # vth is not modelled)
        ens = nengo.Ensemble(30, 1, neuron_type=neuron_type, max_rates=nengo.dists.Uniform(80, 150),
                             intercepts=nengo.dists.Uniform(0, 0.2))
        nengo.Connection(inp, ens.neurons, transform=rng.normal(0, 0.5, (30, 8)), synapse=synapse)
        p = nengo.Probe(ens.neurons, synapse=None)
    return net, p


@pytest.mark.parametrize("neuron_type", [nengo.SpikingRectifiedLinear(), nengo.LIF()], ids=["IF", "LIF"])
def test_node_input_spikes_as_on_loihi_emu(neuron_type):
    # the host value crosses as clipped sigma-delta spike counts times the programmed
    # (rounded) synapse weight: the TF chip form encodes the same, step for step
    net, p = _node_layer(neuron_type)
    with pytest.warns(UserWarning, match="exceeds the spike encoder's range"):
        emu = _spikes("loihi-emu", net, p, 200)
    got = _spikes("tensorflow", net, p, 200)
    assert emu.sum() > 100
    np.testing.assert_array_equal(got, emu)


@pytest.mark.parametrize("neuron_type", [nengo.SpikingRectifiedLinear(), nengo.LIF()], ids=["IF", "LIF"])
def test_filtered_node_input_spikes_as_on_loihi_emu(neuron_type):
    # the counts enter the chip's integer current in the step after they are sent
    net, p = _node_layer(neuron_type, synapse=nengo.Lowpass(0.005))
    with pytest.warns(UserWarning, match="exceeds the spike encoder's range"):
        emu = _spikes("loihi-emu", net, p, 200)
    got = _spikes("tensorflow", net, p, 200)
    assert emu.sum() > 100
    np.testing.assert_array_equal(got, emu)


def test_node_input_encoding_can_fail(monkeypatch):
    # the same layer with the chip's neurons but nengo's float input (the encoder passes values through)
    from nhw.backends.tensorflow.builders.chip_inputs import ChipEncodeBuilder

    def through(self, sc):
        sc.state.write(self.op.dst, sc.state.read(self.op.src, batched=True), "set")

    monkeypatch.setattr(ChipEncodeBuilder, "step", through)
    net, p = _node_layer(nengo.LIF())
    with pytest.warns(UserWarning, match="exceeds the spike encoder's range"):
        emu = _spikes("loihi-emu", net, p, 200)
    assert np.count_nonzero(_spikes("tensorflow", net, p, 200) != emu) > 20


def test_reset_empties_the_encoder():
    net, p = _node_layer(nengo.LIF())
    with backends.get("tensorflow")(net, seed=0, progress_bar=False) as sim:
        sim.run_steps(37)
        first = np.asarray(sim.data[p]).copy()
        sim.reset()
        sim.run_steps(37)
        np.testing.assert_array_equal(np.asarray(sim.data[p]), first)


def test_no_chip_operators_without_target_or_with_chip_inference_false():
    from nengo.builder import Model

    for settings in ({}, {"target": "loihi-emu", "chip_inference": False}):
        net, _ = _node_layer(nengo.LIF())
        with net:
            configure_settings(target=None, chip_inference=None)
            if settings:
                configure_settings(**settings)
        model = Model(dt=0.001)
        model.build(net)
        assert insert_chip_operators(model, net) == []
    net, _ = _node_layer(nengo.LIF())
    model = Model(dt=0.001)
    model.build(net)
    # (an unfiltered Node input: its counts reach the chip a step later, as on loihi-emu)
    assert [type(op).__name__ for op in insert_chip_operators(model, net)] == ["ChipEncode", "ChipDelay"]
    assert insert_chip_operators(model, net) == []  # once per model


def test_chip_inference_setting_is_validated():
    with nengo.Network():
        with pytest.raises(ValidationError, match="chip_inference must be None, True or False; got 1"):
            configure_settings(chip_inference=1)
        configure_settings(target="loihi-emu", chip_inference=True)


def test_chip_inference_false_keeps_nengos_neurons():
    neuron_type, bias = _BIASES["LIF"]
    net, p = _population(neuron_type, bias, chip=False)
    with net:
        configure_settings(target="loihi-emu", chip_inference=False)  # trained for the chip, run as nengo
    off = _spikes("tensorflow", net, p)
    np.testing.assert_array_equal(off, _spikes("tensorflow", *_population(neuron_type, bias, chip=False)))
    assert np.count_nonzero(off != _spikes("loihi-emu", *_population(neuron_type, bias, chip=True))) > 1000


def test_target_options_map_as_the_deployment_does():
    # the deployment's mapping options (here 4 input pairs and a wider range) reach the chip
    # form: spikes equal loihi-emu's with the same options, and differ from the defaults'
    net, p = _node_layer(nengo.LIF())
    opts = {"input_pairs": 4, "input_range": 3.0}
    with net:
        configure_settings(target_options=opts)
    with backends.get("loihi-emu")(net, seed=0, progress_bar=False, **opts) as sim:
        sim.run_steps(200)
        emu = np.asarray(sim.data[p]) > 0
    got = _spikes("tensorflow", net, p, 200)
    assert emu.sum() > 100
    np.testing.assert_array_equal(got, emu)
    with net:
        configure_settings(target_options=None)
    assert np.count_nonzero(_spikes("tensorflow", net, p, 200) != emu) > 20


def test_unknown_target_option_is_refused_before_building():
    from nengo.exceptions import ValidationError

    net, _ = _node_layer(nengo.LIF())
    with net:
        configure_settings(target_options={"input_pair": 4})
    with pytest.raises(ValidationError, match=r"unknown loihi-emu mapping option\(s\) \['input_pair'\]"):
        backends.get("tensorflow")(net, progress_bar=False)

"""The quantisation loss per layer in ``nhw report`` (issue 29 item 3): chip hardware reports and QAT runs."""

from __future__ import annotations

import nengo
import numpy as np

from nhw.backends.loihi_emu import Simulator as EmuSimulator
from nhw.hw_emulator import LOIHI_V1
from nhw.toolchain.report import quantization_loss_table, trained_quantization_table


def _two_layers() -> nengo.Network:
    rng = np.random.RandomState(3)
    with nengo.Network(seed=0) as net:
        a = nengo.Ensemble(12, 1, neuron_type=nengo.SpikingRectifiedLinear(), gain=np.ones(12),
                           bias=rng.uniform(20, 200, 12), encoders=np.ones((12, 1)), label="a")
        b = nengo.Ensemble(6, 1, neuron_type=nengo.SpikingRectifiedLinear(), gain=np.ones(6),
                           bias=np.zeros(6), encoders=np.ones((6, 1)), label="b")
        nengo.Connection(a.neurons, b.neurons, transform=rng.uniform(-0.05, 0.1, (6, 12)), synapse=0.005)
    return net


def test_loss_per_layer_is_the_programmed_weights_error():
    net = _two_layers()
    with EmuSimulator(net, progress_bar=False) as sim:
        sim.run_steps(5)
        hw = sim.hardware_report().as_dict()
    text = quantization_loss_table(hw)
    lines = text.splitlines()
    assert lines[0].startswith("Quantisation loss per layer")
    row = next(line for line in lines if "a->b" in line)
    # rounding to mantissas: at most half a step, and the largest weight is
    # weight_mant_max steps less the bits the group's exponent leaves unused
    bits_lost, err = (float(v) for v in row.split()[-2:])
    assert 0 < err <= 0.5 * 2 ** bits_lost / LOIHI_V1.weight_mant_max + 1e-6
    assert "b: 0 clipped" in text.splitlines()[-1]


def test_no_quantization_renders_nothing():
    assert quantization_loss_table({"quantization": {}}) == ""
    assert trained_quantization_table(None) == ""
    assert trained_quantization_table({"quantized": {}, "skipped": {}}) == ""


def test_trained_quantization_table_lists_each_parameter():
    quant = {"quantized": {"Connection:a->b/weights": {"kind": "weights", "max_abs_error": 1e-3,
                                                       "max_rel_error": 0.004, "n_zeroed": 2},
                           "Ensemble:b/bias": {"kind": "bias", "trainable": False, "max_abs_error": 0.0,
                                               "max_rel_error": 0.0, "n_zeroed": 0}},
             "skipped": {"Connection:in->a/weights": "host connection"}}
    text = trained_quantization_table(quant)
    assert "Connection:a->b/weights" in text and "0.004" in text
    row = {line.split()[0]: line.split() for line in text.splitlines() if line.startswith(("Conn", "Ens"))}
    assert row["Connection:a->b/weights"][2] == "yes" and row["Ensemble:b/bias"][2] == "fixed"
    assert text.splitlines()[-1] == "not quantised: Connection:in->a/weights (host connection)"

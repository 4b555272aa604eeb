"""Clipping the chip does silently no more: PES errors and learned weights, weights beyond
the format, the report's estimate notes, and the host-axon resource message."""

from __future__ import annotations

import warnings

import nengo
import numpy as np
import pytest

from nhw.backends.loihi_emu import Simulator
from nhw.errors import DiscretizationError, ResourceError
from nhw.hw_emulator.allocate import allocate
from nhw.hw_emulator.blocks import ChipNetwork, CompartmentBlock, InputAxons, SynapseGroup
from nhw.hw_emulator.chip import LOIHI_V1, BoardSpec
from nhw.hw_emulator.learning import LearnedWeights, PESRule, TraceRegisters, quantize_error
from nhw.hw_emulator import populations, report
from nhw.hw_emulator.report import HardwareReport
from nhw.toolchain.tables import hardware_table


def _weights(n_src=3, n_dims=2):
    dim = np.tile(np.arange(n_dims), 2)
    sign = np.repeat([1, -1], n_dims)
    rule = PESRule("pes", n_dims, dim, sign, np.zeros((n_src, n_dims), np.int64), TraceRegisters(0, 50, 1.0),
                   np.array([1, 1]), 0, np.full(n_dims, 0.01))
    return rule, LearnedWeights(rule, slice(0, n_src), slice(n_src, n_src + 2 * n_dims), 6, LOIHI_V1)


# ------------------------------------------------------------------ A: PES counters
def test_error_clipping_is_counted_with_its_peak():
    rule, lw = _weights()
    for e in ([0.5, -0.2], [2.0, 0.0], [0.0, -1.3], [0.1, 0.1]):
        lw.error = quantize_error(e, rule, LOIHI_V1, weights=lw)
    assert lw.error_steps == 4 and lw.error_clipped_steps == 2
    assert lw.error_peak == pytest.approx(200.0)  # |2.0| / 0.01 error units
    assert lw.clipping_since() == (2, 0, 4, pytest.approx(200.0))
    assert lw.clipping_since() is None  # reported once
    lw.reset()
    assert (lw.error_steps, lw.error_clipped_steps, lw.error_peak) == (0, 0, None)


def test_compiled_loop_counters_and_silent_load():
    _, lw = _weights()
    lw.record_errors(100, 7, 300.0)
    lw.load_error(np.array([127, 0]))  # the loop's last error: not a step of its own
    assert (lw.error_steps, lw.error_clipped_steps, lw.error_peak) == (100, 7, 300.0)


def test_report_text_shows_learning_clipping():
    d = HardwareReport("c", 1, 1, 10, 0.001, total_synaptic_updates=40, learning_saturations=3,
                       learning_error_clipped_steps=6,
                       learning=[{"label": "pes conn", "error_steps": 10, "error_clipped_steps": 6,
                                  "error_range": 1.0, "error_peak": 2.03, "saturations": 3}]).as_dict()
    text = "\n".join(report.learning_lines(d))
    assert "clipped to the chip's range in 6 step(s)" in text
    assert "CLIPPED learning pes conn" in text and "6 of 10 steps" in text and "2.03" in text
    assert "saturated 3 time(s)" in text
    assert "CLIPPED learning pes conn" in hardware_table(d)  # what nhw deploy prints


# ------------------------------------------------------------------ B: weight clipping
def _neuron_net(big):
    with nengo.Network(seed=0) as net:
        stim = nengo.Node(lambda t: np.sin(6 * t))
        a = nengo.Ensemble(20, 1, label="a")
        b = nengo.Ensemble(20, 1, label="b")
        nengo.Connection(stim, a)
        nengo.Connection(a.neurons, b.neurons, transform=-big * np.eye(20))
    return net


def test_weights_far_beyond_the_format_are_refused():
    with pytest.raises(DiscretizationError) as info:
        Simulator(_neuron_net(1e4))
    msg = str(info.value)
    assert "a->b" in msg and "20 weight(s)" in msg and "largest representable" in msg
    assert "relative error 99.5%" in msg and f"more than {populations.CLIP_ERROR_RATIO:g}x" in msg


def test_weights_slightly_beyond_the_format_warn():
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        Simulator(_neuron_net(80)).close()
    msgs = [str(x.message) for x in w if "weight format" in str(x.message)]
    assert len(msgs) == 1 and "1 weight(s)" in msgs[0] and "1.54x the largest representable" in msgs[0]


def test_weights_within_the_format_are_silent():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Simulator(_neuron_net(10)).close()


# ------------------------------------------------------------------ C: report estimate
def test_estimate_lines_say_what_they_are_and_leave_out():
    d = HardwareReport("c", 1, 2, 10, 0.001, energy_estimate_j=1e-6, time_estimate_per_step_s=1e-6,
                       estimate_note="n").as_dict()
    text = "\n".join(report.estimate_lines(d))
    assert "no tile hops" in text and "busiest core's mean per step" in text and "lower bound" in text


def test_estimate_note_names_tile_hops_and_the_time_figure():
    spec = LOIHI_V1
    net = ChipNetwork(spec=spec)
    net.add_block(CompartmentBlock("a", 4, 4095, 0, 64, 0, 0, 1, 0, (1 << 23) - 1, spec=spec))
    from nhw.hw_emulator.emulator import Emulator
    from nhw.hw_emulator.report import build_report
    em = Emulator(net)
    em.run(5)
    note = build_report(allocate(net), em).estimate_note
    assert "tile hops" in note and "3.0/4.0 pJ" in note and "not modelled" in note
    assert "max over cores of the core's busy time per step averaged over the run" in note


# ------------------------------------------------------------------ D: host axons
def test_host_axon_error_names_input_pairs():
    spec = LOIHI_V1.with_limits(input_axons_per_core=50)
    net = ChipNetwork(spec=spec)
    host = net.add_input(InputAxons("wide.input", 2 * 3, 16))  # 2 x 3 dims x 16 pairs = 96 axons
    b = net.add_block(CompartmentBlock("b", 4, 4095, 0, 64, 0, 0, 1, 0, (1 << 23) - 1, spec=spec))
    net.add_group(SynapseGroup("g", host, b, np.ones((6, 4)), 0, spec=spec))
    with pytest.raises(ResourceError) as info:
        allocate(net, BoardSpec(spec, None))
    msg = str(info.value)
    assert "96 input axons exceed 50 per core" in msg
    assert "'wide.input' (2 x 3 dimension(s) reaching it x input_pairs 16)" in msg
    assert "lower input_pairs (a loihi-emu option) to 8 or less" in msg


"""loihi-emu warns when on-chip PES learning clips (errors beyond the chip's error range,
learned weights at their limit), once per run, and its hardware report says so."""

from __future__ import annotations

import warnings

import nengo
import numpy as np
import pytest

from nhw.backends.loihi_emu import Simulator


def _pes_net(gain, rate=1e-4):
    """stim -> pre -(PES)-> Node post; error = post - gain * stim (QA script 27)."""
    with nengo.Network(seed=1) as net:
        stim = nengo.Node(lambda t: 0.9 * np.sin(2 * np.pi * t))
        pre = nengo.Ensemble(100, 1)
        post = nengo.Node(size_in=1, label="post")
        nengo.Connection(stim, pre)
        c = nengo.Connection(pre, post, function=lambda x: 0, learning_rule_type=nengo.PES(learning_rate=rate))
        err = nengo.Node(size_in=1)
        nengo.Connection(post, err)
        nengo.Connection(stim, err, transform=-gain)
        nengo.Connection(err, c.learning_rule)
    return net


def _run(net, seconds, **kw):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        sim = Simulator(net, **kw)
        with sim:
            for s in seconds:
                sim.run(s)
            rep = sim.hardware_report()
    return [str(x.message) for x in w if "PES learning was clipped" in str(x.message)], rep


def test_error_beyond_the_chip_range_warns_once_per_run():
    msgs, rep = _run(_pes_net(3.0), [0.6, 0.6])
    assert len(msgs) == 2  # one per run, each with that run's counts
    m = msgs[0]
    assert "<Node 'post'>" in m and "chip's error range is +-1" in m and "a Node post has radius 1" in m
    peak = float(m.split("the largest |error| was ")[1].split(" ")[0])
    assert 1.5 < peak < 3.0  # nengo's largest |error| is about 2
    assert " steps (" in m and "option error_range" in m
    (g,) = rep.learning
    assert g["error_clipped_steps"] == rep.learning_error_clipped_steps > 100
    assert g["error_steps"] == 1200 and g["error_peak"] >= peak * 0.99
    table = rep.to_table()
    assert "CLIPPED learning" in table and f"clipped in {g['error_clipped_steps']} of 1200 steps" in table


def test_saturated_weights_warn():
    msgs, rep = _run(_pes_net(3.0, rate=4e-4), [1.0])
    assert rep.learning_saturations > 0
    assert len(msgs) == 1 and f"{rep.learning_saturations} time(s)" in msgs[0]
    assert "lower the learning rate" in msgs[0]


def test_error_within_range_is_silent():
    msgs, rep = _run(_pes_net(0.9), [1.0])
    assert msgs == [] and rep.learning_error_clipped_steps == 0 and rep.learning_saturations == 0
    assert "CLIPPED" not in rep.to_table()


def test_per_step_path_counts_the_same():
    _, fast = _run(_pes_net(3.0), [0.5])
    net = _pes_net(3.0)
    sim = Simulator(net)
    sim.fast_host = False  # the per-step host loop (the reference of the compiled loop)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with sim:
            sim.run(0.5)
            slow = sim.hardware_report()
    assert slow.learning[0]["error_clipped_steps"] == fast.learning[0]["error_clipped_steps"] > 0
    assert slow.learning[0]["error_steps"] == 500


def test_an_error_exactly_at_the_limit_does_not_warn():
    # a constant error of exactly the chip's range: it reaches +-127 but nothing is cut off
    with nengo.Network(seed=1) as net:
        pre = nengo.Ensemble(50, 1)
        post = nengo.Node(size_in=1, label="post")
        c = nengo.Connection(pre, post, learning_rule_type=nengo.PES(learning_rate=1e-6))
        nengo.Connection(nengo.Node([1.0]), c.learning_rule, synapse=None)
    msgs, rep = _run(net, [0.2])
    assert msgs == []
    assert rep.learning_error_clipped_steps > 0      # counted in the report as at the limit

"""Which state a step rebuilds before using it (``backends/tensorflow/step_local.py``)."""

from __future__ import annotations

import nengo
import numpy as np
from nengo.builder.neurons import SimNeurons
from nengo.builder.operator import Copy, DotInc, ElementwiseInc, Reset
from nengo.builder.signal import Signal

from nhw.backends.tensorflow.passes.step_local import neuron_input_bases, set_before_use


def _sig(n, name):
    return Signal(np.zeros(n), name=name)


def _lif(J):
    out, v, r = _sig(J.size, "out"), _sig(J.size, "voltage"), _sig(J.size, "refractory")
    return SimNeurons(nengo.LIF(), J, out, state={"voltage": v, "refractory_time": r}), v


def test_bias_copy_then_increments_is_set_before_use():
    J, bias, x = _sig(4, "J"), _sig(4, "bias"), _sig(2, "x")
    enc = Signal(np.ones((4, 2)), name="enc")
    lif, _ = _lif(J)
    ops = [Copy(bias, J), DotInc(enc, x, J), lif]
    assert neuron_input_bases(ops) == [J]


def test_a_use_before_the_set_keeps_the_base():
    J, bias, x = _sig(4, "J"), _sig(4, "bias"), _sig(4, "x")
    lif, _ = _lif(J)
    # incremented before the reset: the old value matters
    assert neuron_input_bases([ElementwiseInc(x, x, J), Reset(J), lif]) == []
    # read (by the neurons) before it is set for the next step
    assert neuron_input_bases([lif, Copy(bias, J)]) == []


def test_a_partial_set_keeps_the_base():
    J, bias = _sig(4, "J"), _sig(2, "bias")
    lif, _ = _lif(J)
    assert neuron_input_bases([Copy(bias, J[:2]), lif]) == []
    # both halves set, in two operators: every element is set before use
    assert neuron_input_bases([Copy(bias, J[:2]), Copy(bias, J[2:]), lif]) == [J]


def test_neuron_state_in_nengos_sets_counts_as_a_use():
    # nengo lists the neurons' state among SimNeurons.sets, but the update reads it
    J = _sig(4, "J")
    lif, voltage = _lif(J)
    assert voltage in lif.sets
    assert set_before_use([Reset(J), lif], [voltage, J]) == [J]

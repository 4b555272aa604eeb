"""How the LIF surrogate step differentiates the reset and the refractory period.

snnTorch computes its reset signal from the spike and detaches it from the graph,
so no gradient flows through the reset *signal*; with a reset to zero the voltage
carried on from a neuron that spiked is then a constant. nhw's LIF (a zero reset)
must do the same: the spike test is not differentiated inside the reset.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import nengo
import numpy as np
import pytest
import tensorflow as tf

from nhw.backends.tensorflow.builders import neuron_builders, training_neurons  # noqa: F401 (registers the steps)
from nhw.backends.tensorflow.registry import NEURONS

DT = 0.001
BETA = math.exp(-DT / 0.02)


def _step(neurons, **kw):
    spiking = NEURONS.lookup(type(neurons), exact=True)
    return training_neurons.training_step(neurons, spiking, "spiking_aware", None, "fast_sigmoid", 10.0,
                                          dt=DT, **kw)


def _grads(J, v0, ref0, **kw):
    """Forward spikes and ``d new_voltage / d (J, v0)`` of one LIF training step."""
    lif = nengo.LIF()
    J = tf.constant(J, dtype=tf.float32)
    v0 = tf.constant(v0, dtype=tf.float32)
    ref0 = tf.constant(ref0, dtype=tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([J, v0])
        out, new = _step(lif, **kw)(lif, DT, J, {"voltage": v0, "refractory_time": ref0},
                                    SimpleNamespace(step=tf.constant(1.0)))
        total_v = tf.reduce_sum(new["voltage"])
        total_out = tf.reduce_sum(out)
    gJ, gv = tape.gradient(total_v, [J, v0])
    oJ = tape.gradient(total_out, J)
    return out.numpy(), new["voltage"].numpy(), gJ.numpy(), gv.numpy(), oJ.numpy()


def test_reset_is_detached_for_spiking_neurons():
    # neuron 0 stays below threshold, neuron 1 crosses it this step
    out, v, gJ, gv, oJ = _grads([2.0, 40.0], [0.5, 0.99], [0.0, 0.0])
    assert out[0] == 0 and out[1] > 0 and v[1] == 0.0
    # below threshold: the plain LIF derivatives
    assert np.isclose(gJ[0], 1 - BETA, rtol=1e-5) and np.isclose(gv[0], BETA, rtol=1e-5)
    # spiked: the reset to zero is a constant (no surrogate term from the spike test)
    assert gJ[1] == 0.0 and gv[1] == 0.0
    # ...while the spike itself still carries the surrogate gradient to J
    assert oJ[1] > 0 and oJ[0] > 0


def test_refractory_neuron_passes_no_gradient_to_its_input():
    # in its refractory period (2 ms left) the voltage is held: J does not reach it
    out, v, gJ, gv, oJ = _grads([40.0], [0.0], [0.003])
    assert out[0] == 0 and v[0] == 0.0
    assert gJ[0] == 0.0 and gv[0] == 1.0

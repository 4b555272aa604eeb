"""NengoDL conformance: settings set in sub-networks, TensorNode calling conventions and
validation, ``check_gradients`` resetting the state.

Specification: NengoDL 3.6 sources ``nengo_dl/config.py``, ``nengo_dl/tensor_node.py``,
``nengo_dl/simulator.py`` and docs ``tensor-node.rst``; each test names its source.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import keras  # noqa: E402
import nengo  # noqa: E402
import tensorflow as tf  # noqa: E402
from nengo.exceptions import ValidationError  # noqa: E402

import nhw.dl as nengo_dl  # noqa: E402


# --- configure_settings inside a sub-network ---------------------------------------


def test_subnetwork_settings_apply_to_simulator():
    """NengoDL config.py stores every setting but ``trainable`` on the top-level
    network (``Network.context[0].config``): dtype float64, and keep_history=False
    keeps one row per run."""
    with nengo.Network(seed=0) as net:
        a = nengo.Node([0.5])
        with nengo.Network():
            nengo_dl.configure_settings(dtype="float64", keep_history=False, stateful=False)
            b = nengo.Node(size_in=1)
        nengo.Connection(a, b, synapse=0.01)
        p = nengo.Probe(b)
    with nengo_dl.Simulator(net, progress_bar=False) as sim:
        assert sim.dtype == "float64"
        sim.run_steps(5)
        assert sim.data[p].shape == (1, 1)
        out1 = sim.predict(np.full((1, 3, 1), 0.5))[p]
        out2 = sim.predict(np.full((1, 3, 1), 0.5))[p]
    np.testing.assert_array_equal(out1, out2)  # stateful=False


def _soft_lif_derivative(J, sigma, tau_rc=0.02, tau_ref=0.002):
    """d rate / dJ of NengoDL's SoftLIFRate (neurons.py ``step``), central difference."""

    def rate(j):
        z = np.log1p(np.exp((j - 1) / sigma)) * sigma
        return 1.0 / (tau_ref + tau_rc * np.log1p(1 / z))

    h = 1e-6
    return (rate(J + h) - rate(J - h)) / (2 * h)


def _lif_gradient(where):
    with nengo.Network(seed=0) as net:
        if where == "top":
            nengo_dl.configure_settings(lif_smoothing=0.05)
        a = nengo.Node([0.0])
        with nengo.Network():
            if where == "sub":
                nengo_dl.configure_settings(lif_smoothing=0.05)
            e = nengo.Ensemble(1, 1, neuron_type=nengo.LIF(), gain=nengo.dists.Choice([1.0]),
                               bias=nengo.dists.Choice([0.0]))
        nengo.Connection(a, e.neurons, synapse=None)
        nengo.Probe(e.neurons)
    with nengo_dl.Simulator(net, progress_bar=False) as sim:
        g = sim.check_gradients(inputs=[np.full((1, 1, 1), 1.05)], atol=1e9)
    return float(list(g.values())[0]["analytic"][0].ravel()[0])


def test_subnetwork_lif_smoothing_gives_soft_lif_gradient():
    """NengoDL config.py (top-level storage) + ``lif_smoothing``: "use the smoothed
    SoftLIFRate neuron model ... to compute the gradient for LIF neurons"."""
    expected = _soft_lif_derivative(1.05, 0.05)  # about 62.7 (LIFRate: about 96.3)
    sub = _lif_gradient("sub")
    np.testing.assert_allclose(sub, expected, rtol=2e-3)
    np.testing.assert_allclose(sub, _lif_gradient("top"), rtol=1e-6)


# --- TensorNode calling conventions ------------------------------------------------


class TimeLayer(keras.layers.Layer):
    """tensor-node.rst / tensor_node.py build_step: a Keras layer gets ``[t, x]`` as one input."""

    def call(self, inputs):
        t, x = inputs
        return x + t


class TimeOnlyLayer(keras.layers.Layer):
    def call(self, t):
        return tf.reshape(t, (1, 1)) * tf.ones((1, 3), t.dtype)


def test_keras_layer_with_pass_time_gets_list_input():
    """NengoDL tensor_node.py SimTensorNodeBuilder.build_step: for a Keras layer
    ``inputs = [t, x]`` is passed as one argument (``layer.call([t, x])``); the
    output shape is inferred with ``[TensorSpec(()), TensorSpec((1,) + shape_in)]``."""
    with nengo.Network() as net:
        a = nengo.Node([1.0, 2.0])
        tn = nengo_dl.TensorNode(TimeLayer(), shape_in=(2,), pass_time=True)
        nengo.Connection(a, tn, synapse=None)
        p = nengo.Probe(tn)
    assert tn.shape_out == (2,)
    with nengo_dl.Simulator(net, progress_bar=False) as sim:
        sim.run_steps(3)
    t = sim.trange()[:, None]
    np.testing.assert_allclose(sim.data[p], np.array([[1.0, 2.0]]) + t, atol=1e-6)


def test_keras_layer_time_only_and_function_forms():
    """NengoDL build_step: with one input a layer gets that tensor (``layer.call(t)``),
    and a plain function always gets positional arguments (``func(t, x)``)."""
    with nengo.Network() as net:
        a = nengo.Node([1.0, 2.0])
        t_only = nengo_dl.TensorNode(TimeOnlyLayer(), pass_time=True)
        fn = nengo_dl.TensorNode(lambda t, x: x * 2 + t, shape_in=(2,), pass_time=True)
        nengo.Connection(a, fn, synapse=None)
        p_t = nengo.Probe(t_only)
        p_f = nengo.Probe(fn)
    assert t_only.shape_out == (3,)
    with nengo_dl.Simulator(net, progress_bar=False) as sim:
        sim.run_steps(3)
    t = sim.trange()[:, None]
    np.testing.assert_allclose(sim.data[p_t], np.tile(t, (1, 3)), atol=1e-6)
    np.testing.assert_allclose(sim.data[p_f], np.array([[2.0, 4.0]]) + t, atol=1e-6)


# --- TensorNode validation ---------------------------------------------------------


def test_tensor_node_needs_shape_in_or_pass_time():
    """NengoDL tensor_node.py TensorNode.__init__: ``if not (self.shape_in or
    self.pass_time): raise ValidationError("Must specify either shape_in or pass_time")``."""
    with nengo.Network():
        with pytest.raises(ValidationError, match="Must specify either shape_in or pass_time"):
            nengo_dl.TensorNode(lambda: tf.ones((1, 2)), pass_time=False)
        with pytest.raises(ValidationError, match="Must specify either shape_in or pass_time"):
            nengo_dl.TensorNode(lambda: tf.ones((1, 2)), shape_out=(2,), pass_time=False)


@pytest.mark.parametrize("sim_dtype, out_dtype", [("float32", tf.float64), ("float64", tf.float32)])
def test_tensor_node_output_dtype_must_match(sim_dtype, out_dtype):
    """NengoDL tensor_node.py validate_output(..., dtype=signals.dtype): "TensorNode
    output should have dtype {dtype} (got {output.dtype})"."""
    with nengo.Network() as net:
        a = nengo.Node([1.0])
        tn = nengo_dl.TensorNode(lambda t, x: tf.cast(x, out_dtype), shape_in=(1,), shape_out=(1,))
        nengo.Connection(a, tn)
    with pytest.raises(ValidationError, match=f"should have dtype {sim_dtype}"):
        nengo_dl.Simulator(net, dtype=sim_dtype, progress_bar=False)


def test_tensor_node_output_in_sim_dtype_runs_float64():
    """The same function returning the input's dtype runs in either precision."""
    with nengo.Network() as net:
        a = nengo.Node([1.5])
        tn = nengo_dl.TensorNode(lambda t, x: x * tf.cast(2, x.dtype), shape_in=(1,), shape_out=(1,))
        nengo.Connection(a, tn, synapse=None)
        p = nengo.Probe(tn)
    with nengo_dl.Simulator(net, dtype="float64", progress_bar=False) as sim:
        sim.run_steps(2)
    np.testing.assert_allclose(sim.data[p], [[3.0], [3.0]])


# --- check_gradients resets the state ------------------------------------------------


def test_check_gradients_resets_simulation_state():
    """NengoDL simulator.py check_gradients, Notes: "Calling this method will reset the
    internal simulation state" (``self.reset(include_probes=False,
    include_trainable=False, include_processes=False)``)."""
    with nengo.Network(seed=0) as net:
        a = nengo.Node([0.3])
        e = nengo.Ensemble(5, 1, neuron_type=nengo.RectifiedLinear())
        nengo.Connection(a, e, synapse=None)
        p = nengo.Probe(e.neurons)
        p_filt = nengo.Probe(e, synapse=0.05)
    with nengo_dl.Simulator(net, unroll_simulation=3, progress_bar=False) as sim:
        sim.run_steps(4)
        before = sim.data[p].copy()
        sim.check_gradients()
        assert sim.n_steps == 0
        assert sim.time == 0
        np.testing.assert_array_equal(sim.data[p], before)  # include_probes=False
        # the state is the initial one again: the next run starts like a fresh one
        sim.reset(include_probes=True)
        sim.run_steps(2)
        fresh = sim.data[p_filt].copy()
        sim.run_steps(2)
        sim.check_gradients()
        sim.run_steps(2)
        np.testing.assert_allclose(sim.data[p_filt][-2:], fresh, atol=1e-6)

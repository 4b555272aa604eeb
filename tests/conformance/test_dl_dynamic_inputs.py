"""NengoDL's input data on nhw: generators, tf.data, the "n_steps" input, default names,
sanitised labels, and every step of ``sample_every`` probes in predict/fit.

Written from NengoDL 3.6's documented behaviour (Simulator docstrings), not from its tests.
"""

from __future__ import annotations

import nengo
import numpy as np
import pytest
import tensorflow as tf
from nengo.exceptions import ValidationError

from tf_training_helpers import compile_fast, make_sim


def _docstring_net():
    with nengo.Network() as net:
        a = nengo.Node([0], label="a")
        p = nengo.Probe(a, label="p")
    return net, a, p


def _steps(n, steps):
    return np.full((n, 1), steps, dtype=np.int32)


def test_docstring_dataset_without_drop_remainder():
    """NengoDL's own example: ``.batch(sim.minibatch_size)`` and the "n_steps" input."""
    net, a, p = _docstring_net()
    x = {"a": tf.ones((50, 10, 1)), "n_steps": tf.ones((50, 1), dtype=tf.int32) * 10}
    with make_sim(net, batch=5) as sim:
        compile_fast(sim, loss="mse")
        xy = tf.data.Dataset.from_tensor_slices((x, {"p": tf.ones((50, 10, 1))})).batch(sim.minibatch_size)
        assert set(sim.fit(xy, verbose=0).history) == {"loss", "p_loss"}
        assert sim.evaluate(xy, verbose=0)["loss"] == 0
        out = sim.predict(tf.data.Dataset.from_tensor_slices(x).batch(sim.minibatch_size))
        assert out[p].shape == (50, 10, 1) and np.all(out[p] == 1)


def test_dataset_partial_batch_is_named():
    net, a, p = _docstring_net()
    x = {"a": tf.ones((7, 2, 1))}
    with make_sim(net, batch=5) as sim:
        compile_fast(sim, loss="mse")
        ds = tf.data.Dataset.from_tensor_slices((x, {"p": tf.ones((7, 2, 1))})).batch(5)
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"minibatch_size \(5\).*drop_remainder=True"):
            sim.evaluate(ds, verbose=0)


def test_generators_in_fit_evaluate_predict():
    net, a, p = _docstring_net()

    def pairs():
        while True:
            yield {"a": np.full((5, 4, 1), 2.0), "n_steps": _steps(5, 4)}, {"p": np.ones((5, 4, 1))}

    def inputs():
        for i in range(3):
            yield {"a": np.full((5, 4, 1), float(i))}

    with make_sim(net, batch=5) as sim:
        compile_fast(sim, loss="mse")
        hist = sim.fit(pairs(), steps_per_epoch=2, epochs=2, verbose=0)
        assert hist.history["loss"] == [1.0, 1.0]
        assert sim.evaluate(pairs(), steps=2, verbose=0)["p_loss"] == 1.0
        out = sim.predict(inputs())[p]
        assert out.shape == (15, 4, 1) and np.array_equal(out[::5, 0, 0], [0, 1, 2])
        assert sim.predict(inputs(), steps=2)[p].shape == (10, 4, 1)


def test_steps_input_alone_and_with_arrays():
    with nengo.Network() as net:
        e = nengo.Node(lambda t: t)
        p = nengo.Probe(e)
    with make_sim(net, batch=2) as sim:
        out = sim.predict({"n_steps": _steps(2, 3)})[p]
        assert out.shape == (2, 3, 1)
        assert sim.predict({"node": np.ones((2, 3, 1)), "n_steps": _steps(2, 3)})[p].shape == (2, 3, 1)
        with pytest.raises(ValidationError, match="n_steps=4 but the 'n_steps' input holds 3"):
            sim.predict({"n_steps": _steps(2, 3)}, n_steps=4)
        ds = tf.data.Dataset.from_tensor_slices(({"n_steps": _steps(4, 3)}, {"probe": np.zeros((4, 3, 1))})).batch(2)
        compile_fast(sim, loss="mse")
        assert sim.evaluate(ds, verbose=0)["loss"] > 0


def test_dynamic_input_errors_name_argument_expected_received():
    net, a, p = _docstring_net()
    with make_sim(net, batch=5) as sim:
        compile_fast(sim, loss="mse")
        gen = ({"a": np.ones((5, 2, 1))} for _ in range(2))
        with pytest.raises(ValidationError, match="predict_on_batch: x must be an array.*received generator"):
            sim.predict_on_batch(gen)
        ds = tf.data.Dataset.from_tensor_slices({"a": tf.ones((5, 2, 1))}).batch(5)
        with pytest.raises(ValidationError, match=r"x yields inputs only; expected \(inputs, targets\)"):
            sim.fit(ds, verbose=0)
        with pytest.raises(ValidationError, match="y must be None when x is a tf.data.Dataset"):
            sim.fit(ds, np.ones((5, 2, 1)), verbose=0)
        bad = tf.data.Dataset.from_tensor_slices(({"b": tf.ones((5, 2, 1))}, {"p": tf.ones((5, 2, 1))})).batch(5)
        with pytest.raises(ValidationError, match=r"key 'b'.*expected one of \['a', 'n_steps'\]"):
            sim.fit(bad, verbose=0)


def test_default_names_address_unlabelled_nodes():
    with nengo.Network(seed=0) as net:
        n0 = nengo.Node([0])
        n1 = nengo.Node([0])
        nengo.Probe(n0)
        p1 = nengo.Probe(n1, label="my probe")
    with make_sim(net, batch=1) as sim:
        assert np.all(sim.predict({"node_1": np.full((1, 2, 1), 3.0)})[p1] == 3)
        compile_fast(sim, loss={p1: "mse"})
        hist = sim.fit({"node_1": np.ones((1, 2, 1))}, {"my_probe": np.ones((1, 2, 1))}, verbose=0)
        assert set(hist.history) == {"loss", "my_probe_loss"}
        ds = tf.data.Dataset.from_tensor_slices(
            ({"node": tf.ones((2, 2, 1)), "node_1": tf.ones((2, 2, 1)), "n_steps": tf.fill((2, 1), 2)},
             {"my_probe": tf.ones((2, 2, 1))})).batch(1, drop_remainder=True)
        assert sim.evaluate(ds, verbose=0) == {"loss": 0.0, "my_probe_loss": 0.0}


def test_spaces_in_probe_labels_with_several_losses():
    with nengo.Network(seed=0) as net:
        a = nengo.Node([0], label="a")
        p0 = nengo.Probe(a, label="p0")
        p1 = nengo.Probe(a, label="my probe")
    x, y = np.ones((1, 2, 1)), np.ones((1, 2, 1))
    with make_sim(net, batch=1) as sim:
        compile_fast(sim, loss="mse")
        assert set(sim.evaluate({a: x}, {p0: y, p1: y}, verbose=0)) == {"loss", "p0_loss", "my_probe_loss"}
        assert set(sim.fit({a: x}, {p0: y, "my probe": y}, verbose=0).history) == {
            "loss", "p0_loss", "my_probe_loss"}


def test_sample_every_probes_keep_every_step_in_predict_and_fit():
    with nengo.Network(seed=0) as net:
        a = nengo.Node([0.3], label="a")
        e = nengo.Ensemble(10, 1, neuron_type=nengo.RectifiedLinear())
        nengo.Connection(a, e, synapse=None)
        ps = nengo.Probe(e, sample_every=0.002, synapse=None, label="ps")
    x = np.ones((2, 4, 1))
    with make_sim(net, batch=2) as sim:
        full = sim.predict(x)[ps]
        assert full.shape == (2, 4, 1)
        compile_fast(sim, "sgd", loss={ps: "mse"})
        assert set(sim.fit(x, {ps: np.zeros((2, 4, 1))}, verbose=0).history) == {"loss", "ps_loss"}
        sim.run_steps(4, data=x)
        assert np.asarray(sim.data[ps]).shape == (2, 2, 1)  # run_steps still thins

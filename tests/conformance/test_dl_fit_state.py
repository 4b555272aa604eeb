"""NengoDL's ``stateful`` for fit/evaluate: every call begins in the simulator's current
state; ``stateful=False`` leaves that state (and time) unchanged, ``stateful=True``
continues batch after batch and keeps the final state (NengoDL's simulator docs,
``fill_docs`` ``stateful``; ``_call_keras``; ``callbacks.IsolateState``)."""

from __future__ import annotations

import warnings

import nengo
import numpy as np
import pytest
from nengo.exceptions import ValidationError

import nhw.dl as nengo_dl
from nhw.backends.tensorflow._tf import tf
from nhw.backends.tensorflow.api.train_checks import TrainingError
from nhw.errors import UnsupportedFeatureError


def _synapse_net(node_output=(0.0,)):
    """Node -> 0.05 s synapse -> Node: the state is the synapse's charge."""
    with nengo.Network(seed=0) as net:
        net.a = nengo.Node(list(node_output) if not callable(node_output) else node_output, label="a")
        out = nengo.Node(size_in=1, label="out")
        nengo.Connection(net.a, out, synapse=0.05, transform=1.0)
        net.p = nengo.Probe(out, label="p")
    return net


def _sim(net, batch=2):
    sim = nengo_dl.Simulator(net, minibatch_size=batch, progress_bar=False, seed=0)
    # lr 0: fit reports losses without changing anything
    sim.compile(optimizer=tf.optimizers.SGD(0.0), loss={net.p: "mse"}, jit_compile=False)
    return sim


def _charge(sim, net, steps=50):
    sim.run_steps(steps, data={net.a: np.ones((sim.minibatch_size, steps, 1))})


def _mse(pred):
    return float(np.mean(pred ** 2))


X = np.zeros((4, 3, 1))
Y = np.zeros((4, 3, 1))


def test_evaluate_and_fit_begin_in_the_current_state():
    """The QA case: after run_steps charges the synapse, the loss is the predicted decay's MSE."""
    net = _synapse_net()
    with _sim(net) as sim:
        _charge(sim, net)
        pred = sim.predict(X, verbose=0)[net.p]
        assert pred[0, 0, 0] > 0.5  # decaying from the charged state, not 0 (time 0)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # nhw's "starts from the initial state" warning is gone
            loss = sim.evaluate(X, {net.p: Y}, verbose=0)["loss"]
            hist = sim.fit(X, {net.p: Y}, epochs=2, verbose=0)
        np.testing.assert_allclose(loss, _mse(pred), rtol=1e-5)
        # every batch of every epoch starts from the same (current) state
        np.testing.assert_allclose(hist.history["loss"], [_mse(pred)] * 2, rtol=1e-5)


def test_stateful_false_leaves_the_state_and_time_unchanged():
    net = _synapse_net()
    with _sim(net) as sim:
        _charge(sim, net)
        sim.evaluate(X, {net.p: Y}, stateful=True, verbose=0)  # the saved state moves on: 56
        sim.run_steps(4, data={net.a: np.ones((2, 4, 1))})
        before = sim.predict(X, verbose=0)[net.p]
        sim.evaluate(X, {net.p: Y}, verbose=0)
        sim.fit(X, {net.p: Y}, epochs=2, verbose=0)
        assert sim.n_steps == 60
        np.testing.assert_allclose(sim.time, 0.06)
        np.testing.assert_allclose(sim.predict(X, verbose=0)[net.p], before, rtol=1e-6)


def test_evaluate_stateful_true_continues_batch_after_batch_and_keeps_the_end():
    """As predict(stateful=True): batch 2 continues batch 1; the final state is kept."""
    net = _synapse_net()
    x2 = np.zeros((2, 4, 1))
    with _sim(net) as ref:
        _charge(ref, net)
        cont = ref.predict(X, stateful=True, verbose=0)[net.p]
        after_ref = ref.predict(x2, verbose=0)[net.p]
        assert ref.n_steps == 56
    with _sim(net) as sim:
        _charge(sim, net)
        res = sim.evaluate(X, {net.p: Y}, stateful=True, verbose=0, return_dict=True)
        assert sim.n_steps == 56  # 50 + 2 batches x 3 steps
        np.testing.assert_allclose(sim.time, 0.056)
        np.testing.assert_allclose(res["loss"], _mse(cont), rtol=1e-5)
        np.testing.assert_allclose(sim.predict(x2, verbose=0)[net.p], after_ref, rtol=1e-5)


def test_fit_stateful_true_advances_through_batches_and_epochs():
    net = _synapse_net()
    with _sim(net) as ref:
        _charge(ref, net)
        ref.predict(np.zeros((8, 3, 1)), stateful=True, verbose=0)  # 2 epochs x 2 batches
        after_ref = ref.predict(X[:2], verbose=0)[net.p]
    with _sim(net) as sim:
        _charge(sim, net)
        hist = sim.fit(X, {net.p: Y}, epochs=2, stateful=True, shuffle=False, verbose=0)
        assert sim.n_steps == 50 + 2 * 2 * 3
        losses = hist.history["loss"]
        assert losses[1] < losses[0]  # the second epoch continues the decay
        np.testing.assert_allclose(sim.predict(X[:2], verbose=0)[net.p], after_ref, rtol=1e-5)


def test_fit_stateful_true_from_time_zero_keeps_the_end():
    net = _synapse_net(node_output=(1.0,))
    with _sim(net) as ref:
        ref.predict(np.ones((4, 3, 1)), stateful=True, verbose=0)
        after_ref = ref.predict(X[:2], verbose=0)[net.p]
    with _sim(net) as sim:
        sim.fit({net.a: np.ones((4, 3, 1))}, {net.p: Y}, stateful=True, shuffle=False, verbose=0)
        assert sim.n_steps == 6
        np.testing.assert_allclose(sim.predict(X[:2], verbose=0)[net.p], after_ref, rtol=1e-5)


def test_isolate_state_with_stateful_true_fit():
    """callbacks.IsolateState: every batch starts from the state at its creation, and the
    simulator returns to it."""
    net = _synapse_net()
    with _sim(net) as sim:
        _charge(sim, net)
        pred = sim.predict(X, verbose=0)[net.p]
        hist = sim.fit(X, {net.p: Y}, epochs=2, stateful=True, verbose=0,
                       callbacks=[nengo_dl.callbacks.IsolateState(sim)])
        np.testing.assert_allclose(hist.history["loss"], [_mse(pred)] * 2, rtol=1e-5)
        assert sim.n_steps == 50
        np.testing.assert_allclose(sim.predict(X, verbose=0)[net.p], pred, rtol=1e-6)


def test_time_zero_is_unchanged_and_uses_no_saved_state():
    net = _synapse_net(node_output=(1.0,))
    with _sim(net) as sim:
        fresh = sim.evaluate({net.a: np.ones((4, 3, 1))}, {net.p: Y}, verbose=0)["loss"]
        pred = sim.predict(np.ones((4, 3, 1)), verbose=0)[net.p]
        np.testing.assert_allclose(fresh, _mse(pred), rtol=1e-5)
        sim.fit({net.a: np.ones((4, 3, 1))}, {net.p: Y}, verbose=0)
        assert sim.keras_model.state is None  # the time-0 path reads no state variables
        _charge(sim, net)
        sim.evaluate({net.a: np.ones((4, 3, 1))}, {net.p: Y}, verbose=0)
        sim.reset(include_trainable=False)
        again = sim.evaluate({net.a: np.ones((4, 3, 1))}, {net.p: Y}, verbose=0)["loss"]
        np.testing.assert_allclose(again, fresh, rtol=1e-6)


def test_switching_between_time_zero_and_a_state_does_not_retrace_every_call():
    net = _synapse_net()
    with _sim(net) as sim:
        sim.evaluate(X, {net.p: Y}, verbose=0)
        f_initial = sim.keras_model.test_function
        _charge(sim, net)
        sim.evaluate(X, {net.p: Y}, verbose=0)
        f_state = sim.keras_model.test_function
        assert f_state is not f_initial
        sim.reset(include_trainable=False)
        sim.evaluate(X, {net.p: Y}, verbose=0)
        assert sim.keras_model.test_function is f_initial
        _charge(sim, net)
        sim.evaluate(X, {net.p: Y}, verbose=0)
        assert sim.keras_model.test_function is f_state


def test_network_stateful_false_always_starts_from_the_initial_state():
    net = _synapse_net()
    with net:
        nengo_dl.configure_settings(stateful=False)
    with _sim(net) as sim:
        _charge(sim, net)
        fresh = sim.evaluate(X, {net.p: Y}, verbose=0)["loss"]
        np.testing.assert_allclose(fresh, 0.0, atol=1e-12)
        with pytest.warns(UserWarning, match="ignoring stateful=True"):
            sim.evaluate(X, {net.p: Y}, stateful=True, verbose=0)


def test_batch_size_other_than_minibatch_needs_the_initial_state():
    net = _synapse_net()
    x, y = np.zeros((8, 3, 1)), np.zeros((8, 3, 1))
    with _sim(net) as sim:
        with pytest.warns(UserWarning, match="NengoDL ignores batch_size"):
            sim.evaluate(x, {net.p: y}, batch_size=4, verbose=0)  # time 0: allowed
        _charge(sim, net)
        with pytest.warns(UserWarning, match="NengoDL ignores batch_size"):
            with pytest.raises(ValidationError, match=r"minibatch_size=2 samples; batch_size=4 cannot"):
                sim.evaluate(x, {net.p: y}, batch_size=4, verbose=0)


def test_time_varying_input_without_data_from_a_state_is_refused_clearly():
    net = _synapse_net(node_output=lambda t: np.sin(10 * t))
    with _sim(net) as sim:
        sim.run_steps(10)
        with pytest.raises(UnsupportedFeatureError, match=r"at step 10.*change\(s\) over time without input data"):
            sim.evaluate(n_steps=3, y={net.p: Y}, verbose=0)
        # with data for the Node it runs from the state
        pred = sim.predict(X, verbose=0)[net.p]
        loss = sim.evaluate(X, {net.p: Y}, verbose=0)["loss"]
        np.testing.assert_allclose(loss, _mse(pred), rtol=1e-5)


def test_a_state_under_tf_distribute_is_refused_naming_the_strategy():
    net = _synapse_net()
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        sim = _sim(net)
    with sim:
        assert np.isfinite(sim.evaluate(X, {net.p: Y}, verbose=0)["loss"])  # time 0: as before
        _charge(sim, net)
        with pytest.raises(UnsupportedFeatureError, match=r"at step 50.*tf\.distribute strategy"):
            sim.evaluate(X, {net.p: Y}, verbose=0)
        with pytest.raises(UnsupportedFeatureError, match=r"fit\(stateful=True\).*tf\.distribute"):
            sim.fit(X, {net.p: Y}, stateful=True, verbose=0)


def test_a_diverged_stateful_fit_rolls_back_the_state_too():
    """A fit that makes the parameters non-finite restores them, and (stateful=True) the
    simulation state and time as well: the next call starts where this one did."""
    net = _synapse_net()
    with nengo_dl.Simulator(net, minibatch_size=2, progress_bar=False, seed=0) as sim:
        sim.compile(optimizer=tf.optimizers.SGD(1e38), loss={net.p: "mse"}, jit_compile=False)
        _charge(sim, net)
        steps = sim.n_steps
        before = sim.predict(X, verbose=0)[net.p]
        with pytest.raises(TrainingError, match="non-finite"):
            sim.fit(X, {net.p: np.full_like(Y, 1e30)}, epochs=3, verbose=0, stateful=True)
        assert sim.n_steps == steps
        after = sim.predict(X, verbose=0)[net.p]
        np.testing.assert_array_equal(after, before)

"""NengoDL's Simulator API on nhw: run/step/run_steps/predict keywords, state, reset.

Written from NengoDL 3.6's documented behaviour (API reference), not from its tests.
"""

from __future__ import annotations

import warnings

import nengo
import numpy as np
import pytest
from nengo.exceptions import ValidationError

from nhw.backends.tensorflow import Simulator, callbacks
from tf_training_helpers import compile_fast, make_sim, regression_net, square_data


def _leaky_net() -> nengo.Network:
    """Input Node -> low-pass filtered Node: the output depends on the carried state."""
    with nengo.Network(seed=1) as net:
        net.inp = nengo.Node([1.0], label="inp")
        net.out = nengo.Node(size_in=1, label="out")
        nengo.Connection(net.inp, net.out, synapse=0.05)
        net.p = nengo.Probe(net.out, label="p")
    return net


def _sim(net, batch=2) -> Simulator:
    return Simulator(net, minibatch_size=batch, progress_bar=False, seed=0)


def test_predict_stateful_semantics_follow_nengo_dl_docs():
    """stateful=False leaves the state alone; stateful=True continues from it and keeps the end."""
    net = _leaky_net()
    with _sim(net) as sim:
        first = sim.predict(n_steps=5)[net.p]
        again = sim.predict(n_steps=5, stateful=False)[net.p]
        np.testing.assert_allclose(first, again)
        assert sim.n_steps == 0
        sim.predict(n_steps=5, stateful=True)
        assert sim.n_steps == 5
        later = sim.predict(n_steps=5)[net.p]
        # the filter has charged up: the second run starts higher than the first
        assert np.all(later[:, 0] > first[:, 0])
        assert sim.n_steps == 5


def test_predict_keras_keywords():
    net = _leaky_net()
    with _sim(net) as sim:
        x = np.ones((6, 4, 1))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            out = sim.predict(x, verbose=0, max_queue_size=10, workers=1, use_multiprocessing=False)
        assert out[net.p].shape == (6, 4, 1)
        # steps: only the first minibatches
        assert sim.predict(x, steps=2, verbose=0)[net.p].shape == (4, 4, 1)
        with pytest.warns(UserWarning, match=r"batch_size=3 is ignored.*minibatch_size \(2\)"):
            sim.predict(x, batch_size=3, verbose=0)
        with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) \['nonsense'\]"):
            sim.predict(x, nonsense=1)


def test_predict_verbose_zero_is_silent(capsys):
    net = _leaky_net()
    with Simulator(net, minibatch_size=2, seed=0) as sim:  # progress_bar=True
        capsys.readouterr()
        sim.predict(np.ones((2, 3, 1)), verbose=0)
        assert capsys.readouterr().out == ""


def test_predict_callbacks_see_every_minibatch():
    from nhw.backends.tensorflow._tf import keras

    seen = []

    class Record(keras.callbacks.Callback):
        def on_predict_batch_end(self, batch, logs=None):
            # Keras flattens {"outputs": {...}} into the logs
            seen.append((batch, set(logs.get("outputs", logs))))

    net = _leaky_net()
    with _sim(net) as sim:
        sim.predict(np.ones((4, 3, 1)), callbacks=[Record()], verbose=0)
    assert seen == [(0, {"p"}), (1, {"p"})]


def test_partial_last_batch_is_truncated_with_warning():
    net = _leaky_net()
    with _sim(net, batch=4) as sim:
        with pytest.warns(UserWarning, match=r"10 samples is not a multiple.*minibatch_size \(4\).*first 8"):
            out = sim.predict(np.ones((10, 3, 1)), verbose=0)
        assert out[net.p].shape == (8, 3, 1)
        with pytest.raises(ValidationError, match=r"3 sample\(s\).*at least one minibatch of 4"):
            sim.predict(np.ones((3, 3, 1)))


def test_run_steps_n_steps_keyword_and_stateful_false():
    net = _leaky_net()
    with _sim(net) as sim:
        sim.run_steps(n_steps=4, stateful=False)
        assert sim.n_steps == 0
        first = np.array(sim.data[net.p])
        sim.run_steps(4)  # starts from the same (untouched) state
        np.testing.assert_allclose(np.array(sim.data[net.p])[:, 4:], first)
        assert sim.n_steps == 4
        with pytest.raises(ValidationError, match="both n_steps=1 and steps=2"):
            sim.run_steps(1, steps=2)


def test_step_and_run_take_run_steps_keywords():
    net = _leaky_net()
    with _sim(net) as sim:
        sim.step(data={net.inp: np.zeros((2, 1, 1))})
        assert sim.n_steps == 1
        np.testing.assert_allclose(sim.data[net.p], 0)
        sim.run(0.003, data=np.full((2, 3, 1), 2.0), stateful=False)
        assert sim.n_steps == 1
        assert np.all(sim.data[net.p][:, 2:] > 0)  # the synapse delays by one step


def test_reset_options():
    net = regression_net(probe_label="probe")
    x, y = square_data(8)
    with make_sim(net) as sim:
        compile_fast(sim, "adam", loss="mse")
        initial = sim.data.get_params((net.conn, "weights"))[0].copy()
        sim.fit(x, y, epochs=2, verbose=0)
        trained = sim.data.get_params((net.conn, "weights"))[0].copy()
        assert not np.allclose(initial, trained)
        sim.run_steps(2)
        sim.reset(include_trainable=False, include_probes=False)
        assert sim.n_steps == 0
        assert sim.data[net.p].shape[1] == 2  # probe data kept
        np.testing.assert_allclose(sim.data.get_params((net.conn, "weights"))[0], trained)
        sim.reset()  # defaults: training undone, probe data cleared
        np.testing.assert_allclose(sim.data.get_params((net.conn, "weights"))[0], initial, rtol=1e-6)
        assert sim.data[net.p].size == 0


def test_reset_include_processes():
    with nengo.Network(seed=0) as net:
        noise = nengo.Node(nengo.processes.WhiteNoise(), size_out=1)
        p = nengo.Probe(noise)
    with _sim(net) as sim:
        sim.run_steps(5)
        first = np.array(sim.data[p])
        sim.reset()
        sim.run_steps(5)
        np.testing.assert_allclose(sim.data[p], first)  # restarted stream
        sim.reset(include_processes=False)
        sim.run_steps(5)
        assert not np.allclose(sim.data[p], first)  # stream continued


def test_soft_reset_is_deprecated_reset():
    net = _leaky_net()
    with _sim(net) as sim:
        sim.run_steps(3)
        with pytest.warns(DeprecationWarning, match="reset"):
            sim.soft_reset(include_probes=True)
        assert sim.n_steps == 0 and sim.data[net.p].size == 0


def test_get_nengo_params_as_dict_needs_unique_labels():
    with nengo.Network(seed=0) as net:
        a = nengo.Ensemble(5, 1, label="same")
        b = nengo.Ensemble(5, 1, label="same")
        c = nengo.Ensemble(5, 1)
    with _sim(net, batch=1) as sim:
        params = sim.get_nengo_params([a], as_dict=True)
        assert list(params) == ["same"] and "bias" in params["same"]
        with pytest.raises(ValidationError, match=r"\['same'\] name several"):
            sim.get_nengo_params([a, b], as_dict=True)
        with pytest.raises(ValidationError, match="has no label"):
            sim.get_nengo_params([c], as_dict=True)
        assert isinstance(sim.get_nengo_params([a, c]), list)


def test_data_get_params():
    net = regression_net()
    with make_sim(net) as sim:
        enc, bias, bias2, w, gain = sim.data.get_params(
            (net.ens, "encoders"), (net.ens.neurons, "bias"), (net.ens, "bias"), (net.conn, "weights"),
            (net.ens, "gain"),
        )
        np.testing.assert_allclose(enc, sim.data[net.ens].scaled_encoders)
        np.testing.assert_allclose(bias, sim.data[net.ens].bias)
        np.testing.assert_allclose(bias2, bias)
        np.testing.assert_allclose(w, sim.data[net.conn].weights)
        np.testing.assert_allclose(gain, sim.data[net.ens].gain)
        with pytest.raises(ValidationError, match="no parameter 'nope'"):
            sim.data.get_params((net.ens, "nope"))
        with pytest.raises(ValidationError, match="expected .object, attribute name. pairs"):
            sim.data.get_params(net.ens)
    with pytest.warns(UserWarning, match="closed"):
        (bias,) = sim.data.get_params((net.ens, "bias"))
    np.testing.assert_allclose(bias, sim.model.params[net.ens].bias)


def test_isolate_state_callback_restores_state():
    net = _leaky_net()
    with _sim(net) as sim:
        sim.run_steps(3)
        cb = callbacks.IsolateState(sim)
        a = sim.predict(n_steps=4, stateful=True, callbacks=[cb], verbose=0)[net.p]
        assert sim.n_steps == 3  # every batch (and the end) back to the saved state
        b = sim.predict(n_steps=4, verbose=0)[net.p]
        np.testing.assert_allclose(a, b)


def test_simulator_on_a_built_model_leaves_the_callers_model_unchanged():
    """``Simulator(None, model=m)``: the caller's model keeps its operators (nhw rewrites a copy)."""
    import nengo
    import numpy as np
    from nengo.builder import Model

    from nhw.backends.tensorflow import Simulator

    with nengo.Network(seed=0) as net:
        a, b = nengo.Ensemble(20, 1), nengo.Ensemble(20, 1)
        nengo.Connection(nengo.Node(0.5), a)
        nengo.Connection(a, b)
        p = nengo.Probe(b, synapse=0.01)
    model = Model()
    model.build(net)
    ops = list(model.operators)
    with Simulator(None, model=model, progress_bar=False) as sim:
        sim.run_steps(10)
        got = sim.data[p]
    assert model.operators == ops
    with nengo.Simulator(None, model=model, progress_bar=False) as ref:
        ref.run_steps(10)
    np.testing.assert_allclose(got, ref.data[p], atol=1e-6)

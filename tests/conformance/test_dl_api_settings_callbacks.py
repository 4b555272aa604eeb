"""NengoDL's configure_settings keys and ``nengo_dl.callbacks`` on nhw.

Written from NengoDL 3.6's documented behaviour (configuration page, API
reference), not from its tests.
"""

from __future__ import annotations

import nengo
import numpy as np
import pytest
from nengo.exceptions import ValidationError

from nhw.backends.tensorflow import Simulator, callbacks
from nhw.backends.tensorflow.settings import configure_settings, get_setting
from tf_training_helpers import compile_fast, make_sim, regression_net, square_data


def test_every_documented_key_is_accepted():
    with nengo.Network() as net:
        configure_settings(
            trainable=None, planner=lambda *a: None, sorter=lambda *a: None,
            simplifications=[lambda *a: None], inference_only=False, lif_smoothing=0.1,
            dtype="float32", keep_history=True, stateful=False, use_loop=False, learning_phase=None,
        )
    assert get_setting(net, "use_loop") is False
    assert get_setting(net, "stateful") is False


def test_dtype_accepts_tf_dtypes():
    from nhw.backends.tensorflow._tf import tf

    with nengo.Network() as net:
        configure_settings(dtype=tf.float64)
        nengo.Node([0])
    assert get_setting(net, "dtype") == "float64"
    with Simulator(net, progress_bar=False) as sim:
        assert sim.dtype == "float64"


def test_bad_values_name_the_setting():
    with nengo.Network():
        with pytest.raises(ValidationError, match="use_loop must be a bool; got 'no'"):
            configure_settings(use_loop="no")
        with pytest.raises(ValidationError, match="unknown setting 'use_lop'"):
            configure_settings(use_lop=True)


def test_use_loop_false_gives_the_same_results():
    def build(use_loop):
        net = regression_net()
        with net:
            configure_settings(use_loop=use_loop)
        return net

    x = np.linspace(-1, 1, 8).reshape(8, 1, 1)
    outs = []
    for flag in (True, False):
        net = build(flag)
        with make_sim(net) as sim:
            outs.append(sim.predict(x, verbose=0)[net.p])
    np.testing.assert_allclose(outs[0], outs[1])


def test_nengo_summaries_writes_event_file(tmp_path):
    net = regression_net()
    x, y = square_data(8)
    with make_sim(net) as sim:
        compile_fast(sim, "adam", loss="mse")
        cb = callbacks.NengoSummaries(tmp_path, sim, [net.ens, net.ens.neurons, net.conn])
        assert [n for n, _, _ in cb.summaries] == [
            "Ensemble_ens_encoders", "Ensemble.neurons_ens_bias", "Connection_None_weights"]
        sim.fit(x, y, epochs=2, verbose=0, callbacks=[cb])
    assert list(tmp_path.glob("events.out.tfevents*"))


def test_nengo_summaries_rejects_other_objects(tmp_path):
    net = regression_net()
    with make_sim(net) as sim:
        with pytest.raises(ValidationError, match=r"cannot log .*Node.*expected an Ensemble"):
            callbacks.NengoSummaries(tmp_path, sim, [net.inp])
        with nengo.Network():
            pass
    with nengo.Network() as net2:
        a = nengo.Node([0])
        b = nengo.Node(size_in=1)
        conn = nengo.Connection(a, b)  # identity: no weights
    with Simulator(net2, progress_bar=False) as sim2:
        with pytest.raises(ValidationError, match="has no weights to log"):
            callbacks.NengoSummaries(tmp_path, sim2, [conn])


def test_tensorboard_callback_records_predict(tmp_path):
    net = regression_net()
    with make_sim(net) as sim:
        x = np.zeros((8, 1, 1))
        sim.predict(x, verbose=0, callbacks=[callbacks.TensorBoard(log_dir=str(tmp_path))])
    assert any(tmp_path.rglob("events.out.tfevents*"))


def test_keep_history_per_probe():
    """NengoDL: ``net.config[probe].keep_history`` overrides the network's setting for that probe."""
    import nengo

    from nhw.backends.tensorflow import Simulator, configure_settings

    with nengo.Network(seed=0) as net:
        configure_settings(keep_history=True)
        a = nengo.Ensemble(10, 1)
        nengo.Connection(nengo.Node(0.5), a)
        every = nengo.Probe(a)
        last = nengo.Probe(a.neurons)
        net.config[last].keep_history = False
    with Simulator(net, progress_bar=False) as sim:
        sim.run_steps(5)
        assert sim.data[every].shape == (5, 1) and sim.data[last].shape == (1, 10)
        out = sim.predict(n_steps=5)
        assert out[every].shape == (1, 5, 1) and out[last].shape == (1, 1, 10)

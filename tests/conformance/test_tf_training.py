"""Training the TensorFlow simulator: compile/fit/evaluate, data forms, bad input, NaN, distribution.

What trains, freezing and parameter files: test_tf_params.py."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import keras  # noqa: E402
import nengo  # noqa: E402
import tensorflow as tf  # noqa: E402
from nengo.exceptions import SimulationError, ValidationError  # noqa: E402

from nhw.backends.tensorflow import configure_settings  # noqa: E402
from tf_training_helpers import (  # noqa: E402
    changed, compile_fast, lif_chain, make_sim, regression_net, square_data, var_of, weights,
)

ROOT = Path(__file__).resolve().parents[2]


# --- compile / evaluate -------------------------------------------------------------
def test_single_unlabeled_probe_evaluate_keys_and_value():
    net = regression_net()
    x, y = square_data()
    with make_sim(net) as sim:
        sim.compile(keras.optimizers.SGD(0.0), loss="mse")  # default: XLA where possible
        res = sim.evaluate(x, y, verbose=0)
        assert set(res) == {"loss", "probe_loss"}
        pred = sim.predict(x, n_steps=1)[net.p]
    assert np.isclose(res["loss"], np.mean((pred - y) ** 2), rtol=1e-4)
    assert np.isclose(res["probe_loss"], res["loss"], rtol=1e-6)


@pytest.mark.parametrize("form", ["once", "list", "dict_probe", "dict_name"])
def test_compile_loss_forms(form):
    net = regression_net(probe_label="a", second_probe=True)
    x, y = square_data()
    y2 = np.zeros((16, 1, 1))
    loss = {
        "once": "mse",
        "list": ["mse", "mse"],
        "dict_probe": {net.p: "mse", net.p2: "mse"},
        "dict_name": {"a": "mse", "p2": "mse"},
    }[form]
    with make_sim(net) as sim:
        compile_fast(sim, keras.optimizers.SGD(0.0), loss=loss)
        res = sim.evaluate(x, {net.p: y, net.p2: y2}, verbose=0)
        pred = sim.predict(x, n_steps=1)
    assert {"loss", "a_loss", "p2_loss"} <= set(res)
    la = np.mean((pred[net.p] - y) ** 2)
    l2 = np.mean(pred[net.p2] ** 2)
    assert np.isclose(res["a_loss"], la, rtol=1e-4)
    assert np.isclose(res["p2_loss"], l2, rtol=1e-4)
    assert np.isclose(res["loss"], la + l2, rtol=1e-4)


def test_loss_for_one_of_two_probes_needs_only_its_targets():
    net = regression_net(probe_label="a", second_probe=True)
    x, y = square_data()
    with make_sim(net) as sim:
        compile_fast(sim, keras.optimizers.SGD(0.0), loss={"a": "mse"})
        res = sim.evaluate(x, {"a": y}, verbose=0)
        assert set(res) == {"loss", "a_loss"}


def test_metrics_and_loss_weights():
    net = regression_net(probe_label="a", second_probe=True)
    x, y = square_data()
    y2 = np.zeros((16, 1, 1))
    with make_sim(net) as sim:
        compile_fast(sim, 
            keras.optimizers.SGD(0.0),
            loss={net.p: "mse", "p2": "mse"},
            metrics={"a": "mae"},
            loss_weights={net.p: 3.0, "p2": 0.5},
        )
        res = sim.evaluate(x, {"a": y, "p2": y2}, verbose=0)
        pred = sim.predict(x, n_steps=1)
    mae_keys = [k for k in res if "mae" in k]
    assert mae_keys, res
    assert np.isclose(res[mae_keys[0]], np.mean(np.abs(pred[net.p] - y)), rtol=1e-4)
    la = np.mean((pred[net.p] - y) ** 2)
    l2 = np.mean(pred[net.p2] ** 2)
    assert np.isclose(res["loss"], 3.0 * la + 0.5 * l2, rtol=1e-4)


def test_single_probe_metric_and_loss_weight():
    net = regression_net()
    x, y = square_data()
    with make_sim(net) as sim:
        compile_fast(sim, keras.optimizers.SGD(0.0), loss="mse", metrics=["mae"], loss_weights=[2.0])
        res = sim.evaluate(x, y, verbose=0)
        pred = sim.predict(x, n_steps=1)[net.p]
    mse = np.mean((pred - y) ** 2)
    assert np.isclose(res["probe_loss"], mse, rtol=1e-4)
    assert np.isclose(res["loss"], 2 * mse, rtol=1e-4)
    mae = [v for k, v in res.items() if "mae" in k]
    assert len(mae) == 1 and np.isclose(mae[0], np.mean(np.abs(pred - y)), rtol=1e-4)


# --- fit reduces the loss ------------------------------------------------------------
@pytest.mark.parametrize("neuron_type", [nengo.LIFRate(), nengo.RectifiedLinear()])
def test_fit_reduces_loss_one_step(neuron_type):
    net = regression_net(neuron_type)
    x, y = square_data(32)
    with make_sim(net) as sim:
        # 3e-4: at 1e-3 Adam's steps are large next to NEF decoders, and the result
        # then depends on the shuffle order (i.e. on the global seed other tests set)
        sim.compile(keras.optimizers.Adam(3e-4), loss="mse")  # default: XLA where possible
        before = sim.evaluate(x, y, verbose=0)["loss"]
        hist = sim.fit(x, y, epochs=10, verbose=0)
        after = sim.evaluate(x, y, verbose=0)["loss"]
    assert len(hist.history["loss"]) == 10
    assert after < 0.5 * before, (before, after)


def test_fit_reduces_loss_multistep_lif():
    net = lif_chain()
    x = np.linspace(-1, 1, 16).reshape(16, 1, 1).repeat(10, axis=1)
    y = -x
    with make_sim(net) as sim:
        compile_fast(sim, keras.optimizers.Adam(3e-4), loss="mse")
        before = sim.evaluate(x, y, verbose=0)["loss"]
        sim.fit(x, y, epochs=6, verbose=0)
        after = sim.evaluate(x, y, verbose=0)["loss"]
    # the synapses delay the output, so the first steps cannot be fit
    assert after < 0.6 * before, (before, after)


# --- data forms --------------------------------------------------------------------
def test_x_y_forms_agree():
    net = regression_net(probe_label="target")
    x, y = square_data()
    with make_sim(net) as sim:
        compile_fast(sim, keras.optimizers.SGD(0.0), loss="mse")
        ref = sim.evaluate(x, y, verbose=0)["loss"]
        for xx, yy in [
            ({net.inp: x}, {net.p: y}),
            ({"inp": x}, {"target": y}),
            ([x], [y]),
        ]:
            assert np.isclose(sim.evaluate(xx, yy, verbose=0)["loss"], ref, rtol=1e-6)
        # fit accepts the same forms
        sim.fit({"inp": x}, {net.p: y}, verbose=0, epochs=1)


def test_tf_dataset_input():
    net = regression_net()
    x, y = square_data(32)
    with make_sim(net) as sim:
        compile_fast(sim, keras.optimizers.Adam(2e-4), loss="mse")
        before = sim.evaluate(x, y, verbose=0)["loss"]
        ds = tf.data.Dataset.from_tensor_slices(
            ({"inp": x.astype("float32")}, {"probe": y.astype("float32")})
        ).batch(8, drop_remainder=True)
        hist = sim.fit(ds, epochs=6, verbose=0)
        assert len(hist.history["loss"]) == 6
        assert sim.evaluate(ds, verbose=0)["loss"] < 0.7 * before


def test_validation_data_and_kwargs_pass_through(capsys):
    net = regression_net()
    x, y = square_data()
    with make_sim(net) as sim:
        compile_fast(sim, keras.optimizers.Adam(1e-3), loss="mse")
        hist = sim.fit(x, y, validation_data=(x[:8], y[:8]), epochs=3, verbose=0)
    assert len(hist.history["val_loss"]) == 3
    assert hist.params["epochs"] == 3
    assert capsys.readouterr().out == ""


def test_callbacks(tmp_path):
    net = regression_net()
    x, y = square_data()
    seen = []

    class Spy(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(dict(logs))

    ckpt = tmp_path / "best.weights.h5"
    with make_sim(net) as sim:
        compile_fast(sim, keras.optimizers.Adam(1e-3), loss="mse")
        hist = sim.fit(
            x, y, epochs=20, verbose=0,
            callbacks=[
                # nothing improves by 1e9: stops after patience + 1 epochs
                keras.callbacks.EarlyStopping(monitor="loss", min_delta=1e9, patience=1),
                keras.callbacks.ModelCheckpoint(str(ckpt), save_weights_only=True, monitor="loss"),
                keras.callbacks.TerminateOnNaN(),
                Spy(),
            ],
        )
        assert len(hist.history["loss"]) == 2
        assert ckpt.exists() and ckpt.stat().st_size > 0
        assert len(seen) == 2 and {"loss", "probe_loss"} <= set(seen[0])
        # the checkpoint loads back into the keras model
        saved = weights(sim)
        for v in sim.keras_model.weights:
            v.assign(np.zeros(v.shape))
        sim.keras_model.load_weights(str(ckpt))
        assert not changed(saved, weights(sim))


# --- bad input ------------------------------------------------------------------
def test_bad_target_shape_names_probe_and_shapes():
    net = regression_net(probe_label="target")
    x, y = square_data()
    with make_sim(net) as sim:
        compile_fast(sim, "sgd", loss="mse")
        with pytest.raises(ValidationError, match=r"Probe 'target'.*\(16, 1, 2\)"):
            sim.fit(x, np.zeros((16, 1, 2)), verbose=0)
        with pytest.raises(ValidationError, match=r"different numbers of samples.*\(16, 1, 1\).*\(8, 1, 1\)"):
            sim.fit(x, y[:8], verbose=0)
        with pytest.raises(ValidationError, match=r"target.*3 steps"):
            sim.fit(x, np.zeros((16, 3, 1)), verbose=0)


def test_unknown_probe_and_missing_targets():
    net = regression_net(probe_label="a", second_probe=True)
    x, y = square_data()
    with make_sim(net) as sim:
        with pytest.raises(ValidationError, match=r"'nope' is not a probe.*'a'.*'p2'"):
            compile_fast(sim, "sgd", loss={"nope": "mse"})
        with pytest.raises(ValidationError, match="2 probes"):
            compile_fast(sim, "sgd", loss=["mse"])
        compile_fast(sim, "sgd", loss={"a": "mse", "p2": "mse"})
        with pytest.raises(ValidationError, match=r"no targets.*'p2'"):
            sim.fit(x, {"a": y}, verbose=0)
        with pytest.raises(ValidationError, match=r"'zzz' is not a probe"):
            sim.fit(x, {"zzz": y}, verbose=0)


def test_sample_count_not_multiple_of_batch():
    net = regression_net()
    x, y = square_data(12)
    with make_sim(net) as sim:
        compile_fast(sim, "sgd", loss="mse")
        # NengoDL truncates to whole minibatches, with a warning
        with pytest.warns(UserWarning, match="truncated to the first 8 samples"):
            hist = sim.fit(x, y, verbose=0)
        assert np.isfinite(hist.history["loss"][0])
    with make_sim(net) as sim:
        compile_fast(sim, "sgd", loss="mse")
        # an explicit batch_size that divides keeps every sample
        with pytest.warns(UserWarning, match="batch_size=4 differs"):
            hist = sim.fit(x, y, batch_size=4, verbose=0)
        assert np.isfinite(hist.history["loss"][0])


def test_fit_before_compile():
    net = regression_net()
    x, y = square_data()
    with make_sim(net) as sim:
        with pytest.raises(SimulationError, match="compile"):
            sim.fit(x, y, verbose=0)
        with pytest.raises(SimulationError, match="compile"):
            sim.evaluate(x, y, verbose=0)


def test_inference_only_cannot_train():
    net = regression_net()
    with net:
        configure_settings(inference_only=True)
    x, y = square_data()
    with make_sim(net) as sim:
        assert sim.keras_model.trainable_weights == []
        compile_fast(sim, "sgd", loss="mse")  # as NengoDL: compile (for evaluate) works
        with pytest.raises(SimulationError, match="inference_only"):
            sim.fit(x, y, verbose=0)


def test_dataset_without_static_batch():
    """NengoDL's docstring batches with ``.batch(sim.minibatch_size)``: accepted; a batch of
    another size is refused, naming drop_remainder=True."""
    net = regression_net()
    x, y = square_data()
    ds = tf.data.Dataset.from_tensor_slices(({"inp": x.astype("float32")}, {"probe": y.astype("float32")})).batch(8)
    with make_sim(net) as sim:
        compile_fast(sim, "sgd", loss="mse")
        assert len(sim.fit(ds, verbose=0).history["loss"]) == 1
        partial = tf.data.Dataset.from_tensor_slices(({"inp": x[:12]}, {"probe": y[:12]})).batch(8)
        with pytest.raises(tf.errors.InvalidArgumentError, match="drop_remainder=True"):
            sim.fit(partial, verbose=0)


# --- NaN ----------------------------------------------------------------------------
@pytest.mark.parametrize("cause", ["learning_rate", "nan_targets"])
def test_diverging_fit_raises_and_restores(cause):
    net = regression_net()
    x, y = square_data()
    if cause == "nan_targets":
        y = y.copy()
        y[3] = np.nan
    with make_sim(net) as sim:
        compile_fast(sim, keras.optimizers.SGD(1e-3), loss="mse")
        init = weights(sim)
        sim.fit(x, square_data()[1], epochs=1, verbose=0)  # a finite, trained start
        before = weights(sim)
        assert changed(init, before)
        if cause == "learning_rate":
            sim.keras_model.optimizer.learning_rate.assign(1e38)
        with pytest.raises(SimulationError, match="non-finite"):
            sim.fit(x, y, epochs=2, verbose=0)
        after = weights(sim)
        assert not changed(before, after)
        assert all(np.all(np.isfinite(v)) for v in after.values())


def test_fit_after_diverged_fit_recovers():
    net = regression_net()
    x, y = square_data()
    bad = y.copy()
    bad[3] = np.nan
    with make_sim(net) as sim:
        compile_fast(sim, keras.optimizers.Adam(1e-3), loss="mse")
        with pytest.raises(SimulationError, match="non-finite"):
            sim.fit(x, bad, verbose=0)
        hist = sim.fit(x, y, verbose=0)
        assert np.isfinite(hist.history["loss"][0])


def test_save_params_refuses_nan(tmp_path):
    net = regression_net()
    with make_sim(net) as sim:
        var = var_of(sim, net.ens, "bias")
        bad = var.numpy().copy()
        bad[0] = np.nan
        var.assign(bad)
        with pytest.raises(SimulationError, match="NaN"):
            sim.save_params(tmp_path / "p.npz")
    assert list(tmp_path.iterdir()) == []


# --- distribution --------------------------------------------------------------------
MIRRORED = textwrap.dedent(
    """
    import os
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np, nengo, tensorflow as tf, keras
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from nhw.backends.tensorflow import Simulator
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with nengo.Network(seed=0) as net:
        inp = nengo.Node(np.zeros(1), label="inp")
        ens = nengo.Ensemble(10, 1, neuron_type=nengo.RectifiedLinear())
        out = nengo.Node(size_in=1)
        nengo.Connection(inp, ens, synapse=None)
        nengo.Connection(ens, out, synapse=None)
        p = nengo.Probe(out, synapse=None)
    x = np.linspace(-1, 1, 16).reshape(16, 1, 1)
    with strategy.scope():
        sim = Simulator(net, minibatch_size=8, progress_bar=False)
        sim.compile(keras.optimizers.SGD(1e-4), loss="mse")
    hist = sim.fit(x, x ** 2, epochs=1, verbose=0)
    print("LOSS", hist.history["loss"][0])
    sim.close()
    """
)


def test_mirrored_strategy_two_cpus():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "-c", MIRRORED], capture_output=True, text=True, cwd=ROOT,
                         env=env, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    loss = [float(line.split()[1]) for line in res.stdout.splitlines() if line.startswith("LOSS")]
    assert len(loss) == 1 and np.isfinite(loss[0])

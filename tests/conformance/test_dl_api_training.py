"""NengoDL's fit/evaluate API on nhw: metric names, validation, partial batches, stateful.

Written from NengoDL 3.6's documented behaviour (API reference, example notebooks),
not from its tests.
"""

from __future__ import annotations

import numpy as np
import pytest
from nengo.exceptions import ValidationError

from tf_training_helpers import compile_fast, make_sim, regression_net, square_data


def test_evaluate_and_history_names_follow_nengo_dl():
    """A lone unlabelled probe is "probe": evaluate gives loss, probe_loss, probe_<metric>."""
    net = regression_net()
    x, y = square_data(16)
    with make_sim(net) as sim:
        compile_fast(sim, "adam", loss="mse", metrics=["mae"])
        res = sim.evaluate(x, y, verbose=0)
        assert set(res) == {"loss", "probe_loss", "probe_mae"}
        hist = sim.fit(x, y, epochs=1, verbose=0, validation_data=(x, y))
        assert set(hist.history) == {"loss", "probe_loss", "probe_mae", "val_loss", "val_probe_loss",
                                     "val_probe_mae"}


def test_accuracy_metric_named_by_probe_label():
    net = regression_net(probe_label="out_p")
    x = np.linspace(-1, 1, 8).reshape(8, 1, 1)
    labels = (x > 0).astype(np.float32)
    with make_sim(net) as sim:
        compile_fast(sim, "sgd", loss="mse", metrics=["accuracy"])
        res = sim.evaluate(x, labels, verbose=0)
        assert "out_p_accuracy" in res and 0 <= res["out_p_accuracy"] <= 1


def test_callbacks_see_nengo_dl_names():
    from nhw.backends.tensorflow._tf import keras

    net = regression_net()
    x, y = square_data(16)
    with make_sim(net) as sim:
        compile_fast(sim, "adam", loss="mse", metrics=["mae"])
        stop = keras.callbacks.EarlyStopping(monitor="val_probe_mae", patience=5)
        sim.fit(x, y, epochs=2, verbose=0, validation_data=(x, y), callbacks=[stop])
        assert stop.best is not None and np.isfinite(stop.best)


def test_fit_validation_split():
    net = regression_net()
    x, y = square_data(32)
    with make_sim(net) as sim:
        compile_fast(sim, "adam", loss="mse")
        hist = sim.fit(x, y, epochs=2, verbose=0, validation_split=0.25)
        assert len(hist.history["val_loss"]) == 2
        # 24 training samples: 3 minibatches of 8 per epoch
        val_only = sim.evaluate(x[24:], y[24:], verbose=0)["loss"]
        assert np.isclose(hist.history["val_loss"][-1], val_only, rtol=1e-4)
        with pytest.raises(ValidationError, match=r"validation_split=0.1 splits 32 samples into 28.*4"):
            sim.fit(x, y, verbose=0, validation_split=0.1)
        with pytest.raises(ValidationError, match="not both"):
            sim.fit(x, y, verbose=0, validation_split=0.25, validation_data=(x, y))
        # NengoDL (Keras) accepts (x_val, y_val, sample_weight_val)
        hist = sim.fit(x, y, verbose=0, validation_data=(x, y, np.ones(32)))
        assert "val_loss" in hist.history


def test_partial_last_batch_truncated_in_fit_and_evaluate():
    net = regression_net()
    x, y = square_data(20)
    with make_sim(net) as sim:
        compile_fast(sim, "adam", loss="mse")
        with pytest.warns(UserWarning, match=r"20 samples is not a multiple.*first 16"):
            hist = sim.fit(x, y, epochs=1, verbose=0)
        assert np.isfinite(hist.history["loss"][0])
        with pytest.warns(UserWarning, match="truncated"):
            trunc = sim.evaluate(x, y, verbose=0)["loss"]
        assert np.isclose(trunc, sim.evaluate(x[:16], y[:16], verbose=0)["loss"], rtol=1e-5)


def test_stateful_true_fit_and_evaluate_run_as_in_nengo_dl():
    """stateful=True is accepted (NengoDL documents it); the call keeps its final step count.
    (test_dl_fit_state.py checks the values.)"""
    net = regression_net()
    x, y = square_data(8)
    with make_sim(net) as sim:
        compile_fast(sim, "adam", loss="mse")
        sim.fit(x, y, stateful=True, verbose=0)
        assert sim.n_steps == 1  # one batch of one step
        sim.evaluate(x, y, stateful=True, verbose=0)
        assert sim.n_steps == 2
        sim.fit(x, y, stateful=False, verbose=0)
        sim.evaluate(x, y, verbose=0)
        assert sim.n_steps == 2


def test_batch_size_differing_from_minibatch_warns():
    net = regression_net()
    x, y = square_data(16)
    with make_sim(net) as sim:
        compile_fast(sim, "adam", loss="mse")
        with pytest.warns(UserWarning, match="NengoDL ignores batch_size"):
            sim.fit(x, y, batch_size=4, verbose=0)

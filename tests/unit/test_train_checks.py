"""sim.fit's training checks (backends/tensorflow/api/train_checks.py): a fit in which
no parameter can move, or whose loss turns NaN/Inf, stops with an error; legitimate
fits that leave parameters unchanged stay quiet."""

import warnings

import keras
import nengo
import numpy as np
import pytest
from nhw.backends.tensorflow.api.train_checks import TrainingError, step_learning_rate

import nhw.dl as nengo_dl
from nhw.errors import BackendError


def _silent_net(mode="rate", surrogate=None, check=None, readout_from_input=False):
    """64 -> 20 LIF (bias -5: never fire) -> 10: every gradient through the neurons is zero."""
    with nengo.Network(seed=0) as net:
        settings = {"training_mode": mode}
        if surrogate:
            settings["surrogate"] = surrogate
        if check is not None:
            settings["zero_gradient_check"] = check
        nengo_dl.configure_settings(**settings)
        net.inp = nengo.Node(np.zeros(8))
        ens = nengo.Ensemble(20, 1, gain=nengo.dists.Choice([1.0]), bias=nengo.dists.Choice([-5.0]))
        nengo.Connection(net.inp, ens.neurons, transform=nengo_dl.dists.Glorot(), synapse=None)
        net.out = nengo.Node(size_in=3)
        nengo.Connection(ens.neurons, net.out, transform=nengo_dl.dists.Glorot(), synapse=None)
        if readout_from_input:  # a path that does get gradient
            nengo.Connection(net.inp, net.out, transform=np.zeros((3, 8)), synapse=None)
        net.p = nengo.Probe(net.out, label="out")
    return net


def _data(n=16, steps=2, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.uniform(0, 1, size=(n, 1, 8)).repeat(steps, axis=1)
    y = rng.randint(0, 3, size=(n, 1, 1)).repeat(steps, axis=1)
    return x, y


def _fit(net, x, y, optimizer=None, epochs=2, loss=None, **fit_kwargs):
    with nengo_dl.Simulator(net, minibatch_size=8, progress_bar=False, seed=0) as sim:
        sim.compile(optimizer or keras.optimizers.Adam(0.01),
                    loss={net.p: loss or keras.losses.SparseCategoricalCrossentropy(from_logits=True)},
                    jit_compile=False)
        before = [v.numpy().copy() for v in sim.keras_model.trainable_weights]
        try:
            history = sim.fit(x, {net.p: y}, epochs=epochs, verbose=0, shuffle=False, **fit_kwargs)
            return history, before, [v.numpy() for v in sim.keras_model.trainable_weights], None
        except TrainingError as exc:
            return None, before, [v.numpy() for v in sim.keras_model.trainable_weights], exc


def _moved(before, after):
    return [not np.array_equal(a, b) for a, b in zip(before, after)]


# --- the check fires ------------------------------------------------------------------
@pytest.mark.parametrize("mode,surrogate,hint", [
    ("rate", None, "lif_smoothing"),
    ("spiking_aware", "rate", "surrogate='fast_sigmoid'"),
])
def test_silent_neurons_stop_the_fit_with_the_reason(mode, surrogate, hint):
    net = _silent_net(mode, surrogate)
    _, before, after, exc = _fit(net, *_data(), epochs=3)
    assert isinstance(exc, TrainingError) and isinstance(exc, BackendError) and isinstance(exc, RuntimeError)
    msg = str(exc)
    for part in ("every gradient", "'out'", "never reach threshold", hint,
                 "configure_settings(zero_gradient_check=False)", "learning rate 0.01"):
        assert part in msg, (part, msg)
    assert not any(_moved(before, after))


def test_all_zero_input_stops_a_linear_readout():
    with nengo.Network(seed=0) as net:
        net.inp = nengo.Node(np.zeros(4))
        net.out = nengo.Node(size_in=2)
        nengo.Connection(net.inp, net.out, transform=np.ones((2, 4)), synapse=None)
        net.p = nengo.Probe(net.out, label="out")
    x = np.zeros((16, 1, 4))
    y = np.ones((16, 1, 2))
    _, _, _, exc = _fit(net, x, y, optimizer=keras.optimizers.SGD(0.1), loss="mse")
    assert isinstance(exc, TrainingError) and "the inputs are all zero" in str(exc)
    # the same with inputs: it trains
    _history, before, after, exc = _fit(net, x + 0.5, y, optimizer=keras.optimizers.SGD(0.1), loss="mse")
    assert exc is None and all(_moved(before, after))



def test_a_loss_flat_over_the_first_epoch_stops_the_fit_though_weights_move():
    # a surrogate gradient moves the input weights, but the neurons stay silent: the
    # output (and so the loss) is the same on every batch
    net = _silent_net("spiking_aware", "fast_sigmoid")
    _, before, after, exc = _fit(net, *_data(n=48), epochs=3)
    assert isinstance(exc, TrainingError), "the flat loss went unnoticed"
    msg = str(exc)
    for part in ("after each of the 6 batches of the first epoch", "'out'", "never fire",
                 "configure_settings(zero_gradient_check=False)"):
        assert part in msg, (part, msg)
    assert not any(_moved(before, after))  # restored


def test_a_loss_that_moves_over_the_first_epoch_stays_quiet():
    history, _, _, exc = _fit(_silent_net(readout_from_input=True), *_data(n=48), epochs=2)
    assert exc is None and len(history.history["loss"]) == 2


def test_the_setting_turns_the_check_off():
    history, before, after, exc = _fit(_silent_net(check=False), *_data(), epochs=2)
    assert exc is None and not any(_moved(before, after))
    assert history.history["loss"][0] == history.history["loss"][1]  # the flat loss it warns of


def test_the_setting_is_validated():
    with nengo.Network(), pytest.raises(nengo.exceptions.ValidationError, match="zero_gradient_check must be a bool"):
        nengo_dl.configure_settings(zero_gradient_check="yes")


# --- the check stays quiet ------------------------------------------------------------
def test_quiet_when_only_some_parameters_get_gradient():
    _history, before, after, exc = _fit(_silent_net(readout_from_input=True), *_data())
    assert exc is None
    assert any(_moved(before, after)) and not all(_moved(before, after))


def test_quiet_with_nothing_trainable():
    net = _silent_net()
    with net:
        nengo_dl.configure_settings(trainable=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The model does not have any trainable weights")
        history, _, _, exc = _fit(net, *_data())
    assert exc is None and len(history.history["loss"]) == 2


def test_quiet_with_a_zero_learning_rate():
    _history, before, after, exc = _fit(_silent_net(readout_from_input=True), *_data(),
                                       optimizer=keras.optimizers.SGD(0.0))
    assert exc is None and not any(_moved(before, after))


def test_a_warm_up_from_zero_is_judged_on_its_first_real_step():
    # lr 0 at step 0, then positive: not misread as "nothing moved" on the first batch
    warm = keras.optimizers.schedules.PolynomialDecay(0.0, 2, end_learning_rate=0.05, power=1.0)
    assert step_learning_rate(keras.optimizers.SGD(warm), 0) == 0.0
    _history, before, after, exc = _fit(_silent_net(readout_from_input=True), *_data(),
                                       optimizer=keras.optimizers.SGD(warm))
    assert exc is None and any(_moved(before, after))
    # and a silent network under the same schedule is still caught (at its second step)
    _, _, _, exc = _fit(_silent_net(), *_data(), optimizer=keras.optimizers.SGD(warm))
    assert isinstance(exc, TrainingError) and "learning rate 0.025" in str(exc)


def test_quiet_with_gradient_accumulation():
    _history, before, after, exc = _fit(_silent_net(readout_from_input=True), *_data(n=32),
                                       optimizer=keras.optimizers.SGD(0.1, gradient_accumulation_steps=2))
    assert exc is None and any(_moved(before, after))


# --- NaN / Inf losses -----------------------------------------------------------------
def test_a_diverging_loss_stops_at_its_batch_and_restores():
    with nengo.Network(seed=0) as net:
        net.inp = nengo.Node(np.zeros(4))
        net.out = nengo.Node(size_in=1)
        nengo.Connection(net.inp, net.out, transform=np.ones((1, 4)), synapse=None)
        net.p = nengo.Probe(net.out, label="out")
    x = np.full((64, 1, 4), 10.0)
    y = np.zeros((64, 1, 1))
    batches = []
    counter = keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: batches.append(logs["loss"]))
    _, before, after, exc = _fit(net, x, y, optimizer=keras.optimizers.SGD(10.0), loss="mse", epochs=20,
                                 callbacks=[counter])
    assert isinstance(exc, TrainingError) and "restored" in str(exc)
    n = len(batches)  # 8 batches per epoch, 20 epochs: it stopped at the first non-finite loss
    assert n < 20 and not np.isfinite(batches[-1]) and np.all(np.isfinite(batches[:-1]))
    assert f"in training batch {n}" in str(exc)
    assert not any(_moved(before, after))


def test_a_nan_loss_with_finite_weights_is_caught_too():
    # the NaN term depends on no parameter, so its gradient is zero and no weight turns NaN
    with nengo.Network(seed=0) as net:
        net.inp = nengo.Node(np.zeros(2))
        net.out = nengo.Node(size_in=1)
        nengo.Connection(net.inp, net.out, transform=np.ones((1, 2)), synapse=None)
        net.p = nengo.Probe(net.out, label="out")

    def loss(y_true, y_pred):
        return keras.ops.mean((y_pred - y_true) ** 2) + keras.ops.log(keras.ops.min(y_true))

    x, y = np.ones((16, 1, 2)), np.ones((16, 1, 1))
    y[0] = -1.0
    _, _, _, exc = _fit(net, x, y, optimizer=keras.optimizers.SGD(0.01), loss=loss)
    assert isinstance(exc, TrainingError) and "became non-finite (nan) in training batch 1" in str(exc)

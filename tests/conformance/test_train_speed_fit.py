"""``sim.fit`` with several batches per call of the traced step (api/executions.py):
the same numbers as one batch per call, and only where no callback can tell."""

import keras
import nengo
import numpy as np
import pytest

pytest.importorskip("tensorflow")

import nhw.dl as nengo_dl  # noqa: E402
from nhw.backends.tensorflow.api.train_checks import TrainingError  # noqa: E402

N, BATCH = 256, 8  # 32 batches per epoch: the automatic choice is 8 per call


def _net(silent=False, mode="spiking_aware"):
    with nengo.Network(seed=0) as net:
        if silent:  # neurons that never fire: zero gradients ("rate") or a flat loss (a surrogate)
            nengo_dl.configure_settings(training_mode=mode, surrogate="fast_sigmoid")
        net.inp = nengo.Node(np.zeros(8))
        ens = nengo.Ensemble(16, 1, neuron_type=nengo.LIF() if silent else nengo.RectifiedLinear(),
                             gain=nengo.dists.Choice([1.0]), bias=nengo.dists.Choice([-5.0 if silent else 0.1]))
        nengo.Connection(net.inp, ens.neurons, transform=nengo_dl.dists.Glorot(), synapse=None)
        net.out = nengo.Node(size_in=3)
        nengo.Connection(ens.neurons, net.out, transform=nengo_dl.dists.Glorot(), synapse=None)
        net.p = nengo.Probe(net.out, label="out")
    return net


def _data(n=N, seed=0):
    rng = np.random.RandomState(seed)
    return rng.uniform(0, 1, (n, 1, 8)), rng.uniform(0, 1, (n, 1, 3))


class _Epochs(keras.callbacks.Callback):
    """Epoch hooks only: what it sees must not depend on the steps per call."""

    def __init__(self):
        super().__init__()
        self.logs = []

    def on_epoch_end(self, epoch, logs=None):
        self.logs.append(dict(logs))


class _Batches(_Epochs):
    """A batch hook: NengoDL calls it once per batch."""

    def __init__(self):
        super().__init__()
        self.batches = []

    def on_train_batch_end(self, batch, logs=None):
        self.batches.append(batch)


def _train(callbacks=(), epochs=2, compile_kw=None, net=None, x=None, y=None, **fit_kw):
    net = net or _net()
    x, y = (x, y) if x is not None else _data()
    with nengo_dl.Simulator(net, minibatch_size=BATCH, progress_bar=False, seed=0) as sim:
        sim.compile(keras.optimizers.RMSprop(1e-3), loss="mse", **(compile_kw or {}))
        history = sim.fit(x, {net.p: y}, epochs=epochs, verbose=0, callbacks=list(callbacks), **fit_kw)
        model = sim.keras_model
        traced = getattr(model, "_nhw_train_function_steps", None)
        after = model.steps_per_execution
        weights = [v.numpy() for v in model.weights]
        evaluated = sim.evaluate(x, {net.p: y}, verbose=0)
    return history.history, weights, traced, after, evaluated


@pytest.mark.parametrize("jit", [False, True])
def test_several_batches_per_call_give_the_same_training(jit):
    one_cb, auto_cb = _Epochs(), _Epochs()
    one = _train([one_cb], compile_kw={"steps_per_execution": 1, "jit_compile": jit})
    auto = _train([auto_cb], compile_kw={"jit_compile": jit})
    assert one[2] == 1 and auto[2] == 8  # the traced step ran 8 batches per call
    assert auto[3] == 1  # the model's own value is back to Keras' default
    assert one[0] == auto[0] and one_cb.logs == auto_cb.logs  # bit-identical losses
    for a, b in zip(one[1], auto[1]):
        np.testing.assert_array_equal(a, b)
    assert one[4] == auto[4]


def test_a_batch_hook_keeps_one_batch_per_call():
    cb = _Batches()
    _, _, traced, _, _ = _train([cb], epochs=2)
    assert traced == 1
    assert cb.batches == list(range(N // BATCH)) * 2


def test_a_given_value_is_used_as_given():
    cb = _Batches()
    hist, _, traced, after, _ = _train([cb], epochs=1, compile_kw={"steps_per_execution": 5})
    assert traced == 5 and after == 5
    # Keras' own batch-hook contract for a given value: the last batch of each call
    assert cb.batches == [4, 9, 14, 19, 24, 29, 34]
    one = _train(epochs=1, compile_kw={"steps_per_execution": 1})
    assert hist == one[0]


def test_validation_keeps_one_batch_per_call():
    x, y = _data()
    _, _, traced, _, _ = _train(epochs=1, validation_data=(x[:64], y[:64]))
    assert traced == 1


def test_the_step_retraces_when_the_choice_changes():
    net = _net()
    x, y = _data()
    with nengo_dl.Simulator(net, minibatch_size=BATCH, progress_bar=False, seed=0) as sim:
        sim.compile(keras.optimizers.RMSprop(1e-3), loss="mse", jit_compile=False)
        sim.fit(x, {net.p: y}, epochs=1, verbose=0)
        assert sim.keras_model._nhw_train_function_steps == 8
        cb = _Batches()
        sim.fit(x, {net.p: y}, epochs=1, verbose=0, callbacks=[cb])
        assert sim.keras_model._nhw_train_function_steps == 1
        assert cb.batches == list(range(N // BATCH))
        # Keras' model used directly keeps its own (default) value
        sim.keras_model.fit(sim._dataset(x, {net.p: y}, None, "fit", None, False, True), verbose=0, shuffle=False)
        assert sim.keras_model._nhw_train_function_steps == 1


def test_the_flat_loss_check_still_sees_the_first_epoch():
    x = np.random.RandomState(0).uniform(0, 1, (N, 2, 8))
    y = np.ones((N, 2, 3))
    # it saw one running loss per call of 8 batches; the message counts batches
    with pytest.raises(TrainingError, match=f"after each of the {N // BATCH} batches of the first epoch"):
        _train(net=_net(silent=True), x=x, y=y, epochs=2, compile_kw={"jit_compile": False})


def test_the_zero_gradient_check_still_stops_the_fit():
    x = np.random.RandomState(0).uniform(0, 1, (N, 2, 8))
    with pytest.raises(TrainingError, match="every gradient"):
        _train(net=_net(silent=True, mode="rate"), x=x, y=np.ones((N, 2, 3)), epochs=2,
               compile_kw={"jit_compile": False})


def test_a_nan_loss_stops_after_the_call_it_appeared_in_and_restores():
    with nengo.Network(seed=0) as net:
        net.inp = nengo.Node(np.zeros(4))
        net.out = nengo.Node(size_in=1)
        nengo.Connection(net.inp, net.out, transform=np.ones((1, 4)), synapse=None)
        net.p = nengo.Probe(net.out, label="out")
    x, y = np.full((N, 1, 4), 10.0), np.zeros((N, 1, 1))
    epochs = _Epochs()
    with nengo_dl.Simulator(net, minibatch_size=BATCH, progress_bar=False, seed=0) as sim:
        sim.compile(keras.optimizers.SGD(10.0), loss="mse", jit_compile=False)
        before = [v.numpy().copy() for v in sim.keras_model.weights]
        with pytest.raises(TrainingError, match=r"non-finite \(\w+\) in one of training batches") as info:
            sim.fit(x, {net.p: y}, epochs=3, verbose=0, callbacks=[epochs])
        assert sim.keras_model._nhw_train_function_steps == 8
        first, last = map(int, info.value.args[0].split("training batches ")[1].split(" ")[0].split("-"))
        assert last % 8 == 0 and first == last - 7 and last <= 8 * 2, (first, last)  # the 1st or 2nd call
        assert len(epochs.logs) == 1  # stopped inside the first epoch (Keras still ends it)
        for v, b in zip(sim.keras_model.weights, before):
            np.testing.assert_array_equal(v.numpy(), b)

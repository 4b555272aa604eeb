"""NengoDL-semantics checks (issue 26): Layer(neuron_type), dists, nan_mse,
check_gradients and user-defined neuron types."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import nengo
from nengo.exceptions import SimulationError, ValidationError
from nengo.params import NumberParam

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from nhw.backends.tensorflow import Simulator, TensorNode  # noqa: E402
from nhw.backends.tensorflow import dists  # noqa: E402
from nhw.backends.tensorflow.builders import neuron_builders  # noqa: E402
from nhw.backends.tensorflow.api.losses import nan_mse  # noqa: E402
from nhw.backends.tensorflow.api.tensor_node import Layer, tensor_layer  # noqa: E402


# --- Layer(neuron_type) --------------------------------------------------------------
def test_layer_neurons_take_gain_bias_from_network_config():
    with nengo.Network(seed=0) as net:
        net.config[nengo.Ensemble].max_rates = nengo.dists.Choice([100])
        net.config[nengo.Ensemble].intercepts = nengo.dists.Choice([0])
        inp = nengo.Node(np.zeros(4))
        lif, conn = Layer(nengo.LIF(amplitude=0.01))(inp, return_conn=True)
        relu = Layer(nengo.RectifiedLinear())(lif, transform=np.ones((3, 4)))
    assert lif.size_in == 4 and relu.size_in == 3  # size from a 2-D transform
    assert net.config[conn].trainable is False  # as NengoDL: the link is not trained
    with Simulator(net, progress_bar=False) as sim:
        gain, bias = nengo.LIF(amplitude=0.01).gain_bias(np.array([100.0]), np.array([0.0]))
        np.testing.assert_allclose(sim.data[lif.ensemble].gain, gain[0])
        np.testing.assert_allclose(sim.data[lif.ensemble].bias, bias[0])
        # layer_args still override the config
    with nengo.Network() as net2:
        x = Layer(nengo.LIF())(nengo.Node([0.0]), gain=nengo.dists.Choice([2.0]), bias=nengo.dists.Choice([0.5]))
    with Simulator(net2, progress_bar=False) as sim2:
        assert np.all(sim2.data[x.ensemble].gain == 2.0) and np.all(sim2.data[x.ensemble].bias == 0.5)
    with nengo.Network():
        with pytest.warns(DeprecationWarning, match="tensor_layer"):
            assert tensor_layer(nengo.Node([0.0, 1.0]), nengo.LIF()).size_in == 2


def test_spiking_digits_recipe_trains():
    """NengoDL's 'Optimizing a spiking neural network' recipe, on scikit-learn digits."""
    datasets = pytest.importorskip("sklearn.datasets")
    X, y = datasets.load_digits(return_X_y=True)
    X = X / 16.0
    idx = np.random.RandomState(0).permutation(len(X))
    X, y = X[idx], y[idx]
    Xtr, ytr, Xte, yte = X[:1200], y[:1200], X[1200:1400], y[1200:1400]
    keras.utils.set_random_seed(0)
    with nengo.Network(seed=0) as net:
        net.config[nengo.Ensemble].max_rates = nengo.dists.Choice([100])
        net.config[nengo.Ensemble].intercepts = nengo.dists.Choice([0])
        net.config[nengo.Connection].synapse = None
        neuron_type = nengo.LIF(amplitude=0.01)
        inp = nengo.Node(np.zeros(64))
        x = Layer(keras.layers.Conv2D(filters=8, kernel_size=3))(inp, shape_in=(8, 8, 1))
        x = Layer(neuron_type)(x)
        x = Layer(keras.layers.Dense(units=32))(x)
        x = Layer(neuron_type)(x)
        out = Layer(keras.layers.Dense(units=10))(x)
        out_p = nengo.Probe(out, label="out_p")
        out_p_filt = nengo.Probe(out, synapse=0.1, label="out_p_filt")
    with Simulator(net, minibatch_size=100, progress_bar=False) as sim:
        sim.compile(
            optimizer=keras.optimizers.RMSprop(0.001),
            loss={out_p: keras.losses.SparseCategoricalCrossentropy(from_logits=True)},
        )
        hist = sim.fit(Xtr[:, None, :], {out_p: ytr[:, None, None]}, epochs=4, verbose=0)
        loss = hist.history["loss"]
        data = sim.predict(np.tile(Xte[:, None, :], (1, 30, 1)))
    # gain 1 / bias 0 neurons kept the loss at ln(10) = 2.30 throughout
    assert loss[-1] < 0.85 * loss[0] and loss[-1] < 2.0, loss
    acc = np.mean(np.argmax(data[out_p_filt][:, -1], axis=-1) == yte)
    assert acc > 0.4, acc  # chance is 0.1


# --- dists ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "dist, var",
    [
        (dists.Glorot(), 1 / 350),
        (dists.Glorot(scale=2, distribution="normal"), 2 * dists.TRUNCATED_VARIANCE / 350),
        (dists.He(), dists.TRUNCATED_VARIANCE / 300),  # scale is a stddev factor
        (dists.He(scale=np.sqrt(2)), 2 * dists.TRUNCATED_VARIANCE / 300),
        (dists.He(scale=2, distribution="uniform"), 4 / 300),
        (dists.VarianceScaling(3, "fan_out", "normal"), 3 * dists.TRUNCATED_VARIANCE / 400),
        (dists.VarianceScaling(3, "fan_in", "uniform"), 3 / 300),
    ],
)
def test_dists_variance_matches_nengo_dl_formula(dist, var):
    x = dist.sample(400, 300, rng=np.random.RandomState(0))
    assert x.shape == (400, 300)
    assert dist.variance(400, 300) == pytest.approx(var)
    assert x.var() == pytest.approx(var, rel=0.02)
    assert abs(x.mean()) < 0.01 * np.sqrt(var) * 10
    if dist.distribution == "normal":
        assert np.abs(x).max() <= 2 * np.sqrt(var / dists.TRUNCATED_VARIANCE)


def test_dists_one_dimensional_fan_in_is_one():
    x = dists.VarianceScaling(1, "fan_in").sample(20000, rng=np.random.RandomState(1))
    assert x.var() == pytest.approx(1.0, rel=0.03)
    t = dists.TruncatedNormal(stddev=2.0).sample(20000, rng=np.random.RandomState(2))
    assert t.var() == pytest.approx(4 * dists.TRUNCATED_VARIANCE, rel=0.03) and np.abs(t).max() <= 4
    with pytest.raises(ValidationError, match="scale"):
        dists.He(scale=-1)


# --- nan_mse -------------------------------------------------------------------------
def test_nan_mse_divides_by_all_elements():
    rng = np.random.RandomState(0)
    y_true, y_pred = rng.randn(4, 5, 3), rng.randn(4, 5, 3)
    y_true[rng.rand(*y_true.shape) < 0.3] = np.nan
    valid = ~np.isnan(y_true)
    yp = tf.constant(y_pred)
    with tf.GradientTape() as tape:
        tape.watch(yp)
        loss = nan_mse(tf.constant(y_true), yp)
    grad = tape.gradient(loss, yp).numpy()
    sq = np.where(valid, (y_pred - np.nan_to_num(y_true)) ** 2, 0.0)
    assert float(loss) == pytest.approx(sq.sum() / y_true.size)
    np.testing.assert_allclose(grad, np.where(valid, 2 * (y_pred - np.nan_to_num(y_true)) / y_true.size, 0))
    assert float(nan_mse(np.full((2, 3), np.nan), np.ones((2, 3)))) == 0.0


# --- check_gradients -----------------------------------------------------------------
def _grad_net(neuron, factor):
    @tf.custom_gradient
    def square(x):
        return x**2, lambda dy: dy * factor * x

    with nengo.Network(seed=0) as net:
        inp = nengo.Node(np.zeros(3))
        ens = nengo.Ensemble(20, 3, neuron_type=neuron)
        nengo.Connection(inp, ens, synapse=None)
        tn = TensorNode(square, shape_in=(20,), shape_out=(20,), pass_time=False)
        nengo.Connection(ens.neurons, tn, synapse=None, transform=0.01)
        nengo.Probe(tn)
        nengo.Probe(ens.neurons)
    return net


@pytest.mark.parametrize("neuron", [nengo.RectifiedLinear(), nengo.LIF()])
def test_check_gradients_passes_correct_and_fails_wrong(neuron):
    x = [np.random.RandomState(1).uniform(-1, 1, (1, 4, 3))]
    with Simulator(_grad_net(neuron, 2.0), progress_bar=False) as sim:
        grads = sim.check_gradients()  # zero inputs: ReLU pre-activations sit on kinks
        grads = sim.check_gradients(x)
        for g in grads.values():
            assert g["analytic"][0].shape == (4 * 20, 4 * 3) == g["numeric"][0].shape
        sim.check_gradients(wrt="params", n_steps=3, n_checks=3)
    with Simulator(_grad_net(neuron, 4.0), progress_bar=False) as sim:
        with pytest.raises(SimulationError, match="gradient check failed"):
            sim.check_gradients(x)


# --- user-defined neuron types -------------------------------------------------------
class SpikingTanh(nengo.neurons.NeuronType):
    """Spiking tanh, as nengo's own test suite defines it (numpy step only)."""

    tau_ref = NumberParam("tau_ref", low=0)
    state = {"voltage": nengo.dists.Uniform(low=0, high=1)}
    spiking = True

    def __init__(self, tau_ref=0.0025, initial_state=None):
        super().__init__(initial_state=initial_state)
        self.tau_ref = tau_ref

    def rates(self, x, gain, bias):
        return np.tanh(self.current(x, gain, bias)) / self.tau_ref

    def step(self, dt, J, output, voltage):
        voltage += np.tanh(J) * dt / self.tau_ref
        output[...] = np.floor(voltage) / dt
        voltage -= np.floor(voltage)


class RegularSpikingTanh(nengo.RegularSpiking):
    """nengo's own test-suite SpikingTanh: a RegularSpiking subclass."""

    def __init__(self, tau_ref=0.0025):
        super().__init__(base_type=nengo.Tanh(tau_ref=tau_ref))


class RegisteredTanh(SpikingTanh):
    """Same equations; gets a TensorFlow step below."""


def _tanh_net(neuron_type):
    with nengo.Network(seed=1) as net:
        u = nengo.Node(lambda t: np.sin(8 * t))
        a = nengo.Ensemble(20, 1, neuron_type=neuron_type, gain=nengo.dists.Uniform(0.5, 2),
                           bias=nengo.dists.Uniform(-1, 1))
        nengo.Connection(u, a)
        p = nengo.Probe(a.neurons)
    return net, p


@pytest.mark.parametrize("batch, cls", [(1, SpikingTanh), (3, SpikingTanh), (2, RegularSpikingTanh)])
def test_user_neuron_type_runs_its_numpy_step(batch, cls):
    net, p = _tanh_net(cls())
    with nengo.Simulator(net, progress_bar=False) as ref:
        ref.run(0.2)
    neuron_builders._HOST_WARNED.discard(cls)
    with pytest.warns(UserWarning, match="not compiled.*not differentiable"):
        with Simulator(net, minibatch_size=batch, progress_bar=False) as sim:
            sim.run(0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one warning per type
        with Simulator(net, progress_bar=False) as sim2:
            sim2.run_steps(2)
    data = sim.data[p][batch - 1]  # with minibatch_size, data has a batch axis
    assert ref.data[p].sum() != 0
    np.testing.assert_allclose(data, ref.data[p])


def test_registered_tf_step_replaces_host_step():
    calls = []

    def tanh_step(neurons, dt, J, state):
        calls.append(neurons)
        v = state["voltage"] + tf.tanh(J) * dt / neurons.tau_ref
        spikes = tf.floor(v)
        return spikes / dt, {"voltage": v - spikes}

    assert neuron_builders.register_neuron_step(RegisteredTanh, tanh_step) is tanh_step
    net, p = _tanh_net(RegisteredTanh())
    with nengo.Simulator(net, progress_bar=False) as ref:
        ref.run(0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no host-step warning
        with Simulator(net, progress_bar=False, dtype="float64") as sim:
            sim.run(0.2)
    assert calls  # traced into the loop
    np.testing.assert_allclose(sim.data[p], ref.data[p])
    with pytest.raises(ValidationError, match="NeuronType subclass"):
        neuron_builders.register_neuron_step(int, tanh_step)

"""NengoDL behaviours its documentation notebooks rely on, checked on nhw.

Written from NengoDL 3.6's documented behaviour (its notebooks and API reference),
not from its tests.
"""

from __future__ import annotations

import nengo
import numpy as np
from nhw.backends.tensorflow import Simulator


def _noise_net() -> tuple[nengo.Network, nengo.Probe, nengo.Probe, nengo.Probe]:
    with nengo.Network(seed=0) as net:
        white = nengo.Node(nengo.processes.WhiteSignal(1, 5, rms=0.3))
        noise = nengo.Node(nengo.processes.WhiteNoise(), size_out=2)
        sine = nengo.Node(np.sin)
        probes = nengo.Probe(white), nengo.Probe(noise), nengo.Probe(sine)
    return (net, *probes)


def test_minibatch_elements_of_an_input_free_process_are_different_simulations():
    """"Coming from Nengo": minibatch_size=3 runs three different simulations at once;
    element 0 draws first, so it is nengo's own run; deterministic Nodes are shared."""
    net, p_white, p_noise, p_sine = _noise_net()
    with nengo.Simulator(net, progress_bar=False) as ref:
        ref.run(0.05)
    with Simulator(net, minibatch_size=3, progress_bar=False) as sim:
        sim.run(0.05)
        white, noise, sine = sim.data[p_white], sim.data[p_noise], sim.data[p_sine]
    assert white.shape == (3, 50, 1)
    np.testing.assert_allclose(white[0], ref.data[p_white], atol=1e-6)
    for data in (white, noise):
        assert not np.allclose(data[0], data[1]) and not np.allclose(data[1], data[2])
    np.testing.assert_allclose(sine[1], sine[0])
    np.testing.assert_allclose(sine[2], sine[0])


def test_minibatch_of_one_matches_nengo_for_every_process():
    net, p_white, p_noise, _ = _noise_net()
    with nengo.Simulator(net, progress_bar=False) as ref:
        ref.run(0.05)
    with Simulator(net, progress_bar=False) as sim:
        sim.run(0.05)
    np.testing.assert_allclose(sim.data[p_white], ref.data[p_white], atol=1e-6)
    np.testing.assert_allclose(sim.data[p_noise], ref.data[p_noise], atol=1e-5)


def test_reset_restarts_each_batch_elements_stream():
    net, p_white, _, _ = _noise_net()
    with Simulator(net, minibatch_size=2, progress_bar=False) as sim:
        sim.run(0.02)
        first = sim.data[p_white].copy()
        sim.reset()
        sim.run(0.02)
        np.testing.assert_allclose(sim.data[p_white], first)


def test_tensor_node_wrapping_a_compiled_keras_model_evaluates(tmp_path):
    """"Integrating a Keras model": a layer that clones a compiled, trained Keras model
    inside a TensorNode; evaluate reports the simulator's own loss and metric only."""
    import nhw.dl as nengo_dl
    from nhw.quiet import keras

    inp = keras.Input((4,))
    model = keras.Model(inp, keras.layers.Dense(3)(keras.layers.Dense(8, activation="relu")(inp)))
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    rng = np.random.RandomState(0)
    model.fit(rng.rand(20, 4), rng.randint(3, size=20), verbose=0)
    weights = str(tmp_path / "m.weights.h5")
    model.save_weights(weights)

    class Wrapper(keras.layers.Layer):
        def __init__(self, keras_model):
            super().__init__()
            self.model = keras_model

        def build(self, input_shape):
            super().build(input_shape)
            self.model = keras.models.clone_model(self.model)
            self.model.load_weights(weights)

        def call(self, inputs):
            return self.model(inputs)

    with nengo.Network() as net:
        a = nengo.Node(np.ones(4))
        node = nengo_dl.TensorNode(Wrapper(model), shape_in=(4,), shape_out=(3,), pass_time=False)
        nengo.Connection(a, node, synapse=None)
        p = nengo.Probe(node)
    x = rng.rand(20, 1, 4).astype(np.float32)
    y = rng.randint(3, size=(20, 1, 1))
    with Simulator(net, minibatch_size=10, progress_bar=False) as sim:
        sim.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        out = sim.evaluate(x, y, verbose=0)
        pred = sim.predict(x, verbose=0)[p][:, 0]
    assert sorted(out) == ["loss", "probe_accuracy", "probe_loss"]
    # the wrapped copy carries the trained weights: the same outputs as the Keras model
    np.testing.assert_allclose(pred, model.predict(x[:, 0], verbose=0), atol=1e-5)
    expected = np.mean(np.argmax(pred, axis=-1) == y[:, 0, 0])
    np.testing.assert_allclose(out["probe_accuracy"], expected, atol=1e-6)


def test_fit_and_evaluate_accept_new_batch_sizes_and_step_counts():
    """NengoDL allows any number of fit/evaluate calls on one compile, each with its own
    data shapes (Keras' retracing would otherwise leave the batch size unknown)."""
    import warnings

    with nengo.Network(seed=0) as net:
        a = nengo.Node(np.zeros(2))
        out = nengo.Node(size_in=2)
        nengo.Connection(a, out, synapse=None, transform=np.zeros((2, 2)))
        p = nengo.Probe(out)
    rng = np.random.RandomState(0)
    x = rng.rand(40, 1, 2)
    y = x[..., ::-1].copy()  # the inputs swapped: a transform can learn it
    with Simulator(net, minibatch_size=10, progress_bar=False) as sim, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim.compile(optimizer="sgd", loss={p: "mse"})
        start = sim.evaluate(x, y, verbose=0)["loss"]
        for bs in (10, 20, 5, 10):
            sim.fit(x, y, batch_size=bs, epochs=2, verbose=0)
        one = sim.evaluate(x, y, verbose=0)["loss"]
        many = sim.evaluate(np.tile(x, (1, 3, 1)), np.tile(y, (1, 3, 1)), verbose=0)["loss"]
    assert one < 0.8 * start
    # no synapses and no state: three identical steps give the one-step loss
    np.testing.assert_allclose(many, one, rtol=1e-5)

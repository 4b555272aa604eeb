"""NengoDL's documented Converter API on nhw (``import nhw.dl as nengo_dl``): tensor keys,
``verify(training=...)``, the conversion options, ``Converter.register`` with a
``LayerConverter``, and the layers of the tensorflow-models notebook's networks; every
converted model is checked against the Keras model's own output."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import warnings  # noqa: E402

import nengo  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

keras = pytest.importorskip("keras")

import nhw.dl as nengo_dl  # noqa: E402

L = keras.layers
pytestmark = pytest.mark.filterwarnings("ignore:.*falling back to a TensorNode")


def _x(model, batch=3, seed=0):
    shapes = [tuple(t.shape[1:]) for t in model.inputs]
    rng = np.random.RandomState(seed)
    return [rng.uniform(-1, 1, (batch, *s)) for s in shapes]


def _check(conv, **kwargs):
    """verify() with ones (NengoDL's default) and with random inputs."""
    assert conv.verify(atol=1e-5, **kwargs) is True
    assert conv.verify(inputs=_x(conv.model), atol=1e-5, rtol=1e-4, **kwargs) is True


def _functional():
    keras.utils.set_random_seed(0)
    inp = keras.Input((6,))
    hidden = L.Dense(5, activation="relu", name="hidden")
    h = hidden(inp)
    out = L.Dense(3, name="out")(h)
    return keras.Model(inp, out), hidden, h


def test_layers_and_outputs_keyed_by_tensor_and_layer():
    model, hidden, h = _functional()
    conv = nengo_dl.Converter(model)
    assert isinstance(conv.layers[h], nengo.ensemble.Neurons)
    assert conv.layers[hidden.output] is conv.layers[h] is conv.layers[hidden]
    assert isinstance(conv.outputs[model.output], nengo.Probe)
    assert conv.outputs[model.layers[-1]] is conv.outputs[model.output]
    assert conv.inputs[model.input] is conv.inputs[model.layers[0]]
    with nengo_dl.Simulator(conv.net) as sim:
        out = sim.predict({conv.inputs[model.input]: _x(model)[0][:, None]})
    np.testing.assert_allclose(out[conv.outputs[model.output]][:, 0], model.predict(_x(model)[0], verbose=0),
                               atol=1e-5)


def test_verify_defaults_training_and_mismatch():
    model, _, _ = _functional()
    conv = nengo_dl.Converter(model)
    _check(conv)
    w0 = model.layers[1].get_weights()[0].copy()
    assert conv.verify(training=True) is True  # both trained the same way: still equal
    assert not np.allclose(model.layers[1].get_weights()[0], w0)  # NengoDL: training changes the model
    # a converted network that no longer matches: ValueError naming the difference
    model.layers[-1].set_weights([w + 1 for w in model.layers[-1].get_weights()])
    with pytest.raises(ValueError, match="differs from Keras"):
        conv.verify()


def test_verify_training_counts_parameters():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6, 6, 2)), L.Conv2D(3, 3, activation="relu"), L.Flatten(), L.Dense(2)])
    assert nengo_dl.Converter(model).verify(training=True, atol=1e-5)  # per-channel conv bias trains as in Keras


def test_temporal_model():
    keras.utils.set_random_seed(0)
    inp = keras.Input((None, 4))
    out = L.Dense(3)(L.Dense(5, activation="relu")(inp))
    model = keras.Model(inp, out)
    with pytest.raises(ValueError, match="temporal_model=True"):
        nengo_dl.Converter(model)
    conv = nengo_dl.Converter(model, temporal_model=True)
    assert conv.inputs[inp].size_out == 4
    assert conv.verify(atol=1e-5)
    x = np.random.RandomState(0).uniform(-1, 1, (2, 7, 4))
    assert conv.verify(inputs=[x], atol=1e-5, rtol=1e-4)


def test_split_shared_weights():
    keras.utils.set_random_seed(0)
    a, b = keras.Input((4,)), keras.Input((4,))
    shared = L.Dense(3, activation="relu", name="shared")
    model = keras.Model([a, b], L.Add()([shared(a), shared(b)]))
    with pytest.raises(ValueError, match="'shared'.*applied 2 times.*split_shared_weights=True"):
        nengo_dl.Converter(model)
    conv = nengo_dl.Converter(model, split_shared_weights=True)
    _check(conv)
    assert len(conv.net.all_ensembles) == 2
    with pytest.raises(KeyError, match="use the output tensor"):
        conv.layers[shared]
    calls = [node.output_tensors[0] for node in shared._inbound_nodes]
    assert conv.layers[calls[0]] is not conv.layers[calls[1]]


def test_allow_fallback_and_inference_only():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((5,)), L.Dense(4), L.BatchNormalization(name="bn"), L.Dense(2)])
    model.layers[1].set_weights([np.linspace(0.5, 2, 4), np.linspace(-1, 1, 4), np.linspace(-0.5, 0.5, 4),
                                 np.linspace(0.5, 1.5, 4)])
    with pytest.warns(UserWarning, match="'bn'.*inference_only=True.*falling back"):
        conv = nengo_dl.Converter(model)
    assert conv.fallbacks == ["bn"]
    _check(conv)
    with pytest.raises(TypeError, match="'bn'.*allow_fallback=False"):
        nengo_dl.Converter(model, allow_fallback=False)
    conv = nengo_dl.Converter(model, allow_fallback=False, inference_only=True)
    assert conv.fallbacks == []
    _check(conv)
    model.layers[1].trainable = False
    assert nengo_dl.Converter(model, allow_fallback=False).fallbacks == []


def test_max_to_avg_pool_including_global():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4, 4, 2)), L.MaxPooling2D(2), L.GlobalMaxPooling2D()])
    with pytest.raises(TypeError, match="max_to_avg_pool=True"):
        nengo_dl.Converter(model, allow_fallback=False)
    conv = nengo_dl.Converter(model, max_to_avg_pool=True, allow_fallback=False)
    avg = keras.Sequential([keras.Input((4, 4, 2)), L.AveragePooling2D(2), L.GlobalAveragePooling2D()])
    x = _x(model)[0]
    with nengo_dl.Simulator(conv.net, minibatch_size=3) as sim:
        out = sim.predict({conv.inputs[model.inputs[0]]: x.reshape(3, 1, -1)})
    np.testing.assert_allclose(out[conv.outputs[model.outputs[0]]][:, 0], avg.predict(x, verbose=0), atol=1e-6)


def test_swap_activations_forms():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), L.Dense(5, activation="elu"), L.Dense(3, activation="relu")])
    # a Keras activation for another Keras activation (NengoDL's elu -> relu example)
    conv = nengo_dl.Converter(model, swap_activations={keras.activations.elu: keras.activations.relu},
                              allow_fallback=False)
    relu_model = keras.Sequential([keras.Input((4,)), L.Dense(5, activation="relu"), L.Dense(3, activation="relu")])
    relu_model.set_weights(model.get_weights())
    x = _x(model)[0]
    with nengo_dl.Simulator(conv.net, minibatch_size=3) as sim:
        out = sim.predict({conv.inputs[model.inputs[0]]: x[:, None]})
    np.testing.assert_allclose(out[conv.outputs[model.outputs[0]]][:, 0], relu_model.predict(x, verbose=0),
                               atol=1e-5)
    # keyed by a neuron type instance; keys matching nothing are reported
    with pytest.warns(UserWarning, match="match no layer"):
        conv = nengo_dl.Converter(relu_model, swap_activations={
            nengo.RectifiedLinear(): nengo.SpikingRectifiedLinear(), keras.activations.tanh: nengo.LIF()})
    assert all(isinstance(e.neuron_type, nengo.SpikingRectifiedLinear) for e in conv.net.all_ensembles)
    # keyed by a Keras function, to a neuron type
    conv = nengo_dl.Converter(relu_model, swap_activations={keras.activations.relu: nengo.LIFRate()})
    assert all(isinstance(e.neuron_type, nengo.LIFRate) for e in conv.net.all_ensembles)


def test_scale_firing_rates_scalar_and_per_layer_and_synapse():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), L.Dense(6, activation="relu", name="a"),
                              L.Dense(5, activation="relu", name="b")])
    conv = nengo_dl.Converter(model, scale_firing_rates={model.layers[1]: 7})
    gains = {e.label: (e.gain[0], e.neuron_type.amplitude) for e in conv.net.all_ensembles}
    assert gains == {"a": (1.0, 1.0), "b": (7.0, pytest.approx(1 / 7))}
    _check(conv)
    conv = nengo_dl.Converter(model, scale_firing_rates=100, synapse=0.005,
                              swap_activations={keras.activations.relu: nengo.SpikingRectifiedLinear()})
    assert all(e.gain[0] == 100 for e in conv.net.all_ensembles)
    probe = conv.outputs[model.outputs[0]]
    assert probe.synapse == nengo.Lowpass(0.005)  # output of neurons: filtered
    assert all(c.synapse == nengo.Lowpass(0.005) for c in conv.net.all_connections
               if isinstance(c.pre_obj, nengo.ensemble.Neurons))
    x = _x(model, batch=1)[0]
    conv.inputs[model.inputs[0]].output = x[0]
    with nengo.Simulator(conv.net, progress_bar=False) as sim:
        sim.run_steps(1000)
    # spiking approximation of the rate network: filtered spikes, averaged
    np.testing.assert_allclose(sim.data[probe][-500:].mean(0), model.predict(x, verbose=0)[0], atol=0.1)


class Scale(L.Layer):
    """A user layer: ``x * factor`` with a trainable per-feature factor."""

    def build(self, input_shape):
        self.factor = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="factor")

    def call(self, x):
        return x * self.factor


def test_register_layer_converter():
    keras.utils.set_random_seed(0)
    inp = keras.Input((4,))
    s = Scale(name="scale")
    model = keras.Model(inp, L.Dense(2)(s(L.Dense(4, activation="relu")(inp))))
    s.set_weights([np.array([0.5, 1.5, -2.0, 3.0])])

    saved = dict(nengo_dl.Converter.converters)
    try:
        @nengo_dl.Converter.register(Scale)
        class ConvertScale(nengo_dl.converter.LayerConverter):
            has_weights = True
            unsupported_args = [("trainable", True)]

            def convert(self, node_id):
                output = self.add_nengo_obj(node_id)
                factor = keras.ops.convert_to_numpy(self.layer.factor)
                self.add_connection(node_id, output, transform=factor, trainable=True)
                return output

        assert nengo_dl.Converter.converters[Scale] is ConvertScale
        conv = nengo_dl.Converter(model, allow_fallback=False)
        assert conv.fallbacks == []
        assert isinstance(conv.get_converter(s), ConvertScale)
        _check(conv)
        assert conv.verify(training=True, atol=1e-5)
        with pytest.warns(UserWarning, match="already has a converter"):
            nengo_dl.Converter.register(Scale)(ConvertScale)
    finally:
        nengo_dl.Converter.converters.clear()
        nengo_dl.Converter.converters.update(saved)
    # without the registration: a TensorNode runs it
    assert nengo_dl.Converter(model).fallbacks == ["scale"]


@pytest.mark.parametrize("layers, shape", [
    ([L.ZeroPadding1D((1, 2))], (5, 2)),
    ([L.ZeroPadding2D(((1, 0), (2, 1)))], (3, 4, 2)),
    ([L.ZeroPadding3D(1)], (2, 3, 2, 2)),
    ([L.Cropping1D((1, 2))], (6, 2)),
    ([L.Cropping2D(((1, 0), (0, 2)))], (4, 5, 2)),
    ([L.UpSampling1D(3)], (4, 2)),
    ([L.UpSampling2D((2, 3))], (3, 2, 2)),
    ([L.UpSampling3D((1, 2, 2))], (2, 2, 3, 2)),
    ([L.ZeroPadding2D(1, data_format="channels_first"), L.UpSampling2D(2, data_format="channels_first")],
     (2, 3, 4)),
    # (TensorFlow's CPU kernels have no channels-first convolution, so Keras could not
    # compute the reference: channels-first layers here are the index and pooling ones)
    ([L.AveragePooling2D(2, data_format="channels_first"), L.GlobalAveragePooling2D(data_format="channels_first")],
     (2, 6, 6)),
    ([L.BatchNormalization(axis=1), L.Flatten()], (3, 4, 2)),
    ([L.GlobalAveragePooling2D(keepdims=True), L.Flatten()], (3, 4, 2)),
], ids=["zeropad1d", "zeropad2d", "zeropad3d", "crop1d", "crop2d", "upsample1d", "upsample2d", "upsample3d",
        "channels-first-pad-upsample", "channels-first-pools", "batchnorm-axis1", "gap-keepdims"])
def test_index_and_axis_layers(layers, shape):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(shape), *layers])
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            rng = np.random.RandomState(1)
            layer.set_weights([rng.uniform(0.5, 2, 3), rng.uniform(-1, 1, 3), rng.uniform(-1, 1, 3),
                               rng.uniform(0.5, 2, 3)])
    conv = nengo_dl.Converter(model, allow_fallback=False, inference_only=True)
    _check(conv)


def test_average_and_concatenate_axis1():
    keras.utils.set_random_seed(0)
    inp = keras.Input((3, 4))
    a = L.Dense(4, activation="relu")(inp)
    b = L.Dense(4)(inp)
    avg = L.Average()([a, b, inp])
    cat1 = L.Concatenate(axis=1)([avg, a])  # (6, 4): along the first non-batch axis
    cat2 = L.Concatenate(axis=-1)([cat1, cat1])
    model = keras.Model(inp, L.Flatten()(cat2))
    _check(nengo_dl.Converter(model, allow_fallback=False))


def _dense_block(x, name, axis):
    """A DenseNet-style block: BN, ReLU, convolution, concatenation along the channels."""
    y = L.BatchNormalization(axis=axis, name=f"{name}_bn")(x)
    y = L.Activation("relu", name=f"{name}_relu")(y)
    if axis == -1:
        y = L.Conv2D(4, 3, padding="same", use_bias=False, name=f"{name}_conv")(y)
    return L.Concatenate(axis=axis if axis == 1 else 3, name=f"{name}_concat")([x, y])


def _set_bn(model):
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.set_weights([np.linspace(0.5, 1.5, n), np.linspace(-0.2, 0.2, n), np.linspace(-0.1, 0.1, n),
                               np.linspace(0.8, 1.2, n)])


def test_densenet_style_channels_last():
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3))
    x = L.ZeroPadding2D(1)(inp)
    x = L.Conv2D(6, 3, strides=2, use_bias=False)(x)
    x = L.MaxPooling2D(2, name="pool")(x)
    x = _dense_block(x, "b1", -1)
    x = _dense_block(x, "b2", -1)
    x = L.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, L.Dense(5)(x))
    _set_bn(model)
    # the max pooling has no native form: it runs in a TensorNode, nothing else does
    conv = nengo_dl.Converter(model, inference_only=True)
    assert conv.fallbacks == ["pool"]
    _check(conv)


def test_densenet_style_channels_first():
    keras.utils.set_random_seed(0)
    inp = keras.Input((3, 6, 6))
    x = L.ZeroPadding2D(1, data_format="channels_first")(inp)
    x = L.AveragePooling2D(2, data_format="channels_first")(x)
    x = _dense_block(x, "b1", 1)
    x = _dense_block(x, "b2", 1)
    x = L.GlobalAveragePooling2D(data_format="channels_first")(x)
    model = keras.Model(inp, L.Dense(5)(x))
    _set_bn(model)
    conv = nengo_dl.Converter(model, inference_only=True, allow_fallback=False)
    _check(conv)


def test_mobilenet_style_block():
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3))
    x = L.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(inp)
    x = L.BatchNormalization()(x)
    x = L.ReLU(6.0, name="relu6")(x)  # bounded ReLU: no nengo neuron type, a TensorNode
    x = L.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
    x = L.BatchNormalization()(x)
    x = L.ReLU()(x)
    x = L.Conv2D(16, 1, use_bias=False)(x)
    x = L.GlobalAveragePooling2D(keepdims=True)(x)
    x = L.Dropout(0.1)(x)
    x = L.Conv2D(10, 1)(x)
    x = L.Reshape((10,))(x)
    model = keras.Model(inp, L.Activation("softmax", name="softmax")(x))
    conv = nengo_dl.Converter(model, inference_only=True)
    assert sorted(conv.fallbacks) == ["relu6", "softmax"]
    _check(conv)


def test_keras_model_save_weights_right_after_construction(tmp_path):
    model, _, _ = _functional()
    conv = nengo_dl.Converter(model)
    with nengo_dl.Simulator(conv.net) as sim:
        path = str(tmp_path / "sim.weights.h5")
        sim.keras_model.save_weights(path)
        saved = [w.numpy().copy() for w in sim.keras_model.weights]
        for w in sim.keras_model.weights:
            w.assign(np.zeros(w.shape))
        sim.keras_model.load_weights(path)
        for before, w in zip(saved, sim.keras_model.weights):
            np.testing.assert_array_equal(before, w.numpy())


def test_no_warnings_for_a_native_model():
    model, _, _ = _functional()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nengo_dl.Converter(model)


def test_scaled_conv_bias_per_channel():
    """Regression: a per-channel convolution bias into scaled neurons is scaled once."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((5, 5, 2)), L.Conv2D(3, 3, activation="relu", name="c"), L.Flatten()])
    model.layers[0].set_weights([model.layers[0].get_weights()[0], np.array([0.5, -0.2, 0.3])])
    _check(nengo_dl.Converter(model, scale_firing_rates=5))

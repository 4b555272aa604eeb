"""Keras -> nengo conversion: layer-by-layer equality (rate neurons), clear errors,
and spiking accuracy of a converted digits CNN on ``reference``."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import nengo
import numpy as np
import pytest

keras = pytest.importorskip("keras")

from nhw.backends.tensorflow.api.converter import ConversionError, Converter  # noqa: E402

L = keras.layers


def _verify(conv, **kwargs):
    """NengoDL's verify on random inputs (not only ones), to 1e-4."""
    shape = tuple(conv.model.inputs[0].shape[1:])
    x = np.random.RandomState(0).uniform(-1, 1, (4, *shape))
    return conv.verify(inputs=[x], atol=1e-4, rtol=0, **kwargs)


def _seq(*layers, shape=(8, 8, 2)):
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input(shape), *layers])


@pytest.mark.parametrize("layers", [
    [L.Flatten(), L.Dense(7, activation="relu"), L.Dense(3)],
    [L.Conv2D(4, 3, strides=2, padding="same", activation="relu"), L.Flatten(), L.Dense(3)],
    [L.Conv2D(4, 3, dilation_rate=2, activation="relu"), L.GlobalAveragePooling2D()],
    [L.Conv2D(4, 3, groups=2, activation="tanh"), L.AveragePooling2D(2), L.Flatten()],
    [L.DepthwiseConv2D(3, depth_multiplier=2, activation="sigmoid"), L.Flatten()],
    [L.BatchNormalization(), L.ReLU(), L.Dropout(0.5), L.Reshape((16, 8)), L.Dense(2)],
    [L.Reshape((64, 2)), L.Conv1D(3, 5, strides=2, activation="relu"), L.AveragePooling1D(2), L.Flatten()],
], ids=["dense", "conv-strides-same", "conv-dilation", "conv-groups", "depthwise", "batchnorm", "conv1d"])
def test_sequential_layers_match_keras(layers):
    model = _seq(*layers)
    if any(isinstance(x, L.BatchNormalization) for x in layers):
        bn = model.layers[0]
        rng = np.random.RandomState(1)
        bn.set_weights([rng.uniform(0.5, 2, 2), rng.uniform(-1, 1, 2), rng.uniform(-1, 1, 2), rng.uniform(0.5, 2, 2)])
    assert _verify(Converter(model))


def test_functional_add_concatenate_and_nested_model():
    keras.utils.set_random_seed(0)
    inner = keras.Sequential([keras.Input((6,)), L.Dense(6, activation="relu")], name="inner")
    x = keras.Input((6,))
    a = L.Dense(6)(x)
    b = inner(x)
    s = L.Add()([a, b])
    c = L.Concatenate()([s, a])
    out = L.Dense(4, activation="relu")(c)
    model = keras.Model(x, out)
    conv = Converter(model)
    assert _verify(conv)
    assert model.layers[-1] in conv.outputs and model.inputs[0] in conv.inputs


def test_max_pool_needs_flag():
    model = _seq(L.MaxPooling2D(2), L.Flatten())
    with pytest.raises(ConversionError, match="max pooling.*max_to_avg_pool=True"):
        Converter(model, allow_fallback=False)
    assert Converter(model, max_to_avg_pool=True).fallbacks == []


@pytest.mark.parametrize("layers, message", [
    ([L.LayerNormalization(name="ln")], "layer 'ln' \\(LayerNormalization\\) has no native nengo equivalent"),
    ([L.Flatten(), L.Dense(3, activation="softmax", name="sm")], "layer 'sm': activation 'softmax' has no nengo"),
    ([L.AveragePooling2D(2, padding="same", name="pool")], "layer 'pool': pooling with padding='same'"),
    ([L.ReLU(max_value=1.0, name="r6")], "layer 'r6': ReLU with threshold/max_value"),
])
def test_unsupported_is_named(layers, message):
    with pytest.raises(ConversionError, match=message):
        Converter(_seq(*layers), allow_fallback=False)


# --- layers added with the TensorNode fallback: transposed/3-D convolutions, LeakyReLU ---
@pytest.mark.parametrize("layers, shape", [
    ([L.Conv2DTranspose(3, 3, strides=2, activation="relu")], (5, 5, 2)),
    ([L.Conv2DTranspose(3, 3, strides=2, padding="same")], (5, 5, 2)),
    ([L.Conv2DTranspose(3, 4, strides=3, output_padding=1)], (4, 4, 2)),
    ([L.Conv2DTranspose(2, (3, 4), strides=(2, 3), padding="same", output_padding=(1, 2))], (4, 3, 2)),
    ([L.Conv2DTranspose(2, 2, strides=3)], (4, 3, 2)),  # kernel < stride: gaps in the output
    ([L.Conv1DTranspose(2, 3, strides=2, padding="same")], (6, 2)),
    ([L.Conv3D(3, 3, strides=2, padding="same", activation="relu")], (5, 6, 4, 2)),
    ([L.Conv3D(4, 2, dilation_rate=2, groups=2)], (5, 6, 4, 2)),
    ([L.Conv3DTranspose(2, (2, 3, 2), strides=(1, 2, 2), padding="same")], (3, 4, 3, 2)),
    ([L.AveragePooling3D(2), L.Flatten()], (4, 6, 4, 2)),
    ([L.MaxPooling3D((2, 3, 2), strides=(1, 2, 2)), L.GlobalAveragePooling3D()], (4, 6, 4, 2)),
    ([L.Flatten(), L.Dense(5), L.LeakyReLU(0.1), L.Dense(4, activation="leaky_relu")], (4, 4, 2)),
    ([L.ReLU(negative_slope=0.3), L.SpatialDropout2D(0.3), L.GaussianNoise(1.0), L.Flatten()], (4, 4, 2)),
], ids=["convT-valid", "convT-same", "convT-output-padding", "convT-same-output-padding", "convT-k<s",
        "conv1dT", "conv3d-same", "conv3d-dilation-groups", "conv3dT", "avgpool3d", "maxpool3d-gap3d",
        "leaky-relu", "relu-slope-dropouts"])
def test_new_layers_match_keras(layers, shape):
    model = _seq(*layers, shape=shape)
    max_pool = any(isinstance(x, L.MaxPooling3D) for x in layers)
    conv = Converter(model, max_to_avg_pool=True, allow_fallback=False)
    assert conv.fallbacks == []
    if max_pool:  # max -> average: compare with the average-pooled Keras model
        pool = layers[0]
        model = _seq(L.AveragePooling3D(pool.pool_size, pool.strides), *layers[1:], shape=shape)
    assert _verify(Converter(model, allow_fallback=False) if max_pool else conv)


def test_3d_layers_are_sparse_and_run_on_tensorflow():
    from nhw.backends.tensorflow import Simulator

    model = _seq(L.Conv3D(3, 3, padding="same", activation="relu"), L.AveragePooling3D(2), L.Flatten(),
                 shape=(4, 4, 4, 2))
    conv = Converter(model)
    transforms = [c.transform for c in conv.net.all_connections]
    assert any(isinstance(t, nengo.Sparse) for t in transforms)
    assert not any(isinstance(t, nengo.Convolution) for t in transforms)
    assert _verify(conv, simulator=Simulator)


def test_leaky_relu_neurons_swap_and_scale():
    from nhw.backends.neurons import LeakyReLU, SpikingLeakyReLU

    model = _seq(L.Flatten(), L.Dense(6), L.LeakyReLU(0.1, name="leaky"), L.Dense(3), shape=(4,))
    conv = Converter(model)
    (ens,) = conv.net.all_ensembles
    assert isinstance(ens.neuron_type, LeakyReLU) and ens.neuron_type.negative_slope == 0.1
    conv = Converter(model, swap_activations={"leaky_relu": SpikingLeakyReLU(negative_slope=0.5)},
                     scale_firing_rates=50, synapse=0.01)
    (ens,) = conv.net.all_ensembles
    assert type(ens.neuron_type) is SpikingLeakyReLU  # noqa: E721
    assert ens.neuron_type.negative_slope == 0.1 and ens.neuron_type.amplitude == pytest.approx(1 / 50)
    x = np.random.RandomState(0).uniform(-1, 1, (1, 4))
    conv.inputs[model.inputs[0]].output = x[0]
    with nengo.Simulator(conv.net, progress_bar=False) as sim:
        sim.run_steps(300)
    got = sim.data[conv.outputs[model.outputs[0]]][-100:].mean(axis=0)
    np.testing.assert_allclose(got, model.predict(x, verbose=0)[0], atol=0.1)


def test_scaling_non_homogeneous_neurons_warns():
    """NengoDL scales any neuron type; where the output changes, nhw says so."""
    model = _seq(L.Flatten(), L.Dense(3, activation="sigmoid"), shape=(4,))
    with pytest.warns(UserWarning, match="no amplitude: only its input is scaled"):
        conv = Converter(model, scale_firing_rates=10)
    (ens,) = conv.net.all_ensembles
    assert np.all(ens.gain == 10)
    with pytest.raises(ValueError, match="differs from Keras"):
        _verify(conv)


def test_rate_scaling_preserves_rate_network():
    model = _seq(L.Flatten(), L.Dense(5, activation="relu"), L.Dense(2))
    conv = Converter(model, scale_firing_rates={model.layers[1].name: 20})
    assert _verify(conv)


def test_spiking_digits_cnn_keeps_accuracy():
    from sklearn.datasets import load_digits

    keras.utils.set_random_seed(0)
    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")[..., None]
    y = digits.target
    x_train, y_train, x_test, y_test = x[:1400], y[:1400], x[1400:], y[1400:]
    model = keras.Sequential([keras.Input((8, 8, 1)), L.Conv2D(16, 3, activation="relu"), L.AveragePooling2D(2),
                              L.Flatten(), L.Dense(64, activation="relu"), L.Dense(10)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x_train, y_train, epochs=40, batch_size=32, verbose=0)
    keras_acc = np.mean(np.argmax(model.predict(x_test, verbose=0), 1) == y_test)

    n_steps = 30
    conv = Converter(model, swap_activations={"relu": nengo.SpikingRectifiedLinear()},
                     scale_firing_rates=200, synapse=0.005)
    conv.inputs[model.inputs[0]].output = nengo.processes.PresentInput(
        x_test.reshape(len(x_test), -1), presentation_time=n_steps * 0.001)
    with nengo.Simulator(conv.net, progress_bar=False) as sim:
        sim.run_steps(n_steps * len(x_test))
    out = sim.data[conv.outputs[model.outputs[0]]].reshape(len(x_test), n_steps, 10)
    spiking_acc = np.mean(np.argmax(out[:, -10:].mean(axis=1), axis=1) == y_test)
    print(f"keras accuracy {keras_acc:.3f}, spiking (30 steps) {spiking_acc:.3f}, "
          f"ratio {spiking_acc / keras_acc:.3f}")
    assert keras_acc > 0.85
    assert spiking_acc >= 0.95 * keras_acc

"""Keras -> nengo conversion with ``allow_fallback``: layers without a native nengo
equivalent become TensorNodes running the Keras layer, which the ``tensorflow``
target simulates (and ``verify()`` checks); without fallback they are errors naming
the layer, and ``reference`` refuses the TensorNodes, naming the node."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import nengo
import numpy as np
import pytest

keras = pytest.importorskip("keras")

from nhw.errors import UnsupportedFeatureError  # noqa: E402
from nhw.backends.tensorflow import Simulator  # noqa: E402
from nhw.backends.tensorflow.api.converter import ConversionError, Converter  # noqa: E402
from nhw.backends.tensorflow.api.tensor_node import TensorNode  # noqa: E402

L = keras.layers


def _verify(conv, **kwargs):
    """NengoDL's verify on random inputs (not only ones), to 1e-4."""
    shape = tuple(conv.model.inputs[0].shape[1:])
    x = np.random.RandomState(0).uniform(-1, 1, (4, *shape))
    return conv.verify(inputs=[x], atol=1e-4, rtol=0, **kwargs)


class AffineTwo(L.Layer):
    """A custom layer no converter knows: ``x * 2 + 1``."""

    def call(self, x):
        return x * 2 + 1


def _seq(*layers, shape=(4, 4, 2)):
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input(shape), *layers])


def _multiply_subtract():
    keras.utils.set_random_seed(0)
    x = keras.Input((6,))
    a = L.Dense(4, activation="relu")(x)
    b = L.Dense(4)(x)
    m = L.Multiply(name="mul")([a, b])
    s = L.Subtract(name="sub")([m, a])
    return keras.Model(x, L.Dense(2)(s))


CASES = {
    "custom-layer": (lambda: _seq(L.Conv2D(3, 3, activation="relu"), AffineTwo(name="affine"), L.Flatten(),
                                  shape=(5, 5, 2)), ["affine"]),
    "lambda": (lambda: _seq(L.Flatten(), L.Dense(5, activation="relu"), L.Lambda(lambda x: x * 2 + 1, name="lam"),
                            L.Dense(3)), ["lam"]),
    "multiply-subtract": (_multiply_subtract, ["mul", "sub"]),
    "softmax-activation": (lambda: _seq(L.Flatten(), L.Dense(5), L.Activation("softmax", name="sm")), ["sm"]),
    "softmax-dense": (lambda: _seq(L.Flatten(), L.Dense(5, activation="softmax", name="dsm")), ["dsm"]),
    "max-pool": (lambda: _seq(L.MaxPooling2D(2, name="mp"), L.Flatten(), L.Dense(3)), ["mp"]),
    "layernorm-relu6": (lambda: _seq(L.Dense(4), L.LayerNormalization(name="ln"), L.ReLU(max_value=1.0, name="r6"),
                                     shape=(6,)), ["ln", "r6"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_fallback_converts_and_verifies_on_tensorflow(case):
    make, fallbacks = CASES[case]
    model = make()
    conv = Converter(model)
    assert conv.fallbacks == fallbacks
    nodes = [n for n in conv.net.all_nodes if isinstance(n, TensorNode)]
    assert len(nodes) == len(fallbacks)
    assert _verify(conv)  # runs the tensorflow target: TensorNodes in the network


@pytest.mark.parametrize("case, name", [("custom-layer", "affine"), ("multiply-subtract", "mul"),
                                        ("softmax-dense", "dsm"), ("max-pool", "mp"), ("layernorm-relu6", "ln")])
def test_no_fallback_names_the_layer(case, name):
    with pytest.raises(ConversionError, match=f"layer '{name}'.*allow_fallback=False"):
        Converter(CASES[case][0](), allow_fallback=False)


def test_reference_refuses_fallback_naming_the_node():
    conv = Converter(CASES["custom-layer"][0]())
    with pytest.raises(UnsupportedFeatureError, match="TensorNode 'affine'.*tensorflow"):
        nengo.Simulator(conv.net, progress_bar=False)
    with pytest.raises(UnsupportedFeatureError, match="TensorNode 'affine'"):
        conv.verify(simulator=nengo.Simulator)


def test_fallback_wraps_the_keras_layer_and_its_weights_train():
    model = CASES["layernorm-relu6"][0]()
    ln = model.get_layer("ln")
    conv = Converter(model)
    (node,) = [n for n in conv.net.all_nodes if n.label == "ln"]
    assert node.tensor_func is ln and node.shape_in == (4,) and node.shape_out == (4,)
    with Simulator(conv.net, progress_bar=False) as sim:
        ids = {id(w) for w in sim.keras_model.trainable_weights}
    assert all(id(w) in ids for w in ln.trainable_weights)


def test_positional_multi_input_layer():
    keras.utils.set_random_seed(0)
    x = keras.Input((3, 4))
    q = L.Dense(4)(x)
    out = L.MultiHeadAttention(2, 2, name="mha")(q, x)  # called as layer(query, value)
    model = keras.Model(x, L.Flatten()(out))
    conv = Converter(model)
    assert conv.fallbacks == ["mha"]
    assert _verify(conv)


def test_spiking_source_into_fallback_gets_the_synapse():
    model = _seq(L.Flatten(), L.Dense(5, activation="relu"), AffineTwo(name="affine"), L.Dense(2))
    conv = Converter(model, swap_activations={"relu": nengo.SpikingRectifiedLinear()}, synapse=0.005)
    (node,) = [n for n in conv.net.all_nodes if isinstance(n, TensorNode)]
    (into,) = [c for c in conv.net.all_connections if c.post_obj is node]
    (out,) = [c for c in conv.net.all_connections if c.pre_obj is node]
    assert into.synapse == nengo.Lowpass(0.005) and out.synapse is None


def test_spiking_network_with_fallback_runs_on_tensorflow():
    model = _seq(L.Flatten(), L.Dense(8, activation="relu"), AffineTwo(name="affine"), L.Dense(3),
                 L.Activation("softmax", name="sm"))
    conv = Converter(model, swap_activations={"relu": nengo.SpikingRectifiedLinear()},
                     scale_firing_rates=100, synapse=0.01)
    x = np.random.RandomState(0).uniform(0, 1, (1, 4, 4, 2))
    conv.inputs[model.inputs[0]].output = x.reshape(-1)
    with Simulator(conv.net, progress_bar=False) as sim:
        sim.run_steps(200)
    got = sim.data[conv.outputs[model.outputs[0]]][-50:].mean(axis=0)
    np.testing.assert_allclose(got, model.predict(x, verbose=0)[0], atol=0.05)


def test_oversized_3d_convolution_falls_back(monkeypatch):
    import nhw.backends.tensorflow.api.converter_layers as converter

    monkeypatch.setattr(converter, "MAX_SPARSE_NNZ", 100)
    model = _seq(L.Conv3D(2, 2, activation="relu", name="c3"), L.Flatten(), shape=(3, 3, 3, 2))
    conv = Converter(model)
    assert conv.fallbacks == ["c3"]
    assert _verify(conv)
    with pytest.raises(ConversionError, match="layer 'c3'.*MAX_SPARSE_NNZ"):
        Converter(model, allow_fallback=False)

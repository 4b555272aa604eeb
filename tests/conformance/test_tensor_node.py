"""TensorNode and Layer: TensorFlow code inside nengo networks (seed tutorial behaviour)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import keras  # noqa: E402
import nengo  # noqa: E402
import tensorflow as tf  # noqa: E402
from nengo.exceptions import ValidationError  # noqa: E402

import nhw.backends.tensorflow.builders.tensor_node_builder  # noqa: E402,F401 (registers the builder)
from nhw.errors import UnsupportedFeatureError  # noqa: E402
from nhw.backends.tensorflow import Simulator  # noqa: E402
from nhw.backends.tensorflow.api.tensor_node import Layer, SimTensorNode, TensorNode  # noqa: E402
from nhw.backends.tensorflow.builders.tensor_node_builder import SimTensorNodeBuilder  # noqa: E402


def _node_builders(sim):
    return [b for b in sim._loop.builders if isinstance(b, SimTensorNodeBuilder)]


class MyLayer(keras.layers.Layer):
    """The seed tutorial's custom layer: one weight created in build()."""

    def build(self, input_shape):
        self.w = self.add_weight(shape=(1, 1))

    def call(self, inputs):
        return inputs * self.w


def test_seed_tensor_node_table(capfd):
    with nengo.Network() as net:
        a = nengo.Node([0.5, -0.1])

        def tensor_func(t, x):
            print_t = tf.print("t:", t)
            with tf.control_dependencies([print_t]):
                print_x = tf.print("x:", x)
            with tf.control_dependencies([print_x]):
                return tf.add(t, x)

        b = TensorNode(tensor_func, shape_in=(2,), shape_out=(2,))
        nengo.Connection(a, b, synapse=None)
        p = nengo.Probe(b)
    with Simulator(net, progress_bar=False) as sim:
        data = sim.predict(n_steps=10)
        # tf.print cannot be compiled by XLA: this node must opt the loop out
        assert [bld.xla_ok for bld in _node_builders(sim)] == [False]
    t = 0.001 * np.arange(1, 11, dtype=np.float32)
    expected = np.stack([0.5 + t, -0.1 + t], axis=-1)[None]
    assert data[p].shape == (1, 10, 2)
    np.testing.assert_allclose(data[p], expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(data[p][0, 0], [0.501, -0.099], atol=1e-6)
    np.testing.assert_allclose(data[p][0, -1], [0.51, -0.09], atol=1e-6)
    err = capfd.readouterr().err
    assert "t: 0.001" in err and "x: [[0.5 -0.1]]" in err


def test_time_only_and_input_only_forms():
    with nengo.Network() as net:
        a = nengo.Node([1.0, 2.0, 3.0])
        f_t = TensorNode(lambda t: tf.reshape(t, (1, 1)) * tf.ones((1, 2)), shape_out=(2,))
        f_x = TensorNode(lambda x: 2 * x, shape_in=(3,), pass_time=False)
        nengo.Connection(a, f_x, synapse=None)
        p_t = nengo.Probe(f_t)
        p_x = nengo.Probe(f_x)
    assert f_t.size_in == 0 and f_t.size_out == 2 and f_t.output is None
    assert f_x.shape_out == (3,) and f_x.size_in == 3
    with Simulator(net, progress_bar=False) as sim:
        sim.run_steps(5)
        # tf-only functions compile with XLA
        assert all(bld.xla_ok for bld in _node_builders(sim))
    t = sim.trange()
    np.testing.assert_allclose(sim.data[p_t], np.stack([t, t], axis=1), atol=1e-6)
    np.testing.assert_allclose(sim.data[p_x], np.tile([2.0, 4.0, 6.0], (5, 1)), atol=1e-6)


def test_shape_inference_and_multidimensional_shapes():
    with nengo.Network() as net:
        a = nengo.Node(np.arange(6, dtype=float))
        node = TensorNode(
            lambda t, x: tf.transpose(x, (0, 2, 1)) + t, shape_in=(2, 3), label="transposer"
        )
        nengo.Connection(a, node, synapse=None)
        p = nengo.Probe(node)
    assert node.shape_out == (3, 2) and node.size_in == 6 and node.size_out == 6
    with Simulator(net, progress_bar=False) as sim:
        sim.run_steps(2)
    expected = np.arange(6.0).reshape(2, 3).T.reshape(-1) + 0.002
    np.testing.assert_allclose(sim.data[p][-1], expected, atol=1e-6)


def test_tensor_node_module_imports_without_tensorflow():
    # building a network with given shapes must not import TensorFlow either
    code = (
        "import sys, nengo; import nhw.backends.tensorflow.api.tensor_node as m\n"
        "with nengo.Network():\n"
        "    m.TensorNode(lambda t, x: x, shape_in=(2,), shape_out=(2,))\n"
        "assert 'tensorflow' not in sys.modules, 'TensorFlow imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=_repo_root())


def _repo_root():
    import pathlib

    return str(pathlib.Path(__file__).resolve().parents[2])


def test_custom_keras_layer_with_weights():
    with nengo.Network() as net:
        inp = nengo.Node([0.5])
        layer = MyLayer()
        a = TensorNode(layer, shape_in=(1,), pass_time=False)
        nengo.Connection(inp, a, synapse=None)
        p = nengo.Probe(a)
    assert a.shape_out == (1,) and layer.built
    with Simulator(net, progress_bar=False) as sim:
        sim.run_steps(3)
        assert any(lay is layer for lay in sim._ctx.keras_layers)
    w = float(np.asarray(layer.w.numpy()).reshape(()))
    np.testing.assert_allclose(sim.data[p], np.full((3, 1), 0.5 * w), rtol=1e-6)


def test_unbuilt_keras_layer_with_given_shape_out_is_built_before_tracing():
    layer = MyLayer()
    with nengo.Network() as net:
        inp = nengo.Node([2.0])
        a = TensorNode(layer, shape_in=(1,), shape_out=(1,), pass_time=False)
        nengo.Connection(inp, a, synapse=None)
        p = nengo.Probe(a)
    assert not layer.built
    with Simulator(net, progress_bar=False) as sim:
        assert layer.built
        sim.run_steps(2)
    w = float(np.asarray(layer.w.numpy()).reshape(()))
    np.testing.assert_allclose(sim.data[p][-1], [2.0 * w], rtol=1e-6)


# nengo derives max_rates from gain=1, bias=0 (an intercept of 1) with a log(0)
@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
def test_layer_shapes_dense_lif_batchnorm():
    with nengo.Network() as net:
        inp = nengo.Node(np.linspace(-1, 1, 4))
        dense, conn = Layer(keras.layers.Dense(3))(inp, return_conn=True)
        lif = Layer(nengo.LIF())(dense)
        ens = nengo.Ensemble(10, 1)
        bn = Layer(keras.layers.BatchNormalization(momentum=0.9))(ens.neurons)
        half = Layer(lambda x: x[:, :1])(inp[1:3], transform=2.0, synapse=0.01)
        p_dense = nengo.Probe(dense)
        p_lif = nengo.Probe(lif)
        p_bn = nengo.Probe(bn)
        p_half = nengo.Probe(half)
    assert isinstance(dense, TensorNode) and dense.shape_in == (4,) and dense.shape_out == (3,)
    assert dense.pass_time is False
    assert isinstance(conn, nengo.Connection) and conn.post_obj is dense and conn.synapse is None
    assert isinstance(lif, nengo.ensemble.Neurons) and lif.size_in == 3
    assert isinstance(lif.ensemble.neuron_type, nengo.LIF)
    assert bn.shape_in == (10,) and bn.shape_out == (10,)
    assert half.shape_in == (2,) and half.shape_out == (1,)
    with Simulator(net, progress_bar=False) as sim:
        sim.run_steps(5)
        assert len(sim._ctx.keras_layers) == 2
    assert sim.data[p_dense].shape == (5, 3)
    assert sim.data[p_lif].shape == (5, 3)
    assert sim.data[p_bn].shape == (5, 10)
    assert sim.data[p_half].shape == (5, 1)
    # the Ensemble made for LIF takes gain and bias from nengo's defaults, as NengoDL's
    # Layer does (an Ensemble with the network's config), not gain 1 / bias 0
    assert np.all(sim.data[lif.ensemble].gain > 0) and not np.allclose(sim.data[lif.ensemble].gain, 1)
    # the Dense output is the Keras layer applied to the input
    kernel, bias = [np.asarray(v) for v in dense.tensor_func.get_weights()]
    expected = np.linspace(-1, 1, 4) @ kernel + bias
    np.testing.assert_allclose(sim.data[p_dense][-1], expected, atol=1e-5)


def test_connections_and_probes_from_tensor_node():
    with nengo.Network(seed=0) as net:
        a = nengo.Node([0.25])
        b = TensorNode(lambda x: tf.concat([x, -x], axis=1), shape_in=(1,), pass_time=False)
        nengo.Connection(a, b, synapse=None)
        out = nengo.Node(size_in=1)
        nengo.Connection(b[1], out, transform=3.0, synapse=None)
        p = nengo.Probe(out)
        p_slice = nengo.Probe(b[0], synapse=None)
    with Simulator(net, progress_bar=False) as sim:
        sim.run_steps(3)
    np.testing.assert_allclose(sim.data[p][-1], [-0.75], atol=1e-6)
    np.testing.assert_allclose(sim.data[p_slice][-1], [0.25], atol=1e-6)


def test_wrong_output_shape_names_node():
    with nengo.Network() as net:
        a = nengo.Node([1.0, 2.0])
        b = TensorNode(lambda t, x: x, shape_in=(2,), shape_out=(3,), label="badshape")
        nengo.Connection(a, b, synapse=None)
    with pytest.raises(ValidationError, match=r"badshape.*\(1, 2\).*\(1, 3\)"):
        Simulator(net, progress_bar=False)


def test_non_float_output_rejected():
    with nengo.Network() as net:
        TensorNode(lambda t: tf.ones((1, 2), tf.int32), shape_out=(2,), label="ints")
    with pytest.raises(ValidationError, match="ints.*float"):
        Simulator(net, progress_bar=False)


@pytest.mark.parametrize(
    "kwargs, attr",
    [
        (dict(shape_in=(0,)), "shape_in"),
        (dict(shape_in=(2.5,)), "shape_in"),
        (dict(shape_in=(2,), shape_out=(-1,)), "shape_out"),
        (dict(shape_in="ab"), "shape_in"),
    ],
)
def test_bad_shapes_rejected(kwargs, attr):
    with nengo.Network():
        with pytest.raises(ValidationError, match=attr):
            TensorNode(lambda t, x: x, label="shapes", **kwargs)


def test_bad_arguments_rejected():
    with nengo.Network():
        with pytest.raises(ValidationError, match="callable"):
            TensorNode(3, shape_in=(1,), shape_out=(1,))
        with pytest.raises(ValidationError, match="infer shape_out"):
            TensorNode(lambda t, x: tf.reduce_sum(x, axis=1), shape_in=(2,), label="rank1")
        with pytest.raises(ValidationError, match="failed"):
            TensorNode(lambda t: t, shape_in=(2,), label="wrongargs")
        with pytest.raises(ValidationError, match="layer_func"):
            Layer(3)


def test_nengo_simulator_refuses_tensor_node():
    with nengo.Network() as net:
        a = nengo.Node([1.0])
        b = TensorNode(lambda x: x, shape_in=(1,), pass_time=False, label="tfonly")
        nengo.Connection(a, b)
        nengo.Probe(b)
    with pytest.raises(UnsupportedFeatureError, match="tfonly.*tensorflow"):
        nengo.Simulator(net, progress_bar=False)
    # the nengo-side build itself works (signals and operator)
    model = nengo.builder.Model()
    model.build(net)
    ops = [op for op in model.operators if isinstance(op, SimTensorNode)]
    assert len(ops) == 1 and ops[0].node is b
    assert model.sig[b]["out"].shape == (1,) and model.sig[b]["in"].shape == (1,)


def test_minibatch_predict_with_data():
    with nengo.Network() as net:
        a = nengo.Node(np.zeros(2), label="a")
        b = TensorNode(lambda t, x: x * 10 + t, shape_in=(2,))
        nengo.Connection(a, b, synapse=None)
        p = nengo.Probe(b)
    x = np.random.RandomState(0).uniform(-1, 1, size=(8, 6, 2)).astype(np.float32)
    with Simulator(net, minibatch_size=4, progress_bar=False) as sim:
        out = sim.predict({a: x})
        sim.run_steps(2)
        assert sim.data[p].shape == (4, 2, 2)
    t = 0.001 * np.arange(1, 7)
    np.testing.assert_allclose(out[p], x * 10 + t[None, :, None], atol=1e-5)


def test_xla_long_run_and_float64():
    with nengo.Network() as net:
        a = nengo.Node(lambda t: [np.sin(t), np.cos(t)])
        b = Layer(keras.layers.Dense(2, use_bias=False, kernel_initializer="identity"))(a)
        p = nengo.Probe(b)
    with Simulator(net, progress_bar=False, dtype="float64") as sim:
        assert sim._loop.xla  # a built-in Dense layer keeps the loop XLA-compilable
        sim.run_steps(40)
    t = sim.trange()
    np.testing.assert_allclose(sim.data[p], np.stack([np.sin(t), np.cos(t)], 1), atol=1e-5)

"""fit(class_weight=...), the weighted ``<probe>_loss``, and a learning-rule connection
set trainable, on nhw.dl.

Keras (and so NengoDL) reports each output's loss computed with its sample weights;
class_weight weighs each (item, timestep) by the weight of its target's class; NengoDL
warns when a connection with a learning rule is explicitly made trainable.
"""

from __future__ import annotations

import nengo
import numpy as np
import pytest
from nengo.exceptions import ValidationError

tf = pytest.importorskip("tensorflow")

from tf_training_helpers import compile_fast, make_sim

import nhw.dl as nengo_dl


def classifier_net():
    with nengo.Network(seed=0) as net:
        net.inp = nengo.Node(np.zeros(4), label="inp")
        ens = nengo.Ensemble(20, 4, neuron_type=nengo.RectifiedLinear(), label="ens")
        net.out = nengo.Node(size_in=3, label="out")
        nengo.Connection(net.inp, ens, synapse=None)
        nengo.Connection(ens, net.out, synapse=None, transform=np.zeros((3, 4)))
        net.p = nengo.Probe(net.out, synapse=None, label="p")
    return net


def one_hot_data(n=16, steps=2, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.rand(n, steps, 4)
    labels = rng.randint(0, 3, n)
    y = np.zeros((n, steps, 3))
    y[np.arange(n), :, labels] = 1
    return x, y, labels


def test_probe_loss_is_weighted_as_keras_weights_an_outputs_loss():
    x, y, labels = one_hot_data()
    w = np.array([1.0, 2.0, 3.0])[labels]
    with make_sim(classifier_net()) as sim:
        compile_fast(sim, "sgd", loss="mse")
        res = sim.evaluate(x, y, sample_weight=w, verbose=0)
        # all outputs are 0, so every (item, step) has mse 1/3; Keras: sum(w * mse) / count
        assert np.isclose(res["loss"], (w / 3).mean(), rtol=1e-6)
        assert np.isclose(res["p_loss"], res["loss"], rtol=1e-6)
        plain = sim.evaluate(x, y, verbose=0)
        assert np.isclose(plain["p_loss"], 1 / 3, rtol=1e-6)


def test_class_weight_equals_the_sample_weight_of_each_items_class():
    x, y, labels = one_hot_data()
    cw = {0: 1.0, 1: 2.0, 2: 0.5}
    hist = {}
    for name, kw in [("class", {"class_weight": cw}),
                     ("sample", {"sample_weight": np.array([cw[k] for k in labels])})]:
        with make_sim(classifier_net()) as sim:
            compile_fast(sim, "adam", loss="mse")
            hist[name] = sim.fit(x, y, epochs=2, verbose=0, **kw).history["loss"]
    assert np.allclose(hist["class"], hist["sample"], rtol=1e-6)
    with make_sim(classifier_net()) as sim:
        compile_fast(sim, "adam", loss="mse")
        unweighted = sim.fit(x, y, epochs=2, verbose=0).history["loss"]
    assert not np.allclose(unweighted, hist["class"], rtol=1e-3)


def test_class_weight_reads_integer_labels_and_multiplies_sample_weight():
    from nhw.backends.tensorflow.api.class_weights import class_sample_weight, combine

    labels = np.array([[0, 2], [1, 1], [np.nan, 5]])[..., None]          # (3 items, 2 steps, 1)
    w = class_sample_weight({0: 4.0, 2: 3.0}, {"p": labels})
    assert np.array_equal(w, [[4, 3], [1, 1], [1, 1]])                   # missing class / NaN: 1
    assert np.array_equal(combine(np.array([[2.0], [1.0], [0.0]]), w), [[8, 6], [1, 1], [0, 0]])


@pytest.mark.parametrize("class_weight, y, match", [
    ([1, 2], None, "non-empty dict"),
    ({"a": 1}, None, "integer class indices"),
    ({0: -1.0}, None, "weights >= 0"),
    ({0: 1.0}, "two", "exactly one target probe"),
    ({0: 1.0}, "2d", r"shape \(n_items, n_steps, dims\)"),
])
def test_bad_class_weight_is_refused_before_training(class_weight, y, match):
    from nhw.backends.tensorflow.api.class_weights import class_sample_weight

    data = np.zeros((4, 2, 3))
    targets = {"two": {"a": data, "b": data}, "2d": data[:, 0]}.get(y, data)
    with pytest.raises(ValidationError, match=match) as info:
        class_sample_weight(class_weight, targets)
    assert info.value.attr == "class_weight"


def test_class_weight_with_a_dataset_is_refused():
    x, y, _ = one_hot_data()
    ds = tf.data.Dataset.from_tensor_slices(({"inp": x.astype(np.float32)}, {"p": y.astype(np.float32)}))
    with make_sim(classifier_net()) as sim:
        compile_fast(sim, "sgd", loss="mse")
        with pytest.raises(ValidationError, match="class_weight needs x and y given as arrays"):
            sim.fit(ds.batch(8, drop_remainder=True), class_weight={0: 1.0}, verbose=0)


def test_a_learning_rule_connection_set_trainable_warns():
    with nengo.Network(seed=0) as net:
        pre = nengo.Ensemble(10, 1, label="pre")
        post = nengo.Node(size_in=1, label="post")
        conn = nengo.Connection(pre, post, learning_rule_type=nengo.PES())
        nengo.Connection(post, conn.learning_rule)
        nengo_dl.configure_settings(trainable=None)
        net.config[conn].trainable = True
    with pytest.warns(UserWarning, match="has a learning rule and is also set to be trainable"):
        with make_sim(net):
            pass


def test_a_learning_rule_connection_not_set_trainable_does_not_warn(recwarn):
    with nengo.Network(seed=0) as net:
        pre = nengo.Ensemble(10, 1, label="pre")
        post = nengo.Node(size_in=1, label="post")
        conn = nengo.Connection(pre, post, learning_rule_type=nengo.PES())
        nengo.Connection(post, conn.learning_rule)
    with make_sim(net):
        pass
    assert not [w for w in recwarn if "learning rule" in str(w.message)]

"""NengoDL notebook "Integrating a Keras model into a Nengo network", with ``import nhw.dl as nengo_dl``.

A ``TensorNode`` computing sin(t); a Keras classifier trained in Keras, saved with
``save_weights`` and run inside a Nengo network through a ``TensorNode`` wrapping the
whole model; the same model written with ``nengo_dl.Layer`` and trained with
``sim.fit``; written again with plain nengo objects; and converted with
``nengo_dl.Converter``. Each prints its test accuracy next to Keras's. The data are
scikit-learn's 8x8 digits in place of Fashion-MNIST.

Keras 3 needs weight files named ``*.weights.h5``, so the file is
``keras.weights.h5`` where the notebook (Keras 2) writes ``keras_weights``.

    python examples/nengo_dl/tensorflow_models.py [--quick] [--out DIR]
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import nengo
import numpy as np
from _notebook import load_digits_data, parse_args, savefig  # first: loads TensorFlow quietly
import tensorflow as tf

import nhw.dl as nengo_dl  # was: import nengo_dl

args = parse_args(__doc__)
seed = 0
np.random.seed(seed)
tf.random.set_seed(seed)
# Keras 3 layer initialisers draw from Python's random module, which
# tf.random.set_seed no longer seeds (tf.keras 2 did); this makes a run repeatable
tf.keras.utils.set_random_seed(seed)
epochs = 5 if args.quick else 20

# --- a TensorNode that outputs sin(t)
with nengo.Network() as net:

    def sin_func(t):
        # a batch of one, one dimension
        return tf.reshape(tf.sin(t), (1, 1))

    node = nengo_dl.TensorNode(sin_func)
    p = nengo.Probe(node)

with nengo_dl.Simulator(net) as sim:
    sim.run(5.0)
err = np.max(np.abs(sim.data[p][:, 0] - np.sin(sim.trange())))
print(f"TensorNode sin(t): max error {err:.2g}")
fig = plt.figure()
plt.plot(sim.trange(), sim.data[p])
savefig(fig, args.out, "tensorflow_models_sin.png")

# --- the data and a Keras model
(train_images, train_labels), (test_images, test_labels) = load_digits_data(
    n_train=1200, n_test=400)
num_classes = 10
n_pixels = train_images.shape[1]

inp = tf.keras.Input(train_images.shape[1:])
hidden = tf.keras.layers.Dense(units=128, activation=tf.nn.relu)(inp)
out = tf.keras.layers.Dense(units=num_classes)(hidden)
model = tf.keras.Model(inputs=inp, outputs=out)
model.compile(optimizer=tf.optimizers.Adam(),
              loss=tf.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"])
model.fit(train_images, train_labels, epochs=epochs, verbose=0)
keras_acc = model.evaluate(test_images, test_labels, verbose=0)[1]
print("Test accuracy:", keras_acc)

model_weights = str(args.out / "keras.weights.h5")
model.save_weights(model_weights)


class KerasWrapper(tf.keras.layers.Layer):
    """A Keras layer that runs a copy of ``keras_model`` with the saved weights."""

    def __init__(self, keras_model):
        super().__init__()
        self.model = keras_model

    def build(self, input_shape):
        super().build(input_shape)
        # a fresh copy, built inside the TensorNode, then the trained weights
        self.model = tf.keras.models.clone_model(self.model)
        self.model.load_weights(model_weights)

    def call(self, inputs):
        return self.model(inputs)


with nengo.Network() as net:
    input_node = nengo.Node(output=np.ones(n_pixels))
    layer = KerasWrapper(model)
    keras_node = nengo_dl.TensorNode(layer, shape_in=(n_pixels,), shape_out=(num_classes,),
                                     pass_time=False)
    nengo.Connection(input_node, keras_node, synapse=None)
    keras_p = nengo.Probe(keras_node)

# NengoDL always simulates over time: one step here
train_images = train_images[:, None, :]
train_labels = train_labels[:, None, None]
test_images = test_images[:, None, :]
test_labels = test_labels[:, None, None]

with net:
    nengo_dl.configure_settings(stateful=False, use_loop=False)

minibatch_size = 20


def evaluate(net, train):
    """Compile, optionally fit with the Keras model's arguments, and evaluate."""
    with nengo_dl.Simulator(net, minibatch_size=minibatch_size) as sim:
        sim.compile(optimizer=tf.optimizers.Adam(),
                    loss=tf.losses.SparseCategoricalCrossentropy(from_logits=True),
                    metrics=["accuracy"])
        if train:
            sim.fit(train_images, train_labels, epochs=epochs, verbose=0)
        return sim.evaluate(test_images, test_labels, verbose=0)["probe_accuracy"]


wrapped_acc = evaluate(net, train=False)
print("Test accuracy:", wrapped_acc)
print(f"keras model in a TensorNode: test accuracy {wrapped_acc:.3f} (keras {keras_acc:.3f})")

# --- the same model from nengo_dl.Layer, trained in NengoDL
with nengo.Network(seed=seed) as net:
    inp_node = nengo.Node(output=np.ones(n_pixels))
    hidden = nengo_dl.Layer(tf.keras.layers.Dense(units=128, activation=tf.nn.relu))(inp_node)
    out_layer = nengo_dl.Layer(tf.keras.layers.Dense(units=num_classes))(hidden)
    out_p = nengo.Probe(out_layer)
with net:
    nengo_dl.configure_settings(stateful=False, use_loop=False)
layer_acc = evaluate(net, train=True)
print("Test accuracy:", layer_acc)
print(f"nengo_dl.Layer model: test accuracy {layer_acc:.3f} (keras {keras_acc:.3f})")

# --- the same model from nengo objects: a RectifiedLinear ensemble and a Node
with nengo.Network(seed=seed) as net:
    # Keras's defaults: unit gain, zero bias, no filtering, Glorot-uniform weights
    net.config[nengo.Ensemble].gain = nengo.dists.Choice([1])
    net.config[nengo.Ensemble].bias = nengo.dists.Choice([0])
    net.config[nengo.Connection].synapse = None
    net.config[nengo.Connection].transform = nengo_dl.dists.Glorot()

    inp_node = nengo.Node(output=np.ones(n_pixels))
    hidden = nengo.Ensemble(128, 1, neuron_type=nengo.RectifiedLinear()).neurons
    nengo.Connection(inp_node, hidden)
    out_node = nengo.Node(size_in=num_classes)
    nengo.Connection(hidden, out_node)
    out_p = nengo.Probe(out_node)
with net:
    nengo_dl.configure_settings(stateful=False, use_loop=False)
nengo_acc = evaluate(net, train=True)
print("Test accuracy:", nengo_acc)
print(f"nengo objects model: test accuracy {nengo_acc:.3f} (keras {keras_acc:.3f})")

# --- the Keras model converted: the trained weights come with it
converter = nengo_dl.Converter(model)
with converter.net:
    nengo_dl.configure_settings(stateful=False, use_loop=False)
converted_acc = evaluate(converter.net, train=False)
print("Test accuracy:", converted_acc)
print(f"converted model: test accuracy {converted_acc:.3f} (keras {keras_acc:.3f})")

"""NengoDL notebook "Optimizing a spiking neural network", with ``import nhw.dl as nengo_dl``.

Three convolution layers of spiking LIF neurons and a dense readout, written with
``nengo_dl.Layer``, are trained with ``sim.fit`` on single-step images (NengoDL swaps
each LIF for its differentiable rate curve while training) and tested with spikes
over ``n_steps`` steps through a filtered probe. The data are scikit-learn's 8x8
digits, upsampled to 16x16 so that the notebook's three 3x3 convolutions (two of them
with stride 2) still fit. The same layers with ReLU trained in plain Keras give the
baseline on the same split.

    python examples/nengo_dl/spiking_mnist.py [--quick] [--out DIR]
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
tf.random.set_seed(0)
# Keras 3 layer initialisers draw from Python's random module, which
# tf.random.set_seed no longer seeds (tf.keras 2 did); this makes a run repeatable
tf.keras.utils.set_random_seed(0)
side = 16
(train_images, train_labels), (test_images, test_labels) = load_digits_data(
    n_train=1200, n_test=200 if args.quick else 400, upsample=2, pixel_max=255)  # raw bytes, as the notebook's MNIST
epochs = 3 if args.quick else 20
n_steps = 20 if args.quick else 30

with nengo.Network(seed=0) as net:
    # neuron defaults that make the rate curves easy to train from the start
    net.config[nengo.Ensemble].max_rates = nengo.dists.Choice([100])
    net.config[nengo.Ensemble].intercepts = nengo.dists.Choice([0])
    net.config[nengo.Connection].synapse = None
    neuron_type = nengo.LIF(amplitude=0.01)

    # the notebook's speed-up: no state is carried between calls
    nengo_dl.configure_settings(stateful=False)

    inp = nengo.Node(np.zeros(side * side))
    x = nengo_dl.Layer(tf.keras.layers.Conv2D(filters=32, kernel_size=3))(
        inp, shape_in=(side, side, 1))
    x = nengo_dl.Layer(neuron_type)(x)
    x = nengo_dl.Layer(tf.keras.layers.Conv2D(filters=64, strides=2, kernel_size=3))(
        x, shape_in=(side - 2, side - 2, 32))
    x = nengo_dl.Layer(neuron_type)(x)
    x = nengo_dl.Layer(tf.keras.layers.Conv2D(filters=128, strides=2, kernel_size=3))(
        x, shape_in=(6, 6, 64))
    x = nengo_dl.Layer(neuron_type)(x)
    out = nengo_dl.Layer(tf.keras.layers.Dense(units=10))(x)

    # unfiltered for training on rates, filtered for reading spikes over time
    out_p = nengo.Probe(out, label="out_p")
    out_p_filt = nengo.Probe(out, synapse=0.1, label="out_p_filt")

# 50 rather than the notebook's 200: the digits set is 50 times smaller than MNIST
minibatch_size = 50
sim = nengo_dl.Simulator(net, minibatch_size=minibatch_size)

train_images = train_images[:, None, :]
train_labels = train_labels[:, None, None]
test_images = np.tile(test_images[:, None, :], (1, n_steps, 1))
test_labels = np.tile(test_labels[:, None, None], (1, n_steps, 1))


def classification_accuracy(y_true, y_pred):
    """Accuracy of the output on the last time step."""
    return tf.metrics.sparse_categorical_accuracy(y_true[:, -1], y_pred[:, -1])


sim.compile(loss={out_p_filt: classification_accuracy})
before = sim.evaluate(test_images, {out_p_filt: test_labels}, verbose=0)["loss"]
print("Accuracy before training:", before)

sim.compile(optimizer=tf.optimizers.RMSprop(0.001),
            loss={out_p: tf.losses.SparseCategoricalCrossentropy(from_logits=True)})
sim.fit(train_images, {out_p: train_labels}, epochs=epochs, verbose=0)
sim.save_params(str(args.out / "mnist_params"))

# a fresh simulator reading the saved file, as the notebook does with its download
sim.close()
sim = nengo_dl.Simulator(net, minibatch_size=minibatch_size)
sim.load_params(str(args.out / "mnist_params"))
sim.compile(loss={out_p_filt: classification_accuracy})
after = sim.evaluate(test_images, {out_p_filt: test_labels}, verbose=0)["loss"]
print("Accuracy after training:", after)

data = sim.predict(test_images[:minibatch_size], verbose=0)
fig, axes = plt.subplots(2, 5, figsize=(15, 5))
for i in range(5):
    axes[0, i].imshow(test_images[i, 0].reshape((side, side)), cmap="gray")
    axes[0, i].axis("off")
    axes[1, i].plot(tf.nn.softmax(data[out_p_filt][i]))
    axes[1, i].set_xlabel("timesteps")
savefig(fig, args.out, "spiking_mnist.png")
sim.close()

# --- the baseline: the same layers with ReLU in plain Keras, the same data and epochs
inp_k = tf.keras.Input(shape=(side, side, 1))
h = tf.keras.layers.Conv2D(filters=32, kernel_size=3, activation="relu")(inp_k)
h = tf.keras.layers.Conv2D(filters=64, strides=2, kernel_size=3, activation="relu")(h)
h = tf.keras.layers.Conv2D(filters=128, strides=2, kernel_size=3, activation="relu")(h)
h = tf.keras.layers.Flatten()(h)
keras_model = tf.keras.Model(inp_k, tf.keras.layers.Dense(units=10)(h))
keras_model.compile(optimizer=tf.optimizers.RMSprop(0.001),
                    loss=tf.losses.SparseCategoricalCrossentropy(from_logits=True),
                    metrics=["accuracy"])
keras_model.fit(train_images[:, 0].reshape((-1, side, side, 1)), train_labels[:, 0, 0],
                batch_size=minibatch_size, epochs=epochs, verbose=0)
keras_acc = keras_model.evaluate(test_images[:, 0].reshape((-1, side, side, 1)),
                                 test_labels[:, 0, 0], verbose=0)[1]
print(f"spiking test accuracy {after:.3f} (keras {keras_acc:.3f}; before training {before:.3f})")

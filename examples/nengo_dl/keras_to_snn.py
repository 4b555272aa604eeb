"""NengoDL notebook "Converting a Keras model to a spiking neural network", with ``import nhw.dl as nengo_dl``.

A Keras convolutional classifier is converted with ``nengo_dl.Converter``, trained
in NengoDL, and run with its ReLUs swapped for rate and then spiking neurons:
spiking over more steps, with synaptic filters, with scaled firing rates, and after
training with a firing-rate regulariser. Every accuracy is printed next to the same
model trained in plain Keras. The data are scikit-learn's 8x8 digits (64 pixels, so
the notebook's second convolution leaves a 2x2 map), and the notebook's downloaded
parameter files are trained here instead.

    python examples/nengo_dl/keras_to_snn.py [--quick] [--out DIR]
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
side = 8
(train_images, train_labels), (test_images, test_labels) = load_digits_data(
    n_train=1200, n_test=400, pixel_max=255)  # raw bytes, as the notebook's MNIST
epochs = 3 if args.quick else 20
n_test = 100 if args.quick else 400

# flat images with one time step, as NengoDL expects
train_images = train_images.reshape((train_images.shape[0], 1, -1))
train_labels = train_labels.reshape((train_labels.shape[0], 1, -1))
test_images = test_images.reshape((test_images.shape[0], 1, -1))
test_labels = test_labels.reshape((test_labels.shape[0], 1, -1))

inp = tf.keras.Input(shape=(side, side, 1))
conv0 = tf.keras.layers.Conv2D(filters=32, kernel_size=3, activation=tf.nn.relu)(inp)
conv1 = tf.keras.layers.Conv2D(filters=64, kernel_size=3, strides=2, activation=tf.nn.relu)(conv0)
flatten = tf.keras.layers.Flatten()(conv1)
dense = tf.keras.layers.Dense(units=10)(flatten)
model = tf.keras.Model(inputs=inp, outputs=dense)

# --- the baseline: a copy of the model trained in plain Keras on the same data
keras_model = tf.keras.models.clone_model(model)
keras_model.compile(optimizer=tf.optimizers.Adam(0.001),
                    loss=tf.losses.SparseCategoricalCrossentropy(from_logits=True),
                    metrics=[tf.metrics.sparse_categorical_accuracy])
keras_model.fit(train_images.reshape((-1, side, side, 1)), train_labels[:, 0, 0],
                batch_size=50, epochs=epochs, verbose=0)
keras_acc = keras_model.evaluate(test_images[:n_test].reshape((-1, side, side, 1)),
                                 test_labels[:n_test, 0, 0], verbose=0)[1]
print(f"keras test accuracy: {100 * keras_acc:.2f}%")

# --- train the converted model in NengoDL
converter = nengo_dl.Converter(model)
params_file = str(args.out / "keras_to_snn_params")
with nengo_dl.Simulator(converter.net, minibatch_size=50) as sim:
    sim.compile(optimizer=tf.optimizers.Adam(0.001),
                loss=tf.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=[tf.metrics.sparse_categorical_accuracy])
    sim.fit({converter.inputs[inp]: train_images},
            {converter.outputs[dense]: train_labels},
            validation_data=({converter.inputs[inp]: test_images},
                             {converter.outputs[dense]: test_labels}),
            epochs=epochs, verbose=0)
    sim.save_params(params_file)


def run_network(activation, params_file=params_file, n_steps=30, scale_firing_rates=1,
                synapse=None, n_test=n_test, name=None):
    """Convert with ``activation`` in place of ReLU, load the trained parameters and
    classify ``n_test`` test images from the output on the last step."""
    nengo_converter = nengo_dl.Converter(
        model, swap_activations={tf.nn.relu: activation},
        scale_firing_rates=scale_firing_rates, synapse=synapse)
    nengo_input = nengo_converter.inputs[inp]
    nengo_output = nengo_converter.outputs[dense]

    # record a sample of the first convolution's neurons
    sample_neurons = np.linspace(0, np.prod(conv0.shape[1:]), 100, endpoint=False, dtype=np.int32)
    with nengo_converter.net:
        conv0_probe = nengo.Probe(nengo_converter.layers[conv0][sample_neurons])

    tiled_test_images = np.tile(test_images[:n_test], (1, n_steps, 1))
    with nengo_converter.net:
        nengo_dl.configure_settings(stateful=False)

    # 50 rather than the notebook's 10: the samples are independent (stateful=False),
    # so only the speed differs
    with nengo_dl.Simulator(nengo_converter.net, minibatch_size=50, progress_bar=False) as nengo_sim:
        nengo_sim.load_params(params_file)
        data = nengo_sim.predict({nengo_input: tiled_test_images}, verbose=0)

    predictions = np.argmax(data[nengo_output][:, -1], axis=-1)
    accuracy = (predictions == test_labels[:n_test, 0, 0]).mean()
    scaled = data[conv0_probe][0] * scale_firing_rates
    if isinstance(activation, nengo.SpikingRectifiedLinear):
        rates = np.sum(scaled * 0.001, axis=0) / (n_steps * nengo_sim.dt)
    else:
        rates = scaled
    print(f"{name or type(activation).__name__}: test accuracy {100 * accuracy:.2f}% "
          f"(keras {100 * keras_acc:.2f}%), conv0 mean rate {rates.mean():.1f} Hz")

    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    axes[0].imshow(test_images[0, 0].reshape((side, side)), cmap="gray")
    axes[1].plot(scaled)
    axes[2].plot(tf.nn.softmax(data[nengo_output][0]))
    savefig(fig, args.out, f"keras_to_snn_{(name or type(activation).__name__).replace(' ', '_')}.png")
    return accuracy


run_network(activation=nengo.RectifiedLinear(), n_steps=10, name="rate")
run_network(activation=nengo.SpikingRectifiedLinear(), name="spiking")
for s in [0.001, 0.005, 0.01]:
    run_network(activation=nengo.SpikingRectifiedLinear(), n_steps=60, synapse=s,
                name=f"spiking synapse={s:.3f}")
scale_curve = {}
for scale in [2, 5, 10] if args.quick else [2, 5, 10, 20, 50]:
    scale_curve[scale] = run_network(activation=nengo.SpikingRectifiedLinear(),
                                     scale_firing_rates=scale, synapse=0.01,
                                     name=f"spiking scale={scale}")
run_network(activation=nengo.SpikingRectifiedLinear(), scale_firing_rates=1000, n_steps=10,
            name="spiking scale=1000")
print("accuracy over firing-rate scales: " + ", ".join(
    f"{k}: {v:.3f}" for k, v in scale_curve.items()) + f" (keras {keras_acc:.3f})")

# --- training with a firing-rate regulariser on both convolutions
target_rate = 250
converter = nengo_dl.Converter(model)
with converter.net:
    output_p = converter.outputs[dense]
    conv0_p = nengo.Probe(converter.layers[conv0])
    conv1_p = nengo.Probe(converter.layers[conv1])

regularized_file = str(args.out / "keras_to_snn_regularized_params")
with nengo_dl.Simulator(converter.net, minibatch_size=50) as sim:
    sim.compile(
        optimizer=tf.optimizers.RMSprop(0.001),
        loss={output_p: tf.losses.SparseCategoricalCrossentropy(from_logits=True),
              conv0_p: tf.losses.mse, conv1_p: tf.losses.mse},
        loss_weights={output_p: 1, conv0_p: 1e-3, conv1_p: 1e-3})
    sim.fit({converter.inputs[inp]: train_images},
            {output_p: train_labels,
             conv0_p: np.ones((train_labels.shape[0], 1, conv0_p.size_in)) * target_rate,
             conv1_p: np.ones((train_labels.shape[0], 1, conv1_p.size_in)) * target_rate},
            epochs=epochs, verbose=0)
    sim.save_params(regularized_file)

run_network(activation=nengo.RectifiedLinear(), params_file=regularized_file, n_steps=10,
            name="regularized rate")
regularized = run_network(activation=nengo.SpikingRectifiedLinear(), params_file=regularized_file,
                          synapse=0.01, name="regularized spiking")
print(f"regularized spiking test accuracy {regularized:.3f} (keras {keras_acc:.3f})")

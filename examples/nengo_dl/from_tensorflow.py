"""NengoDL notebook "Coming from TensorFlow to NengoDL", with ``import nhw.dl as nengo_dl``.

A two-layer ReLU autoencoder written in Keras and again as a Nengo network; rate and
spiking neurons over time; a Keras layer inside the network (``Layer`` and
``TensorNode``); a ``TensorNode``'s inputs and outputs step by step; the autoencoder
trained in Keras and in NengoDL on the same data (scikit-learn's 8x8 digits in place
of MNIST, so 64 inputs where the notebook has 784) and both test losses printed
side by side; and an NEF network run in NengoDL and in nengo's simulator.

    python examples/nengo_dl/from_tensorflow.py [--quick] [--out DIR]
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import nengo
from nengo.utils.matplotlib import rasterplot
import numpy as np
from _notebook import load_digits_data, parse_args, savefig  # first: loads TensorFlow quietly
import tensorflow as tf

import nhw.dl as nengo_dl  # was: import nengo_dl

args = parse_args(__doc__)
tf.random.set_seed(0)
# Keras 3 layer initialisers draw from Python's random module, which
# tf.random.set_seed no longer seeds (tf.keras 2 did); this makes a run repeatable
tf.keras.utils.set_random_seed(0)
np.random.seed(0)

n_in = 64
n_hidden = 32
minibatch_size = 50

# --- the autoencoder in Keras
tf_a = tf.keras.Input(shape=(n_in,))
tf_b = tf.keras.layers.Dense(n_hidden, activation=tf.nn.relu,
                             kernel_initializer=tf.initializers.glorot_uniform())(tf_a)
tf_c = tf.keras.layers.Dense(n_in, activation=tf.nn.relu,
                             kernel_initializer=tf.initializers.glorot_uniform())(tf_b)

# --- and as a Nengo network
with nengo.Network(seed=0) as auto_net:
    nengo_a = nengo.Node(np.zeros(n_in))
    nengo_b = nengo.Ensemble(n_hidden, 1, neuron_type=nengo.RectifiedLinear())
    nengo.Connection(nengo_a, nengo_b.neurons, transform=nengo_dl.dists.Glorot())
    nengo_c = nengo.Ensemble(n_in, 1, neuron_type=nengo.RectifiedLinear())
    nengo.Connection(nengo_b.neurons, nengo_c.neurons, transform=nengo_dl.dists.Glorot())
    p_c = nengo.Probe(nengo_c.neurons)

model = tf.keras.Model(inputs=tf_a, outputs=tf_c)
out = model.predict(np.ones((minibatch_size, n_in)), verbose=0)
print("keras model.predict output shape:", out.shape)

with nengo_dl.Simulator(network=auto_net, minibatch_size=minibatch_size) as sim:
    out = sim.predict(np.ones((minibatch_size, 1, n_in)), verbose=0)
    print("nengo sim.predict output shape:", out[p_c].shape)

# --- rate and spiking neurons over time
with nengo.Network() as net:
    a = nengo.Node(lambda t: np.sin(2 * np.pi * t))
    b_rate = nengo.Ensemble(10, 1, neuron_type=nengo.RectifiedLinear(), seed=2)
    nengo.Connection(a, b_rate)
    b_spike = nengo.Ensemble(10, 1, neuron_type=nengo.SpikingRectifiedLinear(), seed=2)
    nengo.Connection(a, b_spike)
    p_a = nengo.Probe(a)
    p_rate = nengo.Probe(b_rate.neurons)
    p_spike = nengo.Probe(b_spike.neurons)

with nengo_dl.Simulator(net) as sim:
    sim.run_steps(1000)

filtered_spikes = nengo.Lowpass(tau=0.05).filt(sim.data[p_spike])
fig, axes = plt.subplots(1, 3, figsize=(15, 4))
axes[0].plot(sim.trange(), sim.data[p_rate])
plt.sca(axes[1])
rasterplot(sim.trange(), sim.data[p_spike])
axes[2].plot(sim.trange(), filtered_spikes)
savefig(fig, args.out, "from_tensorflow_rates_spikes.png")
# the filtered spike trains follow the rates once the filter has settled
late = slice(200, None)
rate_err = np.mean(np.abs(filtered_spikes[late] - sim.data[p_rate][late])) / np.mean(sim.data[p_rate][late])
print(f"filtered spikes vs rates: mean relative difference {rate_err:.3f}")

# --- Keras layers inside the network: nengo_dl.Layer, or a TensorNode and a Connection
with net:
    batch_norm = nengo_dl.Layer(tf.keras.layers.BatchNormalization(momentum=0.9))(b_rate.neurons)
    p_batch_norm = nengo.Probe(batch_norm)
with net:
    batch_norm_node = nengo_dl.TensorNode(tf.keras.layers.BatchNormalization(momentum=0.9),
                                          shape_in=(10,), pass_time=False)
    nengo.Connection(b_rate.neurons, batch_norm_node, synapse=None)
    p_batch_norm_node = nengo.Probe(batch_norm_node)
with nengo_dl.Simulator(net) as sim:
    sim.run_steps(10)
print("Layer and TensorNode+Connection agree:",
      np.allclose(sim.data[p_batch_norm], sim.data[p_batch_norm_node], atol=1e-6))

# --- what a TensorNode receives and returns each step
with nengo.Network() as net:
    a = nengo.Node([0.5, -0.1])

    def tensor_func(t, x):
        # tf.print writes to stderr from inside the simulation loop
        print_t = tf.print("t:", t)
        with tf.control_dependencies([print_t]):
            print_x = tf.print("x:", x)
        with tf.control_dependencies([print_x]):
            return tf.add(t, x)

    b = nengo_dl.TensorNode(tensor_func, shape_in=(2,), shape_out=(2,))
    nengo.Connection(a, b, synapse=None)
    p = nengo.Probe(b)

with nengo_dl.Simulator(net) as sim:
    print("TensorNode input:")
    data = sim.predict(n_steps=10, verbose=0)
    print("TensorNode output:")
    print(data[p])

# --- a custom Keras layer with its own weight
with nengo.Network() as net:

    class MyLayer(tf.keras.layers.Layer):
        """Multiplies its input by one trainable weight."""

        def build(self, input_shape):
            self.w = self.add_weight(shape=(1, 1))

        def call(self, inputs):
            return inputs * self.w

    node = nengo.Node([1.0])
    my_layer = MyLayer()
    a = nengo_dl.TensorNode(my_layer, shape_in=(1,), pass_time=False)
    nengo.Connection(node, a, synapse=None)
    p_my = nengo.Probe(a)
with nengo_dl.Simulator(net) as sim:
    sim.run_steps(1)
    print(f"custom Keras layer TensorNode: output {sim.data[p_my][0, 0]:.4f}, "
          f"weight {sim.keras_model.get_layer(my_layer.name).w.numpy()[0, 0]:.4f}")

# --- training the autoencoder: Keras, then NengoDL, on the same data
(train_data, _), (test_data, _) = load_digits_data(n_train=1200, n_test=400, pixel_max=255)  # raw bytes, as the notebook's MNIST
n_epochs = 5 if args.quick else 30

model = tf.keras.Model(inputs=tf_a, outputs=tf_c)
model.compile(optimizer=tf.optimizers.RMSprop(1e-3), loss=tf.losses.mse)
model.fit(train_data, train_data, epochs=n_epochs, batch_size=minibatch_size, verbose=0)
keras_loss = model.evaluate(test_data, test_data, verbose=0)

# Keras' defaults: unit gains, zero biases, no synaptic filters
for ens in auto_net.all_ensembles:
    ens.gain = nengo.dists.Choice([1])
    ens.bias = nengo.dists.Choice([0])
for conn in auto_net.all_connections:
    conn.synapse = None

train_data = train_data[:, None, :]
test_data = test_data[:, None, :]

with nengo_dl.Simulator(auto_net, minibatch_size=minibatch_size) as sim:
    sim.compile(optimizer=tf.optimizers.RMSprop(1e-3), loss=tf.losses.mse)
    before = sim.evaluate(test_data, test_data, verbose=0)["loss"]
    sim.fit(train_data, train_data, epochs=n_epochs, verbose=0)
    nengo_loss = sim.evaluate(test_data, test_data, verbose=0)["loss"]
    output = sim.predict(test_data[:minibatch_size], verbose=0)
fig, axes = plt.subplots(1, 2)
axes[0].imshow(test_data[0, 0].reshape((8, 8)))
axes[1].imshow(output[p_c][0].reshape((8, 8)))
savefig(fig, args.out, "from_tensorflow_autoencoder.png")
print(f"autoencoder test mse {nengo_loss:.4f} (keras {keras_loss:.4f}; before training {before:.4f})")

# --- an NEF network: the same code runs in NengoDL and in nengo's simulator
with nengo.Network(seed=0) as net:
    inpt = nengo.Node(nengo.processes.WhiteSignal(1, 5, rms=0.3))
    ens0 = nengo.Ensemble(50, 1)
    ens1 = nengo.Ensemble(50, 1)
    outpt = nengo.Node(size_in=1)
    nengo.Connection(inpt, ens0)
    nengo.Connection(ens0, ens1, function=np.square)
    nengo.Connection(ens1, outpt, function=np.sin)
    inpt_p = nengo.Probe(inpt)
    outpt_p = nengo.Probe(outpt, synapse=0.005)

with nengo_dl.Simulator(net, seed=0) as sim:
    sim.run_steps(1000)
dl_out = sim.data[outpt_p]
with nengo.Simulator(net, seed=0, progress_bar=False) as sim:
    sim.run_steps(1000)
print(f"NEF network, nengo_dl vs nengo: max difference {np.max(np.abs(dl_out - sim.data[outpt_p])):.2g}")

"""NengoDL notebook "Legendre Memory Units in NengoDL", with ``import nhw.dl as nengo_dl``.

The LMU cell is a ``nengo.Network`` of Nodes, a ``TensorNode`` (tanh) and
Connections: its memory ``m`` follows the fixed, zero-order-hold discretised
Legendre system (``A``, ``B``), and the connections into the hidden state ``h`` train.
The task is permuted sequential digits: scikit-learn's 8x8 digits become sequences
of 64 pixels in a fixed random order (psMNIST's 784 in the notebook), classified
from the output on the last step (``keep_history=False``). The same cell written as
a Keras RNN and trained in plain Keras on the same sequences gives the baseline.

    python examples/nengo_dl/lmu.py [--quick] [--out DIR]
"""

import nengo
from nengo.utils.filter_design import cont2discrete
import numpy as np
from _notebook import load_digits_data, parse_args  # first: loads TensorFlow quietly
import tensorflow as tf

import nhw.dl as nengo_dl  # was: import nengo_dl

args = parse_args(__doc__)
seed = 0
tf.random.set_seed(seed)
# Keras 3 layer initialisers draw from Python's random module, which
# tf.random.set_seed no longer seeds (tf.keras 2 did); this makes a run repeatable
tf.keras.utils.set_random_seed(seed)
np.random.seed(seed)
rng = np.random.RandomState(seed)

(train_images, train_labels), (test_images, test_labels) = load_digits_data(
    n_train=1200, n_test=400)
train_labels = train_labels[:, None, None]
test_labels = test_labels[:, None, None]
# one pixel per time step, in a fixed random order
train_images = train_images.reshape((train_images.shape[0], -1, 1))
test_images = test_images.reshape((test_images.shape[0], -1, 1))
perm = rng.permutation(train_images.shape[1])
train_images = train_images[:, perm]
test_images = test_images[:, perm]

units, order = (64, 32) if args.quick else (212, 64)
epochs = 6 if args.quick else 30


def lmu_matrices(order, theta):
    """The Legendre delay system's ``A`` and ``B``, discretised for one step."""
    q = np.arange(order, dtype=np.float64)
    r = (2 * q + 1)[:, None] / theta
    j, i = np.meshgrid(q, q)
    a = np.where(i < j, -1, (-1.0) ** (i - j + 1)) * r
    b = (-1.0) ** q[:, None] * r
    c = np.ones((1, order))
    d = np.zeros((1,))
    a, b, _, _, _ = cont2discrete((a, b, c, d), dt=1.0, method="zoh")
    return a, b


class LMUCell(nengo.Network):
    """Input ``x``, the memory's input ``u``, the memory ``m`` and the hidden state ``h``."""

    def __init__(self, units, order, theta, input_d, **kwargs):
        super().__init__(**kwargs)
        A, B = lmu_matrices(order, theta)
        with self:
            nengo_dl.configure_settings(trainable=None)
            self.x = nengo.Node(size_in=input_d)
            self.u = nengo.Node(size_in=1)
            self.m = nengo.Node(size_in=order)
            self.h = nengo_dl.TensorNode(tf.nn.tanh, shape_in=(units,), pass_time=False)

            nengo.Connection(self.x, self.u, transform=np.ones((1, input_d)), synapse=None)
            # synapse=0 is a one-step delay: m_t = A m_{t-1} + B u_t, both fixed
            conn_A = nengo.Connection(self.m, self.m, transform=A, synapse=0)
            self.config[conn_A].trainable = False
            conn_B = nengo.Connection(self.u, self.m, transform=B, synapse=None)
            self.config[conn_B].trainable = False

            # h_t = tanh(W_x x_t + W_h h_{t-1} + W_m m_t), all three trained
            nengo.Connection(self.x, self.h, transform=nengo_dl.dists.Glorot(), synapse=None)
            nengo.Connection(self.h, self.h, transform=nengo_dl.dists.Glorot(), synapse=0)
            nengo.Connection(self.m, self.h, transform=nengo_dl.dists.Glorot(), synapse=None)


with nengo.Network(seed=seed) as net:
    nengo_dl.configure_settings(trainable=None, stateful=False, keep_history=False)
    inp = nengo.Node(np.zeros(train_images.shape[-1]))
    lmu = LMUCell(units=units, order=order, theta=train_images.shape[1],
                  input_d=train_images.shape[-1])
    conn = nengo.Connection(inp, lmu.x, synapse=None)
    net.config[conn].trainable = False
    out = nengo.Node(size_in=10)
    nengo.Connection(lmu.h, out, transform=nengo_dl.dists.Glorot(), synapse=None)
    # keep_history=False: the probe keeps the last step only
    p = nengo.Probe(out)

with nengo_dl.Simulator(net, minibatch_size=100, unroll_simulation=16) as sim:
    sim.compile(loss=tf.losses.SparseCategoricalCrossentropy(from_logits=True),
                optimizer=tf.optimizers.Adam(), metrics=["accuracy"])
    initial = sim.evaluate(test_images, test_labels, verbose=0)["probe_accuracy"]
    print(f"Initial test accuracy: {initial * 100:.2f}%")
    sim.fit(train_images, train_labels, epochs=epochs, verbose=0)
    sim.save_params(str(args.out / "lmu_params"))
    sim.load_params(str(args.out / "lmu_params"))
    nengo_acc = sim.evaluate(test_images, test_labels, verbose=0)["probe_accuracy"]
    print(f"Final test accuracy: {nengo_acc * 100:.2f}")


# --- the baseline: the same cell as a Keras RNN, trained in plain Keras
class KerasLMUCell(tf.keras.layers.Layer):
    """One step of the LMU above: fixed ``A``, ``B``; trained ``W_x``, ``W_h``, ``W_m``."""

    def __init__(self, units, order, theta, **kwargs):
        super().__init__(**kwargs)
        self.units, self.order = units, order
        self.state_size = [order, units]
        self.output_size = units
        a, b = lmu_matrices(order, theta)
        self.A = tf.constant(a.T, dtype="float32")
        self.B = tf.constant(b.T, dtype="float32")

    def build(self, input_shape):
        d = input_shape[-1]
        glorot = tf.keras.initializers.GlorotUniform()
        self.W_x = self.add_weight(shape=(d, self.units), initializer=glorot)
        self.W_h = self.add_weight(shape=(self.units, self.units), initializer=glorot)
        self.W_m = self.add_weight(shape=(self.order, self.units), initializer=glorot)

    def call(self, x, states):
        m, h = states
        u = tf.reduce_sum(x, axis=-1, keepdims=True)
        m = tf.matmul(m, self.A) + tf.matmul(u, self.B)
        h = tf.tanh(tf.matmul(x, self.W_x) + tf.matmul(h, self.W_h) + tf.matmul(m, self.W_m))
        return h, [m, h]


keras_inp = tf.keras.Input(shape=train_images.shape[1:])
hidden = tf.keras.layers.RNN(KerasLMUCell(units, order, train_images.shape[1]))(keras_inp)
keras_model = tf.keras.Model(keras_inp, tf.keras.layers.Dense(10, use_bias=False)(hidden))
keras_model.compile(loss=tf.losses.SparseCategoricalCrossentropy(from_logits=True),
                    optimizer=tf.optimizers.Adam(), metrics=["accuracy"])
keras_model.fit(train_images, train_labels[:, 0, 0], batch_size=100, epochs=epochs, verbose=0)
keras_acc = keras_model.evaluate(test_images, test_labels[:, 0, 0], verbose=0)[1]
print(f"lmu test accuracy {nengo_acc:.3f} (keras {keras_acc:.3f}; before training {initial:.3f})")

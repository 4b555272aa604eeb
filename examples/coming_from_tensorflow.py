"""Coming from TensorFlow: the seed tutorial's walkthrough with nhw's TensorFlow simulator.

Each section of the "Coming from TensorFlow" tutorial, in order: a Keras auto-encoder
and the same architecture as a nengo network; simulating it (``sim.predict``); rate
versus spiking neurons and synaptic filtering; TensorFlow code inside a network
(``Layer``, ``TensorNode`` with a function and with a custom Keras layer); training
with ``sim.compile``/``sim.fit``/``sim.evaluate`` next to the plain Keras model; NEF
parameter optimisation (sin(x^2)); and the same network on another backend.

The tutorial trains on MNIST (784 pixels); this example has no downloads, so it trains
on scikit-learn's bundled 8x8 digits (64 pixels) instead.  Figures are saved as PNGs
into ``--out`` (a directory).

    python examples/coming_from_tensorflow.py [--quick] [--out runs/examples/coming_from_tensorflow]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nengo  # noqa: E402
import numpy as np  # noqa: E402
from nengo.utils.matplotlib import rasterplot  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from nhw.quiet import keras, tf  # noqa: E402

from nhw.backends.tensorflow import Layer, Simulator, TensorNode, dists  # noqa: E402

# every Simulator compiles its own tf.function; after a few in one process TensorFlow
# warns about retracing, which is expected here (as in the tutorial, filter it out)
tf.get_logger().addFilter(lambda rec: "Tracing is expensive" not in rec.getMessage())

MINIBATCH = 50


def section(title: str) -> None:
    """Print a section header (the tutorial's headings)."""
    print(f"\n=== {title} ===", flush=True)


def save(fig, out: Path, name: str) -> None:
    """Save ``fig`` as ``out/name`` and close it (many figures, one process)."""
    path = out / name
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    print(f"figure saved to {path}")


# --- What is Nengo --------------------------------------------------------------------
def keras_autoencoder(n_in: int, n_hidden: int, seed: int = 0) -> keras.Model:
    """The tutorial's two-layer Keras auto-encoder (relu, Glorot-uniform kernels).

    Parameters
    ----------
    n_in
        Input (and output) size.
    n_hidden
        Size of the hidden layer.
    seed
        Seed of the kernel initialisers (reproducible runs).

    Returns
    -------
    model
        An uncompiled ``keras.Model``.
    """
    tf_a = keras.Input(shape=(n_in,))
    tf_b = keras.layers.Dense(
        n_hidden, activation="relu", kernel_initializer=keras.initializers.GlorotUniform(seed)
    )(tf_a)
    tf_c = keras.layers.Dense(
        n_in, activation="relu", kernel_initializer=keras.initializers.GlorotUniform(seed + 1)
    )(tf_b)
    return keras.Model(inputs=tf_a, outputs=tf_c)


def nengo_autoencoder(n_in: int, n_hidden: int, seed: int = 0):
    """The same architecture as a nengo network.

    Layers (Ensembles of ``RectifiedLinear`` neurons) and the weights between them
    (Connections between ``.neurons``, initialised by ``dists.Glorot``) are separate
    objects; the Probe plays the role of the Keras model's output.

    Returns
    -------
    net, probe
        The network and the probe on the output neurons.
    """
    with nengo.Network(seed=seed) as auto_net:
        nengo_a = nengo.Node(np.zeros(n_in))
        nengo_b = nengo.Ensemble(n_hidden, 1, neuron_type=nengo.RectifiedLinear())
        nengo.Connection(nengo_a, nengo_b.neurons, transform=dists.Glorot())
        nengo_c = nengo.Ensemble(n_in, 1, neuron_type=nengo.RectifiedLinear())
        nengo.Connection(nengo_b.neurons, nengo_c.neurons, transform=dists.Glorot())
        p_c = nengo.Probe(nengo_c.neurons)
    return auto_net, p_c


# --- Simulating a network -------------------------------------------------------------
def simulating() -> None:
    """``model.predict`` versus ``sim.predict``: the time axis in nengo's data."""
    section("Simulating a network")
    # the tutorial's sizes (784 = 28x28 MNIST pixels): only the shapes matter here,
    # so an all-ones input of that size is enough and nothing is downloaded
    n_in, n_hidden = 784, 64
    model = keras_autoencoder(n_in, n_hidden)
    out = model.predict(np.ones((MINIBATCH, n_in)), verbose=0)
    print("keras model.predict output shape:", out.shape)
    auto_net, p_c = nengo_autoencoder(n_in, n_hidden)
    with Simulator(auto_net, minibatch_size=MINIBATCH) as sim:
        out = sim.predict(np.ones((MINIBATCH, 1, n_in)))
        # (batch, n_steps, neurons): the extra axis of size 1 is time (one step here)
        print("nengo sim.predict output shape:", out[p_c].shape)


# --- Spiking networks -----------------------------------------------------------------
def spiking(out_dir: Path) -> tuple:
    """Rate versus spiking neurons, and a synaptic filter turning spikes into rates.

    Returns
    -------
    net, b_rate
        The network and its rate ensemble (the next section adds layers to them).
    """
    section("Spiking networks")
    with nengo.Network() as net:
        # a sine wave with a period of one second
        a = nengo.Node(lambda t: np.sin(2 * np.pi * t))
        # the same seed gives both ensembles the same parameters, so neuron i of one
        # matches neuron i of the other
        b_rate = nengo.Ensemble(10, 1, neuron_type=nengo.RectifiedLinear(), seed=2)
        nengo.Connection(a, b_rate)
        b_spike = nengo.Ensemble(10, 1, neuron_type=nengo.SpikingRectifiedLinear(), seed=2)
        nengo.Connection(a, b_spike)
        p_a = nengo.Probe(a)
        p_rate = nengo.Probe(b_rate.neurons)
        p_spike = nengo.Probe(b_spike.neurons)
    with Simulator(net) as sim:
        # no input data: the Node's own function drives the network
        sim.run_steps(1000)
    t = sim.trange()
    filt = nengo.Lowpass(tau=0.05)
    filtered = filt.filt(sim.data[p_spike])
    rates = sim.data[p_rate]

    def rel_err(a, b):
        # after the filter's start-up transient
        late = t > 0.2
        return np.sqrt(np.mean((a[late] - b[late]) ** 2)) / np.sqrt(np.mean(b[late] ** 2))

    print(f"mean firing rate: rate neurons {rates.mean():.1f} Hz, spiking neurons "
          f"{sim.data[p_spike].mean():.1f} Hz")
    # the filter also delays the signal, so the fair comparison filters the rates too
    print(f"filtered spikes vs rates: relative rms error {rel_err(filtered, rates):.3f} "
          f"(vs equally filtered rates {rel_err(filtered, filt.filt(rates)):.3f})")

    fig, axes = plt.subplots(4, 1, figsize=(7, 9), sharex=True)
    axes[0].plot(t, sim.data[p_a])
    axes[0].set_ylabel("input value")
    axes[0].set_title("a")
    axes[1].plot(t, rates)
    axes[1].set_ylabel("firing rate")
    axes[1].set_title("b_rate")
    plt.sca(axes[2])
    rasterplot(t, sim.data[p_spike])
    axes[2].set_ylabel("neuron")
    axes[2].set_title("b_spike")
    axes[3].plot(t, filtered)
    axes[3].set_ylabel("filtered spikes")
    axes[3].set_xlabel("time")
    save(fig, out_dir, "spiking.png")
    return net, b_rate


# --- Inserting TensorFlow code --------------------------------------------------------
def tensorflow_code(net: nengo.Network, b_rate: nengo.Ensemble) -> None:
    """``Layer``, ``TensorNode`` with a function, and with a custom Keras layer.

    Parameters
    ----------
    net, b_rate
        The spiking section's network and rate ensemble (batch normalisation is
        applied to that ensemble's output).
    """
    section("Inserting TensorFlow code")
    with net:
        # Layer: Keras-functional style, creates a TensorNode and connects b_rate to it
        batch_norm = Layer(keras.layers.BatchNormalization(momentum=0.9))(b_rate.neurons)
        p_batch_norm = nengo.Probe(batch_norm)
        # the same thing spelled out: a TensorNode and a Connection
        batch_norm2 = TensorNode(
            keras.layers.BatchNormalization(momentum=0.9), shape_in=(10,), pass_time=False
        )
        nengo.Connection(b_rate.neurons, batch_norm2, synapse=None)
        p_batch_norm2 = nengo.Probe(batch_norm2)
    with Simulator(net, progress_bar=False) as sim:
        sim.run_steps(100)
        # inference uses the layers' moving statistics (mean 0, variance 1 when new),
        # so both nodes output the same values
        same = np.allclose(sim.data[p_batch_norm], sim.data[p_batch_norm2], atol=1e-5)
        print(f"BatchNormalization Layer output {sim.data[p_batch_norm].shape}; "
              f"Layer and TensorNode+Connection agree: {same}")

    with nengo.Network() as net:
        a = nengo.Node([0.5, -0.1])

        def tensor_func(t, x):
            # tf.print runs inside the compiled simulation loop, once per step
            print_t = tf.print("t:", t)
            with tf.control_dependencies([print_t]):
                print_x = tf.print("x:", x)
            with tf.control_dependencies([print_x]):
                return tf.add(t, x)

        b = TensorNode(tensor_func, shape_in=(2,), shape_out=(2,))
        nengo.Connection(a, b, synapse=None)
        p = nengo.Probe(b)
    with Simulator(net) as sim:
        print("TensorNode input:", flush=True)
        data = sim.predict(n_steps=10)
        sys.stdout.flush()
        print("TensorNode output:")
        # three decimals: t + x is computed in float32, so e.g. 0.009 + -0.1 prints
        # as -0.09100001 at numpy's default precision
        with np.printoptions(precision=3, suppress=True):
            print(data[p])

    with nengo.Network() as net:

        class MyLayer(keras.layers.Layer):
            """A layer with one trainable weight: the TensorNode's parameters."""

            def build(self, input_shape):
                self.w = self.add_weight(shape=(1, 1))

            def call(self, inputs):
                return inputs * self.w

        inp = nengo.Node([1.0])
        layer = MyLayer()
        node = TensorNode(layer, shape_in=(1,), pass_time=False)
        nengo.Connection(inp, node, synapse=None)
        p = nengo.Probe(node)
    with Simulator(net, progress_bar=False) as sim:
        out = sim.predict(n_steps=1)[p]
        # an input of 1 shows the layer's weight, created in build()
        print(f"custom Keras layer TensorNode: output {out.ravel()[0]:.4f}, "
              f"weight {float(layer.w.numpy().ravel()[0]):.4f}, "
              f"in sim.keras_model.weights: {any(v is layer.w for v in sim.keras_model.weights)}")


# --- Deep learning parameter optimization ---------------------------------------------
def training(out_dir: Path, n_epochs: int) -> dict:
    """Train the auto-encoder on 8x8 digits with Keras and with nengo.

    Parameters
    ----------
    out_dir
        Directory for the figure.
    n_epochs
        Training epochs (the same for both).

    Returns
    -------
    losses
        ``{"keras": [...], "nengo": [...]}``: training loss per epoch.
    """
    section("Deep learning parameter optimization")
    # the tutorial's MNIST has 784 pixels; the bundled 8x8 digits have 64, so the
    # input is 64-d and the hidden layer (64 for MNIST) shrinks to 32.  Pixel values
    # are kept raw (0..16), as the tutorial keeps MNIST's 0..255.
    n_in, n_hidden = 64, 32
    images = load_digits().data.astype(np.float32)
    rng = np.random.RandomState(0)
    images = images[rng.permutation(len(images))]
    # whole minibatches only: the simulation graph has a static batch size
    train_data, test_data = images[:1500], images[1500:1750]

    keras.utils.set_random_seed(0)
    model = keras_autoencoder(n_in, n_hidden)
    model.compile(optimizer=keras.optimizers.RMSprop(1e-3), loss="mse")
    print("Keras:")
    keras_before = model.evaluate(test_data, test_data, batch_size=MINIBATCH, verbose=0)
    hist = model.fit(train_data, train_data, epochs=n_epochs, batch_size=MINIBATCH, verbose=2)
    keras_test = model.evaluate(test_data, test_data, batch_size=MINIBATCH, verbose=2)
    keras_out = model.predict(test_data[[0]], verbose=0)

    auto_net, p_c = nengo_autoencoder(n_in, n_hidden)
    # match the Keras network: gains 1 and biases 0 (Dense layers start with zero
    # bias), and no synaptic filtering, so one time step is one forward pass
    for ens in auto_net.all_ensembles:
        ens.gain = nengo.dists.Choice([1])
        ens.bias = nengo.dists.Choice([0])
    for conn in auto_net.all_connections:
        conn.synapse = None
    # nengo data is (batch, n_steps, size): a single time step here
    train_t, test_t = train_data[:, None, :], test_data[:, None, :]
    print("nengo:")
    with Simulator(auto_net, minibatch_size=MINIBATCH) as sim:
        sim.compile(optimizer=keras.optimizers.RMSprop(1e-3), loss="mse")
        nengo_before = sim.evaluate(test_t, test_t, verbose=0)
        nhist = sim.fit(train_t, train_t, epochs=n_epochs, verbose=2)
        nengo_test = sim.evaluate(test_t, test_t, verbose=2)
        nengo_out = sim.predict(test_t[:MINIBATCH])[p_c]

    k_loss, n_loss = hist.history["loss"], nhist.history["loss"]
    print("epoch  keras loss  nengo loss  nengo probe_loss")
    for i, (kl, nl, pl) in enumerate(zip(k_loss, n_loss, nhist.history["probe_loss"])):
        print(f"{i + 1:5d} {kl:11.4f} {nl:11.4f} {pl:17.4f}")
    print(f"test loss before training: keras {keras_before:.4f}, nengo {nengo_before['loss']:.4f}")
    print(f"test loss after training:  keras {keras_test:.4f}, nengo {nengo_test['loss']:.4f} "
          f"(probe_loss {nengo_test['probe_loss']:.4f})")

    fig, axes = plt.subplots(1, 4, figsize=(10, 2.8))
    axes[0].imshow(test_data[0].reshape(8, 8), cmap="gray")
    axes[0].set_title("input")
    axes[1].imshow(keras_out[0].reshape(8, 8), cmap="gray")
    axes[1].set_title("Keras output")
    axes[2].imshow(nengo_out[0, 0].reshape(8, 8), cmap="gray")
    axes[2].set_title("nengo output")
    for ax in axes[:3]:
        ax.axis("off")
    axes[3].plot(np.arange(1, n_epochs + 1), k_loss, "o-", label="Keras")
    axes[3].plot(np.arange(1, n_epochs + 1), n_loss, "s--", label="nengo")
    axes[3].set_xlabel("epoch")
    axes[3].set_ylabel("training loss")
    axes[3].legend()
    save(fig, out_dir, "autoencoder.png")
    return {"keras": k_loss, "nengo": n_loss}


# --- NEF parameter optimization -------------------------------------------------------
def nef(out_dir: Path) -> None:
    """sin(x^2) from two ensembles whose decoders the NEF solves by least squares.

    The network then runs unchanged on nengo's reference simulator (the tutorial's
    "Running on neuromorphic hardware": one network definition, any backend).
    """
    section("NEF parameter optimization")
    with nengo.Network(seed=0) as net:
        inpt = nengo.Node(nengo.processes.WhiteSignal(1, 5, rms=0.3))
        ens0 = nengo.Ensemble(50, 1)
        ens1 = nengo.Ensemble(50, 1)
        outpt = nengo.Node(size_in=1)
        nengo.Connection(inpt, ens0)
        # function= on a connection from an Ensemble (not .neurons): the NEF solves
        # for decoders approximating that function
        nengo.Connection(ens0, ens1, function=np.square)
        nengo.Connection(ens1, outpt, function=np.sin)
        inpt_p = nengo.Probe(inpt)
        outpt_p = nengo.Probe(outpt, synapse=0.005)

    with Simulator(net, seed=0) as sim:
        sim.run_steps(1000)
    t, x, y = sim.trange(), sim.data[inpt_p], sim.data[outpt_p]
    ideal = np.sin(x ** 2)
    print(f"sin(x^2) rms error (tensorflow): {np.sqrt(np.mean((y - ideal) ** 2)):.4f}")

    section("Running on neuromorphic hardware")
    # the same network definition on another backend: nengo's own CPU simulator
    # (nengo_loihi.Simulator, nengo_ocl.Simulator, ... would be used the same way)
    with nengo.Simulator(net, seed=0) as ref_sim:
        ref_sim.run_steps(1000)
    y_ref = ref_sim.data[outpt_p]
    print(f"sin(x^2) rms error (reference): {np.sqrt(np.mean((y_ref - ideal) ** 2)):.4f}; "
          f"tensorflow vs reference rms difference {np.sqrt(np.mean((y - y_ref) ** 2)):.2e}")

    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(t, x, label="x")
    ax.plot(t, ideal, label="sin(x^2)")
    ax.plot(t, y, label="output (tensorflow)")
    ax.plot(t, y_ref, ":", label="output (reference)")
    ax.set_xlabel("time")
    ax.legend()
    save(fig, out_dir, "nef.png")


def main(argv: list[str] | None = None) -> int:
    """Run the walkthrough; returns the exit status."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer training epochs (CI)")
    p.add_argument("--out", default="runs/examples/coming_from_tensorflow", help="directory for the PNG figures")
    args = p.parse_args(argv)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    # seeds Python, numpy and Keras initialisers (e.g. the custom layer's weight)
    keras.utils.set_random_seed(0)

    section("What is Nengo")
    auto_net, _ = nengo_autoencoder(784, 64)
    print(f"nengo auto-encoder: {len(auto_net.all_ensembles)} ensembles (layers), "
          f"{len(auto_net.all_connections)} connections (weights), {len(auto_net.all_probes)} probe (output)")
    simulating()
    net, b_rate = spiking(out_dir)
    tensorflow_code(net, b_rate)
    training(out_dir, n_epochs=3 if args.quick else 10)
    nef(out_dir)
    print(f"\ndone in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

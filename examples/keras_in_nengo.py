"""Integrating a Keras model into a Nengo network: a Keras CNN inside a spiking classifier.

A small convolutional network is first trained in plain Keras on scikit-learn's 8x8
digits.  Its convolutional part (everything up to the flattened feature maps) is then
inserted into a nengo network as a ``TensorNode`` (via ``Layer``), where it runs every
time step on the current image; its features drive an Ensemble of spiking LIF neurons
with a trained readout Connection to a 10-d output Node.  The nengo part is trained
with ``sim.fit`` while the Keras weights are frozen (``layer.trainable = False``); then
the whole network is fine-tuned, Keras weights included, which shows that the
TensorNode's weights are ordinary weights of ``sim.keras_model``.  Accuracies are
reported with rates (one step, what training optimises) and with spikes (``n_steps``
steps, low-pass filtered output).  Saves a PNG.

    python examples/keras_in_nengo.py [--quick] [--out runs/examples/keras_in_nengo.png]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from nhw.quiet import keras  # noqa: E402
import nengo  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from nhw.backends.tensorflow import Layer, Simulator, dists, losses  # noqa: E402

MINIBATCH = 50
#: a LIF spike is amplitude / dt: 0.01 makes a neuron firing at 100 Hz output ~1
AMPLITUDE = 0.01
#: firing rate (Hz) that a lightly weighted loss pulls the spiking layer towards, so
#: that every neuron spikes a few times within the short test presentation
TARGET_RATE = 100.0
RATE_WEIGHT = 0.3
#: time constant (s) of the low-pass filter on the spiking output
OUT_SYNAPSE = 0.01


def load_data(seed: int = 0):
    """Shuffled digits scaled to [0, 1] as ``(n, 8, 8, 1)`` images, split into whole minibatches."""
    digits = load_digits()
    order = np.random.RandomState(seed).permutation(len(digits.target))
    x = (digits.images[order] / 16.0).astype(np.float32)[..., None]
    y = digits.target[order]
    # 1350 + 400 of the 1797 digits: both whole minibatches (static batch size)
    return (x[:1350], y[:1350]), (x[1350:1750], y[1350:1750])


def train_keras(x_train, y_train, x_test, y_test, epochs: int):
    """Train a small CNN in plain Keras; return ``(feature_extractor, model, test accuracy)``.

    The feature extractor is a ``keras.Sequential`` of the convolutional layers and
    ``Flatten`` (the same layer objects as in the full model, so it carries the trained
    weights); the full model adds a ``Dense`` classifier on top.
    """
    keras.utils.set_random_seed(0)
    L = keras.layers
    features = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            L.Conv2D(16, 3, padding="same", activation="relu"),
            L.Conv2D(32, 3, strides=2, padding="same", activation="relu"),
            L.Flatten(),
        ],
        name="cnn_features",
    )
    model = keras.Sequential([keras.Input((8, 8, 1)), features, L.Dense(10)], name="cnn")
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=epochs, batch_size=32, verbose=0)
    _, acc = model.evaluate(x_test, y_test, verbose=0)
    return features, model, float(acc)


def build_network(features: keras.Model, n_neurons: int, seed: int = 0):
    """Input Node -> Keras feature extractor (TensorNode) -> LIF ensemble -> 10 outputs.

    Returns
    -------
    net
        The network.
    objs
        ``inp`` (input Node), ``cnn`` (the TensorNode), ``lif`` (Neurons of the
        spiking layer), and the probes ``p_out`` (unfiltered, trained), ``p_filt``
        (low-pass filtered, for spiking inference) and ``p_rates`` (spiking layer).
    """
    with nengo.Network(seed=seed) as net:
        # no synapses inside the network: one training step is one forward pass
        net.config[nengo.Connection].synapse = None
        inp = nengo.Node(np.zeros(64), label="image")
        # the Keras model as a TensorNode: the flat 64-d input arrives reshaped to
        # (batch, 8, 8, 1); the output shape (the flattened feature maps) is inferred
        cnn = Layer(features)(inp, shape_in=(8, 8, 1), label="cnn")
        # a nengo layer of spiking LIF neurons on the Keras features, through a trainable
        # dense transform (a plain Connection: the one Layer() makes is not trained, as in
        # NengoDL).  Gain 1 and bias 1 put the firing threshold at zero input (like a
        # ReLU), so neurons start active
        lif = nengo.Ensemble(n_neurons, 1, neuron_type=nengo.LIF(amplitude=AMPLITUDE),
                             gain=nengo.dists.Choice([1]), bias=nengo.dists.Choice([1]), label="lif").neurons
        nengo.Connection(cnn, lif, transform=dists.Glorot())
        out = nengo.Node(size_in=10, label="digit")
        # readout straight from the neurons (a trained weight matrix)
        nengo.Connection(lif, out, transform=dists.Glorot())
        p_out = nengo.Probe(out, label="out")
        p_filt = nengo.Probe(out, synapse=OUT_SYNAPSE, label="out_filtered")
        p_rates = nengo.Probe(lif, label="rates")
    return net, dict(inp=inp, cnn=cnn, lif=lif, p_out=p_out, p_filt=p_filt, p_rates=p_rates)


def rate_accuracy(sim, x: np.ndarray, y: np.ndarray) -> float:
    """Accuracy with LIF rate curves on one step: the Keras model called with training=True.

    (``sim.predict`` always simulates real spikes.)
    """
    outs = [sim.keras_model({"image": x[i:i + MINIBATCH, None, :]}, training=True)["out"].numpy()
            for i in range(0, len(x), MINIBATCH)]
    return float(np.mean(np.argmax(np.concatenate(outs)[:, -1], -1) == y))


def spiking_accuracy(sim, objs, x: np.ndarray, y: np.ndarray, n_steps: int):
    """Accuracy with spikes, read from the filtered output at the last of ``n_steps``.

    Returns
    -------
    accuracy, data
        The accuracy and ``sim.predict``'s data.
    """
    data = sim.predict(np.tile(x[:, None, :], (1, n_steps, 1)))
    return float(np.mean(np.argmax(data[objs["p_filt"]][:, -1], -1) == y)), data


def main(argv: list[str] | None = None) -> int:
    """Train the CNN in Keras, insert it into a spiking nengo network, train, fine-tune, test."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer epochs (CI)")
    p.add_argument("--out", default="runs/examples/keras_in_nengo.png", help="where to save the plot")
    args = p.parse_args(argv)
    t_start = time.perf_counter()
    keras_epochs = 8 if args.quick else 20
    nengo_epochs = 5 if args.quick else 15
    tune_epochs = 2 if args.quick else 5
    n_steps = 30
    n_neurons = 128

    (x_train, y_train), (x_test, y_test) = load_data()
    t0 = time.perf_counter()
    features, model, keras_acc = train_keras(x_train, y_train, x_test, y_test, keras_epochs)
    print(f"Keras CNN trained {keras_epochs} epochs in {time.perf_counter() - t0:.1f} s; "
          f"Keras test accuracy: {keras_acc:.4f}")

    # the nengo part first: freeze the Keras weights (Keras' own trainable flag)
    features.trainable = False
    net, objs = build_network(features, n_neurons)
    print(f"TensorNode {objs['cnn'].label!r}: shape_in {objs['cnn'].shape_in}, "
          f"shape_out {objs['cnn'].shape_out} (inferred from the Keras model)")
    flat_x_train = x_train.reshape(len(x_train), 64)
    flat_x_test = x_test.reshape(len(x_test), 64)
    onehot = np.eye(10, dtype=np.float32)
    train_y = {objs["p_out"]: onehot[y_train][:, None, :],
               # Regularize ignores its targets; zeros of the probe's shape
               objs["p_rates"]: np.zeros((len(x_train), 1, n_neurons), np.float32)}
    loss = {objs["p_out"]: keras.losses.CategoricalCrossentropy(from_logits=True),
            # probes report amplitude * rate, so the target is scaled alike
            objs["p_rates"]: losses.Regularize(target=TARGET_RATE * AMPLITUDE, mean=True)}
    loss_weights = {objs["p_out"]: 1.0, objs["p_rates"]: RATE_WEIGHT}
    keras_vars = features.weights
    initial = [v.numpy().copy() for v in keras_vars]
    results = {"Keras CNN": keras_acc}

    def in_list(weights) -> bool:
        return all(any(v is w for w in weights) for v in keras_vars)

    def changed() -> float:
        return max(float(np.abs(v.numpy() - w0).max()) for v, w0 in zip(keras_vars, initial))

    with Simulator(net, minibatch_size=MINIBATCH, seed=0, progress_bar=False) as sim:
        print(f"Keras weights ({len(keras_vars)} variables) in sim.keras_model.weights: "
              f"{in_list(sim.keras_model.weights)}; in trainable_weights: "
              f"{in_list(sim.keras_model.trainable_weights)}")
        acc0, _ = spiking_accuracy(sim, objs, flat_x_test, y_test, n_steps)
        print(f"before training: spiking accuracy {acc0:.4f} (chance 0.1)")

        sim.compile(optimizer=keras.optimizers.Adam(3e-3), loss=loss, loss_weights=loss_weights)
        t0 = time.perf_counter()
        hist = sim.fit(flat_x_train[:, None, :], train_y, epochs=nengo_epochs, verbose=0)
        print(f"nengo part trained {nengo_epochs} epochs in {time.perf_counter() - t0:.1f} s "
              f"(final loss {hist.history['loss'][-1]:.4f})")
        rate1 = rate_accuracy(sim, flat_x_test, y_test)
        spike1, _ = spiking_accuracy(sim, objs, flat_x_test, y_test, n_steps)
        print(f"frozen Keras weights: rate accuracy {rate1:.4f}, spiking accuracy ({n_steps} steps) "
              f"{spike1:.4f}; Keras weights max |change| {changed():.3g}")

        # fine-tune everything: make the Keras layers trainable again and recompile
        # (Keras collects the trainable weights when the model is compiled)
        features.trainable = True
        sim.compile(optimizer=keras.optimizers.Adam(5e-4), loss=loss, loss_weights=loss_weights)
        print(f"after features.trainable = True: Keras weights in trainable_weights: "
              f"{in_list(sim.keras_model.trainable_weights)}")
        t0 = time.perf_counter()
        sim.fit(flat_x_train[:, None, :], train_y, epochs=tune_epochs, verbose=0)
        print(f"fine-tuned {tune_epochs} epochs in {time.perf_counter() - t0:.1f} s")
        rate2 = rate_accuracy(sim, flat_x_test, y_test)
        t0 = time.perf_counter()
        spike2, data = spiking_accuracy(sim, objs, flat_x_test, y_test, n_steps)
        print(f"fine-tuned: rate accuracy {rate2:.4f}, spiking accuracy ({n_steps} steps) {spike2:.4f} "
              f"[{time.perf_counter() - t0:.1f} s]; Keras weights max |change| {changed():.3g}")
        rates = data[objs["p_rates"]].mean(axis=(0, 1)) / AMPLITUDE
        print(f"mean LIF firing rate with spikes: {rates.mean():.1f} Hz "
              f"({np.mean(rates == 0):.2f} of neurons silent)")
        # the Keras model outside nengo has the fine-tuned weights too (the same variables)
        model_acc = float(model.evaluate(x_test, y_test, verbose=0)[1])
        print(f"the Keras CNN (same layer objects, fine-tuned features, old head): accuracy {model_acc:.4f}")
    results.update({"rate (frozen)": rate1, "spikes (frozen)": spike1,
                    "rate (fine-tuned)": rate2, "spikes (fine-tuned)": spike2})

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from nengo.utils.matplotlib import rasterplot

    t = 0.001 * np.arange(1, n_steps + 1)
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.2))
    axes[0].imshow(x_test[0, ..., 0], cmap="gray")
    axes[0].set_title(f"test image (label {y_test[0]})")
    axes[0].axis("off")
    plt.sca(axes[1])
    rasterplot(t, data[objs["p_rates"]][0][:, :40])
    axes[1].set_title("LIF spikes (40 neurons)")
    axes[1].set_xlabel("time (s)")
    axes[2].plot(t, data[objs["p_filt"]][0])
    axes[2].legend([str(i) for i in range(10)], fontsize=6, ncol=2)
    axes[2].set_title("filtered output")
    axes[2].set_xlabel("time (s)")
    bars = axes[3].bar(range(len(results)), list(results.values()))
    axes[3].bar_label(bars, fmt="%.3f", fontsize=7)  # the bars are close: print the values
    axes[3].set_xticks(range(len(results)), list(results.keys()), rotation=30, ha="right", fontsize=7)
    axes[3].set_ylim(0, 1)
    axes[3].set_title("test accuracy")
    fig.tight_layout()
    from nhw.toolchain.plots import save_figure

    print(f"plot saved to {save_figure(fig, args.out, dpi=80)}")
    print(f"done in {time.perf_counter() - t_start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Optimizing a spiking neural network: LIF digit classifier trained with sim.fit.

A nengo network of spiking LIF neurons classifies scikit-learn's bundled 8x8 digits.
It is trained in rate mode (each LIF neuron replaced by its differentiable rate curve)
on single-step data with ``sim.fit``, with a second, lightly weighted loss that pulls
the hidden firing rates towards a target rate.  It is then tested with real spikes
over many time steps (``sim.predict``), its trained parameters are written back into
the network (``sim.freeze_params``), and the frozen network runs on nengo's own
``reference`` simulator for a subset of the test digits: the two spiking accuracies
should agree.  Saves a PNG with the output over time and a spike raster.

    python examples/spiking_digits.py [--quick] [--out runs/examples/spiking_digits.png]
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

from nhw.backends.tensorflow import Simulator, dists, losses  # noqa: E402

MINIBATCH = 50
#: spike amplitude: a LIF spike is amplitude / dt, so 0.01 makes a neuron firing at
#: 100 Hz output ~1 on average, the scale the Glorot-initialised weights expect
AMPLITUDE = 0.01
#: hidden firing rate (Hz) the regularisation pulls towards: high enough that every
#: neuron spikes several times within the test presentation
TARGET_RATE = 100.0
#: weight of the firing-rate loss (per hidden layer) next to the classification loss
RATE_WEIGHT = 0.3


def load_data(seed: int = 0):
    """Shuffled digits scaled to [0, 1], split into whole minibatches.

    Returns
    -------
    (x_train, y_train), (x_test, y_test)
        Images ``(n, 64)`` and integer labels ``(n,)``.
    """
    digits = load_digits()
    rng = np.random.RandomState(seed)
    order = rng.permutation(len(digits.target))
    x = digits.data[order].astype(np.float32) / 16.0
    y = digits.target[order]
    # 1350 + 400 of the 1797 digits: the simulation graph has a static batch size,
    # so both sets are whole minibatches
    return (x[:1350], y[:1350]), (x[1350:1750], y[1350:1750])


def build_network(n_hidden: int, seed: int = 0):
    """Input node -> two layers of LIF neurons -> 10 linear outputs.

    Returns
    -------
    net
        The network.
    objs
        ``inp`` (input Node), ``hidden`` (Neurons of the first layer), ``out``
        (output Node) and the probes ``p_out`` (unfiltered, trained), ``p_filt``
        (low-pass filtered, for spiking inference) and ``p_rates`` (a list: the
        activities of each hidden layer, regularised).
    """
    with nengo.Network(seed=seed) as net:
        # no synaptic filtering by default: one training step is one forward pass, and
        # at inference each LIF membrane integrates the incoming spikes itself
        net.config[nengo.Connection].synapse = None
        inp = nengo.Node(np.zeros(64), label="image")
        neuron = nengo.LIF(amplitude=AMPLITUDE)
        # each layer: an Ensemble of n_hidden neurons fed through a trainable,
        # Glorot-initialised dense transform (a plain Connection: as in NengoDL, the
        # connection Layer() makes into a layer is not trained).  Gain 1 and bias 1 put
        # every neuron's firing threshold (J = 1) at zero input, like a ReLU, so no
        # neuron starts silent, where the LIF rate curve has no gradient.
        layer_args = dict(gain=nengo.dists.Choice([1]), bias=nengo.dists.Choice([1]))
        hidden = nengo.Ensemble(n_hidden, 1, neuron_type=neuron, **layer_args).neurons
        nengo.Connection(inp, hidden, transform=dists.Glorot())
        hidden2 = nengo.Ensemble(n_hidden, 1, neuron_type=neuron, **layer_args).neurons
        nengo.Connection(hidden, hidden2, transform=dists.Glorot())
        out = nengo.Node(size_in=10, label="digit")
        nengo.Connection(hidden2, out, transform=dists.Glorot())
        p_out = nengo.Probe(out, label="out")
        # the spiking output is noisy step to step; a 0.1 s low-pass averages it
        p_filt = nengo.Probe(out, synapse=0.1, label="out_filtered")
        p_rates = [nengo.Probe(hidden, label="rates1"), nengo.Probe(hidden2, label="rates2")]
    return net, dict(inp=inp, hidden=hidden, out=out, p_out=p_out, p_filt=p_filt, p_rates=p_rates)


def reference_accuracy(net, objs, images: np.ndarray, labels: np.ndarray, n_steps: int) -> tuple:
    """Spiking accuracy of the (frozen) network on nengo's reference simulator.

    Each image runs from the initial state, as in the TensorFlow simulator's
    ``predict``: the input Node reads the current image and ``sim.reset()`` restores
    the initial state (same seed, so the same initial voltages) between images.

    Returns
    -------
    accuracy, outputs
        Accuracy from the last filtered output step, and the filtered outputs
        ``(n_images, n_steps, 10)``.
    """
    current = {"image": images[0]}
    # nengo's simulator takes no input arrays: the input Node (a constant in the
    # network) becomes a function returning the image being tested
    objs["inp"].output = lambda t: current["image"]
    outputs = []
    with nengo.Simulator(net, progress_bar=False) as sim:
        for img in images:
            current["image"] = img
            sim.reset()
            sim.run_steps(n_steps)
            outputs.append(np.array(sim.data[objs["p_filt"]]))
    outputs = np.stack(outputs)
    return np.mean(np.argmax(outputs[:, -1], axis=-1) == labels), outputs


def main(argv: list[str] | None = None) -> int:
    """Train, test with spikes, freeze and test on the reference simulator."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer epochs and reference images (CI)")
    p.add_argument("--out", default="runs/examples/spiking_digits.png", help="where to save the plot")
    args = p.parse_args(argv)
    t_start = time.perf_counter()
    epochs = 10 if args.quick else 30
    # steps each test image is shown for: more steps average out more spike noise
    n_steps = 30 if args.quick else 60
    n_ref = 50 if args.quick else 200
    n_hidden = 128

    (x_train, y_train), (x_test, y_test) = load_data()
    net, objs = build_network(n_hidden)
    onehot = np.eye(10, dtype=np.float32)
    # training data: one time step per image
    train_x = x_train[:, None, :]
    train_y = {
        objs["p_out"]: onehot[y_train][:, None, :],
    }
    for probe in objs["p_rates"]:
        # Regularize ignores its targets; zeros of the probe's shape
        train_y[probe] = np.zeros((len(x_train), 1, n_hidden), np.float32)
    # test data: each image held for n_steps
    test_x = np.tile(x_test[:, None, :], (1, n_steps, 1))

    with Simulator(net, minibatch_size=MINIBATCH, seed=0) as sim:
        sim.compile(
            optimizer=keras.optimizers.Adam(3e-3),
            loss={
                objs["p_out"]: keras.losses.CategoricalCrossentropy(from_logits=True),
                # the probes report amplitude * rate, so the target is scaled alike
                **{pr: losses.Regularize(target=TARGET_RATE * AMPLITUDE, mean=True) for pr in objs["p_rates"]},
            },
            # the rate penalty is a secondary goal: a small weight next to the task loss
            loss_weights={objs["p_out"]: 1.0, **{pr: RATE_WEIGHT for pr in objs["p_rates"]}},
        )
        t0 = time.perf_counter()
        hist = sim.fit(train_x, train_y, epochs=epochs, verbose=2 if not args.quick else 0)
        print(f"trained {epochs} epochs in {time.perf_counter() - t0:.1f} s; final losses: "
              + ", ".join(f"{k} {v[-1]:.4f}" for k, v in hist.history.items()))

        # rate-mode accuracy on one step (what training optimised): the Keras model
        # called with training=True runs the LIF rate curves; predict/evaluate run spikes
        rate_out = np.concatenate([
            sim.keras_model({"image": x_test[i:i + MINIBATCH, None, :]}, training=True)["out"].numpy()
            for i in range(0, len(x_test), MINIBATCH)
        ])
        rate_acc = np.mean(np.argmax(rate_out[:, -1], -1) == y_test)
        t0 = time.perf_counter()
        data = sim.predict(test_x)
        tf_out = data[objs["p_filt"]]
        tf_acc = np.mean(np.argmax(tf_out[:, -1], axis=-1) == y_test)
        # a spike is amplitude / dt, so the time-average of the probe is amplitude * Hz
        rates = np.concatenate([data[pr].mean(axis=(0, 1)) for pr in objs["p_rates"]]) / AMPLITUDE
        print(f"rate-mode test accuracy (1 step): {rate_acc:.4f}")
        print(f"spiking test accuracy (tensorflow, {n_steps} steps, {len(y_test)} images): {tf_acc:.4f} "
              f"[{time.perf_counter() - t0:.1f} s]")
        by_step = np.mean(np.argmax(tf_out, axis=-1) == y_test[:, None], axis=0)
        print("spiking accuracy when read at step " + ", ".join(
            f"{k}: {by_step[k - 1]:.3f}" for k in range(10, n_steps + 1, 10)))
        print(f"mean hidden firing rate with spikes: {rates.mean():.1f} Hz (target {TARGET_RATE:.0f} Hz)")
        sim.freeze_params(net)

    t0 = time.perf_counter()
    ref_acc, ref_out = reference_accuracy(net, objs, x_test[:n_ref], y_test[:n_ref], n_steps)
    tf_sub = np.mean(np.argmax(tf_out[:n_ref, -1], axis=-1) == y_test[:n_ref])
    agree = np.mean(np.argmax(ref_out[:, -1], -1) == np.argmax(tf_out[:n_ref, -1], -1))
    print(f"spiking test accuracy on the first {n_ref} test images: tensorflow {tf_sub:.4f}, "
          f"reference (frozen) {ref_acc:.4f}; predictions agree on {agree:.4f} "
          f"[{time.perf_counter() - t0:.1f} s]")
    # the TF simulator runs float32 and nengo float64: identical spikes give outputs
    # equal to ~1e-6, but a voltage within rounding of the threshold can spike one
    # step apart, after which that image's outputs differ (dtype="float64" matches)
    diff = np.abs(ref_out - tf_out[:n_ref]).max(axis=(1, 2))
    print(f"tensorflow vs reference outputs: median max |difference| {np.median(diff):.2g}; "
          f"{np.sum(diff > 1e-3)} of {n_ref} images differ by more than 1e-3")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from nengo.utils.matplotlib import rasterplot

    t = sim.dt * np.arange(1, n_steps + 1)
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.2))
    axes[0].imshow(x_test[0].reshape(8, 8), cmap="gray")
    axes[0].set_title(f"test image (label {y_test[0]})")
    axes[0].axis("off")
    plt.sca(axes[1])
    rasterplot(t, data[objs["p_rates"][0]][0])
    axes[1].set_title("first hidden layer spikes")
    axes[1].set_xlabel("time (s)")
    axes[1].set_ylabel("neuron")
    axes[2].plot(t, tf_out[0])
    axes[2].legend([str(i) for i in range(10)], fontsize=6, ncol=2)
    axes[2].set_title("filtered output (tensorflow)")
    axes[2].set_xlabel("time (s)")
    axes[3].plot(t, by_step)
    axes[3].axhline(rate_acc, color="k", ls="--", label="rate mode")
    axes[3].set_ylim(0, 1)
    axes[3].set_title(f"spiking accuracy {tf_acc:.3f} at {n_steps} steps")
    axes[3].set_xlabel("time (s)")
    axes[3].legend()
    fig.tight_layout()
    from nhw.toolchain.plots import save_figure

    print(f"plot saved to {save_figure(fig, args.out, dpi=80)}")
    print(f"done in {time.perf_counter() - t_start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

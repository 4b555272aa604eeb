"""Converting a Keras model to a spiking neural network (the NengoDL tutorial's journey).

Trains a small CNN on scikit-learn's 8x8 digits in plain Keras, converts it with
``nhw.backends.tensorflow.Converter`` (relu -> SpikingRectifiedLinear), and shows how
firing-rate scaling and a synapse recover the Keras accuracy with spikes.  Runs on
the ``reference`` target (any nhw target that builds the converted network works:
``--target opencl``; ``--target loihi-emu`` writes the convolutions out as Sparse
transforms, sizes the host spike encoder to the input layer's range and prints the
chip's configuration and hardware report).  Saves ``keras_to_snn.png``.

    python examples/keras_to_snn.py [--quick] [--target reference] [--out runs/examples/keras_to_snn.png]
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("PYOPENCL_CTX", "0")

from nhw.quiet import keras
import nengo
import numpy as np
from sklearn.datasets import load_digits

from nhw import backends
from nhw.backends.tensorflow.api.converter import Converter


def load_data() -> tuple[np.ndarray, np.ndarray]:
    """8x8 digit images scaled to [0, 1] (N x 8 x 8 x 1) and their labels."""
    digits = load_digits()
    return (digits.images / 16.0).astype("float32")[..., None], digits.target


def train_keras(epochs: int) -> tuple[keras.Model, tuple, float]:
    """A small CNN trained on 8x8 digits; returns the model, test data and accuracy."""
    keras.utils.set_random_seed(0)
    x, y = load_data()
    L = keras.layers
    model = keras.Sequential([keras.Input((8, 8, 1)), L.Conv2D(16, 3, activation="relu"), L.AveragePooling2D(2),
                              L.Flatten(), L.Dense(64, activation="relu"), L.Dense(10)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x[:1400], y[:1400], epochs=epochs, batch_size=32, verbose=0)
    _, acc = model.evaluate(x[1400:], y[1400:], verbose=0)
    return model, (x[1400:], y[1400:]), float(acc)


def encoder_range(model: keras.Model, x: np.ndarray) -> float:
    """Largest value a host input connection sends into the converted network, over ``x``.

    On loihi-emu the host computes ``transform @ input`` (here the convolution of the
    pixels) and sends it as on/off spikes of at most ``input_pairs`` per step, i.e. up to
    ``input_range`` per dimension (default 2.0); larger values are clipped.
    """
    conv = Converter(model, sparse_convolutions=True)
    node = conv.inputs[model.inputs[0]]
    flat = x.reshape(len(x), -1).T
    top = 0.0
    for c in conv.net.all_connections:
        if c.pre_obj is node:
            w = c.transform.sample(rng=np.random.RandomState(0))
            top = max(top, float(np.abs(w @ flat[c.pre_slice]).max()))
    return top


def target_options(target: str, model: keras.Model, x_train: np.ndarray) -> dict:
    """Simulator options per target: loihi-emu's spike encoder covers the input layer's range."""
    if target != "loihi-emu":
        return {}
    # 10% headroom over the training images, never below the default of 2.0
    return {"input_range": round(max(2.0, 1.1 * encoder_range(model, x_train)), 2), "input_pairs": 16}


def spiking_accuracy(model, data, target: str, scale: float, synapse: float | None, n_steps: int,
                     n_items: int, report: list | None = None, options: dict | None = None
                     ) -> tuple[float, np.ndarray]:
    """Accuracy of the converted spiking network, and one item's output over time.

    With ``report`` (a list) the target's hardware report, if it has one, is appended;
    ``options`` go to the target's Simulator.
    """
    x, y = data[0][:n_items], data[1][:n_items]
    conv = Converter(model, swap_activations={"relu": nengo.SpikingRectifiedLinear()},
                     scale_firing_rates=scale, synapse=synapse)
    conv.inputs[model.inputs[0]].output = nengo.processes.PresentInput(
        x.reshape(len(x), -1), presentation_time=n_steps * 0.001)
    with backends.get(target)(conv.net, progress_bar=False, **(options or {})) as sim:
        sim.run_steps(n_steps * len(x))
        out = np.asarray(sim.data[conv.outputs[model.outputs[0]]]).reshape(len(x), n_steps, 10)
        if report is not None and hasattr(sim, "hardware_report"):
            report.append(sim.hardware_report())
    # read the output over the last third of each presentation, after the synapse settles
    acc = float(np.mean(np.argmax(out[:, -n_steps // 3:].mean(axis=1), axis=1) == y))
    return acc, out[0]


def main(argv: list[str] | None = None) -> int:
    """Run the example; returns the exit status."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer epochs and test items (CI)")
    p.add_argument("--target", default="reference")
    p.add_argument("--out", default="runs/examples/keras_to_snn.png")
    args = p.parse_args(argv)
    epochs, n_items = (15, 100) if args.quick else (40, 397)

    model, test, keras_acc = train_keras(epochs)
    print(f"Keras test accuracy: {keras_acc:.3f}")
    check = Converter(model)
    check.verify(inputs=[test[0][:8]])  # raises if the rate network does not reproduce Keras
    print(f"rate network matches Keras to {check.verify_error:.1e}")
    options = target_options(args.target, model, load_data()[0][:1400])
    if options:
        print(f"{args.target} configuration: {', '.join(f'{k}={v}' for k, v in options.items())}")
    rows, reports = [], []
    for scale, synapse in [(1, None), (20, None), (200, None), (200, 0.005)]:
        acc, trace = spiking_accuracy(model, test, args.target, scale, synapse, 30, n_items, reports, options)
        rows.append((scale, synapse, acc, trace))
        print(f"spiking, scale_firing_rates={scale:<4} synapse={synapse}: accuracy {acc:.3f} "
              f"({acc / keras_acc:.1%} of Keras) over 30 steps on {args.target}")
    if reports:
        print(f"\nhardware report ({args.target}, last configuration):\n{reports[-1].to_table()}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # each panel on its own scale: at scale 1 the output is far smaller than at 200
    fig, axes = plt.subplots(1, len(rows), figsize=(4 * len(rows), 3))
    for ax, (scale, synapse, acc, trace) in zip(axes, rows):
        ax.plot(trace)
        ax.set_title(f"scale {scale}, synapse {synapse}\nacc {acc:.2f}")
        ax.set_xlabel("step")
    axes[0].set_ylabel("output (first test digit)")
    axes[-1].legend([str(i) for i in range(10)], title="class", fontsize=6, ncol=2)
    fig.tight_layout()
    from nhw.toolchain.plots import save_figure

    print(f"plot saved to {save_figure(fig, args.out, dpi=90)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

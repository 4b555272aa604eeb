"""Legendre Memory Units as a Keras RNN inside a nengo network: a psMNIST-style task on 8x8 digits.

Each 8x8 digit becomes a sequence of 64 pixels in a fixed random order (the "permuted
sequential MNIST" task, on scikit-learn's bundled digits) that has to be classified
after its last pixel.  The LMU cell is a custom ``keras.layers.Layer``: its memory
``m`` holds the Legendre coefficients of its input over a sliding window of ``theta``
steps, the linear system ``theta m'(t) = A m(t) + B u(t)`` (Voelker et al., NeurIPS
2019) discretised with a zero-order hold (fixed ``A``, ``B``, from
``lmu_network.py`` next to this script); what it memorises (``u``, a trained projection of the pixel, the
hidden state and the memory) and its nonlinear hidden state ``h`` are trained.

1. The cell runs over a whole sequence (``keras.layers.RNN``) inside a ``TensorNode``;
   a nengo Connection reads the class out of the final hidden state.  Both train
   together with ``sim.fit`` (one simulator step sees one whole sequence).
2. The same cell, with its trained weights, runs one pixel per simulator time step:
   another ``TensorNode`` computes one step of the cell, and a nengo Connection with
   ``synapse=0`` (a one-step delay) feeds its memory and hidden state back to it.
   Reading the output at the 64th step gives the same accuracy.
3. A fresh cell trained that way, pixel by pixel in simulator time: ``sim.fit`` on
   64-step samples back-propagates through the simulator's time loop, with a loss
   that reads only the last step.
4. For comparison, a ridge-regression readout of the fixed memory alone (what
   ``examples/lmu_digits.py`` trains with native nengo objects).

Saves a PNG.

    python examples/lmu_keras.py [--quick] [--out runs/examples/lmu_keras.png]
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

from nhw.backends.tensorflow import Simulator, TensorNode, dists  # noqa: E402
from lmu_network import discretize, legendre_memory, solve_readout  # noqa: E402

MINIBATCH = 50
N_PIXELS = 64


class LMUCell(keras.layers.Layer):
    """One step of a Legendre Memory Unit, as a Keras RNN cell.

    ``u = e_x . x + e_h . h[t-1] + e_m . m[t-1]`` (trained encoders),
    ``m[t] = Ad m[t-1] + Bd u`` (fixed, zero-order-hold discretisation) and
    ``h[t] = tanh(W_x x + W_h h[t-1] + W_m m[t] + b)`` (trained kernels).

    Parameters
    ----------
    units
        Size of the hidden state ``h``.
    order
        Legendre coefficients in the memory ``m``.
    theta
        Window remembered, in time steps.
    """

    def __init__(self, units: int, order: int, theta: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.units, self.order, self.theta = units, order, theta
        self.state_size = [order, units]
        self.output_size = units
        # theta m' = A m + B u with a time step of 1 (theta counted in steps)
        ad, bd = discretize(*legendre_memory(order, theta), dt=1.0)
        # row-vector convention: m[t] = m[t-1] @ Ad.T + u * Bd.T
        self.ad_t = ad.T.astype("float32")
        self.bd_t = bd.T.astype("float32")

    def build(self, input_shape) -> None:
        d = int(input_shape[-1])
        q, n = self.order, self.units
        self.e_x = self.add_weight(shape=(d, 1), initializer="lecun_uniform", name="e_x")
        self.e_h = self.add_weight(shape=(n, 1), initializer="zeros", name="e_h")
        self.e_m = self.add_weight(shape=(q, 1), initializer="zeros", name="e_m")
        self.w_x = self.add_weight(shape=(d, n), initializer="glorot_uniform", name="w_x")
        self.w_h = self.add_weight(shape=(n, n), initializer="orthogonal", name="w_h")
        self.w_m = self.add_weight(shape=(q, n), initializer="glorot_uniform", name="w_m")
        self.b = self.add_weight(shape=(n,), initializer="zeros", name="b")
        self.built = True

    def call(self, inputs, states):
        m, h = states
        ops = keras.ops
        u = ops.matmul(inputs, self.e_x) + ops.matmul(h, self.e_h) + ops.matmul(m, self.e_m)
        m = ops.matmul(m, ops.convert_to_tensor(self.ad_t)) + u * ops.convert_to_tensor(self.bd_t)
        h = ops.tanh(ops.matmul(inputs, self.w_x) + ops.matmul(h, self.w_h) + ops.matmul(m, self.w_m) + self.b)
        return h, [m, h]


class LMUStep(keras.layers.Layer):
    """One step of ``cell`` on a flat ``[x, m[t-1], h[t-1]]``, returning ``[m[t], h[t]]``.

    The state lives outside the layer (in nengo signals fed back by a Connection), so
    a TensorNode, which is called once per time step, can run the cell in nengo time.
    The cell is shared: its weights are the ones trained in the sequence model.
    """

    def __init__(self, cell: LMUCell, size_in: int = 1, **kwargs) -> None:
        super().__init__(**kwargs)
        self.cell, self.size_in = cell, size_in

    def call(self, x):
        d, q = self.size_in, self.cell.order
        h, (m, _) = self.cell(x[:, :d], [x[:, d:d + q], x[:, d + q:]])
        return keras.ops.concatenate([m, h], axis=-1)


def load_data(seed: int = 0):
    """Permuted pixel sequences ``(n, 64)`` in [0, 1], labels, and the permutation.

    1350 training and 400 test digits (whole minibatches: the simulation graph has
    a static batch size).
    """
    digits = load_digits()
    rng = np.random.RandomState(seed)
    order = rng.permutation(len(digits.target))
    perm = rng.permutation(N_PIXELS)
    x = (digits.data[order] / 16.0).astype(np.float32)[:, perm]
    y = digits.target[order]
    return (x[:1350], y[:1350]), (x[1350:1750], y[1350:1750]), perm


def memory_readout_accuracy(x_train, y_train, x_test, y_test, order: int) -> float:
    """Accuracy of a ridge readout of the fixed LMU memory after the last pixel (numpy)."""
    ad, bd = discretize(*legendre_memory(order, N_PIXELS), dt=1.0)

    def final_memory(x):
        m = np.zeros((len(x), order))
        for t in range(x.shape[1]):
            m = m @ ad.T + x[:, t:t + 1] * bd.T
        return m

    w = solve_readout(final_memory(x_train), np.eye(10)[y_train])
    return float(np.mean(np.argmax(final_memory(x_test) @ w.T, 1) == y_test))


def build_sequence_net(cell: LMUCell, seed: int = 0):
    """Input Node (a whole sequence) -> ``keras.layers.RNN(cell)`` TensorNode -> 10 outputs."""
    with nengo.Network(seed=seed) as net:
        net.config[nengo.Connection].synapse = None
        inp = nengo.Node(np.zeros(N_PIXELS), label="sequence")
        # (batch, 64 steps, 1 pixel) -> final hidden state (batch, units)
        lmu = TensorNode(keras.layers.RNN(cell), shape_in=(N_PIXELS, 1), pass_time=False, label="lmu")
        nengo.Connection(inp, lmu)
        out = nengo.Node(size_in=10, label="digit")
        readout = nengo.Connection(lmu, out, transform=dists.Glorot())
        p_out = nengo.Probe(out, label="out")
        p_h = nengo.Probe(lmu, label="hidden")
    return net, dict(inp=inp, lmu=lmu, out=out, readout=readout, p_out=p_out, p_h=p_h)


def build_streaming_net(cell: LMUCell, readout, seed: int = 0):
    """Input Node (one pixel per step) -> one-step LMU TensorNode with nengo recurrence -> outputs."""
    q, n = cell.order, cell.units
    with nengo.Network(seed=seed) as net:
        inp = nengo.Node(np.zeros(1), label="pixel")
        step = TensorNode(LMUStep(cell), shape_in=(1 + q + n,), shape_out=(q + n,), pass_time=False,
                          label="lmu_step")
        nengo.Connection(inp, step[0], synapse=None)
        # the state of step t-1 comes back one step later (synapse=0: a one-step delay)
        nengo.Connection(step, step[1:], synapse=0)
        out = nengo.Node(size_in=10, label="digit")
        nengo.Connection(step[q:], out, transform=readout, synapse=None)
        p_out = nengo.Probe(out, label="out")
        p_m = nengo.Probe(step[:q], label="memory")
    return net, dict(inp=inp, step=step, p_out=p_out, p_m=p_m)


def last_step_loss(y_true, y_pred):
    """Cross-entropy of the last time step only (class labels ``(batch, n_steps, 1)``)."""
    return keras.losses.sparse_categorical_crossentropy(y_true[:, -1], y_pred[:, -1], from_logits=True)


def main(argv: list[str] | None = None) -> int:
    """Train the Keras LMU in nengo, run it pixel by pixel, compare with the fixed memory."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer epochs and streamed digits (CI)")
    p.add_argument("--out", default="runs/examples/lmu_keras.png", help="where to save the plot")
    args = p.parse_args(argv)
    t_start = time.perf_counter()
    epochs = 8 if args.quick else 40
    stream_epochs = 8 if args.quick else 40
    n_stream = 200 if args.quick else 400
    order, units = 24, 64

    (x_train, y_train), (x_test, y_test), _ = load_data()
    keras.utils.set_random_seed(0)
    cell = LMUCell(units, order, theta=N_PIXELS, name="lmu_cell")
    net, objs = build_sequence_net(cell)
    onehot = np.eye(10, dtype=np.float32)
    print(f"{len(x_train)} training / {len(x_test)} test digits as {N_PIXELS}-pixel permuted sequences; "
          f"LMU order {order}, theta {N_PIXELS} steps, {units} hidden units")

    with Simulator(net, minibatch_size=MINIBATCH, seed=0, progress_bar=False) as sim:
        n_keras = sum(int(np.prod(v.shape)) for v in cell.trainable_weights)
        in_model = all(any(v is w for w in sim.keras_model.trainable_weights) for v in cell.trainable_weights)
        print(f"LMU cell: {n_keras} trainable Keras parameters, in sim.keras_model.trainable_weights: {in_model}")
        sim.compile(optimizer=keras.optimizers.Adam(3e-3),
                    loss={objs["p_out"]: keras.losses.CategoricalCrossentropy(from_logits=True)},
                    metrics={objs["p_out"]: keras.metrics.CategoricalAccuracy(name="acc")})
        t0 = time.perf_counter()
        hist = sim.fit(x_train[:, None, :], {objs["p_out"]: onehot[y_train][:, None, :]},
                       epochs=epochs, verbose=0)
        train_s = time.perf_counter() - t0
        print(f"trained {epochs} epochs in {train_s:.1f} s; final training loss {hist.history['loss'][-1]:.4f}, "
              f"training accuracy {hist.history['out_acc'][-1]:.4f}")  # NengoDL's <probe>_<metric>
        out = sim.predict(x_test[:, None, :])[objs["p_out"]]
        seq_acc = float(np.mean(np.argmax(out[:, -1], -1) == y_test))
        print(f"test accuracy (keras.layers.RNN in a TensorNode, one step per sequence): {seq_acc:.4f} "
              "(chance 0.1)")
        readout = sim.get_nengo_params(objs["readout"])["transform"]

    # the same trained cell, one pixel per simulator step
    net2, objs2 = build_streaming_net(cell, readout)
    xs, ys = x_test[:n_stream], y_test[:n_stream]
    t0 = time.perf_counter()
    with Simulator(net2, minibatch_size=MINIBATCH, seed=0, progress_bar=False) as sim2:
        data = sim2.predict(xs[:, :, None])
    stream_out = data[objs2["p_out"]]
    stream_acc = float(np.mean(np.argmax(stream_out[:, -1], -1) == ys))
    seq_sub = float(np.mean(np.argmax(out[:n_stream, -1], -1) == ys))
    diff = float(np.abs(stream_out[:, -1] - out[:n_stream, -1]).max())
    print(f"streamed pixel by pixel ({N_PIXELS} simulator steps per digit, first {n_stream} test digits): "
          f"accuracy {stream_acc:.4f} (sequence model on the same digits {seq_sub:.4f}); "
          f"max |output difference| {diff:.2g} [{time.perf_counter() - t0:.1f} s]")

    # a fresh cell trained pixel by pixel, through the simulator's 64-step loop
    keras.utils.set_random_seed(1)
    cell3 = LMUCell(units, order, theta=N_PIXELS, name="lmu_cell_streamed")
    net3, objs3 = build_streaming_net(cell3, dists.Glorot())
    with Simulator(net3, minibatch_size=MINIBATCH, seed=0, progress_bar=False) as sim3:
        sim3.compile(optimizer=keras.optimizers.Adam(3e-3), loss={objs3["p_out"]: last_step_loss})
        t0 = time.perf_counter()
        # the label at every step (only the last is used by the loss)
        labels = np.repeat(y_train[:, None, None], N_PIXELS, axis=1).astype(np.float32)
        hist3 = sim3.fit(x_train[:, :, None], {objs3["p_out"]: labels}, epochs=stream_epochs, verbose=0)
        stream_train_s = time.perf_counter() - t0
        out3 = sim3.predict(x_test[:, :, None])[objs3["p_out"]]
    stream_trained_acc = float(np.mean(np.argmax(out3[:, -1], -1) == y_test))
    print(f"trained pixel by pixel ({N_PIXELS} simulator steps per sample) {stream_epochs} epochs in "
          f"{stream_train_s:.1f} s (final loss {hist3.history['loss'][-1]:.4f}); "
          f"test accuracy {stream_trained_acc:.4f}")

    mem_acc = memory_readout_accuracy(x_train, y_train, x_test, y_test, order)
    print(f"linear readout of the fixed LMU memory alone (as examples/lmu_digits.py): test accuracy {mem_acc:.4f}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(14, 3.2))
    axes[0].plot(xs[0], ".-", lw=0.5)
    axes[0].set_title(f"permuted pixel sequence (label {ys[0]})")
    axes[0].set_xlabel("step")
    memory = data[objs2["p_m"]][0].T
    span = float(np.abs(memory).max())
    im = axes[1].imshow(memory, aspect="auto", cmap="RdBu", vmin=-span, vmax=span)
    fig.colorbar(im, ax=axes[1])
    axes[1].set_title("LMU memory, streamed")
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("Legendre coefficient")
    axes[2].plot(stream_out[0])
    axes[2].legend([str(i) for i in range(10)], fontsize=6, ncol=2)
    axes[2].set_title("output while streaming (read at the last step)")
    axes[2].set_xlabel("step")
    axes[3].plot(np.arange(1, epochs + 1), hist.history["out_acc"], "o-", label="training")
    axes[3].axhline(seq_acc, color="k", ls="--", label="test")
    axes[3].axhline(stream_trained_acc, color="C1", ls="-.", label="test, trained streaming")
    axes[3].axhline(mem_acc, color="gray", ls=":", label="fixed memory, linear")
    axes[3].set_ylim(0, 1)
    axes[3].set_xlabel("epoch")
    axes[3].set_title("accuracy")
    axes[3].legend(fontsize=7)
    fig.tight_layout()
    from nhw.toolchain.plots import save_figure

    print(f"plot saved to {save_figure(fig, args.out, dpi=80)}")
    print(f"done in {time.perf_counter() - t_start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

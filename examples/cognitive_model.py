"""Optimizing a cognitive model: a spiking circular-convolution (binding) network.

Semantic-pointer models bind two vectors with circular convolution.  The NEF builds
that operation from fixed parts (a DFT, element-wise products of pairs of Fourier
coefficients computed by small LIF populations that square their input, and an
inverse DFT) and solves each population's decoders on its own, for inputs spread
over a conservatively large range.  Training the whole network end to end with
``sim.fit`` adapts it to the vectors it actually sees.

Part 1, without temporal dynamics: every connection has ``synapse=None``, so one
time step is one forward pass.  The network trains in rate mode (LIF -> LIFRate)
on single-step samples with an MSE loss to the exact circular convolution, and is
tested with spiking LIF neurons over many steps (low-pass filtered output probe) on
held-out vector pairs, before and after training.  The trained parameters are then
frozen into the network (``sim.freeze_params``) and nengo's own simulator runs it.

Part 2, with temporal dynamics: the same network with nengo's default 5 ms synapses
on its input and output connections, read out through a 10 ms low-pass probe, so
its output lags and rises over tens of milliseconds.  It trains (rate mode, gradients
through the filters' dynamics) on 50-step sequences whose target is the bound vector
at every step, so the loss weighs how fast the output gets there as well as where it
settles; the spiking error over time is compared with the untrained NEF network's.

The network is nengo.networks.CircularConvolution's NEF design, but built as one
population with hand-solved decoders (see :func:`build_network`): the ready-made
network has ~200 connections, and its training graph takes about a minute to build.

    python examples/cognitive_model.py [--quick] [--out DIR]

Writes ``DIR/binding_accuracy.png`` (part 1) and ``DIR/binding_dynamics.png``
(part 2).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from nhw.quiet import keras  # noqa: E402
import nengo  # noqa: E402
import numpy as np  # noqa: E402
from nengo.networks.circularconvolution import transform_in, transform_out  # noqa: E402

from nhw.backends.tensorflow import Simulator  # noqa: E402

MINIBATCH = 50
#: radius of the squaring populations: nengo.networks.CircularConvolution's choice
#: (Product with input_magnitude 2), generous for the Fourier coefficients of unit vectors
RADIUS = 2 * np.sqrt(2)
#: synapse (s) of the input and output connections in part 2 (nengo's default)
TAU = 0.005
#: low-pass filter (s) of the probe read out in part 1's spiking test
PROBE_TAU = 0.03
#: low-pass filter (s) of the probe trained and read out in part 2
FAST_TAU = 0.01
#: LIF spike amplitude (a spike is amplitude / dt).  With nengo's default of 1 the
#: solved output weights are ~1e-3 (they multiply rates of hundreds of Hz) and Adam,
#: which first moves every weight by about its step size, overshoots wildly; 0.01
#: scales rates to ~1 and weights to ~0.1, like the other parameters
AMPLITUDE = 0.01
LEARNING_RATE = 1e-3
#: steps each held-out pair is shown for in part 1's spiking test (3 probe time constants)
TEST_STEPS = 100


def random_vectors(n: int, d: int, rng: np.random.RandomState) -> np.ndarray:
    """``n`` random unit vectors of dimension ``d`` (semantic pointers)."""
    return nengo.dists.UniformHypersphere(surface=True).sample(n, d, rng=rng)


def cconv(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact circular convolution along the last axis (the binding target)."""
    d = a.shape[-1]
    return np.fft.irfft(np.fft.rfft(a, axis=-1) * np.fft.rfft(b, axis=-1), n=d, axis=-1)


def squaring_decoders(gain, bias, signs, neuron_type, n_eval: int = 500) -> np.ndarray:
    """NEF decoders computing ``x**2`` from a 1-D population over ``[-RADIUS, RADIUS]``.

    The neurons are the population's: encoder ``signs`` (+-1), ``gain`` and ``bias``.
    """
    x = np.linspace(-RADIUS, RADIUS, n_eval)
    activities = neuron_type.rates(signs[None, :] * x[:, None] / RADIUS, gain, bias)
    dec, _ = nengo.solvers.LstsqL2(reg=0.1)(activities, x[:, None] ** 2)
    return dec[:, 0]


def build_network(d: int, n_per_dim: int, synapse: float | None, seed: int = 0):
    """NEF circular convolution of two ``d``-dimensional inputs, in one population.

    The design is nengo.networks.CircularConvolution's: the two inputs go through
    the DFT transforms ``A``, ``B``; each pair product ``A_i * B_i`` is
    ``((A_i + B_i)^2 - (A_i - B_i)^2) / 4``, computed by 1-D LIF populations that
    square their input; the inverse DFT combines the products.  Here all ``2P``
    squaring populations are one Ensemble whose neurons each encode one dimension
    (one-hot encoders), and its decoders are solved per dimension by hand and put on
    one ``ens.neurons -> output`` connection.  The network is the same, but it has 3
    connections instead of ~200, which keeps the TensorFlow graph (and the time to
    compile it for training) small.

    Parameters
    ----------
    d
        Vector dimension.
    n_per_dim
        LIF neurons per squared dimension.
    synapse
        Synapse of the input and output connections (None: none, one step = one pass).

    Returns
    -------
    net, objs
        ``objs``: input Nodes ``a`` and ``b``, the ``output`` Node, the probes
        ``p_out`` (unfiltered; trained in part 1), ``p_filt`` (``PROBE_TAU``
        low-pass: part 1's spiking readout) and ``p_fast`` (``FAST_TAU`` low-pass:
        trained and read out in part 2), and ``ens``.
    """
    rng = np.random.RandomState(seed)
    tr_a, tr_b, tr_out = transform_in(d, "A", False), transform_in(d, "B", False), transform_out(d)
    p = tr_out.shape[1]
    m = 2 * p  # squared dimensions: (A+B)/sqrt2 (p of them), then (A-B)/sqrt2
    n = m * n_per_dim
    dims = np.repeat(np.arange(m), n_per_dim)
    signs = rng.choice([-1.0, 1.0], size=n)
    encoders = np.zeros((n, m))
    encoders[np.arange(n), dims] = signs
    neuron_type = nengo.LIF(amplitude=AMPLITUDE)
    # nengo's default tuning: max rates U(200, 400) Hz, intercepts U(-1, 1)
    max_rates = rng.uniform(200, 400, size=n)
    intercepts = rng.uniform(-1, 1, size=n)
    gain, bias = neuron_type.gain_bias(max_rates, intercepts)

    weights_out = np.zeros((m, n))
    for k in range(m):
        idx = np.flatnonzero(dims == k)
        weights_out[k, idx] = squaring_decoders(gain[idx], bias[idx], signs[idx], neuron_type)
    # products = (sq1 - sq2) / 2 with sq = ((A +- B) / sqrt2)^2; then the inverse DFT
    combine = 0.5 * np.hstack([np.eye(p), -np.eye(p)])
    weights_out = tr_out @ combine @ weights_out

    with nengo.Network(seed=seed) as net:
        a = nengo.Node(np.zeros(d), label="a")
        b = nengo.Node(np.zeros(d), label="b")
        ens = nengo.Ensemble(n, m, neuron_type=neuron_type, encoders=encoders, gain=gain, bias=bias,
                             radius=RADIUS, label="squares")
        nengo.Connection(a, ens, transform=np.vstack([tr_a, tr_a]) / np.sqrt(2), synapse=synapse)
        nengo.Connection(b, ens, transform=np.vstack([tr_b, -tr_b]) / np.sqrt(2), synapse=synapse)
        out = nengo.Node(size_in=d, label="bound")
        nengo.Connection(ens.neurons, out, transform=weights_out, synapse=synapse)
        p_out = nengo.Probe(out, label="out")
        p_filt = nengo.Probe(out, synapse=PROBE_TAU, label="out_filtered")
        p_fast = nengo.Probe(out, synapse=FAST_TAU, label="out_fast")
    return net, dict(a=a, b=b, out=out, ens=ens, p_out=p_out, p_filt=p_filt, p_fast=p_fast)


def cosine(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Cosine similarity along the last axis."""
    norm = np.linalg.norm(x, axis=-1) * np.linalg.norm(y, axis=-1)
    return np.sum(x * y, axis=-1) / np.maximum(norm, 1e-12)


def scores(out: np.ndarray, target: np.ndarray) -> dict:
    """Mean cosine similarity, MSE and retrieval accuracy of outputs ``(n, d)``.

    Retrieval: the output's most similar vector among all ``n`` targets is its own.
    """
    sims = out @ target.T / np.linalg.norm(out, axis=1, keepdims=True).clip(1e-12)
    return dict(
        cos=float(np.mean(cosine(out, target))),
        mse=float(np.mean((out - target) ** 2)),
        retrieval=float(np.mean(np.argmax(sims, axis=1) == np.arange(len(out)))),
    )


def fmt(s: dict) -> str:
    return f"cosine {s['cos']:.4f}, mse {s['mse']:.5f}, retrieval {s['retrieval']:.3f}"


def hold(x: np.ndarray, n_steps: int) -> np.ndarray:
    """``(n, d)`` -> ``(n, n_steps, d)``: each vector held for ``n_steps``."""
    return np.repeat(x[:, None, :], n_steps, axis=1)


def rate_outputs(sim, objs, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rate-mode outputs (what training optimises): the Keras model with training=True.

    ``predict``/``evaluate`` run spikes; calling ``sim.keras_model`` with
    ``training=True`` runs the LIF rate curves instead.
    """
    chunks = []
    for i in range(0, len(a), MINIBATCH):
        res = sim.keras_model({"a": a[i:i + MINIBATCH], "b": b[i:i + MINIBATCH]}, training=True)
        chunks.append(res["out"].numpy())  # outputs are keyed by probe label
    return np.concatenate(chunks)


def reference_outputs(net, objs, a: np.ndarray, b: np.ndarray, n_steps: int, probe: str = "p_filt") -> np.ndarray:
    """Outputs ``(n, n_steps, d)`` of ``objs[probe]`` of (frozen) ``net`` on nengo's simulator.

    Each pair runs from the initial state, as in the TensorFlow simulator's predict.
    """
    current = {"a": a[0], "b": b[0]}
    objs["a"].output = lambda t: current["a"]
    objs["b"].output = lambda t: current["b"]
    outs = []
    with nengo.Simulator(net, progress_bar=False) as sim:
        for va, vb in zip(a, b):
            current["a"], current["b"] = va, vb
            sim.reset()
            sim.run_steps(n_steps)
            outs.append(np.array(sim.data[objs[probe]]))
    return np.stack(outs)


def part1(args, d: int, n_per_dim: int, rng) -> dict:
    """Binding without temporal dynamics: single-step rate training, spiking tests."""
    print(f"== part 1: binding without temporal dynamics (D={d}) ==")
    n_train = 1000 if args.quick else 2000
    n_test = 200
    n_steps = TEST_STEPS
    epochs = 15 if args.quick else 30
    train_a, train_b = random_vectors(n_train, d, rng), random_vectors(n_train, d, rng)
    test_a, test_b = random_vectors(n_test, d, rng), random_vectors(n_test, d, rng)
    train_y, test_y = cconv(train_a, train_b), cconv(test_a, test_b)

    net, objs = build_network(d, n_per_dim, synapse=None)
    print(f"network: {objs['ens'].n_neurons} LIF neurons, {len(net.all_connections)} connections")
    a, b, p_out, p_filt = objs["a"], objs["b"], objs["p_out"], objs["p_filt"]
    spike_x = {a: hold(test_a, n_steps), b: hold(test_b, n_steps)}
    res: dict = {}
    with Simulator(net, minibatch_size=MINIBATCH, progress_bar=False, seed=0) as sim:
        before_rate = scores(rate_outputs(sim, objs, test_a[:, None], test_b[:, None])[:, -1], test_y)
        t0 = time.perf_counter()
        before = sim.predict(spike_x)[p_filt]
        res["before"] = scores(before[:, -1], test_y)
        print(f"before training, rate mode (1 step): {fmt(before_rate)}")
        print(f"before training, spiking ({n_steps} steps): {fmt(res['before'])} "
              f"[{time.perf_counter() - t0:.1f} s]")

        sim.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE), loss={p_out: "mse"})
        t0 = time.perf_counter()
        hist = sim.fit({a: train_a[:, None], b: train_b[:, None]}, {p_out: train_y[:, None]},
                       epochs=epochs, verbose=0)
        loss = hist.history["loss"]
        print(f"trained {epochs} epochs on {n_train} pairs in {time.perf_counter() - t0:.1f} s; "
              f"loss {loss[0]:.5f} -> {loss[-1]:.5f}")
        after_rate = scores(rate_outputs(sim, objs, test_a[:, None], test_b[:, None])[:, -1], test_y)
        t0 = time.perf_counter()
        after = sim.predict(spike_x)[p_filt]
        res["after"] = scores(after[:, -1], test_y)
        print(f"after training, rate mode (1 step): {fmt(after_rate)}")
        print(f"after training, spiking ({n_steps} steps): {fmt(res['after'])} "
              f"[{time.perf_counter() - t0:.1f} s]")
        sim.freeze_params(net)

    n_ref = 50 if args.quick else 100
    t0 = time.perf_counter()
    ref = reference_outputs(net, objs, test_a[:n_ref], test_b[:n_ref], n_steps)
    ref_s = scores(ref[:, -1], test_y[:n_ref])
    tf_s = scores(after[:n_ref, -1], test_y[:n_ref])
    print(f"frozen network on the first {n_ref} test pairs: tensorflow cosine {tf_s['cos']:.4f}, "
          f"reference (frozen) cosine {ref_s['cos']:.4f}; mse tensorflow {tf_s['mse']:.5f}, "
          f"reference {ref_s['mse']:.5f} [{time.perf_counter() - t0:.1f} s]")
    # float32 (TensorFlow) vs float64 (nengo): the same spikes until a voltage within
    # rounding of threshold spikes a step apart; the averages agree
    diff = np.abs(ref - after[:n_ref]).max(axis=(1, 2))
    print(f"tensorflow vs reference filtered outputs: median max |difference| {np.median(diff):.2g}")
    res.update(before_rate=before_rate, after_rate=after_rate, loss=loss, ref=ref_s,
               cos_before=cosine(before[:, -1], test_y), cos_after=cosine(after[:, -1], test_y),
               example=(before[0], after[0], test_y[0]))
    return res


def part2(args, d: int, n_per_dim: int, rng) -> dict:
    """Binding with synapses: trained over time on multi-step sequences."""
    print(f"== part 2: binding with temporal dynamics (D={d}, synapses {TAU * 1000:.0f} ms, "
          f"readout filter {FAST_TAU * 1000:.0f} ms) ==")
    n_train = 500 if args.quick else 1000
    n_test = 100
    train_steps = 50
    n_steps = 80  # the test runs past the trained window, into the steady state
    epochs = 10 if args.quick else 20
    train_a, train_b = random_vectors(n_train, d, rng), random_vectors(n_train, d, rng)
    test_a, test_b = random_vectors(n_test, d, rng), random_vectors(n_test, d, rng)
    train_y, test_y = cconv(train_a, train_b), cconv(test_a, test_b)

    net, objs = build_network(d, n_per_dim, synapse=TAU, seed=1)
    a, b, p_fast = objs["a"], objs["b"], objs["p_fast"]
    spike_x = {a: hold(test_a, n_steps), b: hold(test_b, n_steps)}
    res: dict = {}

    def course(out, target):
        """Per-step MSE and mean cosine over the test pairs."""
        return (np.mean((out - target[:, None]) ** 2, axis=(0, 2)),
                np.mean(cosine(out, target[:, None]), axis=0))

    with Simulator(net, minibatch_size=MINIBATCH, progress_bar=False, seed=0) as sim:
        before = sim.predict(spike_x)[p_fast]
        # the loss is on the filtered probe (what is read out) at every step: the input
        # and output synapses and the probe filter delay the output, so the loss weighs
        # how fast it gets to the bound vector as well as where it settles; gradients
        # flow back through the filters' dynamics over all steps
        sim.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE), loss={p_fast: "mse"})
        t0 = time.perf_counter()
        hist = sim.fit({a: hold(train_a, train_steps), b: hold(train_b, train_steps)},
                       {p_fast: hold(train_y, train_steps)}, epochs=epochs, verbose=0)
        loss = hist.history["loss"]
        print(f"trained {epochs} epochs on {n_train} sequences of {train_steps} steps in "
              f"{time.perf_counter() - t0:.1f} s; loss {loss[0]:.5f} -> {loss[-1]:.5f}")
        after = sim.predict(spike_x)[p_fast]
        sim.freeze_params(net)
    res["mse_before"], res["cos_before"] = course(before, test_y)
    res["mse_after"], res["cos_after"] = course(after, test_y)
    print(f"spiking time-course mse over {n_steps} steps: before {res['mse_before'].mean():.5f}, "
          f"after {res['mse_after'].mean():.5f}")
    print(f"spiking time-course cosine over {n_steps} steps: before {res['cos_before'].mean():.4f}, "
          f"after {res['cos_after'].mean():.4f}")
    for k in (10, 20, 30, 50, 80):
        print(f"  step {k}: mse before {res['mse_before'][k - 1]:.5f} after {res['mse_after'][k - 1]:.5f}; "
              f"cosine before {res['cos_before'][k - 1]:.4f} after {res['cos_after'][k - 1]:.4f}")
    for key in ("before", "after"):
        reach = np.flatnonzero(res[f"cos_{key}"] >= 0.7)
        res[f"reach_{key}"] = int(reach[0]) + 1 if len(reach) else None
    print(f"first step with mean cosine >= 0.7: before {res['reach_before']}, after {res['reach_after']}")
    n_ref = 20 if args.quick else 50
    t0 = time.perf_counter()
    ref = reference_outputs(net, objs, test_a[:n_ref], test_b[:n_ref], n_steps, probe="p_fast")
    ref_mse = course(ref, test_y[:n_ref])[0].mean()
    tf_mse = course(after[:n_ref], test_y[:n_ref])[0].mean()
    print(f"frozen network on the first {n_ref} test pairs, time-course mse: tensorflow {tf_mse:.5f}, "
          f"reference (frozen) {ref_mse:.5f} [{time.perf_counter() - t0:.1f} s]")
    res.update(loss=loss, train_steps=train_steps, example=(before[0], after[0], test_y[0]))
    return res


def plot(out: Path, r1: dict, r2: dict, dt: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    names = ["cos", "retrieval"]
    x = np.arange(len(names))
    for shift, key, label in ((-0.2, "before", "NEF (before)"), (0.2, "after", "trained (after)")):
        bars = axes[0].bar(x + shift, [r1[key][k] for k in names], 0.4, label=label)
        axes[0].bar_label(bars, fmt="%.2f", fontsize=7)
    axes[0].set_xticks(x, ["mean cosine", "retrieval accuracy"])
    axes[0].set_ylim(0, 1.05)
    axes[0].set_title("spiking binding accuracy (held-out pairs)")
    axes[0].legend(loc="lower right")
    bins = np.linspace(min(r1["cos_before"].min(), r1["cos_after"].min()), 1, 30)
    axes[1].hist(r1["cos_before"], bins, alpha=0.6, label="before")
    axes[1].hist(r1["cos_after"], bins, alpha=0.6, label="after")
    axes[1].set_xlabel("cosine(output, a (*) b)")
    axes[1].set_title("per-pair similarity")
    axes[1].legend()
    before, after, target = r1["example"]
    axes[2].plot(target, "k.-", label="a (*) b")
    axes[2].plot(before[-1], "o--", ms=3, label="before")
    axes[2].plot(after[-1], "s--", ms=3, label="after")
    axes[2].set_xlabel("dimension")
    axes[2].set_title("one bound vector")
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "binding_accuracy.png", dpi=80)
    plt.close(fig)

    t = dt * np.arange(1, len(r2["mse_before"]) + 1)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for key, label in (("before", "NEF (before)"), ("after", "trained (after)")):
        axes[0].plot(t, r2[f"mse_{key}"], label=label)
        axes[1].plot(t, r2[f"cos_{key}"], label=label)
    for ax in axes[:2]:
        ax.axvspan(0, dt * r2["train_steps"], color="0.9", label="trained window")
        ax.set_xlabel("time (s)")
    axes[0].set_title("time-course mse (spiking)")
    axes[1].set_title("time-course mean cosine (spiking)")
    axes[0].legend()
    before, after, target = r2["example"]
    for i, c in enumerate(("C0", "C1", "C2")):
        axes[2].plot(t, before[:, i], c, ls="--", lw=1)
        axes[2].plot(t, after[:, i], c, lw=1.5)
        axes[2].axhline(target[i], color=c, ls=":", lw=1)
    axes[2].set_title("3 output dims: before --, after -, target :")
    axes[2].set_xlabel("time (s)")
    fig.tight_layout()
    fig.savefig(out / "binding_dynamics.png", dpi=80)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Run both parts and save the figures."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="less data and fewer epochs (CI)")
    p.add_argument("--out", default="runs/examples/cognitive_model", help="directory for the PNG figures")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    d, n_per_dim = 16, 10
    rng = np.random.RandomState(0)
    r1 = part1(args, d, n_per_dim, rng)
    r2 = part2(args, d, n_per_dim, rng)
    plot(out, r1, r2, dt=0.001)
    print(f"plots saved to {out / 'binding_accuracy.png'} and {out / 'binding_dynamics.png'}")
    print(f"done in {time.perf_counter() - t_start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

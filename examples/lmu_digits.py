"""Legendre Memory Units: a psMNIST-style task on the 8x8 digits, with native nengo objects.

Each digit is fed one (permuted) pixel per time step, 64 steps per digit, into an LMU
memory built from plain nengo objects (``lmu_network.LegendreMemory`` next to this script) followed by a
layer of rate neurons; a linear readout from memory and neurons, solved by least
squares on the training digits, classifies the test digits from the state at each
digit's last step.  Runs on any target (``--target opencl``).  Saves ``lmu_digits.png``.

    python examples/lmu_digits.py [--quick] [--target reference] [--out runs/examples/lmu_digits.png]
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("PYOPENCL_CTX", "0")

import nengo
import numpy as np
from sklearn.datasets import load_digits

from nhw import backends
from lmu_network import LegendreMemory, solve_readout

DT = 0.001


def run(target: str, n_digits: int, order: int, n_neurons: int, seed: int = 0):
    """Simulate the LMU on ``n_digits`` permuted pixel sequences; return features and labels."""
    digits = load_digits()
    rng = np.random.RandomState(seed)
    perm = rng.permutation(64)
    x = (digits.images.reshape(-1, 64)[:n_digits, perm] / 16.0)
    y = digits.target[:n_digits]
    steps = 64
    theta = steps * DT
    with nengo.Network(seed=seed) as net:
        stim = nengo.Node(nengo.processes.PresentInput(x.reshape(-1, 1), presentation_time=DT), label="pixels")
        lmu = LegendreMemory(order, theta, dt=DT, label="lmu")
        nengo.Connection(stim, lmu.input, synapse=None)
        hidden = nengo.Ensemble(n_neurons, order, neuron_type=nengo.RectifiedLinear(), radius=2.0, label="hidden")
        nengo.Connection(lmu.memory, hidden, synapse=None)
        p_memory = nengo.Probe(lmu.memory, sample_every=theta)
        p_hidden = nengo.Probe(hidden.neurons, sample_every=theta)
    with backends.get(target)(net, dt=DT, progress_bar=False) as sim:
        sim.run_steps(steps * n_digits)
        # one sample per digit, at its last step (the memory then spans exactly that digit)
        features = np.hstack([sim.data[p_memory], sim.data[p_hidden] / 100.0])
    return features, y


def main(argv: list[str] | None = None) -> int:
    """Run the example; returns the exit status."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer digits (CI)")
    p.add_argument("--target", default="reference")
    p.add_argument("--out", default="runs/examples/lmu_digits.png")
    args = p.parse_args(argv)
    n_digits = 600 if args.quick else 1797
    features, y = run(args.target, n_digits, order=24, n_neurons=400)
    n_train = int(0.75 * n_digits)
    onehot = np.eye(10)[y]
    w_mem = solve_readout(features[:n_train, :24], onehot[:n_train])
    w_all = solve_readout(features[:n_train], onehot[:n_train])
    acc_mem = np.mean(np.argmax(features[n_train:, :24] @ w_mem.T, 1) == y[n_train:])
    acc_all = np.mean(np.argmax(features[n_train:] @ w_all.T, 1) == y[n_train:])
    print(f"{n_digits} permuted pixel sequences on {args.target}; test accuracy: "
          f"memory readout {acc_mem:.3f}, memory + neurons readout {acc_all:.3f} (chance 0.1)")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3))
    span = float(np.abs(features[:40, :24]).max())
    im = ax.imshow(features[:40, :24].T, aspect="auto", cmap="RdBu", vmin=-span, vmax=span)
    fig.colorbar(im, ax=ax, label="value")
    ax.set_xlabel("digit")
    ax.set_ylabel("Legendre coefficient")
    ax.set_title(f"LMU memory at each digit's end (accuracy {acc_all:.2f})")
    fig.tight_layout()
    from nhw.toolchain.plots import save_figure

    print(f"plot saved to {save_figure(fig, args.out, dpi=90)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

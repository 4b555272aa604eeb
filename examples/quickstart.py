"""Quickstart: the seed tutorial's sin(x^2) NEF network on every available target.

Builds the two-ensemble chain x -> x^2 -> sin(x^2) from a white-noise input, runs it
for one second on each available backend, prints how well each approximates
sin(x^2) and how far each is from ``reference``, and saves a plot.

    python examples/quickstart.py [--quick] [--out runs/examples/quickstart.png] [--targets reference,opencl]

``--quick`` (what CI runs) simulates 0.3 s instead of 1 s.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("PYOPENCL_CTX", "0")

import numpy as np

from nhw import backends
from nhw.toolchain.parity import simulate
from nhw.toolchain.parity_networks import get_network


#: steps (1 ms each) that ``--quick`` simulates
QUICK_STEPS = 300


def main(argv: list[str] | None = None) -> int:
    """Run the quickstart; returns the process exit status."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a shorter run: 0.3 s of simulated time (CI)")
    p.add_argument("--targets", help="comma-separated targets (default: every available one)")
    p.add_argument("--out", default="runs/examples/quickstart.png", help="where to save the plot")
    args = p.parse_args(argv)
    targets = args.targets.split(",") if args.targets else backends.available()

    case = get_network("sin_x2_chain").case(seed=0)
    if args.quick:
        case = dataclasses.replace(case, n_steps=QUICK_STEPS)
    results, ref = {}, None
    print(f"{'target':<11} {'seconds':>7} {'rmse vs sin(x^2)':>17} {'rmse vs reference':>18}")
    for target in ["reference", *[t for t in targets if t != "reference"]]:
        t0 = time.perf_counter()
        try:
            data = simulate(target, case, seed=0)
        except backends.BackendError as exc:
            print(f"{target:<11} error: {exc}")
            continue
        elapsed = time.perf_counter() - t0
        ref = data if target == "reference" else ref
        ideal = np.sin(data["x"] ** 2)
        err_ideal = np.sqrt(np.mean((data["out"] - ideal) ** 2))
        err_ref = np.sqrt(np.mean((data["out"] - ref["out"]) ** 2))
        print(f"{target:<11} {elapsed:7.2f} {err_ideal:17.4f} {err_ref:18.4f}")
        results[target] = data

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = 0.001 * np.arange(1, case.n_steps + 1)
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(t, np.sin(ref["x"] ** 2), "k--", label="sin(x^2)")
    # Wide to narrow, so that a target that matches reference closely does not hide it.
    widths = np.linspace(3.5, 1.0, len(results))
    for (target, data), lw in zip(results.items(), widths):
        ax.plot(t, data["out"], label=target, alpha=0.8, lw=lw)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("output, sin(x^2) (0.01 s probe filter)")
    ax.legend()
    from nhw.toolchain.plots import save_figure

    print(f"plot saved to {save_figure(fig, args.out, dpi=100)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

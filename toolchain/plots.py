"""PNG plots of probe data: decoded outputs, spike rasters, parity overlays.

matplotlib is imported lazily with the non-interactive Agg backend, so plotting works
on machines without a display and costs nothing to commands that do not plot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

#: At most this many dimensions of a probe are drawn (the rest would be unreadable).
MAX_LINES = 10


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _grid(n: int, title: str, width: float = 8.0):
    plt = _plt()
    fig, axes = plt.subplots(max(n, 1), 1, figsize=(width, 2.2 * max(n, 1) + 0.6), squeeze=False, sharex=True)
    fig.suptitle(title)
    return plt, fig, axes[:, 0]


def _save(plt, fig, path: str | Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return Path(path)


def plot_outputs(t: np.ndarray, data: Mapping[str, np.ndarray], path: str | Path, title: str = "") -> Path:
    """One panel per probe, its first :data:`MAX_LINES` dimensions over time."""
    plt, fig, axes = _grid(len(data), title)
    for ax, (name, y) in zip(axes, data.items()):
        y = np.asarray(y).reshape(len(y), -1)
        ax.plot(t[: len(y)], y[:, :MAX_LINES], lw=1)
        ax.set_ylabel(name)
    axes[-1].set_xlabel("time (s)")
    return _save(plt, fig, path)


def plot_rasters(t: np.ndarray, spikes: Mapping[str, np.ndarray], path: str | Path,
                 max_neurons: int = 50, title: str = "") -> Path:
    """One spike raster per probe (its first ``max_neurons`` neurons)."""
    plt, fig, axes = _grid(len(spikes), title)
    for ax, (name, s) in zip(axes, spikes.items()):
        s = np.asarray(s)[:, :max_neurons]
        steps, neurons = np.nonzero(s)
        ax.scatter(t[steps], neurons, marker="|", s=12, c="k", linewidths=0.6)
        ax.set_ylabel(f"{name}\nneuron")
        ax.set_ylim(-0.5, max(s.shape[1], 1) - 0.5)
    axes[-1].set_xlabel("time (s)")
    return _save(plt, fig, path)


def plot_overlay(t: np.ndarray, reference: Mapping[str, np.ndarray],
                 targets: Mapping[str, Mapping[str, np.ndarray]], path: str | Path,
                 title: str = "", dims: int = 3) -> Path:
    """Per probe, ``reference`` (dashed black) under each target's output."""
    plt, fig, axes = _grid(len(reference), title)
    for ax, (probe, ref) in zip(axes, reference.items()):
        ref = np.asarray(ref).reshape(len(ref), -1)[:, :dims]
        ax.plot(t[: len(ref)], ref, "k--", lw=1.2, label="reference")
        for k, (target, data) in enumerate(targets.items()):
            if probe not in data:
                continue
            y = np.asarray(data[probe]).reshape(len(data[probe]), -1)[:, :dims]
            ax.plot(t[: len(y)], y, color=f"C{k}", lw=1, alpha=0.8, label=target)
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        ax.legend(unique.values(), unique.keys(), fontsize="small", loc="upper right")
        ax.set_ylabel(probe)
    axes[-1].set_xlabel("time (s)")
    return _save(plt, fig, path)

"""Stage 2 of an experiment: the dataset, and test samples fed into the network's input."""

from __future__ import annotations

from typing import Any

import nengo
import numpy as np

from nhw.errors import ConfigError
from nhw.toolchain import networks
from nhw.toolchain.config.schema import ExperimentConfig
from nhw.names import unknown


def load_data(cfg: ExperimentConfig):
    """The config's dataset, or ``None`` without a ``data`` section."""
    from nhw.toolchain import data

    d = cfg.data
    if d is None:
        return None
    if d.path is not None:
        return data.load_npz(d.path, flatten=d.flatten, scale=d.scale)
    kwargs: dict[str, Any] = {"seed": cfg.seed_for("data"), "test_fraction": d.test_fraction}
    if d.n_steps is not None:
        kwargs["n_steps"] = d.n_steps
    return data.load_builtin(d.name, **kwargs)


def feed_inputs(cfg: ExperimentConfig, built: networks.BuiltNetwork) -> dict[str, np.ndarray]:
    """Replace the fed input node's output with test samples; return what was fed.

    Samples of shape ``(n, features)`` are each shown for ``presentation_time``;
    time series ``(n, n_steps, features)`` are played one after another.
    """
    dep = cfg.deploy
    _check_driven(cfg, built)
    if dep.feed is None:
        return {}
    if dep.feed not in built.inputs:
        raise ConfigError(f"{cfg.source}: deploy.feed: {unknown('input node', dep.feed, list(built.inputs))}")
    ds = load_data(cfg)
    if ds is None:
        raise ConfigError(f"{cfg.source}: deploy.feed: feeding an input needs a 'data' section")
    node = built.inputs[dep.feed]
    n_items = len(ds.x_test) if dep.n_items is None else dep.n_items
    if n_items > len(ds.x_test):
        # slicing would quietly feed fewer items than asked (and score fewer)
        raise ConfigError(f"{cfg.source}: deploy.n_items: expected at most {len(ds.x_test)} (the test samples "
                          f"of dataset {ds.name!r}); got {dep.n_items}")
    x, y = ds.x_test[:n_items], ds.y_test[:n_items]
    if ds.n_features != node.size_out:
        raise ConfigError(f"{cfg.source}: deploy.feed: input node {dep.feed!r} takes {node.size_out} values "
                          f"but dataset {ds.name!r} has {ds.n_features} features")
    if dep.reset_per_item:
        items = ItemFeed(x, dep.dt, None if x.ndim == 3 else int(round(dep.presentation_time / dep.dt)))
        node.output = items
        return {"x": x, "y": y, "n_steps": np.asarray(items.n_items * items.steps)}
    if x.ndim == 3:
        node.output = nengo.processes.PresentInput(x.reshape(-1, x.shape[-1]), dep.dt)
        steps = x.shape[0] * x.shape[1]
    else:
        node.output = nengo.processes.PresentInput(x.reshape(len(x), -1), dep.presentation_time)
        steps = int(round(len(x) * dep.presentation_time / dep.dt))
    return {"x": x, "y": y, "n_steps": np.asarray(steps)}


class ItemFeed:
    """A Node output showing one fed sample at a time, from t = 0 of each run.

    ``deploy.reset_per_item`` runs every sample in a run of its own after a simulator
    reset (:func:`nhw.toolchain.experiment.simulate` does so for any Node whose output
    is an ``ItemFeed``); :meth:`show` picks the sample the next run sees (a time series is played
    step by step, a flat sample held for ``steps`` steps).

    Parameters
    ----------
    x
        Samples ``(n, features)`` or time series ``(n, n_steps, features)``.
    dt
        Time step (s).
    steps
        Steps per flat sample (ignored for time series).
    """

    def __init__(self, x: np.ndarray, dt: float, steps: int | None) -> None:
        self.x = np.asarray(x, dtype=np.float64)
        self.dt = dt
        self.series = self.x.ndim == 3
        self.n_items = len(self.x)
        self.steps = self.x.shape[1] if self.series else int(steps or 1)
        self.item = 0

    def show(self, item: int) -> None:
        """Feed sample ``item`` in the next run."""
        self.item = int(item)

    def __call__(self, t: float) -> np.ndarray:
        sample = self.x[self.item]
        if not self.series:
            return sample.reshape(-1)
        return sample[min(max(int(round(t / self.dt)) - 1, 0), len(sample) - 1)]


def _check_driven(cfg: ExperimentConfig, built: networks.BuiltNetwork) -> None:
    """Refuse a network imported from NIR whose inputs nothing drives.

    A NIR Input carries no data (an exported stimulus becomes an empty Input), so
    running it would simulate an all-zero input and report plausible-looking,
    meaningless results.
    """
    net = cfg.network
    if net.name != "nir" or net.params.get("zero_inputs") or not built.inputs:
        return
    idle = sorted(n for n in built.inputs if n != cfg.deploy.feed and n not in built.replayed)
    if idle:
        raise ConfigError(f"{cfg.source}: deploy.feed: the NIR network's input(s) {', '.join(idle)} would run on "
                          "zeros (NIR stores no input data); expected deploy.feed with a data section, or "
                          "network.params.zero_inputs: true to run them on zeros deliberately")

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
    if x.ndim == 3:
        node.output = nengo.processes.PresentInput(x.reshape(-1, x.shape[-1]), dep.dt)
        steps = x.shape[0] * x.shape[1]
    else:
        node.output = nengo.processes.PresentInput(x.reshape(len(x), -1), dep.presentation_time)
        steps = int(round(len(x) * dep.presentation_time / dep.dt))
    return {"x": x, "y": y, "n_steps": np.asarray(steps)}


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

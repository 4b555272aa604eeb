"""Stage 1 of an experiment: the config's network, built once, with its trained values."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nhw.errors import ConfigError, DeployError, ToolchainError
from nhw.toolchain import networks
from nhw.toolchain.config.checks import check_names
from nhw.toolchain.config.schema import ExperimentConfig


def build_network(cfg: ExperimentConfig) -> networks.BuiltNetwork:
    """Build the config's network (zoo entry or user factory) with the config's seed.

    Trained values (``cfg.frozen``) are applied, and the probe and input names the
    config uses are checked against the built network: every command builds its
    network once, here.

    Raises
    ------
    ConfigError
        A factory or zoo entry that fails to build, or a name the network lacks.
    DeployError
        Trained values that cannot be read or do not fit the network.
    """
    net = cfg.network
    try:
        if net.factory is not None:
            built = networks.build_factory(net.factory, net.params, seed=cfg.seed)
        else:
            built = networks.build(net.name, net.params, seed=cfg.seed)
    except ConfigError:
        raise
    except ToolchainError as exc:
        raise ConfigError(f"{cfg.source}: network: {exc}") from None
    check_names(cfg, built)
    if cfg.frozen is not None:
        apply_trained(built, cfg.frozen)
    return built


def apply_trained(built: networks.BuiltNetwork, path: str | Path) -> None:
    """Write the trained values of an ``nhw train`` run's ``frozen.npz`` into ``built``.

    No TensorFlow is needed: the values are plain arrays matched by object name.
    """
    from nengo.exceptions import ValidationError

    from nhw.backends.tensorflow.freeze import apply_frozen

    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError) as exc:
        raise DeployError(f"{path}: cannot load trained values: {exc}") from None
    try:
        apply_frozen(built.network, arrays)
    except ValidationError as exc:
        raise DeployError(f"{path}: trained values do not fit this network: {exc}") from None

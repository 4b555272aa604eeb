"""Stage 1 of an experiment: the config's network, built once, with its trained values."""

from __future__ import annotations

from pathlib import Path

import nengo
import numpy as np

from nhw.errors import ConfigError, DeployError, ToolchainError, UserCodeError
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
    UserCodeError
        The config's ``network.factory`` (the user's code) raised.
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
    except UserCodeError as exc:  # the user's code failed, not the config: keep the kind and the cause
        raise UserCodeError(f"{cfg.source}: network.{exc}") from exc.__cause__
    except ToolchainError as exc:
        raise ConfigError(f"{cfg.source}: network: {exc}") from None
    check_names(cfg, built)
    if cfg.frozen is not None:
        apply_trained(built, cfg.frozen)
        trained_for_target(built, cfg)
    return built


def trained_for_target(built: networks.BuiltNetwork, cfg: ExperimentConfig) -> str | None:
    """Mark a network trained for a chip (``train.target``) so the TF simulator runs it as trained.

    The TensorFlow simulator then computes the target's spiking neurons (and, with
    ``train.quantize``, its quantised weights) at inference, so ``nhw deploy --target
    tensorflow`` scores what training measured and what the chip will give. Other
    targets ignore the setting. Returns the target, or None when there is none.
    """
    tr = cfg.train
    if tr is None or tr.target is None:
        return None
    from nhw.backends.tensorflow.settings import configure_settings  # numpy/nengo only, no TensorFlow

    with built.network:
        configure_settings(target=tr.target, quantize=bool(tr.quantize), target_options=target_options(cfg))
    return tr.target


def target_options(cfg: ExperimentConfig) -> dict | None:
    """``train.target``'s mapping options, from ``deploy.options[target]`` (None: no target or none given).

    Training's quantiser, the TF simulator's chip form and the deployment then map the
    network with the same options.
    """
    tr = cfg.train
    if tr is None or tr.target is None:
        return None
    from nhw.backends.tensorflow.builders.chip_options import from_simulator_options

    return from_simulator_options(cfg.deploy.options.get(tr.target)) or None


def apply_trained(built: networks.BuiltNetwork, path: str | Path) -> None:
    """Write the trained values of an ``nhw train`` run's ``frozen.npz`` into ``built``.

    No TensorFlow is needed: the values are plain arrays matched by object name.
    """
    from nengo.exceptions import ValidationError

    from nhw.backends.tensorflow.api.freeze import apply_frozen

    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError) as exc:
        raise DeployError(f"{path}: cannot load trained values: {exc}") from None
    missing = [k for k in trained_keys(built.network) if k not in arrays]
    if missing:
        # an emptied or partial file would deploy the untrained network without a word
        raise DeployError(f"{path}: no trained value for {len(missing)} of the network's trained objects "
                          f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}); expected every "
                          f"value `nhw train` writes; got {len(arrays)} arrays")
    try:
        apply_frozen(built.network, arrays)
    except ValidationError as exc:
        raise DeployError(f"{path}: trained values do not fit this network: {exc}") from None


def trained_keys(network: nengo.Network) -> list[str]:
    """The ``frozen.npz`` keys ``nhw train`` writes for ``network`` (every trained object).

    Ensembles that are not ``Direct`` give ``encoders``, ``gain`` and ``bias``;
    connections with built weights (decoded ones, and any with a transform) give
    ``weights``.
    """
    from nengo.transforms import NoTransform

    from nhw.backends.tensorflow.runtime.params import object_names

    names = object_names(network)
    keys = []
    for ens in network.all_ensembles:
        if not isinstance(ens.neuron_type, nengo.Direct):
            keys += [f"{names[ens]}/{k}" for k in ("encoders", "gain", "bias")]
    for conn in network.all_connections:
        pre = conn.pre_obj
        decoded = isinstance(pre, nengo.Ensemble) and not isinstance(pre.neuron_type, nengo.Direct)
        if decoded or not isinstance(conn.transform, NoTransform):
            keys.append(f"{names[conn]}/weights")
    return keys

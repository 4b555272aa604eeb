"""Checks of a validated config against the registries and the network it builds.

The schema (:mod:`.schema`) checks shapes and types; these checks need the
world: target names from ``backends``, zoo names and typed parameters from
``nhw.toolchain.networks``, probe and input names from the built network, data files on
disk.  Every failure is a :class:`~nhw.errors.ConfigError` reading
``FILE: dotted.path: message`` with a suggestion for near misses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from pydantic import ValidationError

from nhw.toolchain.config.schema import ExperimentConfig, dotted, format_validation_error, wants_number
from nhw.errors import ConfigError, ToolchainError
from nhw.names import unknown
from nhw.toolchain.networks import BuiltNetwork


def _fail(cfg: ExperimentConfig, loc: Iterable, msg: str) -> ConfigError:
    return ConfigError(f"{cfg.source}: {dotted(loc)}: {msg}")


def check_targets(cfg: ExperimentConfig) -> None:
    """Every target named in ``deploy`` and ``parity`` is registered."""
    from nhw.backends import registry

    known = registry.names()
    named = [(("deploy", "target"), cfg.deploy.target)]
    named += [(("deploy", "options", t), t) for t in cfg.deploy.options]
    named += [(("parity", "targets", i), t) for i, t in enumerate(cfg.parity.targets or [])]
    named += [(("parity", "per_target", t), t) for t in cfg.parity.per_target]
    named += [(("parity", "unsupported", t), t) for t in cfg.parity.unsupported]
    for loc, name in named:
        if name not in known:
            raise _fail(cfg, loc, unknown("target", name, known))


def check_network_params(cfg: ExperimentConfig) -> None:
    """The zoo name exists and its parameters validate against the factory's model."""
    from nhw.toolchain import networks

    net = cfg.network
    if net.factory is not None:
        # resolving the function imports the user's module but runs no network code
        try:
            networks.load_factory(net.factory)
        except ConfigError:
            raise
        except ToolchainError as exc:
            raise _fail(cfg, ("network", "factory"), str(exc)) from None
        return
    if net.name not in networks.ZOO:
        raise _fail(cfg, ("network", "name"), unknown("network", net.name, list(networks.ZOO)))
    model = networks.ZOO[net.name].params
    for key, value in net.params.items():
        field = model.model_fields.get(key)
        # pydantic reads true as 1: `n_per_dim: true` would build one neuron per dimension
        if isinstance(value, bool) and field is not None and wants_number(field.annotation):
            raise _fail(cfg, ("network", "params", key), f"expected a number, not a boolean (got {value})")
    try:
        model.model_validate(net.params)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, cfg.source, model, ("network", "params"))) from None


def check_data(cfg: ExperimentConfig) -> None:
    """Built-in dataset names exist and data files are there."""
    from nhw.toolchain.data import BUILTIN

    d = cfg.data
    if d is None:
        return
    if d.name is not None and d.name not in BUILTIN:
        raise _fail(cfg, ("data", "name"), unknown("dataset", d.name, list(BUILTIN)))
    if d.path is not None and not Path(d.path).is_file():
        raise _fail(cfg, ("data", "path"), f"file not found: {d.path}")


def check_names(cfg: ExperimentConfig, built: BuiltNetwork) -> None:
    """Probe and input names used by the config exist in the built network."""
    probes = list(built.probes)
    used = [(("deploy", "probes", i), p) for i, p in enumerate(cfg.deploy.probes or [])]
    used += [(("parity", "probes", i), p) for i, p in enumerate(cfg.parity.probes or [])]
    if cfg.deploy.classify is not None:
        used.append((("deploy", "classify"), cfg.deploy.classify))
    used += [(("parity", "tolerances", p), p) for p in cfg.parity.tolerances]
    for t, per in cfg.parity.per_target.items():
        used += [(("parity", "per_target", t, p), p) for p in per]
    if cfg.train is not None:
        used += [(("train", "loss", p), p) for p in cfg.train.loss]
        fr = cfg.train.regularization.firing_rate
        if fr is not None:
            used.append((("train", "regularization", "firing_rate", "probe"), fr.probe))
    for loc, name in used:
        if name not in built.probes:
            raise _fail(cfg, loc, unknown("probe", name, probes))
    if cfg.deploy.classify is not None and cfg.deploy.feed is None:
        raise _fail(cfg, ("deploy", "classify"), "scoring a probe needs deploy.feed (labels come with the fed samples)")
    if cfg.deploy.feed is not None:
        if cfg.deploy.feed not in built.inputs:
            raise _fail(cfg, ("deploy", "feed"), unknown("input node", cfg.deploy.feed, list(built.inputs)))
        if cfg.data is None:
            raise _fail(cfg, ("deploy", "feed"), "feeding an input needs a 'data' section")


def check_config(cfg: ExperimentConfig) -> None:
    """Every check that needs no network: targets, zoo entry and parameters, data.

    Names used inside the network (probes, inputs) are checked by :func:`check_names`
    once the experiment has built it.
    """
    check_targets(cfg)
    check_network_params(cfg)
    check_data(cfg)

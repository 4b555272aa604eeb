"""Reading experiment configs: YAML, ``--set`` overrides, validation, checks.

Precedence: defaults < YAML < ``--set a.b=v`` < explicit command-line flags (which the
CLI passes as the last overrides).

>>> cfg = load_config("configs/quickstart.yaml", ["deploy.n_steps=200"])  # doctest: +SKIP
>>> cfg.deploy.n_steps, cfg.config_hash()[:8]                             # doctest: +SKIP
(200, '3f1c...')
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml
from pydantic import ValidationError

from nhw.errors import ConfigError
from nhw.toolchain.config.checks import check_config
from nhw.toolchain.config.schema import ExperimentConfig, dotted, format_validation_error, primary_error


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``"a.b=value"`` into ``(["a", "b"], value)``; the value is read as YAML."""
    key, sep, raw = text.partition("=")
    path = [p for p in key.strip().split(".")]
    if not sep or not all(path):
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE with a dotted KEY, e.g. deploy.n_steps=500")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw  # not YAML: keep the text as a string
    return path, value


def apply_overrides(data: dict[str, Any], overrides: Iterable[str], source: str) -> dict[str, Any]:
    """Apply ``a.b=value`` overrides, in order, to a copy of the raw config mapping."""
    data = copy.deepcopy(data)
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for i, part in enumerate(path[:-1]):
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            if not isinstance(nxt, dict):
                where = ".".join(path[: i + 1])
                raise ConfigError(f"{source}: {where}: is {type(nxt).__name__}, not a mapping (--set {text})")
            node = nxt
        node[path[-1]] = value
    return data


#: Most values a config may expand to once YAML aliases are resolved.  Real configs
#: hold hundreds; an "alias bomb" (nested anchors repeated) expands exponentially and
#: would exhaust memory when the config is hashed or dumped.
MAX_EXPANDED_VALUES = 1_000_000


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate keys (YAML itself keeps the last one silently)."""


def _mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            continue  # let the base constructor report the unhashable key
        if key in seen:
            first = seen[key]
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {first.line + 1}); "
                            "expected each key once", key_node.start_mark)
        seen[key] = key_node.start_mark
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def _expanded_size(obj: Any, limit: int, memo: dict[int, int] | None = None) -> int:
    """Number of values in ``obj`` with shared (aliased) parts counted each time they occur.

    Shared containers are sized once (memoised by identity), so this is cheap even for
    a bomb; it stops counting past ``limit``.
    """
    memo = {} if memo is None else memo
    if isinstance(obj, dict):
        items: Iterable[Any] = [*obj.keys(), *obj.values()]
    elif isinstance(obj, list):
        items = obj
    else:
        return 1
    if id(obj) in memo:
        return memo[id(obj)]
    total = 1
    for item in items:
        total += _expanded_size(item, limit, memo)
        if total > limit:
            break
    memo[id(obj)] = total
    return total


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping with ``yaml.safe_load``; malformed YAML names its line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        ctx, ctx_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if ctx and ctx_mark is not None and (mark is None or ctx_mark.line != mark.line):
            problem += f" ({ctx} at line {ctx_mark.line + 1})"
        raise ConfigError(f"{path}{where}: malformed YAML: {problem}") from None
    if data is None:
        raise ConfigError(f"{path}: the file is empty; expected a mapping with at least 'network'")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    if _expanded_size(data, MAX_EXPANDED_VALUES) > MAX_EXPANDED_VALUES:
        raise ConfigError(f"{path}: expands to more than {MAX_EXPANDED_VALUES:,} values once its YAML aliases "
                          "(*name) are resolved; expected a config without nested alias repetition")
    return data


def load_config(path: str | Path, overrides: Iterable[str] = (), *, check: bool = True,
                origins: Mapping[str, str] | None = None) -> ExperimentConfig:
    """Read, override and validate an experiment config.

    Parameters
    ----------
    path
        The YAML file.
    overrides
        ``"a.b=value"`` strings applied in order after the YAML (``--set``, then flags).
    check
        Also check names against the registries and files (targets, zoo names and
        parameters, datasets, data files). Names inside the network (probes, inputs)
        are checked when the experiment builds it
        (:func:`nhw.toolchain.experiment.build_network`), so the network is built once.
    origins
        How the user gave some of ``overrides``: override text -> what an error names
        instead of ``--set TEXT`` (the CLI's ``--n-steps 0`` for ``deploy.n_steps=0``).

    Raises
    ------
    ConfigError
        With a message ``FILE: dotted.path: what is wrong``.
    """
    path = Path(path)
    overrides = list(overrides)
    data = apply_overrides(read_yaml(path), overrides, str(path))
    return from_dict(data, source=str(path), check=check, overrides=overrides, origins=origins)


def _origin(loc: str, overrides: list[str], origins: Mapping[str, str]) -> str | None:
    """The last override that set ``loc`` (or a key above or below it), as the user gave it."""
    for text in reversed(overrides):
        key = text.partition("=")[0].strip()
        if loc == key or loc.startswith((key + ".", key + "[")) or key.startswith(loc + "."):
            return origins.get(text, f"--set {text}")
    return None


def from_dict(data: dict[str, Any], source: str = "<dict>", *, check: bool = True,
              overrides: Iterable[str] = (), origins: Mapping[str, str] | None = None) -> ExperimentConfig:
    """Validate a config mapping (see :func:`load_config`).

    ``overrides`` (already applied to ``data``) and ``origins`` only make errors name
    where a value came from.
    """
    try:
        cfg = ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        msg = format_validation_error(exc, source, ExperimentConfig)
        origin = _origin(dotted(primary_error(exc, ExperimentConfig)["loc"]), list(overrides), origins or {})
        raise ConfigError(msg + (f" (from {origin})" if origin else "")) from None
    cfg._source = source
    cfg._overrides = tuple(overrides)
    if source != "<dict>" and cfg.data is not None and cfg.data.path is not None:
        p = Path(cfg.data.path).expanduser()
        cfg.data.path = str(p if p.is_absolute() else (Path(source).parent / p).resolve())
    if (source != "<dict>" and cfg.network.name == "nir" and isinstance(cfg.network.params.get("path"), str)):
        # like data.path: a NIR file next to its config is found from any working directory
        p = Path(cfg.network.params["path"]).expanduser()
        cfg.network.params["path"] = str(p if p.is_absolute() else (Path(source).parent / p).resolve())
    tb = cfg.train.callbacks.tensorboard if cfg.train is not None else None
    if source != "<dict>" and tb is not None:
        p = Path(tb).expanduser()
        cfg.train.callbacks.tensorboard = str(p if p.is_absolute() else (Path(source).parent / p).resolve())
    if check:
        check_config(cfg)
    return cfg

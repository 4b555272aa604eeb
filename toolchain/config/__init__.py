"""Experiment configs: YAML files validated into typed models.

A config has five sections, ``network``, ``data``, ``train``, ``deploy`` and
``parity``, plus a top-level ``seed`` that every section uses unless it pins its own.
Unknown keys are errors with a suggestion; every error reads
``FILE: dotted.path: message``.

- :mod:`.schema` — the typed models and their error messages
- :mod:`.loader` — reading YAML, ``--set`` overrides, validation
- :mod:`.checks` — names checked against the registries, files and the built network
- :mod:`.docs` — the reference page generated from the schema

>>> cfg = load_config("configs/quickstart.yaml", ["deploy.n_steps=200"])  # doctest: +SKIP
"""

from __future__ import annotations

from nhw.errors import ConfigError
from nhw.toolchain.config.checks import check_config, check_names
from nhw.toolchain.config.loader import apply_overrides, from_dict, load_config, parse_override, read_yaml
from nhw.toolchain.config.schema import SCHEMA_VERSION, ExperimentConfig, json_schema

__all__ = [
    "SCHEMA_VERSION",
    "ConfigError",
    "ExperimentConfig",
    "apply_overrides",
    "check_config",
    "check_names",
    "from_dict",
    "json_schema",
    "load_config",
    "parse_override",
    "read_yaml",
]

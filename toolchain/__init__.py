"""nhw toolchain: experiment configs, the model zoo, datasets, deployment, parity checks,
run directories and the ``nhw`` command line.

- :mod:`toolchain.config` — YAML experiment configs validated into typed models
- :mod:`toolchain.networks` — the model zoo; :mod:`toolchain.data` — datasets
- :mod:`toolchain.deploy` — run a config on a target; :mod:`toolchain.parity_config` —
  compare targets on a config; :mod:`toolchain.parity` — the standard networks
- :mod:`toolchain.artifacts` — run directories; :mod:`toolchain.report` — re-render them
- :mod:`toolchain.cli` — the ``nhw`` command
"""

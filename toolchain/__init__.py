"""nhw toolchain: experiment configs, the model zoo, datasets, deployment, parity checks,
run directories and the ``nhw`` command line.

- :mod:`nhw.toolchain.config` — YAML experiment configs validated into typed models
- :mod:`nhw.toolchain.networks` — the model zoo; :mod:`nhw.toolchain.data` — datasets
- :mod:`nhw.toolchain.deploy` — run a config on a target; :mod:`nhw.toolchain.parity_config` —
  compare targets on a config; :mod:`nhw.toolchain.parity` — the standard networks
- :mod:`nhw.toolchain.artifacts` — run directories; :mod:`nhw.toolchain.report` — re-render them
- :mod:`nhw.toolchain.cli` — the ``nhw`` command
"""

"""nhw: train Nengo networks in TensorFlow, freeze them, deploy them to reference, OpenCL,
TensorFlow and Loihi-emulator targets, and check that the numbers agree.

- :mod:`nhw.dl` — the TensorFlow simulator's user API, NengoDL's names
  (``import nhw.dl as nengo_dl``)
- :mod:`nhw.backends` — the targets behind one Simulator interface
- :mod:`nhw.hw_emulator` — the Loihi-style chip emulator (numpy only)
- :mod:`nhw.toolchain` — configs, model zoo, training, deployment, parity, NIR, the CLI
- :mod:`nhw.errors` — the one exception hierarchy

Importing ``nhw`` imports none of these (and no TensorFlow).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("nhw")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

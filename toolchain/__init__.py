"""nhw toolchain: standard networks, parity checks, and (later) training, freezing,
deployment and the ``nhw`` command line."""

"""A persistent XLA compilation cache shared by processes.

TensorFlow's XLA JIT can save every program it compiles to a directory and load
it in a later process instead of compiling again (the flag
``--tf_xla_persistent_cache_directory`` in ``TF_XLA_FLAGS``). A saved program is
found by a fingerprint of the compiled graph and its argument shapes, and by
default TensorFlow checks that a loaded entry matches the program it stands for,
so a changed network simply compiles (and saves) anew.

TensorFlow reads ``TF_XLA_FLAGS`` once, when it runs its first operation, so the
flag is added when this module is imported (before the Simulator has run anything
in TensorFlow). A process that ran TensorFlow operations before importing nhw's
simulator keeps its own flags: set ``TF_XLA_FLAGS`` there.

``NHW_XLA_CACHE`` chooses the directory: unset, ``$XDG_CACHE_HOME/nhw/xla`` (or
``~/.cache/nhw/xla``); ``off`` (or ``0``, ``false``, empty) disables the cache.
A directory already named in ``TF_XLA_FLAGS`` is left as it is.
"""

from __future__ import annotations

import os

#: the TensorFlow flag naming the cache directory
FLAG = "--tf_xla_persistent_cache_directory"
#: environment variable choosing the directory (or ``off``)
ENV = "NHW_XLA_CACHE"
_OFF = {"", "0", "off", "false", "no"}


def cache_directory(environ: dict | None = None) -> str | None:
    """The directory the cache uses under ``environ`` (default ``os.environ``), or None when off."""
    env = os.environ if environ is None else environ
    flags = env.get("TF_XLA_FLAGS", "")
    for part in flags.split():
        if part.startswith(FLAG + "="):
            return part.split("=", 1)[1] or None
    choice = env.get(ENV)
    if choice is not None:
        return None if choice.strip().lower() in _OFF else os.path.expanduser(choice)
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "nhw", "xla")


def configure(environ: dict | None = None) -> str | None:
    """Add the cache flag to ``TF_XLA_FLAGS`` in ``environ`` (default ``os.environ``).

    Returns
    -------
    str or None
        The cache directory, or None when the cache is off or the directory
        cannot be created (then nothing is changed: XLA compiles as usual).
    """
    env = os.environ if environ is None else environ
    directory = cache_directory(env)
    if directory is None:
        return None
    flags = env.get("TF_XLA_FLAGS", "")
    if FLAG + "=" in flags:
        return directory
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError:
        return None  # read-only home: compiling every time is the correct result, only slower
    env["TF_XLA_FLAGS"] = f"{flags} {FLAG}={directory}".strip()
    return directory

"""A persistent XLA compilation cache shared by processes.

TensorFlow's XLA JIT can save every program it compiles to a directory and load
it in a later process instead of compiling again (the flag
``--tf_xla_persistent_cache_directory`` in ``TF_XLA_FLAGS``). A saved program is
found by a fingerprint of the compiled graph and its argument shapes, and by
default TensorFlow checks that a loaded entry matches the program it stands for,
so a changed network simply compiles (and saves) anew.

TensorFlow's fingerprint does not cover how the program was compiled: the XLA
options in ``XLA_FLAGS``/``TF_XLA_FLAGS``, the TensorFlow version, or the CPU
the machine code was generated for. A program compiled under other options
would be loaded as it is (a slower program, or different floating-point
results under fast-math options), and one compiled for another CPU (a home
directory shared by a cluster's nodes) may not run at all. So the entries live
in a subdirectory per compile environment, ``<cache>/k<hash>``, the hash taken
over those (and the machine's GPU models; :func:`environment_key`); a process
whose environment differs compiles and fills its own subdirectory.

TensorFlow reads ``TF_XLA_FLAGS`` once, when it runs its first operation, so the
flag is added when this module is imported (before the Simulator has run anything
in TensorFlow). A process that ran TensorFlow operations before importing nhw's
simulator keeps its own flags: set ``TF_XLA_FLAGS`` there.

``NHW_XLA_CACHE`` chooses the directory: unset, ``$XDG_CACHE_HOME/nhw/xla`` (or
``~/.cache/nhw/xla``); ``off`` (or ``0``, ``false``, empty) disables the cache.
A directory already named in ``TF_XLA_FLAGS`` is left as it is, unless nhw itself
put it there in a parent process: child processes inherit the environment, and
nhw marks the flag it adds (``NHW_XLA_CACHE_ADDED``) so that a child's own
``NHW_XLA_CACHE`` still decides for the child.

An entry TensorFlow cannot load (truncated, overwritten) would fail every later
run of its program; :func:`mend` removes such entries from nhw's directory after
the failure, and the simulator's loop then traces and compiles the program anew.

The cache is kept under ``NHW_XLA_CACHE_MAX_MB`` mebibytes (default 1024): when this
module configures the cache (once per process, before the first Simulator runs), the
least recently used entries are deleted until the rest fit, counting every
environment's subdirectory.  Only TensorFlow's own entry files
(``xla_compile_cache__*.pb``) in the directory nhw chose and its environment
subdirectories are ever deleted,
never an entry written in the last minute (another process may be writing or about
to read it), and never anything in a directory named by ``TF_XLA_FLAGS`` itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import time
from dataclasses import dataclass

from nhw.errors import ConfigError

#: the TensorFlow flag naming the cache directory
FLAG = "--tf_xla_persistent_cache_directory"
#: environment variable choosing the directory (or ``off``)
ENV = "NHW_XLA_CACHE"
_OFF = {"", "0", "off", "false", "no"}
#: set with the flag nhw adds (the directory), telling a child process the flag is not the user's
ADDED_ENV = "NHW_XLA_CACHE_ADDED"
#: environment variable capping the cache's size in MiB
MAX_MB_ENV = "NHW_XLA_CACHE_MAX_MB"
#: the cap when ``NHW_XLA_CACHE_MAX_MB`` is unset
DEFAULT_MAX_MB = 1024.0
#: entries younger than this (seconds) are never pruned: a process may be writing them
MIN_AGE_S = 60.0
#: TensorFlow names every persistent-cache entry ``xla_compile_cache__<keys>.pb``
_ENTRY_PREFIX, _ENTRY_SUFFIX = "xla_compile_cache__", ".pb"
#: names of the per-environment subdirectories nhw creates (and prunes)
_KEY_DIR = re.compile(r"^k[0-9a-f]{16}$")
#: how TensorFlow reports a saved program it cannot use: (error class name, message fragment)
_DAMAGE_SIGNS = (
    ("OutOfRangeError", "Read less bytes than requested"),  # a truncated entry
    ("DataLossError", "as binary proto"),  # an entry that is not a protocol buffer
    ("InvalidArgumentError", "Serialized cache key does not match"),  # one whose contents do not match its name
)
#: distributions that install the ``tensorflow`` package
_TF_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tf-nightly", "tf-nightly-cpu")


def _user_flags(env) -> str:
    """``TF_XLA_FLAGS`` without the cache flag an nhw (parent) process added."""
    flags = env.get("TF_XLA_FLAGS", "")
    added = env.get(ADDED_ENV)
    if not added:
        return flags
    return " ".join(part for part in flags.split() if part != f"{FLAG}={added}")


def _users_directory(env) -> str | None:
    """The directory the user named in ``TF_XLA_FLAGS`` (possibly empty), or None when they named none."""
    for part in _user_flags(env).split():
        if part.startswith(FLAG + "="):
            return part.split("=", 1)[1]
    return None


def cache_directory(environ: dict | None = None) -> str | None:
    """The directory the cache uses under ``environ`` (default ``os.environ``), or None when off."""
    env = os.environ if environ is None else environ
    named = _users_directory(env)
    if named is not None:
        return named or None
    choice = env.get(ENV)
    if choice is not None:
        return None if choice.strip().lower() in _OFF else os.path.expanduser(choice)
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "nhw", "xla")


def _tensorflow_version() -> str:
    """The installed TensorFlow's version, read from its metadata (TensorFlow need not be imported)."""
    from importlib import metadata

    for name in _TF_DISTRIBUTIONS:
        try:
            return f"{name}=={metadata.version(name)}"
        except metadata.PackageNotFoundError:
            continue
    # installed some other way: where its package is, and when that was written
    from importlib.util import find_spec

    spec = find_spec("tensorflow")
    origin = getattr(spec, "origin", None)
    try:
        return f"{origin}@{os.stat(origin).st_mtime_ns}" if origin else "unknown"
    except OSError:
        return f"{origin}"


def _cpu() -> str:
    """What identifies this CPU to a code generator: its model and instruction-set flags."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break  # the first processor's block is enough: XLA compiles for the host's
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "flags", "Features", "CPU implementer", "CPU part"):
                    fields[key] = " ".join(sorted(value.split())) if key in ("flags", "Features") else value.strip()
    except OSError:
        pass
    return json.dumps([platform.machine(), platform.processor(), fields], sort_keys=True)


def _gpus() -> list[str]:
    """The models of this machine's NVIDIA GPUs, as the driver lists them (no CUDA call)."""
    import glob

    models = []
    for path in sorted(glob.glob("/proc/driver/nvidia/gpus/*/information")):
        try:
            with open(path) as f:
                models += [line.split(":", 1)[1].strip() for line in f if line.startswith("Model:")]
        except OSError:
            continue
    return sorted(models)


def environment_key(environ: dict | None = None) -> str:
    """The name of the cache subdirectory for this compile environment: ``k`` and 16 hex digits.

    It changes with ``XLA_FLAGS``, with the user's ``TF_XLA_FLAGS`` (without the
    cache flag nhw adds), with the installed TensorFlow's version, with the CPU
    (model and instruction-set flags) and with the NVIDIA GPU models the driver
    lists, none of which TensorFlow's own entry names cover.
    """
    env = os.environ if environ is None else environ
    parts = {"xla": env.get("XLA_FLAGS", "").strip(), "tf_xla": _user_flags(env), "tf": _tensorflow_version(),
             "cpu": _cpu(), "gpus": _gpus()}
    return "k" + hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def configure(environ: dict | None = None) -> str | None:
    """Add the cache flag to ``TF_XLA_FLAGS`` in ``environ`` (default ``os.environ``) and prune the cache.

    The directory nhw chose is pruned to ``NHW_XLA_CACHE_MAX_MB`` (see :func:`prune`);
    a directory the user named in ``TF_XLA_FLAGS`` is neither changed nor pruned.

    Returns
    -------
    str or None
        The directory TensorFlow is told to use: nhw's ``<cache>/k<hash>`` for this
        compile environment (:func:`environment_key`), or the user's own directory;
        None when the cache is off or the directory cannot be created (then nothing
        is changed: XLA compiles as usual).

    Raises
    ------
    ConfigError
        ``NHW_XLA_CACHE_MAX_MB`` is not a number of MiB >= 0.
    """
    env = os.environ if environ is None else environ
    max_bytes = max_cache_bytes(env)  # an invalid cap fails whether or not it is used
    flags = _user_flags(env)
    if FLAG + "=" in flags:
        return cache_directory(env)  # the user's own directory: not nhw's to prune
    if env.pop(ADDED_ENV, None) is not None:
        # a flag inherited from an nhw parent is dropped: this process decides for itself
        _set_flags(env, flags)
    base = cache_directory(env)
    if base is None:
        return None
    directory = os.path.join(base, environment_key(env))
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError:
        return None  # read-only home: compiling every time is the correct result, only slower
    _set_flags(env, f"{flags} {FLAG}={directory}".strip())
    env[ADDED_ENV] = directory
    prune(base, max_bytes)
    return directory


def _set_flags(env, flags: str) -> None:
    if flags:
        env["TF_XLA_FLAGS"] = flags
    else:
        env.pop("TF_XLA_FLAGS", None)


def max_cache_bytes(environ: dict | None = None) -> int:
    """The cache's size cap in bytes from ``NHW_XLA_CACHE_MAX_MB`` (MiB; default 1024).

    Raises
    ------
    ConfigError
        The value is not a finite number of MiB >= 0.
    """
    env = os.environ if environ is None else environ
    raw = env.get(MAX_MB_ENV)
    if raw is None:
        return int(DEFAULT_MAX_MB * 2**20)
    try:
        mb = float(raw)
    except ValueError:
        mb = float("nan")
    if not (mb >= 0 and mb != float("inf")):
        raise ConfigError(f"{MAX_MB_ENV}: expected a number of MiB >= 0 (e.g. 1024), got {raw!r}")
    return int(mb * 2**20)


@dataclass(frozen=True)
class PruneResult:
    """What :func:`prune` found and deleted."""

    removed: int
    freed_bytes: int
    kept_bytes: int


def _entries(directory: str) -> list[tuple[float, float, int, str]]:
    """(last use, mtime, size, path) of each cache entry file in ``directory`` and its environment subdirectories."""
    found = []
    with os.scandir(directory) as it:
        for e in it:
            if _KEY_DIR.match(e.name):
                try:
                    if e.is_dir(follow_symlinks=False):
                        found.extend(_entries(e.path))
                except OSError:  # removed or unreadable meanwhile: nothing of it to count
                    pass
                continue
            if not (e.name.startswith(_ENTRY_PREFIX) and e.name.endswith(_ENTRY_SUFFIX)):
                continue
            try:
                if not e.is_file(follow_symlinks=False):
                    continue
                st = e.stat(follow_symlinks=False)
            except FileNotFoundError:  # pruned by another process meanwhile
                continue
            # a load from the cache updates atime only where the mount records it: use whichever is later
            found.append((max(st.st_atime, st.st_mtime), st.st_mtime, st.st_size, e.path))
    return found


def prune(directory: str, max_bytes: int, *, now: float | None = None, min_age_s: float = MIN_AGE_S) -> PruneResult:
    """Delete the least recently used cache entries in ``directory`` until the rest fit ``max_bytes``.

    One scan of ``directory`` and of its environment subdirectories (``k<hash>``,
    not followed through links), under one cap.  Only TensorFlow's entry files
    (``xla_compile_cache__*.pb``, regular files) count and are deleted; entries
    modified in the last ``min_age_s`` seconds are kept even when the cache stays
    over the cap.

    Parameters
    ----------
    directory
        The cache directory nhw configured.
    max_bytes
        Size cap of the entries in bytes.
    now
        The current time (``time.time()``); for tests.
    min_age_s
        Entries younger than this are never deleted.

    Returns
    -------
    PruneResult
        How many entries were deleted, the bytes freed and the bytes left.
    """
    now = time.time() if now is None else now
    try:
        entries = _entries(directory)
    except OSError:
        return PruneResult(0, 0, 0)  # nothing readable there: nothing of ours to prune
    total = sum(size for _, _, size, _ in entries)
    removed = freed = 0
    for _, mtime, size, path in sorted(entries):
        if total <= max_bytes:
            break
        if now - mtime < min_age_s:
            continue
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass  # another process pruned it first: it is gone either way
        except OSError:
            continue  # not ours to delete after all (permissions): keep it, try the next
        else:
            removed += 1
            freed += size
        total -= size
    return PruneResult(removed, freed, total)


def is_damage(err: BaseException) -> bool:
    """Whether ``err`` is TensorFlow failing to use a saved program (a damaged cache entry)."""
    name, text = type(err).__name__, str(err)
    return any(name == cls and fragment in text for cls, fragment in _DAMAGE_SIGNS)


def well_formed(data: bytes) -> bool:
    """Whether ``data`` parses as protocol-buffer wire format to its last byte (no schema needed).

    A truncated or overwritten entry almost never does: a length or tag runs past
    the end, or a field has a wire type that does not exist.
    """
    def varint(i: int) -> tuple[int, int]:
        value = shift = 0
        while i < len(data) and shift < 70:
            b = data[i]
            value |= (b & 0x7F) << shift
            i += 1
            if not b & 0x80:
                return value, i
            shift += 7
        return -1, i

    i = 0
    while i < len(data):
        tag, i = varint(i)
        if tag <= 0 or tag >> 3 == 0:
            return False
        wire = tag & 7
        if wire == 0:
            value, i = varint(i)
            if value < 0:
                return False
        elif wire == 1:
            i += 8
        elif wire == 2:
            size, i = varint(i)
            if size < 0:
                return False
            i += size
        elif wire == 5:
            i += 4
        else:  # groups (3, 4) are not in TensorFlow's entries; 6 and 7 do not exist
            return False
        if i > len(data):
            return False
    return True


def damaged_entries(directory: str, err: BaseException | None = None) -> list[str]:
    """Entries of ``directory`` that cannot be what TensorFlow saved: not well formed, or named in ``err``."""
    found = []
    named = str(err) if err is not None else ""
    for _, _, _, path in _entries(directory):
        try:
            with open(path, "rb") as f:
                bad = path in named or not well_formed(f.read())
        except FileNotFoundError:
            continue
        if bad:
            found.append(path)
    return found


def mend(err: BaseException, environ: dict | None = None) -> tuple[str | None, list[str]]:
    """After TensorFlow failed to use a saved program: remove nhw's damaged entries.

    Only entries in the directory nhw configured for this process
    (``NHW_XLA_CACHE_ADDED``) are removed; a directory the user named in
    ``TF_XLA_FLAGS`` is only searched.

    Returns
    -------
    (str or None, list of str)
        The cache directory in use (None: nhw configured none), and the damaged
        entries found (removed when the directory is nhw's).
    """
    env = os.environ if environ is None else environ
    ours = env.get(ADDED_ENV)
    directory = ours or _users_directory(env)
    if not directory or not os.path.isdir(directory):
        return None, []
    found = damaged_entries(directory, err)
    if ours is not None:
        for path in found:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
    return directory, found


def describe(err: BaseException, directory: str | None, found: list[str], environ: dict | None = None) -> str:
    """What :func:`mend` did after ``err``, in words for a warning or an error message."""
    env = os.environ if environ is None else environ
    n = len(found)
    entries = f"{n} damaged entr{'y' if n == 1 else 'ies'}"
    if not found:
        done = "found no damaged entry"
    elif directory == env.get(ADDED_ENV):
        done = f"removed {entries}"
    else:
        done = f"found {entries} (not removed: the directory is yours)"
    return f"TensorFlow could not use a saved XLA program in {directory} ({str(err).splitlines()[0]}); {done}"

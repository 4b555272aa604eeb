"""Atomic file writes: a reader sees the old file or the new one, never half of one.

At the bottom of the dependency order so every package (the TF simulator's
parameter files, the toolchain's runs) writes files the same way.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The permissions a plain ``open(path, "w")`` gives a new file under the current umask."""
    return 0o666 & ~_umask()


def folder_mode() -> int:
    """The permissions a plain ``mkdir`` gives a new folder under the current umask."""
    return 0o777 & ~_umask()


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    Parameters
    ----------
    path
        Destination file; its folder must exist.
    data
        Bytes to write.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        # mkstemp creates 0600; give the file the permissions a plain open() would.
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    """Atomically write UTF-8 ``text`` to ``path`` (see :func:`write_bytes`)."""
    write_bytes(path, text.encode("utf-8"))

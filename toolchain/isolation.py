"""Running one target's simulation in a process of its own when its driver needs it.

Some drivers cannot share a process with other targets (PoCL, behind ``opencl``,
crashes once TensorFlow is loaded; see ``nhw.backends.opencl_device``).  Multi-target
tools (parity) call :func:`call_for_target`, which runs the work in a fresh Python
process for such targets and directly otherwise.  The work is a module-level
function; its arguments and result travel through a private temporary folder
(pickled: this is transient exchange between our own two processes, never a file a
user reads or writes).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

from nhw import backends

from nhw.errors import ToolchainError


def needs_own_process(target: str) -> bool:
    """Whether ``target``'s driver must run in a process of its own (unknown names: no;
    looking them up raises the usual error later)."""
    try:
        return backends.registry.spec(target).own_process
    except backends.UnknownBackendError:
        return False


def call_for_target(target: str, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``func(*args, **kwargs)``, in a child process if ``target`` needs one.

    Exceptions raised by ``func`` are raised here unchanged; a child that dies
    without an answer (a driver crash) is a :class:`ToolchainError` with its last
    words.
    """
    if not needs_own_process(target):
        return func(*args, **kwargs)
    with tempfile.TemporaryDirectory(prefix="nhw-isolated-") as tmp:
        request, answer = Path(tmp, "request.pkl"), Path(tmp, "answer.pkl")
        # the child needs the parent's import path before it can unpickle ``func``
        request.write_bytes(pickle.dumps(list(sys.path)) + pickle.dumps((func, args, kwargs)))
        proc = subprocess.run([sys.executable, "-m", "nhw.toolchain.isolation", str(request), str(answer)],
                              capture_output=True, text=True, env=os.environ.copy())
        if not answer.exists():
            tail = "\n".join(proc.stderr.strip().splitlines()[-3:]) or f"exit status {proc.returncode}"
            raise ToolchainError(f"target {target!r}: its process ended without an answer: {tail}")
        ok, value = pickle.loads(answer.read_bytes())
    if ok:
        return value
    raise value


def _child(request: str, answer: str) -> None:
    with open(request, "rb") as f:
        sys.path[:] = pickle.load(f)
        func, args, kwargs = pickle.load(f)
    try:
        result = (True, func(*args, **kwargs))
    except Exception as exc:  # handed to the parent, which raises it
        result = (False, exc)
    Path(answer).write_bytes(pickle.dumps(result))


if __name__ == "__main__":
    _child(*sys.argv[1:3])

"""Start N local worker processes of one multi-worker TensorFlow job.

``nhw train CONFIG --workers N`` uses this: every worker is the same command with its own
``TF_CONFIG`` (one cluster of N workers on 127.0.0.1, on free ports), worker 0 being the
chief. The chief's output goes to this process's stdout/stderr; the other workers' output
is kept and shown only when one of them fails. A worker that fails stops the others: a
collective job cannot continue without every worker, and the survivors would otherwise
wait for it until TensorFlow's own timeouts.

On several hosts, start one command per host with ``TF_CONFIG`` set instead (see
docs/cli.md); nothing here is needed then.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from nhw.errors import BackendError


class WorkerFailedError(BackendError, RuntimeError):
    """A local worker process of a multi-worker job exited with an error."""


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` distinct TCP ports on ``host`` that were free a moment ago.

    All are held open until all are chosen, so no port is handed out twice; another
    program may still take one before TensorFlow binds it (then that worker fails to
    start and the job stops with its error).
    """
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def local_tf_configs(n: int, host: str = "127.0.0.1") -> list[str]:
    """``TF_CONFIG`` values for the ``n`` workers of one cluster on ``host`` (worker 0 is the chief)."""
    cluster = {"worker": [f"{host}:{p}" for p in free_ports(n, host)]}
    return [json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}) for i in range(n)]


def run_local_workers(args: Sequence[str], n: int, *, env: dict | None = None, poll_s: float = 0.2,
                      grace_s: float = 10.0) -> None:
    """Run ``python -m nhw.toolchain.cli *args`` as ``n`` workers of one local cluster.

    Parameters
    ----------
    args
        The ``nhw`` command line every worker runs (without ``--workers``).
    n
        Number of workers, at least 2.
    env
        Environment of the workers (default: this process's); ``TF_CONFIG`` is set per worker.
    poll_s
        Seconds between checks of the workers.
    grace_s
        Seconds the remaining workers get to stop after a failure before they are killed.

    Raises
    ------
    WorkerFailedError
        When any worker exits with a non-zero status (the others are stopped first); the
        message names the worker, its exit status and the end of its error output.
    """
    if n < 2:
        raise BackendError(f"run_local_workers: expected at least 2 workers; got {n}")
    base = dict(os.environ if env is None else env)
    # the chief reports; the workers run the same program silently
    cmd = [sys.executable, "-m", "nhw.toolchain.cli", *args]
    with tempfile.TemporaryDirectory(prefix="nhw-workers-") as logdir:
        procs, logs = [], []
        try:
            for i, cfg in enumerate(local_tf_configs(n)):
                wenv = dict(base, TF_CONFIG=cfg)
                if i == 0:
                    procs.append(subprocess.Popen(cmd, env=wenv))
                    logs.append(None)
                    continue
                log = Path(logdir) / f"worker{i}.log"
                with open(log, "wb") as fh:
                    procs.append(subprocess.Popen(cmd, env=wenv, stdout=subprocess.DEVNULL, stderr=fh))
                logs.append(log)
            failed = _wait(procs, poll_s)
        except BaseException:
            _stop(procs, grace_s)
            raise
        if failed is None:
            return
        index, code = failed
        _stop(procs, grace_s)
        if logs[index] is None:
            detail = "its error is printed above"
        else:
            tail = logs[index].read_text(errors="replace").strip().splitlines()[-15:]
            detail = "its last output:\n" + "\n".join(tail) if tail else "it printed nothing"
        raise WorkerFailedError(
            f"worker {index}{' (chief)' if index == 0 else ''} of {n} exited with status {code}; "
            f"the other workers were stopped; {detail}"
        )


def _wait(procs: list, poll_s: float) -> tuple[int, int] | None:
    """Wait until every process succeeded (None) or one failed: ``(index, status)``."""
    while True:
        codes = [p.poll() for p in procs]
        for i, code in enumerate(codes):
            if code not in (None, 0):
                return i, code
        if all(code == 0 for code in codes):
            return None
        time.sleep(poll_s)


def _stop(procs: list, grace_s: float) -> None:
    """Terminate the processes still running; kill those that outlive ``grace_s``."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + grace_s
    for p in procs:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

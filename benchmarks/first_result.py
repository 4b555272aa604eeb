"""Time to first result: from ``Simulator(...)`` to the end of a first run, in parts.

Every measurement runs in a fresh process (nothing imported or compiled before), and
``reference`` is measured in the same run::

    python -m benchmarks.first_result                          # integrator, cconv, 16-d
    python -m benchmarks.first_result --networks integrator --rounds 5
    python -m benchmarks.first_result --xla-cache              # also: TF with a cold, then warm, XLA cache
    python -m benchmarks.first_result --before /path/to/pkg    # also: TF from another checkout ("tf before")

Columns (seconds): ``import`` = libraries the target loads inside its constructor
(TensorFlow and Keras; nengo and numpy are imported before timing starts), ``build`` =
the rest of the constructor, ``first`` = the first ``run_steps(steps)`` (tracing and
compilation included), ``run`` = a later ``run_steps(steps)``, ``compile`` = first - run
(what the first call pays beyond running), ``total`` = import + build + first, the wait
from ``Simulator(...)`` to the first result; ``lengths`` = a later ``run_steps`` of
``steps // 3`` then of 1 step (a Simulator that compiles per run length pays here);
``step ms`` = one ``sim.step()`` (median of 200). Each row is the median over ``--rounds``
processes. ``tf cold`` / ``tf warm`` rows run with the persistent XLA cache
(``NHW_XLA_CACHE``) pointed at a fresh directory: the first process fills it, the next
reads it; ``tensorflow`` rows run with the cache off. ``--before DIR`` adds ``tf before``
rows: the same measurement with ``DIR`` first on ``PYTHONPATH`` (a directory holding
another version's ``nhw`` package), for before/after tables from one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

#: this checkout (holds the ``benchmarks`` package)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: benchmark name -> standard parity network (toolchain.parity_networks)
NETWORKS = {
    "integrator": "integrator",
    "cconv": "circular_convolution",
    "basal_ganglia": "basal_ganglia",
    "pes": "pes_learning",
}


def measure(target: str, network: str, dims: int, steps: int) -> dict:
    """Time one target on one network in this (fresh) process."""
    import warnings

    warnings.filterwarnings("ignore")
    import nengo
    import numpy as np

    nengo.rc.set("decoder_cache", "enabled", "False")
    from nhw import backends
    from nhw.toolchain.parity_networks import get_network

    case = get_network(NETWORKS[network]).case(dims, 50, seed=0)
    Simulator = backends.get(target)
    t0 = time.perf_counter()
    sim = Simulator(case.network, progress_bar=False, seed=0)
    construct = time.perf_counter() - t0
    late = getattr(sys.modules.get(type(sim).__module__), "late_import_seconds", None)
    imported = float(late()) if callable(late) else 0.0
    with sim:
        t0 = time.perf_counter()
        sim.run_steps(steps)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        sim.run_steps(steps)
        run = time.perf_counter() - t0
        t0 = time.perf_counter()
        sim.run_steps(max(1, steps // 3))
        sim.run_steps(1)
        lengths = time.perf_counter() - t0
        times = []
        for _ in range(200):
            t0 = time.perf_counter()
            sim.step()
            times.append(time.perf_counter() - t0)
    return {
        "import_s": imported, "build_s": construct - imported, "first_s": first, "run_s": run,
        "compile_s": max(0.0, first - run), "total_s": construct + first, "lengths_s": lengths,
        "step_ms": 1e3 * float(np.median(times)),
    }


def _worker(args: list[str], env: dict | None = None, cwd: str | None = None) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.first_result", "--worker", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=900)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode or not lines:
        return {"error": (out.stderr.strip().splitlines() or ["no output"])[-1][:200]}
    return json.loads(lines[-1])


def _median(rows: list[dict]) -> dict:
    ok = [r for r in rows if "error" not in r]
    if not ok:
        return rows[0]
    return {k: statistics.median(r[k] for r in ok) for k in ok[0]}


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; see the module docstring."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.first_result", description=__doc__.split("\n\n")[0])
    p.add_argument("--networks", default="integrator,cconv")
    p.add_argument("--dims", type=int, default=16)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=3, help="processes per row (median reported)")
    p.add_argument("--xla-cache", action="store_true", help="also measure TF with a cold, then a warm XLA cache")
    p.add_argument("--before", help="directory with another version's nhw package: adds 'tf before' rows")
    p.add_argument("--json", help="also write the rows to this JSON file")
    p.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        target, network, dims, steps = args.worker
        print(json.dumps(measure(target, network, int(dims), int(steps))))
        return 0

    rows = []
    for network in args.networks.split(","):
        if network not in NETWORKS:
            p.error(f"unknown network {network!r}; known: {', '.join(NETWORKS)}")
        wargs = lambda t: [t, network, str(args.dims), str(args.steps)]  # noqa: E731
        found: dict = {"reference": [], "tf before": [], "tensorflow": [], "tf cold": [], "tf warm": []}
        off = {**os.environ, "NHW_XLA_CACHE": "off"}
        for r in range(args.rounds):  # alternate targets: load changes over a run
            found["reference"].append(_worker(wargs("reference")))
            if args.before:
                # run from there: ``-m`` puts the working directory first on sys.path,
                # ahead of this checkout's nhw; this checkout still provides ``benchmarks``
                path = os.pathsep.join([args.before, ROOT, *filter(None, [os.environ.get("PYTHONPATH")])])
                found["tf before"].append(_worker(wargs("tensorflow"), {**off, "PYTHONPATH": path}, args.before))
            found["tensorflow"].append(_worker(wargs("tensorflow"), off))
            if args.xla_cache:
                with tempfile.TemporaryDirectory() as d:
                    env = {**os.environ, "NHW_XLA_CACHE": d}
                    found["tf cold"].append(_worker(wargs("tensorflow"), env))
                    found["tf warm"].append(_worker(wargs("tensorflow"), env))
            print(f"  measured {network} round {r + 1}", file=sys.stderr)
        for label, got in found.items():
            if got:
                rows.append({"target": label, "network": network, "dims": args.dims, **_median(got)})
    print(_table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


def _table(rows: list[dict]) -> str:
    cols = ["import_s", "build_s", "first_s", "compile_s", "run_s", "total_s", "lengths_s", "step_ms"]
    head = f"{'target':<11} {'network':<12} " + " ".join(f"{c.replace('_s', '').replace('_', ' '):>8}" for c in cols)
    head += f" {'total - ref':>11} {'step x ref':>10}"
    ref = {r["network"]: r for r in rows if r["target"] == "reference" and "error" not in r}
    out = [head, "-" * len(head)]
    for r in rows:
        if "error" in r:
            out.append(f"{r['target']:<11} {r['network']:<12} ERROR {r['error']}")
            continue
        base = ref.get(r["network"])
        extra = r["total_s"] - base["total_s"] if base else float("nan")
        ratio = r["step_ms"] / base["step_ms"] if base else float("nan")
        out.append(f"{r['target']:<11} {r['network']:<12} " + " ".join(f"{r[c]:8.3f}" for c in cols)
                   + f" {extra:11.2f} {ratio:10.1f}")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())

"""Time registered backends on the standard networks, as ratios to ``reference``.

Every measurement runs in a fresh subprocess, so peak memory (max RSS) belongs to one
backend and one network, and no backend warms another's caches.  ``reference`` is
always measured in the same run, and every figure is also printed as a ratio to it::

    python -m benchmarks.run                                   # all available targets
    python -m benchmarks.run --targets opencl --dims 16 --steps 500
    python -m benchmarks.run --json bench.json
    python -m benchmarks.run --rounds 3          # best of 3 alternating rounds per row
    python -m benchmarks.run --networks ensemble_chain --dims 40,80 --minibatch 0   # 1000 / 2000 ensembles
    python -m benchmarks.run --targets loihi-emu --emu-kernel numpy --dims 16 --minibatch 0

Columns: ``build`` = Simulator construction (s), decoder cache disabled so every
target solves its own decoders, without ``import`` = libraries a target loads on first
use inside its constructor (TensorFlow is imported after nengo's build, to keep peak
memory down; the other targets import theirs before timing starts); ``first`` = first ``run_steps`` call,
which includes any graph compilation (s: the persistent XLA cache is off in the
workers unless ``NHW_XLA_CACHE`` is set); ``steps/s`` = best of ``--repeat`` later calls;
``peak MB`` = the subprocess's max RSS; ``x ref`` = steps/s over reference's steps/s.
With ``--minibatch B`` targets whose Simulator takes ``minibatch_size`` are also run
batched, and report simulated sample-steps/s (B x steps/s).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("PYOPENCL_CTX", "0")

#: Benchmark names -> standard parity networks (toolchain.parity_networks).
NETWORKS = {
    "integrator": "integrator",
    "cconv": "circular_convolution",
    "basal_ganglia": "basal_ganglia",
    "pes": "pes_learning",
}

#: environment variable carrying ``--emu-kernel`` to the measuring subprocesses
EMU_KERNEL_ENV = "NHW_BENCH_EMU_KERNEL"

#: ensembles per chain in ``ensemble_chain``
CHAIN_LENGTH = 25


def ensemble_chain(dims: int, n_per_dim: int, seed: int):
    """A model with thousands of ensembles: ``dims`` chains of 25 one-dimensional ensembles.

    Every ensemble has ``n_per_dim`` LIF neurons and one connection (own
    synapse) from its predecessor; each chain starts at a sine Node. Large models
    are built this way (many small populations, one synapse per connection), and
    their cost is build and compile time rather than the step.
    """
    import types

    import nengo
    import numpy as np

    with nengo.Network(seed=seed, label="ensemble_chain") as net:
        stim = nengo.Node(lambda t: np.sin(8 * t), label="stim")
        prev = None
        for i in range(dims * CHAIN_LENGTH):
            ens = nengo.Ensemble(n_per_dim, 1)
            nengo.Connection(stim if i % CHAIN_LENGTH == 0 else prev, ens, synapse=0.005)
            prev = ens
        nengo.Probe(prev, synapse=0.01)
    return types.SimpleNamespace(network=net)


#: Benchmark-only networks (not parity cases): name -> ``f(dims, n_per_dim, seed)``
EXTRA_NETWORKS = {"ensemble_chain": ensemble_chain}


def measure(target: str, network: str, dims: int, n_per_dim: int, steps: int, repeat: int, minibatch: int | None) -> dict:
    """Build and time one (target, network) pair in this process; return the figures."""
    import warnings

    warnings.filterwarnings("ignore")
    import nengo

    # A warm decoder cache would make whichever target is measured second build
    # faster; every measurement solves its decoders itself.
    nengo.rc.set("decoder_cache", "enabled", "False")
    from nhw import backends
    from nhw.toolchain.parity_networks import get_network

    if network in EXTRA_NETWORKS:
        case = EXTRA_NETWORKS[network](dims, n_per_dim, 0)
    else:
        case = get_network(NETWORKS[network]).case(dims, n_per_dim, seed=0)
    Simulator = backends.get(target)
    kwargs = {"progress_bar": False, "seed": 0}
    if target == "loihi-emu" and os.environ.get(EMU_KERNEL_ENV):
        kwargs["kernel"] = os.environ[EMU_KERNEL_ENV]
    if minibatch:
        kwargs["minibatch_size"] = minibatch
    t0 = time.perf_counter()
    sim = Simulator(case.network, **kwargs)
    build = time.perf_counter() - t0
    late_import = _late_import_seconds(sim)
    build -= late_import
    with sim:
        first, best = time_runs(sim, steps, repeat)
    peak_mb = _peak_rss_mb()
    return {
        "target": target, "network": network, "dims": dims, "minibatch": minibatch or 1,
        "build_s": build, "import_s": late_import, "first_run_s": first, "steps_per_s": steps / best,
        "sample_steps_per_s": (minibatch or 1) * steps / best, "peak_mb": peak_mb,
    }


def time_runs(sim, steps: int, repeat: int) -> tuple[float, float]:
    """Seconds of a first ``run_steps(steps)`` (compiles, warms caches) and the best of ``repeat`` more."""
    t0 = time.perf_counter()
    sim.run_steps(steps)
    first = time.perf_counter() - t0
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        sim.run_steps(steps)
        best = min(best, time.perf_counter() - t0)
    return first, best


def _late_import_seconds(sim) -> float:
    """Seconds ``sim``'s constructor spent importing libraries (its module's ``late_import_seconds()``)."""
    fn = getattr(sys.modules.get(type(sim).__module__), "late_import_seconds", None)
    return float(fn()) if callable(fn) else 0.0


def _peak_rss_mb() -> float:
    """This process's peak resident memory.

    ``VmHWM`` belongs to the process image, while ``ru_maxrss`` survives ``exec`` and
    so would report the (larger) harness process that started this worker.
    """
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def supports_minibatch(target: str) -> bool:
    """Whether the target's Simulator takes a ``minibatch_size`` argument."""
    from nhw import backends

    return "minibatch_size" in inspect.signature(backends.get(target)).parameters


def _subprocess(args: list[str], timeout: float) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.run", "--worker", *args]
    # ``first`` must include compiling: no program saved by an earlier run is loaded
    env = {"NHW_XLA_CACHE": "off", **os.environ}
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": tail[:200]}
    return json.loads(lines[-1])


def _better(kept: dict | None, row: dict) -> dict:
    """Of two measurements of one row, the faster; peak memory is the larger of the two."""
    if kept is None or "error" in kept:
        return row
    if "error" in row:
        return kept
    fast = row if row["sample_steps_per_s"] > kept["sample_steps_per_s"] else kept
    return {**fast, "peak_mb": max(kept["peak_mb"], row["peak_mb"])}


def _table(rows: list[dict]) -> str:
    ref = {(r["network"], r["dims"]): r for r in rows if r["target"] == "reference" and "error" not in r}
    head = (f"{'target':<11} {'network':<14} {'dims':>4} {'batch':>5} {'import s':>8} {'build s':>8} {'first s':>8} "
            f"{'steps/s':>9} {'peak MB':>8} {'x ref build':>11} {'x ref speed':>11}")
    out = [head, "-" * len(head)]
    for r in rows:
        if "error" in r:
            out.append(f"{r['target']:<11} {r['network']:<14} {r['dims']:>4} {r.get('minibatch', 1):>5}  ERROR {r['error']}")
            continue
        base = ref.get((r["network"], r["dims"]))
        speed = r["sample_steps_per_s"] / base["steps_per_s"] if base else float("nan")
        build = (r["build_s"] + r["first_run_s"]) / (base["build_s"] + base["first_run_s"]) if base else float("nan")
        out.append(
            f"{r['target']:<11} {r['network']:<14} {r['dims']:>4} {r['minibatch']:>5} {r.get('import_s', 0.0):8.2f} {r['build_s']:8.2f} "
            f"{r['first_run_s']:8.2f} {r['sample_steps_per_s']:9.0f} {r['peak_mb']:8.0f} {build:11.2f} {speed:11.2f}"
        )
    out.append("x ref speed: (sample-)steps/s over reference's batch-1 steps/s; "
               "x ref build: (build + first run) over reference's")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; see the module docstring."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--targets", help="comma-separated targets (default: all available)")
    p.add_argument("--networks", default=",".join(NETWORKS),
                   help=f"comma-separated, from {', '.join([*NETWORKS, *EXTRA_NETWORKS])} "
                        f"(ensemble_chain: DIMS x {CHAIN_LENGTH} one-dimensional ensembles)")
    p.add_argument("--dims", default="16,64", help="comma-separated dimensionalities")
    p.add_argument("--n-per-dim", type=int, default=50)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--minibatch", type=int, default=32, help="batch size for batched targets (0: skip)")
    p.add_argument("--rounds", type=int, default=1,
                   help="measure every row this many times, the targets of one network in alternation, and keep "
                        "each row's fastest round (peak memory: the largest); evens out a noisy machine")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per measurement")
    p.add_argument("--json", help="also write the rows to this JSON file")
    p.add_argument("--emu-kernel", choices=["auto", "numba", "numpy"],
                   help="loihi-emu's emulator step (default: the Simulator's, auto)")
    p.add_argument("--worker", nargs=6, metavar=("TARGET", "NETWORK", "DIMS", "NPD", "STEPS", "REPEAT_MB"),
                   help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.worker:
        target, network, dims, npd, steps, rep_mb = args.worker
        repeat, mb = (int(x) for x in rep_mb.split("/"))
        print(json.dumps(measure(target, network, int(dims), int(npd), int(steps), repeat, mb or None)))
        return 0

    from nhw import backends

    if args.emu_kernel:
        os.environ[EMU_KERNEL_ENV] = args.emu_kernel
    targets = args.targets.split(",") if args.targets else backends.available()
    for t in targets:
        backends.registry.spec(t)
    if "reference" not in targets:
        targets = ["reference", *targets]
    networks = args.networks.split(",")
    unknown = sorted(set(networks) - set(NETWORKS) - set(EXTRA_NETWORKS))
    if unknown:
        p.error(f"unknown networks {unknown}; known: {', '.join([*NETWORKS, *EXTRA_NETWORKS])}")
    if args.rounds < 1:
        p.error(f"--rounds must be >= 1; got {args.rounds}")
    rows = []
    for dims in (int(d) for d in args.dims.split(",")):
        for network in networks:
            cases = [(target, mb) for target in targets
                     for mb in [0] + ([args.minibatch] if args.minibatch and target != "reference"
                                      and supports_minibatch(target) else [])]
            best: dict = {}
            for r in range(args.rounds):
                for target, mb in cases:
                    wargs = [target, network, str(dims), str(args.n_per_dim), str(args.steps), f"{args.repeat}/{mb}"]
                    row = _subprocess(wargs, args.timeout)
                    row.update({k: v for k, v in (("target", target), ("network", network), ("dims", dims),
                                                  ("minibatch", mb or 1)) if k not in row})
                    best[(target, mb)] = _better(best.get((target, mb)), row)
                    print(f"  measured {target} {network} d={dims} batch={mb or 1} (round {r + 1})", file=sys.stderr)
            rows.extend(best[c] for c in cases)
    print(_table(rows))
    if args.json:
        write_json(args.json, rows)
    return 0


def write_json(path: str, rows: list[dict]) -> None:
    """Write ``rows`` to ``path`` as JSON, atomically (a temporary file, then a rename)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(rows, f, indent=2)
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())

"""Where a simulator step spends its time: TensorFlow kernel by kernel, or loihi-emu function by function.

    python -m benchmarks.profile_step basal_ganglia 64 --minibatch 32
    python -m benchmarks.profile_step pes 16 --minibatch 32 --shards 4 --top 20
    python -m benchmarks.profile_step pes 16 --target loihi-emu

With ``--target loihi-emu`` the network runs once (compiling and warming), then one
more ``run_steps`` runs under ``cProfile`` and the functions with the most own time
are printed in microseconds per simulated step (the profiler's own overhead inflates
Python-heavy rows; compare rows of one profile).

Runs one standard network (``benchmarks.run``'s names) in the ``tensorflow``
target, then runs it again under TensorFlow's profiler with XLA's per-kernel
trace events on (``--xla_cpu_enable_xprof_traceme``), and prints the time per
simulated step of every kind of XLA kernel (fusions with the same name up to
their numeric suffix together, e.g. the five ``add_select_fusion.k`` of five
ensemble groups), averaged over the threads that ran minibatch parts. Tracing
itself costs time (about a third more per step on small kernels), so compare
rows of one profile, or profiles with each other, not with ``benchmarks.run``.

XLA reads its flags once per process, so this must be a fresh process: it sets
``XLA_FLAGS`` before TensorFlow is imported and refuses to run if TensorFlow
already is.
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import re
import sys
import tempfile

#: per-kernel trace events of XLA:CPU, and quiet TensorFlow logging
_FLAG = "--xla_cpu_enable_xprof_traceme=true"


#: names of trace events that are not kernels: they contain or mark other
#: kernels' time, or are the thread pool's own bookkeeping
_NOT_KERNELS = re.compile(r"ThunkExecutor|ThreadpoolListener|end:|while(\.\d+)?$")


def kernel_times(xplane_path: str, steps: int) -> tuple[dict, int]:
    """``({kernel kind: microseconds per step, averaged over threads}, threads)`` from a profile.

    Only events on the threads that ran XLA kernels count. Events that only
    enclose or mark others are left out so no time is counted twice: the
    executor's own spans (``ThunkExecutor``), a ``while`` loop run as one thunk
    (its body's kernels are traced inside it), the short ``end: <kernel>``
    marks and the thread pool's ``ThreadpoolListener`` events.
    """
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    with open(xplane_path, "rb") as f:
        space.ParseFromString(f.read())
    totals: dict = collections.Counter()
    threads = set()
    for plane in space.planes:
        names = {k: v.name for k, v in plane.event_metadata.items()}
        for line in plane.lines:
            if "Eigen" not in line.name:
                continue
            for ev in line.events:
                name = names.get(ev.metadata_id, "?")
                if _NOT_KERNELS.match(name):
                    continue
                threads.add((plane.name, line.name))
                totals[re.sub(r"\.\d+$", "", name)] += ev.duration_ps
    n = max(len(threads), 1)
    return {k: v / 1e6 / steps / n for k, v in totals.items()}, n


def profile_loihi_emu(network: str, dims: int, n_per_dim: int, steps: int, top: int) -> int:
    """cProfile one warm ``run_steps(steps)`` of a parity network on loihi-emu; print us/step per function."""
    import cProfile
    import pstats
    import time
    import warnings

    warnings.filterwarnings("ignore")
    import nengo

    from nhw import backends
    from nhw.toolchain.parity_networks import get_network

    nengo.rc.set("decoder_cache", "enabled", "False")
    case = get_network(network).case(dims, n_per_dim, seed=0)
    with backends.get("loihi-emu")(case.network, progress_bar=False, seed=0) as sim:
        sim.run_steps(steps)  # compile and warm outside the profile
        t0 = time.perf_counter()
        sim.run_steps(steps)
        plain = (time.perf_counter() - t0) / steps * 1e6
        prof = cProfile.Profile()
        prof.enable()
        sim.run_steps(steps)
        prof.disable()
        mode = ("closed loop, compiled chunks" if sim._loop_plan is not None
                else "closed loop, step by step" if sim._closed_loop else "open loop, batched")
    stats = pstats.Stats(prof).stats
    rows = sorted(((tt, nc, f"{os.path.basename(f)}:{ln}({fn})") for (f, ln, fn), (_, nc, tt, _, _) in stats.items()),
                  reverse=True)
    total = sum(r[0] for r in rows)
    print(f"{network} d={dims} loihi-emu ({mode}): "
          f"{plain:.1f} us/step unprofiled, {total / steps * 1e6:.1f} us/step profiled")
    for tt, nc, name in rows[:top]:
        print(f"  {name:<60} {tt / steps * 1e6:8.1f} us  {nc / steps:7.2f} calls/step")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; see the module docstring."""
    from benchmarks.run import NETWORKS

    p = argparse.ArgumentParser(prog="python -m benchmarks.profile_step", description=__doc__.split("\n\n")[0])
    p.add_argument("network", choices=sorted(NETWORKS))
    p.add_argument("dims", type=int)
    p.add_argument("--n-per-dim", type=int, default=50)
    p.add_argument("--minibatch", type=int, default=None)
    p.add_argument("--shards", type=int, default=None, help="batch_shards setting (default: automatic)")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--top", type=int, default=30, help="kernel kinds printed")
    p.add_argument("--target", choices=["tensorflow", "loihi-emu"], default="tensorflow")
    args = p.parse_args(argv)
    if args.target == "loihi-emu":
        return profile_loihi_emu(NETWORKS[args.network], args.dims, args.n_per_dim, args.steps, args.top)
    if "tensorflow" in sys.modules and _FLAG not in os.environ.get("XLA_FLAGS", ""):
        p.error("TensorFlow is already imported in this process; XLA's flags can no longer be set")
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _FLAG).strip()
    # no persistent XLA cache in this process: a program loaded from one was compiled without
    # trace events (the flag is not part of its key), and one compiled here would slow later
    # untraced runs. A parent that imported nhw passes its cache directory down in
    # TF_XLA_FLAGS; only this process stops using it
    os.environ["NHW_XLA_CACHE"] = "off"
    os.environ["TF_XLA_FLAGS"] = " ".join(
        f for f in os.environ.get("TF_XLA_FLAGS", "").split() if not f.startswith("--tf_xla_persistent_cache_directory"))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    import warnings

    warnings.filterwarnings("ignore")
    import nengo

    from nhw.backends.tensorflow import Simulator, configure_settings
    from nhw.backends.tensorflow._tf import tf
    from nhw.toolchain.parity_networks import get_network

    nengo.rc.set("decoder_cache", "enabled", "False")
    case = get_network(NETWORKS[args.network]).case(args.dims, args.n_per_dim, seed=0)
    if args.shards is not None:
        with case.network:
            configure_settings(batch_shards=args.shards)
    with Simulator(case.network, minibatch_size=args.minibatch, progress_bar=False, seed=0) as sim:
        sim.run_steps(args.steps)  # compile outside the profile
        with tempfile.TemporaryDirectory() as logdir:
            tf.profiler.experimental.start(logdir)
            sim.run_steps(args.steps)
            tf.profiler.experimental.stop()
            paths = glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)
            if not paths:
                print("the profiler wrote no trace", file=sys.stderr)
                return 1
            times, threads = kernel_times(paths[0], args.steps)
        shards = sim._loop.shards
    total = sum(times.values())
    print(f"{args.network} d={args.dims} batch={args.minibatch or 1}: {shards} part(s) on {threads} thread(s), "
          f"{total:.1f} us/step of kernels per thread (traced)")
    for name, us in sorted(times.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"  {name:<44} {us:8.1f} us  {100 * us / total:5.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())

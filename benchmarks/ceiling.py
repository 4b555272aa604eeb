"""The best ratio to ``reference`` this machine allows on the standard networks, batched.

    python -m benchmarks.ceiling                          # 16 and 64 dims, batch 32
    python -m benchmarks.ceiling --dims 64 --json ceiling.json

The speed targets are ratios to the reference simulator, so whether one can be
met at all depends on the machine. This counts the work one batched step must do
on each network, from nengo's own (unoptimised) operator list:

- **dense multiply-adds**: ``DotInc`` / ``SparseDotInc`` with fixed matrices,
  counted once per distinct (matrix values, input) pair, since an implementation
  could share a product that two connections compute identically (the integrator's
  recurrent connection and its probe decode with the same decoders);
- **per-sample matrices**: matrices a learning rule rewrites every step; each
  sample has its own copy, which a step must read and write at least once;
- **neuron updates**.

and times it with rates measured here, on all cores, in XLA-compiled loops like
the simulator's: the peak matrix-multiply rate (a 1024 x 1024 x 1024 product),
read-and-write bandwidth over the per-sample matrices' size, and the TensorFlow
simulator's own LIF update. Two floors on the time of one step of ``batch``
samples, and the ratios they allow (``batch / floor / reference steps/s``):

- ``strict``: ``max(dense, matrices)``: neurons free, arithmetic and memory
  perfectly overlapped, products at the peak rate. No implementation on this
  machine can be faster than this.
- ``practical``: ``dense + matrices + neurons`` at the simulator's LIF rate.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks.run import NETWORKS, _subprocess, write_json  # noqa: E402

#: steps per timed XLA loop
LOOP_STEPS = 200


def count_work(network: str, dims: int, n_per_dim: int = 50) -> dict:
    """Per-sample work of one step: ``{"macs", "matrix_elements", "neurons"}``.

    ``neurons`` maps neuron type names to counts.
    """
    import hashlib
    import warnings

    import nengo
    import numpy as np
    from nengo.builder.neurons import SimNeurons
    from nengo.builder.operator import DotInc, SparseDotInc

    from nhw.toolchain.parity_networks import get_network

    warnings.filterwarnings("ignore")
    case = get_network(NETWORKS[network]).case(dims, n_per_dim, seed=0)
    model = nengo.builder.Model(dt=0.001)
    model.build(case.network)
    ops = model.operators
    written = {s.base for op in ops for s in op.sets + op.incs + op.updates}
    macs, matrices, seen = 0, 0, set()
    neurons: dict = {}
    for op in ops:
        if isinstance(op, SimNeurons):
            name = type(op.neurons).__name__
            neurons[name] = neurons.get(name, 0) + op.J.size
        elif isinstance(op, SparseDotInc):
            macs += op.A.initial_value.nnz
        elif isinstance(op, DotInc) and op.A.ndim == 2 and op.A.size > 1:
            if op.A.base in written:
                matrices += op.A.size
                continue
            x = op.X
            key = (id(x.base), x.offset, x.shape, x.strides,
                   hashlib.sha1(np.ascontiguousarray(op.A.initial_value)).hexdigest())
            if key not in seen:
                seen.add(key)
                macs += op.A.size
    return {"macs": macs, "matrix_elements": matrices, "neurons": neurons}


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _best_seconds(fn, *args, repeat: int = 3) -> float:
    fn(*args)  # compile
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(*args)
        (out[0] if isinstance(out, (list, tuple)) else out).numpy()
        best = min(best, time.perf_counter() - t0)
    return best


def _on_all_cores(loop, *tensors):
    """``loop`` over one slice per core, run concurrently (as the simulator splits a minibatch)."""
    from nhw.backends.tensorflow._tf import tf

    k = _cores()

    @tf.function
    def run(*ts):
        parts = [tf.split(t, k) for t in ts]
        return [loop(*[p[i] for p in parts]) for i in range(k)]

    return run, tensors


def peak_gemm_flops(n: int = 1024) -> float:
    """Floating-point operations per second of an ``n x n x n`` float32 product in an XLA loop."""
    import numpy as np

    from nhw.backends.tensorflow._tf import tf

    a = tf.constant(np.random.RandomState(0).rand(n, n).astype(np.float32))

    @tf.function(jit_compile=True)
    def loop(b):
        def body(i, b):
            return i + 1, b + 1e-9 * tf.reduce_sum(tf.matmul(a, b))

        return tf.while_loop(lambda i, b: i < LOOP_STEPS, body, (0, b))[1]

    return 2.0 * n**3 * LOOP_STEPS / _best_seconds(loop, a)


def stream_bytes_per_s(nbytes: int) -> float:
    """Bytes read plus written per second updating ``nbytes`` of float32 in place, on all cores."""
    import numpy as np

    from nhw.backends.tensorflow._tf import tf

    k = _cores()
    n = max(nbytes // 4 // k, 1024) * k

    @tf.function(jit_compile=True)
    def loop(x):
        def body(i, x):
            return i + 1, x * 0.999 + 1e-4

        return tf.while_loop(lambda i, x: i < LOOP_STEPS, body, (0, x))[1]

    run, args = _on_all_cores(loop, tf.constant(np.random.RandomState(0).rand(n).astype(np.float32)))
    return 2.0 * 4 * n * LOOP_STEPS / _best_seconds(run, *args)


def lif_seconds_per_update(n: int) -> float:
    """Seconds per LIF neuron update of the simulator's own LIF step, ``n`` neurons over all cores."""
    import types

    import nengo
    import numpy as np

    from nhw.backends.tensorflow._tf import tf
    from nhw.backends.tensorflow.builders.neuron_builders import _STEPS

    step, lif, dt = _STEPS[nengo.LIF], nengo.LIF(), 0.001
    k = _cores()
    n = max(n // k, 1024) * k

    @tf.function(jit_compile=True)
    def loop(J):
        def body(i, v, r, acc):
            out, s = step(lif, dt, J, {"voltage": v, "refractory_time": r}, types.SimpleNamespace(step=i + 1))
            return i + 1, s["voltage"], s["refractory_time"], acc + out

        zero = tf.zeros_like(J)
        return tf.while_loop(lambda i, *a: i < LOOP_STEPS, body, (0, zero, zero, zero))[3]

    J = tf.constant(np.random.RandomState(0).uniform(0, 3, n).astype(np.float32))
    run, args = _on_all_cores(loop, J)
    return _best_seconds(run, *args) / (n * LOOP_STEPS)


def ceiling(work: dict, batch: int, ref_steps_per_s: float, rates: dict) -> dict:
    """Floors (seconds per step of ``batch`` samples) and the ratios to reference they allow."""
    dense = 2.0 * work["macs"] * batch / rates["gemm_flops"]
    matrices = 2.0 * 4 * work["matrix_elements"] * batch / rates["stream_bytes"] if work["matrix_elements"] else 0.0
    n_neurons = sum(work["neurons"].values())
    neurons = n_neurons * batch * rates["lif_s"]
    strict = max(dense, matrices)
    practical = dense + matrices + neurons
    return {
        "dense_us": dense * 1e6, "matrices_us": matrices * 1e6, "neurons_us": neurons * 1e6,
        "strict_us": strict * 1e6, "practical_us": practical * 1e6,
        "strict_x": batch / strict / ref_steps_per_s if strict else float("inf"),
        "practical_x": batch / practical / ref_steps_per_s,
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; see the module docstring."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.ceiling", description=__doc__.split("\n\n")[0])
    p.add_argument("--networks", default=",".join(NETWORKS), help=f"comma-separated, from {', '.join(NETWORKS)}")
    p.add_argument("--dims", default="16,64", help="comma-separated dimensionalities")
    p.add_argument("--n-per-dim", type=int, default=50)
    p.add_argument("--minibatch", type=int, default=32)
    p.add_argument("--steps", type=int, default=1000, help="reference steps timed per call")
    p.add_argument("--json", help="also write the rows to this JSON file")
    args = p.parse_args(argv)
    networks = args.networks.split(",")
    unknown = sorted(set(networks) - set(NETWORKS))
    if unknown:
        p.error(f"unknown networks {unknown}; known: {', '.join(NETWORKS)}")
    if args.minibatch < 1:
        p.error(f"--minibatch must be >= 1; got {args.minibatch}")

    gemm = peak_gemm_flops()
    print(f"peak matrix product: {gemm / 1e9:.0f} GFLOP/s on {_cores()} cores", file=sys.stderr)
    rows = []
    for dims in (int(d) for d in args.dims.split(",")):
        for network in networks:
            work = count_work(network, dims, args.n_per_dim)
            ref = _subprocess(["reference", network, str(dims), str(args.n_per_dim), str(args.steps), "3/0"], 900)
            if "error" in ref:
                print(f"{network} d={dims}: reference failed: {ref['error']}", file=sys.stderr)
                continue
            n_neurons = sum(work["neurons"].values())
            rates = {
                "gemm_flops": gemm,
                "stream_bytes": stream_bytes_per_s(4 * work["matrix_elements"] * args.minibatch)
                if work["matrix_elements"] else float("nan"),
                "lif_s": lif_seconds_per_update(n_neurons * args.minibatch),
            }
            row = {"network": network, "dims": dims, "batch": args.minibatch, **work,
                   "ref_steps_per_s": ref["steps_per_s"], **rates,
                   **ceiling(work, args.minibatch, ref["steps_per_s"], rates)}
            rows.append(row)
            print(f"  counted {network} d={dims}", file=sys.stderr)
    print(_table(rows))
    if args.json:
        write_json(args.json, rows)
    return 0


def _table(rows: list[dict]) -> str:
    head = (f"{'network':<14} {'dims':>4} {'batch':>5} {'MACs/sample':>11} {'W/sample':>9} {'neurons':>8} "
            f"{'ref st/s':>8} {'dense us':>8} {'W us':>7} {'LIF us':>7} {'strict x':>8} {'practical x':>11}")
    out = [head, "-" * len(head)]
    for r in rows:
        out.append(
            f"{r['network']:<14} {r['dims']:>4} {r['batch']:>5} {r['macs']:>11} {r['matrix_elements']:>9} "
            f"{sum(r['neurons'].values()):>8} {r['ref_steps_per_s']:8.0f} {r['dense_us']:8.1f} "
            f"{r['matrices_us']:7.1f} {r['neurons_us']:7.1f} {r['strict_x']:8.1f} {r['practical_x']:11.1f}"
        )
    out.append("W: per-sample learned matrix elements; x: batch sample-steps/s over reference's steps/s "
               "at the floor (strict: max(dense, W), practical: dense + W + LIF)")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())

"""Training benchmarks: ``sim.fit`` against the same network as a plain Keras model.

    python -m benchmarks.train                      # both benchmarks
    python -m benchmarks.train --samples 6000 --epochs 3 --json train.json
    python -m benchmarks.train --benchmarks autoencoder --repeat 5   # median of 5 processes
    python -m benchmarks.train --benchmarks autoencoder --nengo-steps 1   # one batch per call

``autoencoder``
    The seed's 784-64-784 ReLU autoencoder (single time step, Glorot weights,
    gains 1, biases 0, no synapses) trained with RMSprop on random data, once
    as ``keras.Sequential`` and once as a nengo network in the TF Simulator, in
    the same process with the same batch size. Reported: seconds per epoch
    (first epoch, which includes tracing/compilation, and the best later
    epoch) and their ratio nengo/Keras; the same for process CPU time
    (``cpu_ratio``), steadier on a shared machine. ``nengo_steps`` is the
    number of batches per call of the traced train step that ``sim.fit``
    used (chosen by itself unless ``--nengo-steps`` gives it); Keras runs
    one per call (its default) unless ``--keras-steps`` says otherwise.
``lif50``
    A 50-step spiking network (784 -> 128 LIF -> 10, Lowpass synapses) trained
    through its rate model; reported: training sample-steps per second
    (samples x steps / epoch seconds, best later epoch).

Each benchmark runs in its own subprocess so they do not share TF state. The
persistent XLA cache is off unless ``NHW_XLA_CACHE`` is set.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# the first epoch must include compiling: no program saved by an earlier run is loaded
os.environ.setdefault("NHW_XLA_CACHE", "off")


class _EpochTimer:
    """Keras callback recording wall time and process CPU time (all threads) per epoch.

    CPU time is the steadier figure on a machine shared with other work: waiting
    for a core does not count in it.
    """

    def __init__(self):
        import keras

        outer = self

        class CB(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                outer._t0 = time.perf_counter()
                outer._c0 = time.process_time()

            def on_epoch_end(self, epoch, logs=None):
                outer.times.append(time.perf_counter() - outer._t0)
                outer.cpu.append(time.process_time() - outer._c0)

        self.times: list = []
        self.cpu: list = []
        self.callback = CB()


def _steps_kw(steps: int | None) -> dict:
    return {} if steps is None else {"steps_per_execution": steps}


def _autoencoder(samples: int, epochs: int, batch: int, nengo_steps: int | None = None,
                 keras_steps: int | None = None) -> dict:
    import numpy as np
    import keras
    import nengo

    from nhw.backends.tensorflow import Simulator, dists

    n_in, n_hidden = 784, 64
    rng = np.random.RandomState(0)
    data = rng.uniform(0, 1, (samples, n_in)).astype("float32")

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((n_in,)),
            keras.layers.Dense(n_hidden, activation="relu", kernel_initializer="glorot_uniform"),
            keras.layers.Dense(n_in, activation="relu", kernel_initializer="glorot_uniform"),
        ]
    )
    model.compile(optimizer=keras.optimizers.RMSprop(1e-3), loss="mse", **_steps_kw(keras_steps))
    kt = _EpochTimer()
    model.fit(data, data, batch_size=batch, epochs=epochs, verbose=0, callbacks=[kt.callback])

    with nengo.Network(seed=0) as net:
        a = nengo.Node(np.zeros(n_in))
        b = nengo.Ensemble(n_hidden, 1, neuron_type=nengo.RectifiedLinear(), gain=nengo.dists.Choice([1]),
                           bias=nengo.dists.Choice([0]))
        nengo.Connection(a, b.neurons, transform=dists.Glorot(), synapse=None)
        c = nengo.Ensemble(n_in, 1, neuron_type=nengo.RectifiedLinear(), gain=nengo.dists.Choice([1]),
                           bias=nengo.dists.Choice([0]))
        nengo.Connection(b.neurons, c.neurons, transform=dists.Glorot(), synapse=None)
        p = nengo.Probe(c.neurons)
    nt = _EpochTimer()
    with Simulator(net, minibatch_size=batch, progress_bar=False) as sim:
        sim.compile(optimizer=keras.optimizers.RMSprop(1e-3), loss="mse", **_steps_kw(nengo_steps))
        sim.fit(data[:, None], {p: data[:, None]}, epochs=epochs, verbose=0, callbacks=[nt.callback])
        used = getattr(sim.keras_model, "_nhw_train_function_steps", None)
    k_best, n_best = min(kt.times[1:] or kt.times), min(nt.times[1:] or nt.times)
    k_cpu, n_cpu = min(kt.cpu[1:] or kt.cpu), min(nt.cpu[1:] or nt.cpu)
    return {
        "benchmark": "autoencoder",
        "samples": samples,
        "batch": batch,
        "nengo_steps": used,
        "keras_steps": model.steps_per_execution,
        "keras_first_s": round(kt.times[0], 3),
        "nengo_first_s": round(nt.times[0], 3),
        "keras_epoch_s": round(k_best, 3),
        "nengo_epoch_s": round(n_best, 3),
        "ratio": round(n_best / k_best, 3),
        "keras_epoch_cpu_s": round(k_cpu, 3),
        "nengo_epoch_cpu_s": round(n_cpu, 3),
        "cpu_ratio": round(n_cpu / k_cpu, 3),
    }


def _lif50(samples: int, epochs: int, batch: int, nengo_steps: int | None = None,
           keras_steps: int | None = None, steps: int = 50) -> dict:
    import numpy as np
    import keras
    import nengo

    from nhw.backends.tensorflow import Simulator, dists

    rng = np.random.RandomState(0)
    x = rng.uniform(0, 1, (samples, steps, 784)).astype("float32")
    y = rng.uniform(0, 1, (samples, steps, 10)).astype("float32")
    with nengo.Network(seed=0) as net:
        a = nengo.Node(np.zeros(784))
        h = nengo.Ensemble(128, 1, neuron_type=nengo.LIF(amplitude=0.01))
        nengo.Connection(a, h.neurons, transform=dists.Glorot(), synapse=None)
        out = nengo.Node(size_in=10)
        nengo.Connection(h.neurons, out, transform=dists.Glorot(), synapse=0.005)
        p = nengo.Probe(out)
    t = _EpochTimer()
    with Simulator(net, minibatch_size=batch, progress_bar=False) as sim:
        sim.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse", **_steps_kw(nengo_steps))
        sim.fit(x, {p: y}, epochs=epochs, verbose=0, callbacks=[t.callback])
        used = getattr(sim.keras_model, "_nhw_train_function_steps", None)
    best = min(t.times[1:] or t.times)
    return {
        "benchmark": "lif50",
        "samples": samples,
        "batch": batch,
        "steps": steps,
        "nengo_steps": used,
        "first_s": round(t.times[0], 3),
        "epoch_s": round(best, 3),
        "sample_steps_per_s": round(samples * steps / best, 1),
    }


BENCHMARKS = {"autoencoder": _autoencoder, "lif50": _lif50}


def main(argv: list[str] | None = None) -> int:
    """Run the training benchmarks and print a table."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--benchmarks", default=",".join(BENCHMARKS))
    p.add_argument("--samples", type=int, default=6000, help="training samples (autoencoder)")
    p.add_argument("--lif-samples", type=int, default=600, help="training samples (lif50)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--repeat", type=int, default=1,
                   help="run each benchmark in this many processes and report the median of every figure "
                        "(a shared machine's load changes between and within runs)")
    p.add_argument("--nengo-steps", type=int, help="steps_per_execution for sim.compile (default: fit chooses)")
    p.add_argument("--keras-steps", type=int, help="steps_per_execution for the Keras model (default: Keras' 1)")
    p.add_argument("--json", help="also write the rows to this JSON file")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        samples = args.lif_samples if args.worker == "lif50" else args.samples
        row = BENCHMARKS[args.worker](samples, args.epochs, args.batch, args.nengo_steps, args.keras_steps)
        print("ROW " + json.dumps(row))
        return 0
    rows = []
    for name in args.benchmarks.split(","):
        if name not in BENCHMARKS:
            p.error(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
        cmd = [sys.executable, "-m", "benchmarks.train", "--worker", name, "--samples", str(args.samples),
               "--lif-samples", str(args.lif_samples), "--epochs", str(args.epochs), "--batch", str(args.batch)]
        cmd += [arg for flag, v in (("--nengo-steps", args.nengo_steps), ("--keras-steps", args.keras_steps))
                if v is not None for arg in (flag, str(v))]
        runs = []
        for _ in range(max(1, args.repeat)):
            out = subprocess.run(cmd, capture_output=True, text=True)
            lines = [ln for ln in out.stdout.splitlines() if ln.startswith("ROW ")]
            if out.returncode or not lines:
                print(f"{name}: failed\n{out.stderr[-2000:]}", file=sys.stderr)
                return 1
            runs.append(json.loads(lines[-1][4:]))
        row = {k: (statistics.median(r[k] for r in runs) if isinstance(v, (int, float)) else v)
               for k, v in runs[0].items()}
        if len(runs) > 1 and "ratio" in row:
            row["ratios"] = [r["ratio"] for r in runs]
            row["cpu_ratios"] = [r["cpu_ratio"] for r in runs]
        rows.append(row)
        print("  ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

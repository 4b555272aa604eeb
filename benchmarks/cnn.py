"""Time a converted digits CNN of 20,480 spiking neurons on loihi-emu, as a ratio to ``reference``.

    python -m benchmarks.cnn                        # reference, loihi-emu (numba), loihi-emu (numpy)
    python -m benchmarks.cnn --steps 300 --json cnn.json      # shorter; out err needs ~1000 steps

The network is a Keras CNN on scikit-learn's 8x8 digits upsampled to 16x16
(``Conv2D`` 16, 32, 64 (stride 2) and 64 channels, 3x3 kernels, ReLU; a ``Dense``
readout), converted with ``nengo_dl.Converter`` with ReLUs swapped for spiking ReLUs
(``scale_firing_rates=100``, 5 ms synapses) and deployed as is: no
``sparse_convolutions``, so loihi-emu maps the convolutions between neuron layers
as shared synapse lists.  Its weights are Keras's seeded initial ones (untrained):
the figures are timings, and the row's ``out err`` (largest difference between the
mean output over the second half of the first run and Keras's rate output, over the
largest Keras output) shows that the spiking network computes what the Keras model
does (it needs about 1000 steps of averaging to mean much).

Every row runs in a fresh subprocess (columns as in :mod:`benchmarks.run`:
``build`` = Simulator construction in s, ``first`` = first ``run_steps`` call,
``steps/s`` = best of ``--repeat`` later calls).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

#: (target, loihi-emu kernel) rows
ROWS = [("reference", None), ("loihi-emu", "numba"), ("loihi-emu", "numpy")]


def digits_16x16(n: int = 1):
    """The first ``n`` 8x8 digits, upsampled 2x to 16x16, scaled to [0, 1]."""
    import numpy as np
    from sklearn.datasets import load_digits

    x = load_digits().images[:n] / 16.0
    return np.kron(x, np.ones((2, 2)))[..., None].astype(np.float32)


def build_model(seed: int = 0):
    """The Keras CNN (untrained, seeded): 4096 + 8192 + 4096 + 4096 ReLUs, then 10 outputs."""
    from nhw.backends.tensorflow._tf import keras

    keras.utils.set_random_seed(seed)
    L = keras.layers
    return keras.Sequential([
        keras.Input((16, 16, 1)),
        L.Conv2D(16, 3, padding="same", activation="relu"),
        L.Conv2D(32, 3, padding="same", activation="relu"),
        L.Conv2D(64, 3, strides=2, padding="same", activation="relu"),
        L.Conv2D(64, 3, padding="same", activation="relu"),
        L.Flatten(),
        L.Dense(10),
    ])


def convert(model, image):
    """``(network, output probe, n_neurons)``: the spiking conversion showing ``image``."""
    import nengo

    import nhw.dl as nengo_dl

    conv = nengo_dl.Converter(model, swap_activations={"relu": nengo.SpikingRectifiedLinear()},
                              scale_firing_rates=100, synapse=0.005)
    conv.inputs[model.inputs[0]].output = image.reshape(-1)
    n = sum(e.n_neurons for e in conv.net.all_ensembles)
    return conv.net, conv.outputs[model.outputs[0]], n


def measure(target: str, kernel: str | None, steps: int, repeat: int) -> dict:
    """Build and time one row in this process; return the figures."""
    import warnings

    warnings.filterwarnings("ignore")
    import nengo
    import numpy as np

    nengo.rc.set("decoder_cache", "enabled", "False")
    from benchmarks.run import time_runs
    from nhw import backends

    image = digits_16x16(1)[0]
    model = build_model()
    keras_out = model.predict(image[None], verbose=0)[0]
    net, probe, n_neurons = convert(model, image)
    kwargs = {"progress_bar": False, "seed": 0}
    if kernel is not None:
        kwargs["kernel"] = kernel
    t0 = time.perf_counter()
    sim = backends.get(target)(net, **kwargs)
    build = time.perf_counter() - t0
    with sim:
        first, best = time_runs(sim, steps, repeat)
        out = sim.data[probe][steps // 2:steps].mean(axis=0)
    err = float(np.abs(out - keras_out).max() / np.abs(keras_out).max())
    return {"target": target, "kernel": kernel or "", "neurons": n_neurons, "build_s": build,
            "first_run_s": first, "steps_per_s": steps / best, "out_err": err}


def _table(rows: list[dict]) -> str:
    ref = next((r for r in rows if r["target"] == "reference" and "error" not in r), None)
    head = (f"{'target':<10} {'kernel':<6} {'neurons':>7} {'build s':>8} {'first s':>8} {'steps/s':>8} "
            f"{'out err':>7} {'x ref speed':>11}")
    out = [head, "-" * len(head)]
    for r in rows:
        if "error" in r:
            out.append(f"{r['target']:<10} {r.get('kernel', ''):<6}  ERROR {r['error']}")
            continue
        speed = r["steps_per_s"] / ref["steps_per_s"] if ref else float("nan")
        out.append(f"{r['target']:<10} {r['kernel']:<6} {r['neurons']:>7} {r['build_s']:8.2f} {r['first_run_s']:8.2f} "
                   f"{r['steps_per_s']:8.1f} {r['out_err']:7.3f} {speed:11.2f}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; see the module docstring."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.cnn", description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--kernels", default="numba,numpy", help="loihi-emu kernels to time (comma-separated)")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per row")
    p.add_argument("--json", help="also write the rows to this JSON file")
    p.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        target, kernel, steps, repeat = args.worker
        print(json.dumps(measure(target, kernel if kernel != "-" else None, int(steps), int(repeat))))
        return 0
    rows = []
    for target, kernel in [ROWS[0]] + [r for r in ROWS[1:] if r[1] in args.kernels.split(",")]:
        cmd = [sys.executable, "-m", "benchmarks.cnn", "--worker", target, kernel or "-", str(args.steps),
               str(args.repeat)]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
            lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
            row = json.loads(lines[-1]) if res.returncode == 0 and lines else {
                "error": ((res.stderr.strip().splitlines() or ["no output"])[-1])[:200]}
        except subprocess.TimeoutExpired:
            row = {"error": f"timed out after {args.timeout:.0f} s"}
        row.setdefault("target", target)
        row.setdefault("kernel", kernel or "")
        rows.append(row)
        print(f"  measured {target} {kernel or ''}", file=sys.stderr)
    print(_table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

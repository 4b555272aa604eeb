"""How XLA on this machine runs one elementwise update over the same data in different shapes.

    python -m benchmarks.xla_layout                  # 105600 floats, 500 steps
    python -m benchmarks.xla_layout --size 52800 --steps 200

The TensorFlow simulator carries neuron state flat ``(n * batch,)`` with a
minibatch (``SignalLayout(flat_batch_last=...)``) because XLA:CPU's LLVM turns
an elementwise loop whose inner dimension is 16 or 32 into scalar code: with
TF 2.20 on an AVX2 CPU, ``y = 0.9 y + 0.1 c`` over ``(6600, 16)`` ran 4x slower
than over the same 105600 floats flat. This probe times that update, inside a
jit-compiled ``tf.while_loop``, for a row of shapes, so the rule can be
re-checked on another CPU or TensorFlow version: when ``(n, 16)`` and
``(n, 32)`` are no slower than ``flat``, the flat layout no longer buys
anything there.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

#: inner (minor) dimensions probed; ``1`` is the flat vector
INNER = (1, 4, 8, 16, 32, 64, 128)


def shapes(size: int) -> list[tuple[int, ...]]:
    """The probed shapes of ``size`` elements: flat, then ``(size // k, k)`` for each inner ``k`` dividing it."""
    out: list[tuple[int, ...]] = [(size,)]
    out += [(size // k, k) for k in INNER[1:] if size % k == 0]
    return out


def time_update(shape: tuple[int, ...], steps: int, repeat: int = 3) -> float:
    """Best seconds per step of ``y = 0.9 y + 0.1 c`` on ``shape`` in a jit-compiled loop."""
    import numpy as np
    import tensorflow as tf

    c = tf.constant(np.random.RandomState(0).rand(*shape).astype(np.float32))

    @tf.function(jit_compile=True)
    def run(y):
        return tf.while_loop(lambda i, y: i < steps, lambda i, y: (i + 1, 0.9 * y + 0.1 * c), (0, y))[1]

    y0 = tf.zeros(shape)
    run(y0).numpy()  # compile
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        run(y0).numpy()
        best = min(best, time.perf_counter() - t0)
    return best / steps


def main(argv: list[str] | None = None) -> int:
    """Print microseconds per step and the slowdown against flat for each shape."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.xla_layout", description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=105600, help="elements updated per step (default 105600)")
    p.add_argument("--steps", type=int, default=500, help="loop steps per timing (default 500)")
    args = p.parse_args(argv)
    if args.size < 1 or args.steps < 1:
        p.error(f"--size and --steps must be positive; got {args.size} and {args.steps}")
    flat = None
    print(f"{'shape':>14} {'us/step':>9} {'x flat':>7}")
    for shape in shapes(args.size):
        sec = time_update(shape, args.steps)
        flat = sec if flat is None else flat
        print(f"{str(shape):>14} {sec * 1e6:9.2f} {sec / flat:7.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

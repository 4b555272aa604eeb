"""Host Nodes whose output over a chunk of steps is one array expression.

A Node without input whose output is a constant, or a nengo process that is a
pure function of time with a known closed form (zero-order ``Piecewise`` with
fixed values, ``PresentInput``), need not be called once per step: its values
for all the chunk's times are computed at once, equal to what its step function
returns at each time (the same searches and index arithmetic on the same
floats).  Everything else (user functions, processes with state or noise) stays
a call per step, since only the call itself can say what it returns.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from nengo.node import Node
from nengo.processes import Piecewise, PresentInput, Process


def _piecewise(proc: Piecewise, size_out: int, ts: np.ndarray, dt: float) -> np.ndarray | None:
    if proc.interpolation != "zero":
        return None
    tp, yp = zip(*sorted(proc.data.items()))
    if any(callable(v) for v in yp):
        return None
    # row 0: before the first point the step returns zeros
    values = np.stack([np.zeros(size_out)] + [np.broadcast_to(np.asarray(v, np.float64), (size_out,))
                                               for v in yp])
    ti = np.clip(np.searchsorted(tp, ts + 0.5 * dt) - 1, -1, len(yp) - 1)
    return values[ti + 1]


def _present_input(proc: PresentInput, size_out: int, ts: np.ndarray, dt: float) -> np.ndarray | None:
    n = len(proc.inputs)
    inputs = np.asarray(proc.inputs, np.float64).reshape(n, -1)
    # int() of the step function truncates toward zero, as astype does
    i = ((ts - dt) / float(proc.presentation_time) + 1e-7).astype(np.int64)
    return np.ascontiguousarray(np.broadcast_to(inputs[i % n], (len(ts), size_out)))


#: process type -> ``f(process, size_out, ts, dt)``: its outputs at ``ts`` (None: not vectorisable)
VECTORISED: dict[type, Callable[..., np.ndarray | None]] = {
    Piecewise: _piecewise,
    PresentInput: _present_input,
}


def may_table(node: Node) -> bool:
    """Whether ``node``'s output kind can have a whole-chunk form (constant or a registered process)."""
    out = node.output
    if isinstance(out, Process):
        return type(out) in VECTORISED
    return out is not None and not callable(out)


def table(node: Node, ts: np.ndarray, dt: float,
          check: Callable[[Node, Any, int], np.ndarray]) -> np.ndarray | None:
    """``node``'s outputs at times ``ts`` (``len(ts) x size_out``), or ``None`` when it must be called.

    ``check(node, value, size_out)`` validates a constant output as the per-step
    path does (:func:`.host.check_output`); process outputs are not checked, as there.
    """
    out: Any = node.output
    size_out = node.size_out
    if isinstance(out, Process):
        fn = VECTORISED.get(type(out))
        return None if fn is None else fn(out, size_out, ts, dt)
    value = check(node, out, size_out)
    return np.repeat(value[None], len(ts), axis=0)

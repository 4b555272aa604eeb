"""PES updates kept as their two factors instead of a materialised ``delta``.

nengo builds PES as ``SimPES``, which *updates* ``delta = alpha * outer(error,
pre_filtered)``, and a ``Copy(delta, weights, inc=True)`` that adds it to the
weights at the start of the next step. ``delta`` is therefore loop state of the
weights' full size: with a minibatch that is a ``(post, pre, batch)`` tensor
written and read back every step on top of the weights themselves (26 MB per
step for a 64-d ensemble at batch 32), which made learning memory-bound.

Here the two factors (``alpha * error`` and ``pre_filtered``, a few kB) are the
loop state instead, and the weights get their outer product directly. The
arithmetic is the same product in the same step, so results match nengo's to
rounding. The rewrite applies only where nothing but that one Copy reads
``delta`` and ``delta`` is not probed; every other case keeps nengo's operators.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable

import numpy as np
from nengo.builder.learning_rules import SimPES
from nengo.builder.operator import Copy, Operator
from nengo.builder.signal import Signal

from ._tf import tf
from .learning_builders import _vec
from .op_builders import OpBuilder, StepContext
from .registry import OPS


class KeepPESFactors(Operator):
    """Updates ``scaled_error = alpha * error`` and ``pre = pre_filtered`` (replaces SimPES).

    Parameters
    ----------
    pes : SimPES
        The operator replaced.
    scaled_error, pre : Signal
        New state signals holding the factors of nengo's ``delta``.
    """

    def __init__(self, pes: SimPES, scaled_error: Signal, pre: Signal) -> None:
        super().__init__(tag=f"factors of {pes.delta}")
        self.learning_rate = pes.learning_rate
        self.sets, self.incs = [], []
        self.reads = [pes.pre_filtered, pes.error]
        self.updates = [scaled_error, pre]

    @property
    def pre_filtered(self) -> Signal:
        return self.reads[0]

    @property
    def error(self) -> Signal:
        return self.reads[1]

    @property
    def scaled_error(self) -> Signal:
        return self.updates[0]

    @property
    def pre(self) -> Signal:
        return self.updates[1]

    def alpha(self, dt: float) -> float:
        """nengo's PES factor ``-learning_rate * dt / n_pre`` (same rounding)."""
        return -self.learning_rate * dt / self.pre_filtered.shape[0]

    def make_step(self, signals, dt, rng):
        pre_filtered, error = signals[self.pre_filtered], signals[self.error]
        scaled, pre = signals[self.scaled_error], signals[self.pre]
        alpha = self.alpha(dt)

        def step_keep_pes_factors():
            scaled[...] = alpha * error
            pre[...] = pre_filtered

        return step_keep_pes_factors


class AddOuterProduct(Operator):
    """``target += outer(scaled_error, pre)`` (replaces the Copy of ``delta``)."""

    def __init__(self, scaled_error: Signal, pre: Signal, target: Signal, tag: str | None = None) -> None:
        super().__init__(tag=tag)
        self.sets, self.updates = [], []
        self.reads = [scaled_error, pre]
        self.incs = [target]

    @property
    def scaled_error(self) -> Signal:
        return self.reads[0]

    @property
    def pre(self) -> Signal:
        return self.reads[1]

    @property
    def target(self) -> Signal:
        return self.incs[0]

    def make_step(self, signals, dt, rng):
        err, pre, target = signals[self.scaled_error], signals[self.pre], signals[self.target]

        def step_add_outer_product():
            target[...] += np.outer(err, pre).reshape(target.shape)

        return step_add_outer_product


def factor_pes_deltas(operators: Iterable, keep: Iterable[Signal] = ()) -> list:
    """``operators`` with each eligible SimPES/Copy pair replaced (same positions).

    Parameters
    ----------
    operators
        Operators in step order (after nengo's optimizer).
    keep
        Signals that must stay materialised (e.g. probed ones): a ``delta``
        sharing a base with any of them is left alone.
    """
    ops = list(operators)
    kept = {sig.base for sig in keep}
    readers: dict = defaultdict(list)
    writers: dict = defaultdict(list)
    for op in ops:
        for sig in op.reads:
            readers[sig.base].append(op)
        for sig in list(op.sets) + list(op.incs) + list(op.updates):
            writers[sig.base].append(op)
    replace: dict = {}
    for op in ops:
        if not isinstance(op, SimPES):
            continue
        delta = op.delta
        base = delta.base
        users = readers[base]
        if base in kept or writers[base] != [op] or len(users) != 1 or base.size != delta.size:
            continue
        copy = users[0]
        if not (isinstance(copy, Copy) and copy.inc and copy.src is delta):
            continue
        if copy.src_slice is not None or copy.dst_slice is not None:
            continue
        if delta.shape != (op.error.size, op.pre_filtered.size):
            continue
        dtype = np.result_type(delta.dtype, np.float32)
        scaled = Signal(np.zeros(op.error.size, dtype=dtype), name=f"{delta.name}.scaled_error")
        pre = Signal(np.zeros(op.pre_filtered.size, dtype=dtype), name=f"{delta.name}.pre")
        replace[op] = KeepPESFactors(op, scaled, pre)
        replace[copy] = AddOuterProduct(scaled, pre, copy.dst, tag=copy.tag)
    return [replace.get(op, op) for op in ops]


def loop_layout(operators: Iterable) -> dict:
    """``SignalLayout`` keyword arguments for the bases this rewrite introduced.

    ``batch_major``: bases only :class:`AddOuterProduct` writes (per-sample
    learned weights: their outer-product update and their matvec become plain
    batched operations) and bases only :class:`KeepPESFactors` writes (the
    factors, which that update then reads contiguously). ``flat``: the factors,
    set each step from batch-last values (see ``SignalLayout(flat=...)``).
    """
    writers: dict = defaultdict(set)
    for op in operators:
        for sig in list(op.sets) + list(op.incs) + list(op.updates):
            writers[sig.base].add(type(op))
    weights = [base for base, kinds in writers.items() if kinds == {AddOuterProduct}]
    factors = [base for base, kinds in writers.items() if kinds == {KeepPESFactors}]
    return {"batch_major": weights + factors, "flat": factors}


@OPS.register(KeepPESFactors)
class KeepPESFactorsBuilder(OpBuilder):
    """Stores ``alpha * error`` and ``pre_filtered`` for the next step."""

    def step(self, sc: StepContext) -> None:
        st = sc.state
        op = self.op
        st.write(op.scaled_error, op.alpha(self.ctx.dt) * _vec(st, op.error))
        st.write(op.pre, _vec(st, op.pre_filtered))


@OPS.register(AddOuterProduct)
class AddOuterProductBuilder(OpBuilder):
    """``target += scaled_error (x) pre`` per sample."""

    def step(self, sc: StepContext) -> None:
        st = sc.state
        op = self.op
        if st.layout.is_batch_major(op.target):
            # the factors are batch-major too: a transpose fused into this update
            # would read them with a stride (3x slower at 16 x 800 x 16)
            err = st.read_batch_major(op.scaled_error)
            pre = st.read_batch_major(op.pre)
            outer = err[:, :, None] * pre[:, None, :]
            st.write_batch_major(op.target, tf.reshape(outer, (st.batch, -1)), "inc")
            return
        err = _vec(st, op.scaled_error)
        pre = _vec(st, op.pre)
        outer = err[:, None, :] * pre[None, :, :]
        st.write(op.target, tf.reshape(outer, tuple(op.target.shape) + (st.batch,)), "inc")

"""Rank-one learning updates kept as their factors instead of a materialised ``delta``.

nengo builds PES, BCM and Oja as a rule operator (``SimPES``, ``SimBCM``,
``SimOja``) that *updates* ``delta``, an outer product of two vectors (Oja adds
a decay of the weights' rows), and a ``Copy(delta, weights, inc=True)`` that adds
it to the weights at the start of the next step. ``delta`` is therefore loop
state of the weights' full size: with a minibatch that is a ``(post, pre,
batch)`` tensor written and read back every step on top of the weights
themselves, which made learning memory-bound.

Here the factors (a few kB: the scaled post-side vector, ``pre_filtered`` and,
for Oja, the row decay) are the loop state instead, and the weights get their
update directly:

- PES: ``W += outer(-lr dt / n_pre * error, pre)``;
- BCM: ``W += outer(lr dt * post * (post - theta), pre)``;
- Oja: ``W += outer(lr dt * post, pre) - beta * lr dt * post**2 [:, None] * W``.

The arithmetic is the same product in the same step, so results match nengo's
to rounding. The rewrite applies only where nothing but that one Copy reads
``delta`` and ``delta`` is not probed; Oja's decay reads the weights, so there
the Copy must also be the weights' only writer (the decay then sees exactly the
weights nengo's ``SimOja`` read). Every other case keeps nengo's operators.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Sequence

import numpy as np
from nengo.builder.learning_rules import SimBCM, SimOja, SimPES
from nengo.builder.operator import Copy, Operator
from nengo.builder.signal import Signal

from nhw.backends.tensorflow._tf import tf
from nhw.backends.tensorflow.builders.learning_builders import _vec
from nhw.backends.tensorflow.builders.op_builders import BuildContext, OpBuilder, StepContext
from nhw.backends.tensorflow.registry import OPS, Registry
from nhw.backends.tensorflow.runtime.signals import writers_by_base


class KeepFactors(Operator):
    """Updates the factors of a rule's rank-one ``delta`` (replaces the rule's operator).

    Subclasses name the rule operator's inputs (:attr:`inputs`) and compute the
    factors from them (:meth:`values`), with array operations that work on
    numpy arrays (nengo's reference simulator) and TensorFlow tensors alike.

    Parameters
    ----------
    rule : Operator
        The operator replaced (``SimPES``, ``SimBCM`` or ``SimOja``).
    factors : list of Signal
        New state signals: the scaled post-side vector, the pre-side vector and,
        where the rule decays the weights, the per-row decay.
    """

    #: names of the rule operator's signals that :meth:`values` takes
    inputs: tuple = ()
    #: whether the update scales the weights' rows (then it reads the weights)
    decays = False

    def __init__(self, rule: Operator, factors: Sequence[Signal]) -> None:
        super().__init__(tag=f"factors of {rule.delta}")
        self.learning_rate = rule.learning_rate
        self.n_pre = rule.pre_filtered.shape[0]
        self.sets, self.incs = [], []
        self.reads = [rule.pre_filtered] + [getattr(rule, name) for name in self.inputs]
        self.updates = list(factors)

    @classmethod
    def post_size(cls, rule: Operator) -> int:
        """Length of the post-side factor (the rows of ``delta``)."""
        return getattr(rule, cls.inputs[0]).size

    @property
    def pre_filtered(self) -> Signal:
        return self.reads[0]

    @property
    def scaled(self) -> Signal:
        return self.updates[0]

    @property
    def pre(self) -> Signal:
        return self.updates[1]

    @property
    def decay(self) -> Signal | None:
        return self.updates[2] if len(self.updates) > 2 else None

    def values(self, dt: float, *inputs) -> tuple:
        """``(scaled,)`` or ``(scaled, decay)`` from the rule's :attr:`inputs`."""
        raise NotImplementedError

    def make_step(self, signals, dt, rng):
        ins = [signals[s] for s in self.reads[1:]]
        pre_filtered = signals[self.pre_filtered]
        outs = [signals[s] for s in self.updates]

        def step_keep_factors():
            vals = self.values(dt, *ins)
            outs[0][...] = vals[0]
            outs[1][...] = pre_filtered
            if len(outs) > 2:
                outs[2][...] = vals[1]

        return step_keep_factors


#: rule operator type -> its KeepFactors subclass
FACTOR_RULES = Registry("learning rule with rank-one updates")


@FACTOR_RULES.register(SimPES)
class KeepPESFactors(KeepFactors):
    """PES: ``scaled = -learning_rate * dt / n_pre * error`` (nengo's rounding)."""

    inputs = ("error",)

    def values(self, dt, error):
        return ((-self.learning_rate * dt / self.n_pre) * error,)


@FACTOR_RULES.register(SimBCM)
class KeepBCMFactors(KeepFactors):
    """BCM: ``scaled = learning_rate * dt * post * (post - theta)``."""

    inputs = ("post_filtered", "theta")

    def values(self, dt, post, theta):
        return ((self.learning_rate * dt) * post * (post - theta),)


@FACTOR_RULES.register(SimOja)
class KeepOjaFactors(KeepFactors):
    """Oja: ``scaled = learning_rate * dt * post``, ``decay = beta * learning_rate * dt * post**2``."""

    inputs = ("post_filtered",)
    decays = True

    def __init__(self, rule: SimOja, factors: Sequence[Signal]) -> None:
        super().__init__(rule, factors)
        self.beta = rule.beta

    def values(self, dt, post):
        alpha = self.learning_rate * dt
        return alpha * post, self.beta * (alpha * post * post)


class AddOuterProduct(Operator):
    """``target += outer(scaled, pre) [- decay[:, None] * target]`` (replaces the Copy of ``delta``)."""

    def __init__(
        self, scaled: Signal, pre: Signal, target: Signal, decay: Signal | None = None, tag: str | None = None
    ) -> None:
        super().__init__(tag=tag)
        self.sets, self.updates = [], []
        self.reads = [scaled, pre] + ([decay] if decay is not None else [])
        self.incs = [target]

    @property
    def scaled(self) -> Signal:
        return self.reads[0]

    @property
    def pre(self) -> Signal:
        return self.reads[1]

    @property
    def decay(self) -> Signal | None:
        return self.reads[2] if len(self.reads) > 2 else None

    @property
    def target(self) -> Signal:
        return self.incs[0]

    def make_step(self, signals, dt, rng):
        err, pre, target = signals[self.scaled], signals[self.pre], signals[self.target]
        decay = None if self.decay is None else signals[self.decay]

        def step_add_outer_product():
            delta = np.outer(err, pre)
            if decay is not None:
                delta -= decay[:, None] * target.reshape(delta.shape)
            target[...] += delta.reshape(target.shape)

        return step_add_outer_product


def _same(a: Signal, b: Signal) -> bool:
    return a is b or (
        a.base is b.base and a.offset == b.offset and a.shape == b.shape and a.elemstrides == b.elemstrides
    )


def factor_outer_deltas(operators: Iterable, keep: Iterable[Signal] = ()) -> list:
    """``operators`` with each eligible rule/Copy pair replaced (same positions).

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
    for op in ops:
        for sig in op.reads:
            readers[sig.base].append(op)
    writers = defaultdict(list, writers_by_base(ops))
    replace: dict = {}
    for op in ops:
        kind = FACTOR_RULES.lookup(type(op))
        if kind is None:
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
        n_post = kind.post_size(op)
        if delta.shape != (n_post, op.pre_filtered.size):
            continue
        if kind.decays and (writers[copy.dst.base] != [copy] or not _same(copy.dst, op.weights)):
            continue
        dtype = np.result_type(delta.dtype, np.float32)
        names = ("scaled", "pre", "decay")[: 3 if kind.decays else 2]
        sizes = (n_post, op.pre_filtered.size, n_post)
        factors = [Signal(np.zeros(n, dtype=dtype), name=f"{delta.name}.{name}") for name, n in zip(names, sizes)]
        replace[op] = kind(op, factors)
        replace[copy] = AddOuterProduct(factors[0], factors[1], copy.dst, decay=factors[2] if kind.decays else None,
                                        tag=copy.tag)
    return [replace.get(op, op) for op in ops]


def loop_layout(operators: Iterable) -> dict:
    """``SignalLayout`` keyword arguments for the bases this rewrite introduced.

    ``batch_major``: bases only :class:`AddOuterProduct` writes (per-sample
    learned weights: their outer-product update and their matvec become plain
    batched operations) and bases only a :class:`KeepFactors` writes (the
    factors, which that update then reads contiguously). ``flat``: the factors,
    set each step from batch-last values (see ``SignalLayout(flat=...)``).
    ``matrices``: the weights, held as matrices where a loop variable is exactly one.
    """
    operators = list(operators)
    writers = {base: {type(op) for op in ops} for base, ops in writers_by_base(operators).items()}
    weights = [base for base, kinds in writers.items() if kinds == {AddOuterProduct}]
    factors = [
        base for base, kinds in writers.items() if len(kinds) == 1 and issubclass(next(iter(kinds)), KeepFactors)
    ]
    matrices = [op.target for op in operators if isinstance(op, AddOuterProduct)]
    return {"batch_major": weights + factors, "flat": factors, "matrices": matrices}


@OPS.register(KeepFactors)
class KeepFactorsBuilder(OpBuilder):
    """Stores a rule's factors (scaled post-side vector, ``pre_filtered``, decay) for the next step."""

    def step(self, sc: StepContext) -> None:
        st = sc.state
        op = self.op
        vals = op.values(self.ctx.dt, *[_vec(st, sig) for sig in op.reads[1:]])
        st.write(op.scaled, vals[0])
        st.write(op.pre, _vec(st, op.pre_filtered))
        if op.decay is not None:
            st.write(op.decay, vals[1])


#: per-sample weights of at least this many bytes (a minibatch part's) get their update
#: in place (``signals.add_in_place``); smaller ones stay one kernel per step
IN_PLACE_BYTES = 256 << 10


@OPS.register(AddOuterProduct)
class AddOuterProductBuilder(OpBuilder):
    """``target += scaled (x) pre [- decay * target]`` per sample (decay: batch-major weights only)."""

    def __init__(self, op: AddOuterProduct, ctx: BuildContext) -> None:
        super().__init__(op, ctx)
        if op.decay is not None and not ctx.layout.is_batch_major(op.target):
            # a decaying rule's Copy was the weights' only writer, so loop_layout
            # always makes them batch-major; the batch-last path has no decay
            raise RuntimeError(f"{op}: decaying outer-product update on weights that are not batch-major")

    def step(self, sc: StepContext) -> None:
        st = sc.state
        op = self.op
        if st.layout.is_batch_major(op.target):
            # the factors are batch-major too: a transpose fused into this update
            # would read them with a stride (3x slower at 16 x 800 x 16)
            err = st.read_batch_major(op.scaled)
            pre = st.read_batch_major(op.pre)
            delta = err[:, :, None] * pre[:, None, :]
            if op.decay is not None:
                w = tf.reshape(st.read_batch_major(op.target), (st.batch, op.scaled.size, -1))
                delta = delta - st.read_batch_major(op.decay)[:, :, None] * w
            # large weights are updated in their own buffer (signals.add_in_place); a
            # decay reads the old weights, which would then need a copy
            in_place = (
                op.decay is None and not sc.training
                and st.batch * op.target.size * st.layout.np_dtype.itemsize >= IN_PLACE_BYTES
            )
            st.write_batch_major(op.target, tf.reshape(delta, (st.batch, -1)), "inc", in_place=in_place)
            return
        err = _vec(st, op.scaled)
        pre = _vec(st, op.pre)
        delta = err[:, None, :] * pre[None, :, :]
        st.write(op.target, tf.reshape(delta, tuple(op.target.shape) + (st.batch,)), "inc")

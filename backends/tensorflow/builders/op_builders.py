"""Builders for nengo's core operators (Reset, Copy, ElementwiseInc, DotInc, ...).

Each builder is constructed once per (already merged) operator with the static
information it needs, then :meth:`OpBuilder.step` is traced into the loop body.
Shapes inside the loop put the minibatch last: a signal of shape ``s`` is a
tensor of shape ``(*s, batch)``; constants have no batch axis.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nhw.backends.tensorflow._tf import tf
from nengo.builder.operator import (
    BsrDotInc,
    Copy,
    DotInc,
    ElementwiseInc,
    Reset,
    SparseDotInc,
    TimeUpdate,
)

from nhw.errors import UnsupportedFeatureError
from nhw.backends.tensorflow.registry import OPS
from nhw.backends.tensorflow.runtime.signals import SignalLayout, StepState


@dataclass
class BuildContext:
    """Static information shared by all builders of one simulator."""

    layout: SignalLayout
    dt: float
    batch: int
    dtype: Any
    #: columns of the per-step host input assigned to each fed operator / signal
    host_columns: dict = field(default_factory=dict)
    #: nengo's numpy step functions of host-run operators (rebuilt on reset)
    host_steps: dict = field(default_factory=dict)
    #: nengo's numpy SignalDict those step functions read and write
    host_signals: Any = None
    #: exception raised by the last host callback (re-raised by the simulator)
    host_error: Any = None
    #: Keras layers owned by builders (TensorNodes); the simulator's Keras model
    #: tracks them so their weights train and are saved with the parameters
    keras_layers: list = field(default_factory=list)
    #: how spiking neurons train ("rate" or "spiking_aware", see training_neurons)
    training_mode: str = "rate"
    #: SoftLIFRate smoothing for training LIF neurons (None: plain LIFRate)
    lif_smoothing: float | None = None
    #: surrogate gradient of spiking-aware training and its slope (see surrogates)
    surrogate: str | None = None
    surrogate_slope: float | None = None
    #: hardware target whose neuron models training uses (None: nengo's own; see chip_neurons)
    target: str | None = None
    #: with ``target``: whether spiking inference runs the target's neuron models too
    #: (None or True: yes; False: nengo's own; see chip_neurons.inference_step)
    chip_inference: bool | None = None


@dataclass
class StepContext:
    """What a builder sees while one time step is traced."""

    state: StepState
    #: integer step number being computed (1-based, like nengo's ``step`` signal)
    step: Any
    #: simulation time of this step (``step * dt``) in float64
    time: Any
    #: per-step host input, shape ``(n_columns, batch)``
    host: Any
    #: int64 seed pair for stateless random ops of this step
    seed: Any
    #: True while tracing a training step (Keras ``training=True``): spiking
    #: neurons then use their rate model or surrogate gradient, Keras layers
    #: (e.g. BatchNormalization, Dropout) their training behaviour
    training: bool = False


class OpBuilder:
    """Base class: lower one nengo operator into TensorFlow ops.

    Parameters
    ----------
    op : nengo.builder.Operator
        The operator (possibly merged by nengo's optimizer).
    ctx : BuildContext
        Shared build information.
    """

    #: False for builders that call back into Python (no XLA for the loop then)
    xla_ok = True
    #: False where one sample's result can depend on the others or on how many
    #: samples are computed together (random draws shaped by the minibatch,
    #: user TensorFlow code); the minibatch is then never split into parts
    samples_independent = True

    def __init__(self, op, ctx: BuildContext) -> None:
        self.op = op
        self.ctx = ctx

    def step(self, sc: StepContext) -> None:
        """Trace one step of the operator."""
        raise NotImplementedError


@OPS.register(TimeUpdate)
class TimeUpdateBuilder(OpBuilder):
    """Writes the step counter and time computed by the loop itself.

    The loop owns time (an exact integer step times dt in float64) so
    ``trange`` and ``time`` stay exact regardless of dtype or unrolling.
    """

    def step(self, sc: StepContext) -> None:
        st = sc.state
        if st.layout.is_state(self.op.step):
            st.write(self.op.step, tf.reshape(sc.step, (1,) * len(self.op.step.shape) + (1,)))
        if st.layout.is_state(self.op.time):
            st.write(self.op.time, tf.reshape(sc.time, (1,) * len(self.op.time.shape) + (1,)))


@OPS.register(Reset)
class ResetBuilder(OpBuilder):
    """``dst[...] = value``."""

    def __init__(self, op, ctx: BuildContext) -> None:
        super().__init__(op, ctx)
        dtype = ctx.layout.value_dtype(op.dst.base)
        self.value = np.full(op.dst.shape + (1,), op.value, dtype=dtype)

    def step(self, sc: StepContext) -> None:
        sc.state.write(self.op.dst, self.value, "set")


@OPS.register(Copy)
class CopyBuilder(OpBuilder):
    """``dst[dst_slice] (+)= src[src_slice]``, including advanced indexing."""

    def __init__(self, op, ctx: BuildContext) -> None:
        super().__init__(op, ctx)

        def flat_idx(sig, sl):
            if sl is None:
                return None
            full = np.arange(sig.size).reshape(sig.shape)
            return np.asarray(full[sl]).reshape(-1)

        self.src_idx = flat_idx(op.src, op.src_slice)
        self.dst_idx = flat_idx(op.dst, op.dst_slice)
        ctx.layout.register_access(op.src, self.src_idx)
        ctx.layout.register_access(op.dst, self.dst_idx)

    def step(self, sc: StepContext) -> None:
        st = sc.state
        val = st.read_flat(self.op.src, self.src_idx)
        if not st.layout.is_state(self.op.src):
            val = val[:, None]
        n = len(self.dst_idx) if self.dst_idx is not None else self.op.dst.size
        val = tf.broadcast_to(val, (n, st.batch))
        st.write_flat(self.op.dst, val, "inc" if self.op.inc else "set", self.dst_idx)


def _as2d_shape(shape: tuple) -> tuple:
    # nengo broadcasts ElementwiseInc operands by left-padding shapes to 2-D
    shape = tuple(shape)
    return (1,) * (2 - len(shape)) + shape if len(shape) < 2 else shape


@OPS.register(ElementwiseInc)
class ElementwiseIncBuilder(OpBuilder):
    """``Y += A * X`` with nengo's broadcasting rules."""

    def step(self, sc: StepContext) -> None:
        st = sc.state
        op = self.op

        def get(sig):
            v = st.read(sig, batched=True)
            return tf.reshape(v, _as2d_shape(sig.shape) + (v.shape[-1],))

        out_shape = _as2d_shape(op.Y.shape)
        prod = get(op.A) * get(op.X)
        prod = tf.broadcast_to(prod, out_shape + (st.batch,))
        st.write(op.Y, tf.reshape(prod, tuple(op.Y.shape) + (st.batch,)), "inc")


def _batched_matvec(a, x, axis: int):
    """``sum_j a[..., j, b] * x[..., j, b]`` over ``axis`` (the contracted one) of ``a``.

    ``x`` lacks ``a``'s output axis (the one before ``axis``); it is broadcast
    along it. Used for per-sample (learned) matrices with the batch axis last.
    """
    return tf.reduce_sum(a * tf.expand_dims(x, axis - 1), axis=axis)


#: matrices with at least this many rows get their (state) operand materialized
_MATERIALIZE_ROWS = 8


def _reduces_per_row(batch_last_matrix: bool, batch: int) -> bool:
    """Whether a matrix product is lowered as an elementwise multiply and a reduction.

    Only then does XLA fuse the vector's producer into the product and recompute
    it once per matrix row (so the vector is worth materializing first): for a
    per-sample matrix with the batch axis last (:func:`_batched_matvec`), and for
    one sample, where XLA may rewrite a matrix-vector ``dot`` that way. A ``dot``
    of a matrix and a batch of vectors is a library call that reads its operands
    once, so a materialized operand there only costs an extra pass.
    """
    return batch_last_matrix or batch == 1


def _materialize(x, sc: "StepContext"):
    """``x`` unchanged, but computed once rather than inside its consumer.

    XLA fuses cheap elementwise producers (e.g. the LIF spike test) into every
    consumer, so ``A * x`` over a ``(rows, cols, batch)`` matrix would redo the
    producer once per row. Dividing by a runtime 1.0 (``step / step``, exact in
    IEEE arithmetic, step >= 1) puts a divide in between, which XLA treats as
    expensive and does not duplicate.
    """
    if not x.dtype.is_floating:
        return x  # integer division would change the dtype
    step = tf.cast(sc.step, x.dtype)
    return x / (step / step)


def _dot(a, a_batched: bool, x, x_batched: bool, a_ndim: int, x_ndim: int):
    """numpy-style ``dot`` of ``a`` and ``x`` with optional trailing batch axes."""
    if a_ndim == 0 or x_ndim == 0:
        if not a_batched and x_batched:
            a = tf.reshape(a, tuple(a.shape) + (1,))
        if a_batched and not x_batched:
            x = tf.reshape(x, tuple(x.shape) + (1,))
        if a_ndim == 0 and x_ndim > 0:
            a = tf.reshape(a, (1,) * x_ndim + tuple(a.shape[a_ndim:]))
        if x_ndim == 0 and a_ndim > 0:
            x = tf.reshape(x, (1,) * a_ndim + tuple(x.shape[x_ndim:]))
        return a * x
    if a_ndim == 2 and x_ndim == 1 and not a_batched:
        return tf.matmul(a, x if x_batched else x[:, None])
    if a_batched and x_batched and a_ndim == 2 and x_ndim == 1 and a.shape[-1] != 1:
        # a learned matrix per sample (``(i, j, batch)``): a dot_general with
        # the batch axis last makes XLA transpose the whole matrix every step;
        # multiply-and-reduce streams it once in its stored layout
        return _batched_matvec(a, x, axis=1)
    a_idx = "ij"[2 - a_ndim:]
    x_idx = "jk"[: x_ndim]
    out = a_idx[:-1] + x_idx[1:]
    lhs = a_idx + ("b" if a_batched else "")
    rhs = x_idx + ("b" if x_batched else "")
    out += "b" if (a_batched or x_batched) else ""
    return tf.einsum(f"{lhs},{rhs}->{out}", a, x)


@OPS.register(DotInc)
class DotIncBuilder(OpBuilder):
    """``Y += dot(A, X)`` (A may be batched when it is learned)."""

    def step(self, sc: StepContext) -> None:
        st = sc.state
        op = self.op
        lay = st.layout
        a_b, x_b = lay.is_state(op.A), lay.is_state(op.X)
        x = st.read(op.X)
        batch_major = a_b and lay.is_batch_major(op.A)
        if (
            x_b and op.A.ndim == 2 and op.X.ndim == 1 and op.A.shape[0] >= _MATERIALIZE_ROWS
            and _reduces_per_row(a_b and not batch_major, st.batch)
        ):
            # each output row would otherwise recompute X's producer
            x = _materialize(x, sc)
        if batch_major and op.A.ndim == 2 and op.X.ndim == 1:
            a = tf.reshape(st.read_batch_major(op.A), (st.batch,) + tuple(op.A.shape))
            res = tf.transpose(tf.linalg.matvec(a, tf.transpose(x) if x_b else x))
            st.write(op.Y, tf.reshape(res, tuple(op.Y.shape) + (st.batch,)), "inc")
            return
        res = _dot(st.read(op.A), a_b, x, x_b, op.A.ndim, op.X.ndim)
        if not (a_b or x_b):
            res = res[..., None]
        st.write(op.Y, tf.reshape(res, tuple(op.Y.shape) + (-1,)), "inc")


@OPS.register(SparseDotInc)
class SparseDotIncBuilder(OpBuilder):
    """``Y += A @ X`` with a constant sparse ``A``."""

    def __init__(self, op, ctx: BuildContext) -> None:
        super().__init__(op, ctx)
        if ctx.layout.is_state(op.A):
            raise UnsupportedFeatureError(
                f"tensorflow backend: {op}: sparse matrices that change during the "
                "simulation (learning on sparse transforms) are not supported"
            )
        A = op.A.initial_value
        if hasattr(A, "tocoo"):  # scipy sparse
            coo = A.tocoo()
            rows, cols, data, shape = coo.row, coo.col, coo.data, coo.shape
        else:  # nengo.transforms.SparseMatrix: (nnz, 2) indices
            idx = np.asarray(A.indices).reshape(-1, 2)
            rows, cols, data, shape = idx[:, 0], idx[:, 1], np.asarray(A.data), A.shape
        self.rows = np.asarray(rows, dtype=np.int32)
        self.cols = np.asarray(cols, dtype=np.int32)
        self.values = np.asarray(data, dtype=ctx.layout.np_dtype)[:, None]
        self.shape = tuple(int(s) for s in shape)

    def step(self, sc: StepContext) -> None:
        # gather + segment sum rather than tf.sparse: XLA compiles these
        st = sc.state
        x = st.read(self.op.X, batched=True)
        x = tf.broadcast_to(tf.reshape(x, (self.shape[1], -1)), (self.shape[1], st.batch))
        trained = st.params.get(self.op.A.base)  # the nonzero values, when trainable
        values = self.values if trained is None else tf.cast(trained, x.dtype)[:, None]
        contrib = values * tf.gather(x, self.cols, axis=0)
        y = tf.math.unsorted_segment_sum(contrib, self.rows, self.shape[0])
        st.write(self.op.Y, tf.reshape(y, tuple(self.op.Y.shape) + (st.batch,)), "inc")


#: layouts of a block range of a BsrDotInc's A (see BsrDotIncBuilder._a_parts)
_FIXED, _BATCH_LAST, _BATCH_FIRST = "fixed", "batch_last", "batch_first"


@OPS.register(BsrDotInc)
class BsrDotIncBuilder(OpBuilder):
    """Block-sparse ``Y += A @ X`` as a batched block matmul plus segment sum.

    nengo's optimizer produces these when it merges many DotIncs, so this is the
    hot path of most networks: one gather, one einsum, one segment sum.
    """

    def __init__(self, op, ctx: BuildContext) -> None:
        super().__init__(op, ctx)
        k, r, c = op.A.shape
        self.k, self.r, self.c = k, r, c
        indptr = np.asarray(op.indptr)
        self.n_rows = len(indptr) - 1
        self.rows = np.repeat(np.arange(self.n_rows), np.diff(indptr)).astype(np.int32)
        self.cols = np.asarray(op.indices, dtype=np.int32)
        self.n_cols = op.X.size // c
        # a block-diagonal layout (one block per row, in order) needs no segment sum
        self.diagonal = (
            self.n_rows == k
            and np.array_equal(self.rows, np.arange(k))
            and np.array_equal(self.cols, np.arange(k))
            and self.n_cols == k
        )

    def _a_parts(self, st: StepState):
        """Blocks of A as ``[(k0, k1, tensor, kind)]``.

        ``kind`` says how the tensor is laid out: ``_FIXED`` ``(k1-k0, r, c)``
        (shared by all samples), ``_BATCH_LAST`` ``(k1-k0, r, c, batch)`` or
        ``_BATCH_FIRST`` ``(batch, k1-k0, r, c)`` (learned weights the loop holds
        batch-major). A learned A spans several state segments; reading each block
        range from its own segment avoids concatenating the whole matrix every
        step, and blocks nothing writes (fixed decoders merged with learned ones)
        are constants: one shared matrix instead of a copy per sample.
        """
        op = self.op
        lay = st.layout
        if not lay.is_state(op.A):
            return [(0, self.k, st.read(op.A), _FIXED)]
        vidx = lay.indices(op.A)
        start = int(vidx[0])
        blk = self.r * self.c
        if not np.array_equal(vidx, np.arange(start, start + vidx.size)):
            return [(0, self.k, st.read(op.A), _BATCH_LAST)]
        cuts = {0, self.k}
        for s0, s1, _ in lay.segments(op.A.base):
            for edge in (s0, s1):
                off = edge - start
                if 0 < off < vidx.size:
                    if off % blk:
                        return [(0, self.k, st.read(op.A), _BATCH_LAST)]
                    cuts.add(off // blk)
        cuts = sorted(cuts)
        parts = []
        for k0, k1 in zip(cuts[:-1], cuts[1:]):
            lo, hi = start + k0 * blk, start + k1 * blk
            if lay.never_written(op.A.base, lo, hi):
                fixed = st.fixed(op.A.base, lo, hi)
                parts.append((k0, k1, tf.reshape(fixed, (k1 - k0, self.r, self.c)), _FIXED))
            elif lay.is_batch_major(op.A):
                flat = st.read_batch_major(op.A, np.arange(k0 * blk, k1 * blk))
                parts.append((k0, k1, tf.reshape(flat, (st.batch, k1 - k0, self.r, self.c)), _BATCH_FIRST))
            else:
                flat = st.read_flat(op.A, np.arange(k0 * blk, k1 * blk))
                parts.append((k0, k1, tf.reshape(flat, (k1 - k0, self.r, self.c, st.batch)), _BATCH_LAST))
        return parts

    def step(self, sc: StepContext) -> None:
        st = sc.state
        op = self.op
        x = st.read_flat(op.X)
        if not st.layout.is_state(op.X):
            x = x[:, None]
        xb = tf.reshape(x, (self.n_cols, self.c, -1))
        prods = []
        for k0, k1, A, kind in self._a_parts(st):
            if self.diagonal:
                xg = xb[k0:k1]
            else:
                xg = tf.gather(xb, self.cols[k0:k1], axis=0)
            if kind != _FIXED and _reduces_per_row(kind == _BATCH_LAST, st.batch):
                xg = _materialize(xg, sc)
            if kind == _BATCH_FIRST:
                # a batched dot over (batch, block); only the small x and y move
                y = tf.linalg.matvec(A, tf.transpose(xg, (2, 0, 1)))
                prods.append(tf.transpose(y, (1, 2, 0)))
            elif kind == _BATCH_LAST and st.batch > 1:
                # per-sample blocks: see _batched_matvec (no per-step transpose)
                prods.append(_batched_matvec(A, xg, axis=2))
            else:
                prods.append(tf.einsum(f"krc{'b' if kind == _BATCH_LAST else ''},kcb->krb", A, xg))
        if len(prods) > 1:
            # constant blocks times a constant X have no batch axis yet
            batch = max(int(p.shape[-1]) for p in prods)
            prods = [tf.broadcast_to(p, tuple(p.shape[:-1]) + (batch,)) for p in prods]
        prod = prods[0] if len(prods) == 1 else tf.concat(prods, axis=0)
        if not self.diagonal:
            prod = tf.math.unsorted_segment_sum(prod, self.rows, self.n_rows)
        prod = tf.broadcast_to(prod, (self.n_rows, self.r, st.batch))
        st.write_flat(op.Y, tf.reshape(prod, (-1, st.batch)), "inc")


def _register_simprobe() -> None:
    # nengo 4 emits SimProbe as a pure marker (its make_step does nothing); the
    # loop samples probe signals itself after every step
    try:
        from nengo.builder.probe import SimProbe
    except ImportError:  # pragma: no cover - older nengo
        return

    @OPS.register(SimProbe)
    class SimProbeBuilder(OpBuilder):
        """No-op: probes are recorded by the loop after each step."""

        def step(self, sc: StepContext) -> None:
            return None


_register_simprobe()

"""SimProcess and SimPyFunc lowering.

* Synapses (every :class:`nengo.LinearFilter` and :class:`nengo.synapses.Triangle`)
  run natively in the loop, on inputs of any rank.
* Input-free processes (WhiteNoise, FilteredNoise, BrownNoise, WhiteSignal,
  PresentInput, Piecewise, any user Process without input) and input-free Python
  Nodes do not depend on the simulation, so the simulator precomputes them on the
  host for a whole chunk of steps (see :mod:`.host`) using nengo's own step
  functions and the same random stream as the reference simulator; the loop just
  reads them from its per-step input (:class:`HostFedBuilder`).
* Python Nodes with inputs (and user Processes with inputs) call back into Python
  through ``tf.numpy_function`` (:class:`HostCallBuilder`); this is the only place
  the loop leaves TensorFlow, and it disables XLA for that simulator.
"""

from __future__ import annotations

import numpy as np

from nhw.backends.tensorflow._tf import tf
from nengo.builder.operator import SimPyFunc
from nengo.builder.processes import SimProcess
from nengo.synapses import LinearFilter, Triangle

from nhw.errors import UnsupportedFeatureError
from nhw.backends.tensorflow.passes.filter_merge import MergedLinearFilters, filter_form, lti_step
from nhw.backends.tensorflow.builders.op_builders import BuildContext, OpBuilder, StepContext
from nhw.backends.tensorflow.registry import OPS, PROCESSES, runs_natively


def _mode(op) -> str:
    return "inc" if getattr(op, "mode", "set") == "inc" else "set"


class HostFedBuilder(OpBuilder):
    """Writes a host-precomputed output (columns of the per-step input)."""

    def __init__(self, op, ctx: BuildContext, signal=None, mode: str | None = None) -> None:
        super().__init__(op, ctx)
        self.signal = signal if signal is not None else op.output
        self.mode = mode if mode is not None else _mode(op)
        self.cols = ctx.host_columns[self.key]

    @property
    def key(self):
        return self.op if self.op is not None else self.signal

    def step(self, sc: StepContext) -> None:
        if self.signal is None:
            return
        a, b = self.cols
        sc.state.write_flat(self.signal, sc.host[a:b], self.mode)


@PROCESSES.register(LinearFilter)
class LinearFilterBuilder:
    """State-space LTI filter (nengo's NoX / OneX / NoD / General step forms)."""

    #: filters of this builder on 1-D signals may run as one merged operator
    #: (:mod:`.filter_merge`)
    mergeable = True

    def __init__(self, op, ctx: BuildContext) -> None:
        self.X = X = op.state["X"]
        dtype = ctx.layout.np_dtype
        self.kind, A, B, C, D = filter_form(op.process, ctx.dt, X.shape)
        self.nx = A.shape[0]
        # coefficients broadcast against the state (nx, *input shape, batch)
        tail = (1,) * (op.input.ndim + 1)
        B, C = np.asarray(B, dtype=dtype).reshape(-1), np.asarray(C, dtype=dtype).reshape(-1)
        if self.kind == "onex":
            B = np.asarray([B.item() * C.item()], dtype=dtype)  # nengo's OneX folds C into B
        self.A = np.asarray(A, dtype=dtype).reshape(A.shape + tail)
        self.B = B.reshape(B.shape + tail)
        self.C = C.reshape(C.shape + tail)
        self.D = float(np.asarray(D).item()) if np.asarray(D).size == 1 else 0.0

    def __call__(self, sc: StepContext, op, u):
        st = sc.state
        X = None
        if self.kind != "nox":
            X = tf.broadcast_to(st.read(self.X, batched=True), (self.nx,) + tuple(u.shape))
        y, new = lti_step(self.kind, self.A, self.B, self.C, self.D, X, u, tf.reduce_sum)
        if X is not None:
            st.write(self.X, new)
        return y


@PROCESSES.register(Triangle)
class TriangleBuilder:
    """FIR triangle filter with a circular tap buffer, as nengo's Triangle."""

    def __init__(self, op, ctx: BuildContext) -> None:
        self.Y, self.Xs, self.Xi = op.state["Y"], op.state["X"], op.state["Xi"]
        n_taps, n0, ndiff = op.process._get_coefficients(ctx.dt)
        self.n_taps, self.n0, self.ndiff = n_taps, float(n0), float(ndiff)

    def __call__(self, sc: StepContext, op, u):
        st = sc.state
        Y = tf.broadcast_to(st.read(self.Y, batched=True), tuple(u.shape))
        X = tf.broadcast_to(st.read(self.Xs, batched=True), (self.n_taps,) + tuple(u.shape))
        Xi = st.read(self.Xi, batched=True)
        Y = Y + self.n0 * u - tf.reduce_sum(X, axis=0)
        Xi = tf.math.floormod(Xi + 1, self.n_taps)
        onehot = tf.one_hot(tf.cast(tf.reshape(Xi, (-1,))[0], tf.int32), self.n_taps, dtype=u.dtype)
        onehot = tf.reshape(onehot, (self.n_taps,) + (1,) * len(u.shape))
        X = X * (1 - onehot) + onehot * (self.ndiff * u)[None]
        st.write(self.Y, Y)
        st.write(self.Xs, X)
        st.write(self.Xi, Xi)
        return Y


@OPS.register(SimProcess)
class SimProcessBuilder(OpBuilder):
    """Synapses natively; input-free processes from the host feed."""

    def __init__(self, op, ctx: BuildContext) -> None:
        super().__init__(op, ctx)
        if op.input is None:
            self.impl = HostFedBuilder(op, ctx)
            return
        if not runs_natively(op):
            self.impl = HostCallBuilder(op, ctx)
            self.xla_ok = False
            return
        self.filt = PROCESSES.lookup(type(op.process))(op, ctx)
        self.impl = None

    def step(self, sc: StepContext) -> None:
        if self.impl is not None:
            self.impl.step(sc)
            return
        st = sc.state
        op = self.op
        u = tf.broadcast_to(st.read(op.input, batched=True), tuple(op.input.shape) + (st.batch,))
        u = tf.cast(u, st.layout.dtype)
        y = self.filt(sc, op, u)
        st.write(op.output, tf.reshape(y, tuple(op.output.shape) + (st.batch,)), _mode(op))


@OPS.register(SimPyFunc)
class SimPyFuncBuilder(OpBuilder):
    """Python Nodes: input-free ones are host-fed, the others call back into Python."""

    def __init__(self, op, ctx: BuildContext) -> None:
        super().__init__(op, ctx)
        if op.x is None:
            self.impl = HostFedBuilder(op, ctx)
        else:
            self.impl = HostCallBuilder(op, ctx)
            self.xla_ok = False

    def step(self, sc: StepContext) -> None:
        self.impl.step(sc)


class HostCallBuilder(OpBuilder):
    """Calls nengo's own numpy step function of ``op`` through ``tf.numpy_function``.

    The callback looks up the op's current step function in
    ``ctx.host_steps`` (rebuilt on every reset, like the reference simulator) and
    runs it once per minibatch element on the numpy signal views.
    """

    xla_ok = False

    def __init__(self, op, ctx: BuildContext) -> None:
        super().__init__(op, ctx)
        self.in_sigs = [s for s in op.reads if s is not getattr(op, "t", None)]
        self.out_sigs = list(op.sets) + list(op.incs) + list(op.updates)
        stateful = isinstance(op, SimProcess) and len(self.out_sigs) > 1
        if stateful and ctx.batch > 1:
            raise UnsupportedFeatureError(
                f"tensorflow backend: {op.process} is a user Process with input and "
                "internal state, which runs on the host and supports only "
                f"minibatch_size=1 (got {ctx.batch})"
            )

    def step(self, sc: StepContext) -> None:
        st = sc.state
        op = self.op
        ctx = self.ctx
        registry = ctx.host_steps  # type: ignore[attr-defined]
        signals = ctx.host_signals  # type: ignore[attr-defined]
        in_sigs, out_sigs = self.in_sigs, self.out_sigs
        t_sig = getattr(op, "t", None)
        mode = {id(s): "inc" for s in op.incs}
        np_dtype = st.layout.np_dtype

        def call(t, *xs):
            try:
                return run(t, *xs)
            except Exception as e:
                ctx.host_error = e
                raise

        def run(t, *xs):
            outs = [np.zeros(s.shape + (st.batch,), dtype=np_dtype) for s in out_sigs]
            for b in range(st.batch):
                if t_sig is not None:
                    signals[t_sig][...] = float(t)
                for s, x in zip(in_sigs, xs):
                    signals[s][...] = x[..., b]
                for s in out_sigs:
                    if mode.get(id(s)) == "inc":
                        signals[s][...] = 0
                registry[op]()
                for o, s in zip(outs, out_sigs):
                    o[..., b] = signals[s]
            # numpy_function needs at least one output to stay in the graph
            return outs if outs else [np.zeros(1, dtype=np_dtype)]

        xs = [
            tf.broadcast_to(st.read(s, batched=True), tuple(s.shape) + (st.batch,))
            for s in in_sigs
        ]
        n_out = max(1, len(out_sigs))
        t = tf.cast(tf.cast(sc.time, st.layout.dtype), tf.float64)
        outs = tf.numpy_function(call, [t] + xs, [st.layout.dtype] * n_out, stateful=True)
        if not out_sigs:
            # keep the side-effect call ordered before anything of the next step
            sc.state.tensors[0] = sc.state.tensors[0] + tf.cast(0 * tf.reduce_sum(outs[0]), sc.state.tensors[0].dtype)
            return
        for s, o in zip(out_sigs, outs):
            o = tf.reshape(o, tuple(s.shape) + (st.batch,))
            st.write(s, o, mode.get(id(s), "set"))


class HostNeuronsBuilder(HostCallBuilder):
    """Runs a neuron type's own numpy ``step`` through ``tf.numpy_function``.

    For :class:`~nengo.builder.neurons.SimNeurons` of a type without a
    TensorFlow step (see :func:`~.neuron_builders.register_neuron_step`). The
    neuron state travels with the loop state, not in the host signals: each
    call writes one minibatch element's input current *and state* into the
    numpy signals, steps, and reads output and new state back, so samples keep
    separate states and any minibatch size works. ``tf.numpy_function`` has no
    gradient, so nothing trains through these neurons.
    """

    def __init__(self, op, ctx: BuildContext) -> None:
        OpBuilder.__init__(self, op, ctx)
        state = list(op.state.values())
        self.in_sigs = [op.J] + state
        self.out_sigs = [op.output] + state


def _is_range(positions: np.ndarray, start: int = 0) -> bool:
    return bool(np.array_equal(positions, np.arange(start, start + positions.size)))


@OPS.register(MergedLinearFilters)
class MergedLinearFiltersBuilder(OpBuilder):
    """Many linear filters as one elementwise update (see :mod:`.filter_merge`)."""

    def __init__(self, op: MergedLinearFilters, ctx: BuildContext) -> None:
        super().__init__(op, ctx)
        # input parts are read one base at a time, in the order their elements
        # first appear; a gather puts them in filter order unless that is already it
        self.reads = sorted(op.input_plan, key=lambda entry: int(entry[1][0]))
        order = np.concatenate([p for _, p, _ in self.reads])
        self.perm = None if _is_range(order) else np.argsort(order, kind="stable").astype(np.int32)

    def step(self, sc: StepContext) -> None:
        st = sc.state
        op = self.op
        dtype = st.layout.dtype
        parts = []
        for cover, _, idx in self.reads:
            part = tf.cast(st.read_flat(cover, idx), dtype)
            parts.append(tf.broadcast_to(tf.reshape(part, (idx.size, -1)), (idx.size, st.batch)))
        u = parts[0] if len(parts) == 1 else tf.concat(parts, axis=0)
        if self.perm is not None:
            u = tf.gather(u, self.perm, axis=0)
        X = None
        if op.state is not None:
            X = tf.reshape(st.read_flat(op.state), (op.order, op.size, st.batch))
        y, new = op.advance(X, u, dtype=st.layout.np_dtype, reduce_sum=tf.reduce_sum)
        if op.state is not None:
            st.write_flat(op.state, tf.reshape(new, (-1, st.batch)))
        mode = _mode(op)
        for cover, positions, idx in op.output_plan:
            lo = int(positions[0])
            part = y[lo:lo + positions.size] if _is_range(positions, lo) else tf.gather(y, positions, axis=0)
            st.write_flat(cover, part, mode, idx=idx)

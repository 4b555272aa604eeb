"""Signal layout: where every nengo Signal lives inside the compiled loop.

nengo's optimizer has already merged signals into large contiguous base arrays, so
most views read a contiguous range of their base. *State* bases (written by some
operator or fed from the host) are batched with the minibatch as the trailing
axis; bases nothing writes are graph constants of shape ``(base.size,)``.
Batch-last keeps every dot product a plain ``matmul(A, X)`` and every view a slice
or gather on axis 0.

A state base is further cut into *segments* at the boundaries of the contiguous
views the operators use, and each segment is its own loop variable of shape
``(length, batch)``. Writing one view then replaces whole tensors instead of
rebuilding the merged base (a full copy per write), and most reads are the
segment tensor itself.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from nhw.backends.tensorflow._tf import tf


def writers_by_base(operators: Iterable) -> dict:
    """``{base: [operators that set, increment or update it]}``, in step order."""
    writers: dict = {}
    for op in operators:
        for sig in list(op.sets) + list(op.incs) + list(op.updates):
            writers.setdefault(sig.base, []).append(op)
    return writers


def view_indices(sig) -> np.ndarray:
    """Flat indices of ``sig``'s elements inside its base, in ``sig``'s C order.

    Parameters
    ----------
    sig : nengo.builder.Signal
        A base signal or a view of one.
    """
    base = sig.base
    if sig is base or not sig.is_view:
        return np.arange(base.size)
    idx = np.arange(base.size)
    item = idx.itemsize
    strided = np.lib.stride_tricks.as_strided(
        idx[sig.elemoffset:],
        shape=sig.shape,
        strides=tuple(s * item for s in sig.elemstrides),
    )
    return np.array(strided).reshape(-1)


def _contiguous(idx: np.ndarray) -> tuple[int, int] | None:
    if idx.size == 0:
        return None
    start = int(idx[0])
    if np.array_equal(idx, np.arange(start, start + idx.size)):
        return start, start + idx.size
    return None


def _take(flat, vidx: np.ndarray):
    """Elements ``vidx`` of a flat tensor: a slice when contiguous, else a gather."""
    rng = _contiguous(vidx)
    if rng is not None:
        return flat if rng == (0, int(flat.shape[0])) else flat[rng[0]:rng[1]]
    return tf.gather(flat, vidx)


class SignalLayout:
    """Decides which bases are batched state and how views map onto segments.

    Parameters
    ----------
    operators
        The operators in step order (after nengo's optimizer).
    host_bases
        Extra bases written from the host (Node feeds).
    dtype
        Floating point dtype of the simulation (``"float32"`` or ``"float64"``).
    batch_major
        State bases to hold as ``(batch, size)`` inside the time loop (they are
        ``(size, batch)`` everywhere else; see :meth:`to_loop_order`).
    flat
        Those of ``batch_major`` to hold as flat ``(batch * size,)`` vectors:
        bases set each step from batch-last values. XLA picks the physical layout
        of a 2-D loop variable itself and stores such a value as ``(size, batch)``
        again (cancelling the transpose into the layout), leaving its readers
        strided. Bases updated in place stay 2-D: flat, XLA computes their update
        twice (once per shape its readers use).
    flat_batch_last
        Batch-last state bases to carry as flat ``(size * batch,)`` vectors
        (same element order as ``(size, batch)``). XLA:CPU emits an
        elementwise loop over a ``(size, batch)`` tensor with the batch as its
        inner loop, and with 16 or 32 samples LLVM unrolls that loop into scalar
        code: a simple update ran 4x slower than on the same data flat.
        Worth it for bases that only elementwise updates write (neuron state
        and output, see ``neuron_builders.elementwise_neuron_bases``).
    matrices
        Signals of ``batch_major`` bases (per-sample learned weight matrices)
        whose loop variable, when it holds exactly that matrix, is kept
        ``(batch, rows, cols)``. With a ``(batch, rows * cols)`` loop variable,
        XLA:CPU lowered the matrix-vector product of the updated weights to a
        slow loop (measured 400 x 400 at batch 1: 330-550 us per step against
        25-34 us; 16 x 800 at batch 16: 94-108 against 41-45 us), whatever
        views the step takes of it.
    step_local
        State bases every step sets before using them (see
        :mod:`~.step_local`): the loop body passes their loop variables through
        unchanged, so nothing stores them, and between steps they hold their
        initial value.
    """

    def __init__(
        self, operators: Iterable, host_bases: Iterable, dtype: str, batch_major: Iterable = (), flat: Iterable = (),
        matrices: Iterable = (), flat_batch_last: Iterable = (), step_local: Iterable = (),
    ) -> None:
        self.dtype = tf.as_dtype(dtype)
        self.np_dtype = np.dtype(dtype)
        written = {}
        #: base -> index ranges ``(lo, hi)`` something writes during a run
        self._written: dict = {}
        for op in operators:
            for sig in list(op.sets) + list(op.incs) + list(op.updates):
                written[sig.base] = None
                self._mark_written(sig)
        for base in host_bases:
            written[base] = None
            self._mark_written(base)
        #: bases carried through the loop, in a fixed order
        self.state_bases = list(written)
        self._state_index = {b: i for i, b in enumerate(self.state_bases)}
        self._const_cache: dict = {}
        self._idx_cache: dict = {}
        self._cuts: dict = {b: {0, b.size} for b in self.state_bases}
        self._batch_major = {b for b in batch_major if b in self._state_index}
        self._flat = {b for b in flat if b in self._batch_major}
        self._flat_last = {b for b in flat_batch_last if b in self._state_index and b not in self._batch_major}
        self._matrices = [m for m in matrices if m.base in self._batch_major and m.ndim == 2]
        self._step_local = {b for b in step_local if b in self._state_index}
        self._segments: dict | None = None
        for op in operators:
            # an operator that reads or writes scattered elements of a range as
            # one access (merged synapses) names that range instead
            for sig in getattr(op, "layout_signals", op.all_signals):
                self.register_access(sig)

    # --- segments -----------------------------------------------------------
    def register_access(self, sig, idx: np.ndarray | None = None) -> None:
        """Note that ``sig`` (or elements ``idx`` of it) is read or written as a unit."""
        if self._segments is not None:
            raise RuntimeError("register_access after the layout was finalized")
        if not self.is_state(sig):
            return
        vidx = self.indices(sig)
        if idx is not None:
            vidx = vidx[np.asarray(idx, dtype=np.int64)]
        rng = _contiguous(vidx)
        if rng is not None:
            self._cuts[sig.base].update(rng)

    def finalize(self) -> None:
        """Fix the segments; call after every builder registered its accesses."""
        if self._segments is not None:
            return
        self._segments = {}
        self.slots: list = []  # (base, start, stop) per loop variable
        for base in self.state_bases:
            cuts = sorted(self._cuts[base])
            segs = []
            for a, b in zip(cuts[:-1], cuts[1:]):
                segs.append((a, b, len(self.slots)))
                self.slots.append((base, a, b))
            self._segments[base] = segs
        #: loop variables held batch-first inside the time loop
        self.batch_major_slots = frozenset(
            i for i, (base, _, _) in enumerate(self.slots) if base in self._batch_major
        )
        #: batch-major loop variables held flat
        self.flat_slots = frozenset(i for i, (base, _, _) in enumerate(self.slots) if base in self._flat)
        #: batch-last loop variables held flat
        self.flat_last_slots = frozenset(i for i, (base, _, _) in enumerate(self.slots) if base in self._flat_last)
        #: loop variables the loop body passes through unchanged (``step_local``)
        self.step_local_slots = frozenset(
            i for i, (base, _, _) in enumerate(self.slots) if base in self._step_local
        )
        #: batch-major loop variables held as ``(batch, rows, cols)`` matrices
        self.matrix_slots: dict = {}
        for m in self._matrices:
            rng = _contiguous(self.indices(m))
            for a, b, slot in self._segments[m.base]:
                if rng == (a, b) and slot not in self.flat_slots:
                    self.matrix_slots[slot] = tuple(int(k) for k in m.shape)

    def segments(self, base) -> list:
        """``[(start, stop, slot), ...]`` covering a state base."""
        self.finalize()
        return self._segments[base]

    # --- loop order ---------------------------------------------------------
    def is_batch_major(self, sig) -> bool:
        """Whether ``sig``'s base is held ``(batch, size)`` inside the time loop.

        Per-sample learned weights are: their matvec is then a plain batched dot
        (XLA:CPU otherwise materialises ``W * x`` for batch-last matrices, ~3x slower
        at 16 x 800 x 16), and the transposes happen once per loop, not per step.
        """
        return sig.base in self._batch_major

    def to_loop_order(self, tensors: list) -> list:
        """Loop variables as the time loop holds them: batch-major slots transposed, flat slots flattened."""
        self.finalize()
        return [self.loop_value(i, tf.transpose(t)) if i in self.batch_major_slots
                else tf.reshape(t, [-1]) if i in self.flat_last_slots else t
                for i, t in enumerate(tensors)]

    def loop_value(self, slot: int, value):
        """A batch-major slot's ``(batch, n)`` value in the shape the loop holds it."""
        if slot in self.flat_slots:
            return tf.reshape(value, [-1])
        shape = self.matrix_slots.get(slot)
        return value if shape is None else tf.reshape(value, (-1,) + shape)

    def to_storage_order(self, tensors: list) -> list:
        """Inverse of :meth:`to_loop_order`: every slot ``(n, batch)``."""
        self.finalize()
        out = []
        for i, t in enumerate(tensors):
            _, a, b = self.slots[i]
            if i in self.batch_major_slots:
                t = tf.transpose(tf.reshape(t, (-1, b - a)))
            elif i in self.flat_last_slots:
                t = tf.reshape(t, (b - a, -1))
            out.append(t)
        return out

    # --- classification ---------------------------------------------------
    def _mark_written(self, sig) -> None:
        """Note that ``sig`` changes during a run (an operator or a host feed writes it)."""
        idx = view_indices(sig)
        if idx.size:
            self._written.setdefault(sig.base, []).append((int(idx.min()), int(idx.max()) + 1))

    def never_written(self, base, lo: int, hi: int) -> bool:
        """Whether elements ``lo:hi`` of a state base keep their initial value.

        Such ranges (e.g. fixed decoders that nengo's optimizer merged into one
        base with learned ones) can be read as constants without a batch axis.
        """
        return all(b <= lo or a >= hi for a, b in self._written.get(base, ()))

    def is_state(self, sig) -> bool:
        """Whether ``sig``'s base is batched loop state."""
        return sig.base in self._state_index

    def is_step_local(self, sig) -> bool:
        """Whether ``sig``'s base is state that lives within one step (``step_local``)."""
        return sig.base in self._step_local

    def value_dtype(self, base) -> np.dtype:
        """Dtype a base is stored with (floats use the simulation dtype)."""
        dt = np.dtype(base.dtype)
        return self.np_dtype if dt.kind == "f" else dt

    def initial_slots(self, batch: int) -> list:
        """Initial value of every loop variable, each ``(length, batch)``."""
        self.finalize()
        out = []
        for base, a, b in self.slots:
            val = np.asarray(base.initial_value, dtype=self.value_dtype(base)).reshape(-1)
            out.append(np.repeat(val[a:b, None], batch, axis=1))
        return out

    def written_bytes(self, batch: int) -> int:
        """Bytes of the loop state the steps rewrite (never-written slots just pass through)."""
        self.finalize()
        return sum(
            self._slot_bytes(i, batch)
            for i, (base, a, b) in enumerate(self.slots) if not self.never_written(base, a, b)
        )

    def matrix_bytes(self, batch: int) -> int:
        """Bytes of the per-sample matrices (learned weights) among the loop state.

        A step rewrites them and then reads them again (the learning rule's
        update, then the matvec), unlike neuron and synapse state, which one
        fused kernel streams through once.
        """
        self.finalize()
        return sum(self._slot_bytes(i, batch) for i in self.matrix_slots)

    def _slot_bytes(self, slot: int, batch: int) -> int:
        base, a, b = self.slots[slot]
        return (b - a) * batch * self.value_dtype(base).itemsize

    def assemble(self, base, values: list) -> np.ndarray:
        """Whole flat value ``(size, batch)`` of a state base from slot values."""
        return np.concatenate([np.asarray(values[slot]) for _, _, slot in self.segments(base)], axis=0)

    def indices(self, sig) -> np.ndarray:
        """Cached :func:`view_indices`."""
        key = id(sig)
        if key not in self._idx_cache:
            self._idx_cache[key] = (sig, view_indices(sig))
        return self._idx_cache[key][1]

    def constant(self, sig) -> np.ndarray:
        """Numpy value of a read-only signal in the simulation dtype."""
        base = sig.base
        if id(base) not in self._const_cache:
            val = base.initial_value
            if hasattr(val, "toarray"):
                val = val.toarray()
            self._const_cache[id(base)] = (base, np.asarray(val, dtype=self.value_dtype(base)))
        val = self._const_cache[id(base)][1]
        if sig is base or not sig.is_view:
            return val
        return val.reshape(-1)[self.indices(sig)].reshape(sig.shape)


#: blocks an in-place increment is split into (see :func:`add_in_place`)
IN_PLACE_BLOCKS = 2


def add_in_place(cur, inc, blocks: int = IN_PLACE_BLOCKS):
    """``cur + inc`` (same shapes, rank >= 2), as slice updates of ``cur`` along axis 1.

    Each block is a ``TensorStridedSliceUpdate`` of the latest value, which XLA lowers
    to a dynamic-update-slice done in the loop variable's own buffer. XLA:CPU does not
    split such an update over its intra-op threads, while it does split the equivalent
    elementwise add of a large matrix, also inside a minibatch part that already has a
    core to itself, so the matrix moves between the cores' caches (docs/performance.md). One
    block covering the whole tensor would be simplified back into that add, so there
    are at least two (fewer only where axis 1 is shorter). The result equals
    ``cur + inc`` exactly.
    """
    shape = [int(d) for d in cur.shape]
    n = shape[1]
    cuts = sorted({round(k * n / blocks) for k in range(blocks + 1)})
    out = cur
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        begin = [0] * len(shape)
        end = list(shape)
        begin[1], end[1] = lo, hi
        # read the block from ``out``, not ``cur``: no reader of the old buffer is
        # left after the update, so XLA needs no copy of it
        block = out[:, lo:hi] + inc[:, lo:hi]
        out = tf.raw_ops.TensorStridedSliceUpdate(
            input=out, begin=begin, end=end, strides=[1] * len(shape), value=block
        )
    return out


class StepState:
    """Mutable view of the loop state during one traced step.

    Builders call :meth:`read` and :meth:`write`; writes replace segment tensors
    functionally so TensorFlow sees a pure dataflow graph.
    """

    def __init__(self, layout: SignalLayout, tensors: list, batch: int, params: dict | None = None) -> None:
        self.layout = layout
        self.tensors = list(tensors)
        self.batch = batch
        #: base -> flat tensor of the base's current value, for read-only bases
        #: holding trainable parameters (their values come from variables)
        self.params = params or {}

    def param(self, sig):
        """Flat tensor of ``sig``'s elements when its base holds trainable values, else None."""
        flat = self.params.get(sig.base)
        return None if flat is None else _take(flat, self.layout.indices(sig))

    def fixed(self, base, lo: int, hi: int):
        """Elements ``lo:hi`` of a state base that no operator writes, without a batch axis.

        Their current value is the built one, or a trainable parameter's value
        (see ``ParamAssembler``); either is shared by every sample.
        """
        if not self.layout.never_written(base, lo, hi):
            raise ValueError(f"{base}[{lo}:{hi}] is written during the run")
        flat = self.params.get(base)
        if flat is not None:
            return flat[lo:hi]
        return tf.constant(self.layout.constant(base).reshape(-1)[lo:hi])

    def _vidx(self, sig, idx):
        vidx = self.layout.indices(sig)
        if idx is not None:
            vidx = vidx[np.asarray(idx, dtype=np.int64)]
        return vidx

    def _slot(self, slot: int):
        """Loop variable ``slot`` as ``(n, batch)``, whatever order the loop holds it in."""
        if slot in self.layout.batch_major_slots:
            return tf.transpose(self._batch_major(slot))
        if slot in self.layout.flat_last_slots:
            return tf.reshape(self.tensors[slot], (-1, self.batch))
        return self.tensors[slot]

    def _batch_major(self, slot: int):
        """A batch-major loop variable as ``(batch, n)``."""
        return tf.reshape(self.tensors[slot], (self.batch, -1))

    def _set_slot(self, slot: int, value) -> None:
        """Store an ``(n, batch)`` value into loop variable ``slot``."""
        if slot in self.layout.batch_major_slots:
            value = self.layout.loop_value(slot, tf.transpose(value))
        elif slot in self.layout.flat_last_slots:
            value = tf.reshape(value, [-1])
        self.tensors[slot] = value

    def _range(self, base, a: int, b: int):
        parts = []
        for s0, s1, slot in self.layout.segments(base):
            lo, hi = max(a, s0), min(b, s1)
            if lo >= hi:
                continue
            t = self._slot(slot)
            parts.append(t if (lo, hi) == (s0, s1) else t[lo - s0:hi - s0])
        return parts[0] if len(parts) == 1 else tf.concat(parts, axis=0)

    def _batch_major_segments(self, sig, idx):
        """``(a, [(lo, hi, s0, slot), ...])`` when ``sig[idx]`` is one range ``a:b`` of batch-major slots."""
        lay = self.layout
        if not lay.is_batch_major(sig):
            return None
        rng = _contiguous(self._vidx(sig, idx))
        if rng is None:
            return None
        a, b = rng
        segs = [(max(a, s0), min(b, s1), s0, slot) for s0, s1, slot in lay.segments(sig.base)
                if max(a, s0) < min(b, s1)]
        return a, segs

    def read_batch_major(self, sig, idx: np.ndarray | None = None):
        """Flat elements of a state signal as ``(batch, n)`` (cheap for batch-major bases)."""
        found = self._batch_major_segments(sig, idx)
        if found is None:
            return tf.transpose(self.read_flat(sig, idx))
        _, segs = found
        parts = [self._batch_major(slot)[:, lo - s0:hi - s0] for lo, hi, s0, slot in segs]
        return parts[0] if len(parts) == 1 else tf.concat(parts, axis=1)

    # --- reads ------------------------------------------------------------
    def read_flat(self, sig, idx: np.ndarray | None = None):
        """Flat elements of ``sig`` (optionally a subset ``idx`` of its elements).

        Returns ``(n, batch)`` for state signals and a constant ``(n,)`` otherwise.
        """
        lay = self.layout
        vidx = self._vidx(sig, idx)
        if not lay.is_state(sig):
            flat = self.params.get(sig.base)
            if flat is not None:
                return _take(flat, vidx)
            base_val = lay.constant(sig.base).reshape(-1)
            return tf.constant(base_val[vidx])
        if vidx.size == 0:
            return tf.zeros((0, self.batch), dtype=self.tensors[lay.segments(sig.base)[0][2]].dtype)
        rng = _contiguous(vidx)
        if rng is not None:
            return self._range(sig.base, *rng)
        lo, hi = int(vidx.min()), int(vidx.max()) + 1
        return tf.gather(self._range(sig.base, lo, hi), vidx - lo, axis=0)

    def read(self, sig, batched: bool = False):
        """``sig`` shaped ``(*sig.shape, batch)`` (state) or ``sig.shape`` (constant).

        With ``batched=True`` constants get a trailing broadcast axis of size 1.
        """
        flat = self.read_flat(sig)
        if self.layout.is_state(sig):
            return tf.reshape(flat, tuple(sig.shape) + (self.batch,))
        shape = tuple(sig.shape) + ((1,) if batched else ())
        return tf.reshape(flat, shape)

    # --- writes -----------------------------------------------------------
    def write(self, sig, value, mode: str = "set") -> None:
        """Store ``value`` (shape ``(*sig.shape, batch)`` or broadcastable) into ``sig``.

        ``mode`` is ``"set"`` or ``"inc"`` (``"update"`` is a set at the
        operator's position in the step order).
        """
        dtype = self.tensors[self.layout.segments(sig.base)[0][2]].dtype
        value = tf.broadcast_to(tf.cast(value, dtype), tuple(sig.shape) + (self.batch,))
        self.write_flat(sig, tf.reshape(value, (-1, self.batch)), mode)

    def write_batch_major(self, sig, value, mode: str = "set", in_place: bool = False) -> None:
        """Like :meth:`write_flat` with a ``(batch, n)`` value (cheap for batch-major bases).

        With ``in_place`` (increments only) each slot is updated block by block in its own
        buffer (:func:`add_in_place`) instead of as a new whole value.
        """
        found = self._batch_major_segments(sig, None)
        if found is None:
            self.write_flat(sig, tf.transpose(value), mode)
            return
        a, segs = found
        for lo, hi, s0, slot in segs:
            cur = self._batch_major(slot)
            part = tf.cast(value[:, lo - a:hi - a], cur.dtype)
            held = self.tensors[slot]
            whole = (lo - s0, hi - s0) == (0, int(cur.shape[1]))
            if in_place and mode == "inc" and whole and held.shape.rank >= 2:
                # in the loop variable's own shape: a reshape after the last update
                # would hide the in-place update from XLA
                self.tensors[slot] = add_in_place(held, tf.reshape(part, tf.shape(held)))
                continue
            if mode == "inc":
                part = cur[:, lo - s0:hi - s0] + part
            if (lo - s0, hi - s0) != (0, int(cur.shape[1])):
                part = tf.concat([cur[:, :lo - s0], part, cur[:, hi - s0:]], axis=1)
            self.tensors[slot] = self.layout.loop_value(slot, part)

    def write_flat(self, sig, value, mode: str = "set", idx: np.ndarray | None = None) -> None:
        """Like :meth:`write` with a flat ``(n, batch)`` value, optionally at ``idx``."""
        vidx = self._vidx(sig, idx)
        if vidx.size == 0:
            return
        inc = mode == "inc"
        segs = self.layout.segments(sig.base)
        value = tf.cast(value, self.tensors[segs[0][2]].dtype)
        rng = _contiguous(vidx)
        if rng is not None:
            a, b = rng
            for s0, s1, slot in segs:
                lo, hi = max(a, s0), min(b, s1)
                if lo >= hi:
                    continue
                cur = self._slot(slot)
                part = value if (lo, hi) == (a, b) else value[lo - a:hi - a]
                if (lo, hi) == (s0, s1):
                    self._set_slot(slot, cur + part if inc else part)
                else:
                    mid = cur[lo - s0:hi - s0] + part if inc else part
                    self._set_slot(slot, tf.concat([cur[:lo - s0], mid, cur[hi - s0:]], axis=0))
            return
        if not inc and np.unique(vidx).size != vidx.size:
            from nengo.exceptions import BuildError

            raise BuildError(f"{sig}: cannot set repeated indices {vidx.tolist()}")
        for s0, s1, slot in segs:
            sel = np.nonzero((vidx >= s0) & (vidx < s1))[0]
            if sel.size == 0:
                continue
            local = vidx[sel] - s0
            part = value if sel.size == vidx.size else tf.gather(value, sel, axis=0)
            cur = self._slot(slot)
            if np.unique(local).size == local.size:
                # a gather from [current, new] (XLA:CPU runs scatters as slow serial
                # loops: 14 us for 128 elements, where this is one fused copy)
                n = s1 - s0
                pick = np.arange(n)
                pick[local] = n + np.arange(local.size)
                if inc:
                    part = tf.gather(cur, local, axis=0) + part
                self._set_slot(slot, tf.gather(tf.concat([cur, part], axis=0), pick, axis=0))
            else:
                # scatter-add accumulates repeated indices, matching np.add.at
                self._set_slot(slot, tf.tensor_scatter_nd_add(cur, local[:, None], part))

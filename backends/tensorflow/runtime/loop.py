"""The compiled time loop.

One ``tf.function`` runs a whole chunk of steps in a ``tf.while_loop``; the body
is every operator builder traced in nengo's step order, then the probes are
written into a preallocated ``TensorArray``. When no builder calls back into
Python the function is XLA-compiled (``jit_compile=True``), which fuses the step
into a few kernels. Every run length goes through one program per Simulator: XLA
needs static shapes, so the host input is padded to one fixed chunk length and
the number of steps is a runtime scalar (a run longer than a chunk is several
calls); without XLA the chunk length itself is left unknown. The program is
traced once, as a concrete function called with flat tensors, so a call (a
``sim.step()``) pays no retracing and no per-call signature matching.
"""

from __future__ import annotations

import functools
import glob
import os
import warnings
from typing import Sequence

import numpy as np
from nengo.exceptions import ValidationError

from nhw.backends.tensorflow._tf import tf

from nhw.backends.tensorflow.builders.op_builders import StepContext
from nhw.backends.tensorflow.runtime.packed_state import PackedState, PackPlan
from nhw.backends.tensorflow.runtime.signals import SignalLayout, StepState
from nhw.backends.tensorflow.runtime import xla_cache
from nhw.errors import BackendError

# before TensorFlow runs its first operation, which is when it reads TF_XLA_FLAGS
xla_cache.configure()

#: longest chunk compiled for XLA (a longer run is split into such chunks)
XLA_CHUNK = 1024
#: shortest XLA chunk (bounds the number of calls a long run with large probes takes)
MIN_XLA_CHUNK = 16
#: bytes of probe output and host input one XLA chunk may hold: a short run (one
#: ``sim.step()``) still fills and returns whole padded chunk buffers, so a chunk
#: of large probes is made shorter
CHUNK_BYTES = 4 << 20
#: longest chunk of the graph (non-XLA) function
GRAPH_CHUNK = 4096
#: Keras-model runs this short are unrolled in Python instead of looped
UNROLL_TRAINING = 4


#: fewest samples per part when a minibatch is split across CPU cores
MIN_SHARD_SAMPLES = 4
#: fewest samples per part when parts are made smaller than one per core to fit
#: the cache: each part pays the whole per-step cost of its loop's operators, so
#: parts of fewer samples lose more to that fixed cost than they win in cache
#: (measurements: docs/performance.md)
MIN_CACHE_SPLIT_SAMPLES = 8


#: fallback when the last-level cache size cannot be read (bytes)
DEFAULT_CACHE_BYTES = 8 << 20


def _read_cache_sizes() -> dict:
    """``{level: bytes}`` of cpu0's caches (Linux sysfs; the largest per level), or ``{}``."""
    sizes: dict = {}
    for index in glob.glob("/sys/devices/system/cpu/cpu0/cache/index*"):
        try:
            with open(os.path.join(index, "size")) as f:
                text = f.read().strip().upper()
            with open(os.path.join(index, "level")) as f:
                level = int(f.read().strip())
        except (OSError, ValueError):
            continue
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        digits = text.rstrip("KMG")
        if digits.isdigit():
            sizes[level] = max(sizes.get(level, 0), int(digits) * scale)
    return sizes


def last_level_cache_bytes() -> int:
    """Size of the CPU's largest cache (Linux sysfs), else :data:`DEFAULT_CACHE_BYTES`."""
    sizes = _read_cache_sizes()
    return max(sizes.values()) if sizes else DEFAULT_CACHE_BYTES


def core_cache_bytes() -> int:
    """Size of a core's level-2 cache (Linux sysfs), else 0 (unknown)."""
    return _read_cache_sizes().get(2, 0)


def choose_shards(
    batch: int,
    builders: Sequence,
    requested: int | None = None,
    on_gpu: bool = False,
    state_bytes: int = 0,
    cache_bytes: int | None = None,
    matrix_bytes: int = 0,
    core_cache: int | None = None,
) -> int:
    """How many parts to split a minibatch into (the cores run them concurrently).

    Parameters
    ----------
    batch
        Minibatch size.
    builders
        The loop's operator builders; any with ``samples_independent = False``
        forbids splitting.
    requested
        The ``batch_shards`` setting (``None``: one part per available core,
        at least ``MIN_SHARD_SAMPLES`` samples each, on CPU only).
    on_gpu
        Whether the simulation is placed on a GPU (never split automatically).
    state_bytes
        Size of the per-sample loop state of the whole minibatch. Parts run to
        the end of a chunk one after another on each core, so splitting finer
        than one part per core shrinks the state the cores stream concurrently;
        parts are made small enough that all cores' state fits in half the
        last-level cache (per-sample learned weights are the usual case), but
        not below ``MIN_CACHE_SPLIT_SAMPLES`` samples each.
    cache_bytes
        Last-level cache size (default: :func:`last_level_cache_bytes`).
    matrix_bytes
        Size of the per-sample matrices (learned weights) of the whole
        minibatch. A step rewrites them and reads them back (update, then
        matvec), so when a finer split (still at least ``MIN_CACHE_SPLIT_SAMPLES``
        samples each) makes one part's matrices fit in a core's level-2 cache,
        that split is taken. Where no allowed split fits, a finer split is not
        made: state streamed once per step gains nothing from it (measurements:
        docs/performance.md).
    core_cache
        Level-2 cache size of a core (default: :func:`core_cache_bytes`; 0: unknown,
        no such split).
    """
    coupled = [b for b in builders if not b.samples_independent]
    if requested is not None:
        if requested < 1 or batch % requested:
            raise ValidationError(
                f"batch_shards: expected a divisor of minibatch_size={batch}; got {requested}",
                attr="batch_shards",
            )
        if requested > 1 and coupled:
            raise ValidationError(
                f"batch_shards={requested}: {coupled[0].op} computes samples together "
                "(random draws or user TensorFlow code), so the minibatch cannot be split; "
                "expected batch_shards=None or 1",
                attr="batch_shards",
            )
        return requested
    if coupled or on_gpu:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    k = min(cores, batch // MIN_SHARD_SAMPLES)
    while k > 1 and batch % k:
        k -= 1
    k = max(k, 1)
    if k < cores:
        return k
    budget = (last_level_cache_bytes() if cache_bytes is None else cache_bytes) // 2
    finer = step = k  # multiples of the core count keep the cores evenly loaded
    while cores * state_bytes / finer > budget:
        finer += step
        if batch % finer == 0 and batch // finer >= MIN_CACHE_SPLIT_SAMPLES:
            k = finer
        elif batch // finer < MIN_CACHE_SPLIT_SAMPLES:
            break
    l2 = core_cache_bytes() if core_cache is None else core_cache
    if l2 and matrix_bytes / k > l2:
        for finer in range(k + step, batch // MIN_CACHE_SPLIT_SAMPLES + 1, step):
            if batch % finer == 0 and matrix_bytes / finer <= l2:
                return finer
    return k


def _run_sharded(part_fn, shards: int, tensors, host, counters, param_values):
    """``part_fn`` over ``shards`` equal slices of the minibatch, as independent calls.

    XLA:CPU runs one compiled loop on one core; TensorFlow's executor runs
    independent calls on its inter-op threads, so the slices run in parallel.
    Only used when the samples of the minibatch do not interact
    (:func:`choose_shards`), so the result equals the unsplit run up to float
    rounding (a narrower batch may be vectorised differently).
    """
    t_parts = [tf.split(t, shards, axis=-1) for t in tensors]
    h_parts = tf.split(host, shards, axis=-1)
    outs = [
        part_fn([tp[i] for tp in t_parts], h_parts[i], counters, param_values)
        for i in range(shards)
    ]
    new = [tf.concat([o[0][j] for o in outs], axis=-1) for j in range(len(tensors))]
    probes = [tf.concat([o[1][j] for o in outs], axis=-1) for j in range(len(outs[0][1]))]
    return new, probes


class CompiledLoop:
    """Traces the step function and runs chunks of steps.

    Parameters
    ----------
    builders
        Operator builders in step order.
    layout
        Signal layout (which bases are state).
    probe_sigs
        Signals recorded after every step.
    batch
        Minibatch size.
    dt
        Time step.
    xla
        Compile with XLA.
    unroll
        Steps traced per loop iteration.
    assemble_params
        ``f(values) -> {base: flat tensor}`` turning the current values of the
        trainable parameters into the bases the builders read (traced once per
        chunk, outside the time loop).
    host_columns
        Host input columns per step (with ``batch``, the bytes of host input a
        chunk holds).
    training
        Run chunks in training mode (spiking neurons as their rate models, Keras
        layers with ``training=True``); :meth:`trace` takes the mode per call.
    """

    def __init__(
        self,
        builders: Sequence,
        layout: SignalLayout,
        probe_sigs: Sequence,
        batch: int,
        dt: float,
        xla: bool,
        unroll: int = 1,
        assemble_params=None,
        host_columns: int = 0,
        training: bool = False,
    ) -> None:
        self.builders = list(builders)
        self.layout = layout
        self.probe_sigs = list(probe_sigs)
        self.batch = batch
        self.dt = dt
        self.xla = xla
        self.unroll = max(1, int(unroll))
        self.assemble_params = assemble_params or (lambda values: {})
        #: simulate run_steps/predict in training mode (NengoDL's ``learning_phase=True``)
        self.training = bool(training)
        #: independent parts of the minibatch run concurrently (see :meth:`run`)
        self.shards = 1
        self._fns: dict = {}
        #: ``(variables, program, handles)`` of the last call made with plain variables
        #: (used while that program is still among :attr:`_fns`: clearing them retraces)
        self._handles: tuple | None = None
        #: host input columns per step (sizes the XLA chunk; see :attr:`max_chunk`)
        self.host_columns = int(host_columns)
        self._chunk_len: int | None = None
        self._plan: PackPlan | None = None
        #: whether a damaged saved program was already worked around (see :meth:`_mend_cache`)
        self._mended = False

    # --- state between calls ----------------------------------------------
    @property
    def packs(self) -> bool:
        """Whether calls take and return the state packed (one XLA program, one part).

        A split minibatch's outer function is not compiled: unpacking there would
        cost more graph operations per call than packing saves.
        """
        return self.xla and self.shards == 1

    @property
    def pack_plan(self) -> PackPlan:
        if self._plan is None:
            self._plan = PackPlan.of(self.layout.initial_slots(self.batch))
        return self._plan

    def initial_state(self):
        """The state at step 0, in the form :meth:`run` takes."""
        slots = self.layout.initial_slots(self.batch)
        if self.packs:
            return self.pack_plan.pack_arrays(slots)
        return [tf.constant(v) for v in slots]

    def state_values(self, state) -> list:
        """Every slot's value (arrays or tensors, ``(n, batch)``) of a state."""
        if isinstance(state, PackedState):
            return self.pack_plan.values(state)
        return list(state)

    def state_from_values(self, values: list):
        """The state, in the form :meth:`run` takes, whose slots hold ``values``
        (arrays in :meth:`state_values` order and shapes)."""
        if self.packs:
            return self.pack_plan.pack_arrays(list(values))
        return [tf.constant(v) for v in values]

    def _as_run_form(self, state):
        if isinstance(state, PackedState) == self.packs:
            return state
        if self.packs:
            return PackedState(tuple(self.pack_plan.pack(list(state))))
        return self.pack_plan.unpack(state.flat)

    # --- tracing ---------------------------------------------------------
    def _one_step(self, tensors, step, host_row, seed, params, batch, training=False):
        st = StepState(self.layout, tensors, batch, params)
        time = tf.cast(step, tf.float64) * self.dt
        sc = StepContext(state=st, step=step, time=time, host=host_row, seed=None, training=training)
        for i, b in enumerate(self.builders):
            sc.seed = tf.stack([seed + i, step])
            b.step(sc)
        probes = []
        for sig in self.probe_sigs:
            v = st.read(sig, batched=True)
            v = tf.broadcast_to(v, tuple(sig.shape) + (batch,))
            probes.append(tf.cast(v, self.layout.dtype) if v.dtype.is_floating else v)
        # after the probes, which record this step's values of step-local state too
        local = self.layout.step_local_slots
        return [tensors[i] if i in local else t for i, t in enumerate(st.tensors)], probes

    def _probe_arrays(self, size, batch):
        return [
            tf.TensorArray(
                self.layout.dtype if np.dtype(sig.dtype).kind == "f" else tf.as_dtype(sig.dtype),
                size=size,
                element_shape=tuple(sig.shape) + (batch,),
            )
            for sig in self.probe_sigs
        ]

    def _chunk(self, tensors, host, counters, param_values, xla, batch, packed=False):
        # one int64 vector (steps to run, steps done, seed): one argument to convert per call
        n, step0, seed = tf.cast(counters[0], tf.int32), counters[1], counters[2]
        if packed:
            tensors = self.pack_plan.unpack(tensors)
        n_max = host.shape[0] if xla else tf.shape(host)[0]
        tas = self._probe_arrays(n_max, batch)
        params = self.assemble_params(param_values)
        tensors = self._inject(self.layout.to_loop_order(tensors), param_values, batch)
        k = self.unroll

        def make_body(n_inner):
            def body(i, tensors, tas):
                for j in range(n_inner):
                    step = step0 + tf.cast(i + j, tf.int64) + 1
                    tensors, probes = self._one_step(
                        list(tensors), step, host[i + j], seed, params, batch, self.training
                    )
                    tas = [ta.write(i + j, p) for ta, p in zip(tas, probes)]
                return i + n_inner, tensors, tas

            return body

        i = tf.constant(0, tf.int32)
        loop_vars = (i, list(tensors), tas)
        if k > 1:
            loop_vars = tf.while_loop(
                lambda i, *_: i + k <= n, make_body(k), loop_vars
            )
        i, tensors, tas = tf.while_loop(lambda i, *_: i < n, make_body(1), loop_vars)
        tensors = self.layout.to_storage_order(list(tensors))
        return (self.pack_plan.pack(tensors) if packed else tensors), [ta.stack() for ta in tas]

    def _inject(self, tensors, param_values, batch):
        inject = getattr(self.assemble_params, "inject", None)
        return list(tensors) if inject is None else inject(list(tensors), list(param_values), batch)

    def trace(self, tensors, host, seed, params, batch: int, training: bool, params_values=(), step0=None):
        """Trace ``host.shape[0]`` steps from step 0 inline into the current graph.

        Used by the Keras model: ``n`` and ``batch`` are static, so short runs
        are unrolled (no loop overhead, e.g. one-step networks) and longer ones
        use a ``tf.while_loop`` with a static trip count, which both backprop
        and XLA need. Returns the final tensors and ``(n, *shape, batch)``
        probe tensors. ``step0`` (an int64 scalar tensor, e.g. a variable's value):
        the steps done before, when the run continues a simulation (steps
        ``step0 + 1 .. step0 + n``, as :meth:`run` numbers them); None: from step 0.
        """
        n = int(host.shape[0])
        seed = tf.constant(seed, tf.int64)
        tensors = self._inject(self.layout.to_loop_order(tensors), params_values, batch)
        if n <= UNROLL_TRAINING:
            outs = [[] for _ in self.probe_sigs]
            for k in range(n):
                step = tf.constant(k + 1, tf.int64) if step0 is None else step0 + (k + 1)
                tensors, probes = self._one_step(list(tensors), step, host[k], seed, params, batch, training)
                for o, p in zip(outs, probes):
                    o.append(p)
            return self.layout.to_storage_order(list(tensors)), [tf.stack(o, axis=0) for o in outs]

        def body(i, tensors, tas):
            step = tf.cast(i, tf.int64) + 1
            if step0 is not None:
                step = step + step0
            tensors, probes = self._one_step(list(tensors), step, host[i], seed, params, batch, training)
            return i + 1, tensors, [ta.write(i, p) for ta, p in zip(tas, probes)]

        _, tensors, tas = tf.while_loop(
            lambda i, *_: i < n,
            body,
            (tf.constant(0, tf.int32), list(tensors), self._probe_arrays(n, batch)),
            maximum_iterations=n,
        )
        return self.layout.to_storage_order(list(tensors)), [ta.stack() for ta in tas]

    def _function(self, xla: bool, shards: int = 1, packed: bool = False):
        """The ``tf.function`` running one chunk (cached per ``(xla, shards, packed)``)."""
        key = (xla, shards, packed)
        if key not in self._fns:
            batch = self.batch // shards
            # autograph off: the body is plain Python building a graph, and
            # converting it costs seconds per trace
            # each Simulator legitimately traces its own function. TensorFlow counts
            # traces per code object (to catch tf.function created in a loop), so
            # closures would make every Simulator after the fifth warn about
            # "retracing"; a partial has no code object and is counted on its own
            chunk = functools.partial(self._chunk, xla=xla, batch=batch, packed=packed)
            fn = tf.function(chunk, jit_compile=xla, autograph=False)
            if shards > 1:
                fn = tf.function(functools.partial(_run_sharded, fn, shards), autograph=False)
            self._fns[key] = fn
        return self._fns[key]

    def _program(self, tensors, host_shape, host_dtype, param_values, by_handle: bool = False) -> "_Program":
        """The one traced program of this loop (traced on first use, then reused).

        Traced from tensor specs: the chunk length is the fixed XLA chunk (or
        unknown without XLA) and the run length a scalar argument, so no later
        run length traces or compiles again.
        """
        shards = self.shards if self.xla else 1
        packed = isinstance(tensors, PackedState)
        key = ("program", self.xla, shards, by_handle, packed)
        prog = self._fns.get(key)
        if prog is None:
            spec = lambda t: tf.TensorSpec(t.shape, t.dtype)  # noqa: E731
            length = self.max_chunk if self.xla else None
            concrete = self._function(self.xla, shards, packed).get_concrete_function(
                [spec(t) for t in (tensors.flat if packed else tensors)],
                tf.TensorSpec((length,) + tuple(host_shape[1:]), tf.as_dtype(host_dtype)),
                tf.TensorSpec((3,), tf.int64),
                list(param_values) if by_handle else [spec(v) for v in param_values],
            )
            prog = self._fns[key] = _Program(concrete, self.xla, self.max_chunk, packed)
        return prog

    # --- running ---------------------------------------------------------
    def run(self, tensors, host: np.ndarray, step0: int, seed: int, param_values: list = ()):
        """Run ``len(host)`` steps from a state; returns the new state and probe arrays.

        The state is what :meth:`initial_state` or an earlier call returned (a
        list of slot tensors is accepted too). Probe arrays have shape
        ``(n, *sig.shape, batch)``.
        """
        n = host.shape[0]
        if n > self.max_chunk:
            raise ValueError(f"chunk of {n} steps exceeds the largest chunk {self.max_chunk}")
        tensors = self._as_run_form(tensors)
        param_values = list(param_values)
        cached = self._handles
        if (
            cached is not None
            and any(cached[1] is f for f in self._fns.values())
            and len(cached[0]) == len(param_values)
            and all(a is b for a, b in zip(cached[0], param_values))
        ):
            # the same variables as the last call: their handles and program again
            # (``sim.step()`` would otherwise pay this per step)
            prog, args = cached[1], cached[2]
        else:
            # plain variables go in as their resource handles (the program reads them);
            # anything else (a distributed variable) as a tensor, read here
            by_handle = all(_plain_variable(v) for v in param_values)
            values = param_values if by_handle else [tf.convert_to_tensor(v) for v in param_values]
            prog = self._program(tensors, host.shape, host.dtype, values, by_handle)
            args = [v.handle for v in values] if by_handle else values
            self._handles = (param_values, prog, args) if by_handle else None
        try:
            return prog(tensors, host, n, step0, seed, args)
        except Exception as err:  # only a damaged saved program is handled here; anything else goes on
            if not xla_cache.is_damage(err):
                raise
            self._mend_cache(err)
        return self.run(tensors, host, step0, seed, param_values)

    def _mend_cache(self, err: BaseException) -> None:
        """TensorFlow could not load a saved program: remove damaged entries and trace anew.

        TensorFlow remembers the failure for the program it traced, so the next
        call traces again (a new program name, so a new cache key) and compiles.
        Nothing has run: the call failed while loading, so the state is unchanged.
        """
        if self._mended:
            raise BackendError(
                "TensorFlow could not use a saved XLA program even after nhw removed the damaged "
                f"cache entries it found ({str(err).splitlines()[0]}); set NHW_XLA_CACHE=off to "
                "compile without the cache, or delete the cache directory"
            ) from err
        directory, found = xla_cache.mend(err)
        self._mended = True
        warnings.warn(
            f"nhw: {xla_cache.describe(err, directory, found)} and is compiling the program again",
            RuntimeWarning,
            stacklevel=3,
        )
        self._fns.clear()
        self._handles = None

    @property
    def max_chunk(self) -> int:
        """Largest number of steps one call may run (the XLA program's padded length)."""
        if not self.xla:
            return GRAPH_CHUNK
        if self._chunk_len is None:
            item = tf.as_dtype(self.layout.dtype).size
            per_step = self.host_columns * self.batch * item
            for sig in self.probe_sigs:
                per_step += int(np.prod(sig.shape, dtype=np.int64)) * self.batch * max(np.dtype(sig.dtype).itemsize, item)
            length = XLA_CHUNK
            while length > MIN_XLA_CHUNK and length * per_step > CHUNK_BYTES:
                length //= 2
            self._chunk_len = length
        return self._chunk_len


def _plain_variable(value) -> bool:
    """Whether ``value`` is a single (not distributed) TensorFlow variable."""
    return isinstance(value, tf.Variable) and not isinstance(value, tf.distribute.DistributedValues)


class _Program:
    """A traced chunk program, called with flat tensors.

    Calling the concrete function with flat arguments skips ``tf.function``'s
    per-call signature matching, which costs more than a small network's step.
    """

    def __init__(self, concrete, xla: bool, length: int, packed: bool = False) -> None:
        self.concrete = concrete
        self.xla = xla
        self.length = length
        self.packed = packed
        self._call = getattr(concrete, "_call_flat", None)
        self._captured = list(concrete.captured_inputs)
        #: the last padded host input: its rows and its tensor
        self._last_host: tuple | None = None

    def _host_tensor(self, host: np.ndarray):
        """The host input as a tensor of the program's length (padded for XLA).

        The program reads only the first ``n`` rows, so a short run whose rows equal
        the previous call's first rows reuses that call's tensor: a ``sim.step()``
        with unchanged input then pays neither the padding nor the copy.
        """
        if not self.xla or host.shape[0] >= self.length:
            return tf.constant(host)
        n = host.shape[0]
        raw = np.ascontiguousarray(host).tobytes()  # bytes: exact for -0.0 and NaN as well
        last = self._last_host
        if last is not None and last[0].startswith(raw):  # one program: one host dtype and row size
            return last[1]
        padded = np.zeros((self.length,) + host.shape[1:], dtype=host.dtype)
        padded[:n] = host
        tensor = tf.constant(padded)
        self._last_host = (raw, tensor)
        return tensor

    def __call__(self, tensors, host: np.ndarray, n: int, step0: int, seed: int, param_values: list):
        args = [self._host_tensor(host), tf.constant(np.array((n, step0, seed), dtype=np.int64))]
        flat = tensors.flat if self.packed else tensors
        if self._call is not None:
            new, probes = self._call([*flat, *args, *param_values], self._captured)
        else:  # pragma: no cover - TensorFlow without the private flat entry point: the public call
            new, probes = self.concrete(list(flat), *args, list(param_values))
        new = PackedState(tuple(new)) if self.packed else list(new)
        return new, [_rows(p.numpy(), n) for p in probes]


def _rows(arr: np.ndarray, n: int) -> np.ndarray:
    """The first ``n`` rows of a padded probe buffer, as their own array.

    A view would keep the whole padded buffer alive in ``sim.data`` (one per
    ``sim.step()``), and every call would then allocate fresh memory.
    """
    return arr if n == arr.shape[0] else arr[:n].copy()

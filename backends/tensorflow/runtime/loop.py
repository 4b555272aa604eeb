"""The compiled time loop.

One ``tf.function`` runs a whole chunk of steps in a ``tf.while_loop``; the body
is every operator builder traced in nengo's step order, then the probes are
written into a preallocated ``TensorArray``. When no builder calls back into
Python the function is XLA-compiled (``jit_compile=True``), which fuses the step
into a few kernels; XLA needs static shapes, so chunks are padded to one fixed
length and the trip count stays a dynamic scalar. Short runs (``sim.step()``)
use the same body without XLA, which starts much faster.
"""

from __future__ import annotations

import functools
import glob
import os
from typing import Sequence

import numpy as np
from nengo.exceptions import ValidationError

from nhw.backends.tensorflow._tf import tf

from nhw.backends.tensorflow.builders.op_builders import StepContext
from nhw.backends.tensorflow.runtime.signals import SignalLayout, StepState

#: chunk length compiled for XLA (a longer run is split into such chunks)
XLA_CHUNK = 1024
#: runs this short use the plain graph function: XLA compilation would cost more
#: than it saves, and stepping loops (``sim.step()``) stay cheap to start
SMALL_RUN = 32
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


def _run_sharded(part_fn, shards: int, tensors, host, n, step0, seed, param_values):
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
        part_fn([tp[i] for tp in t_parts], h_parts[i], n, step0, seed, param_values)
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
    ) -> None:
        self.builders = list(builders)
        self.layout = layout
        self.probe_sigs = list(probe_sigs)
        self.batch = batch
        self.dt = dt
        self.xla = xla
        self.unroll = max(1, int(unroll))
        self.assemble_params = assemble_params or (lambda values: {})
        #: independent parts of the minibatch run concurrently (see :meth:`run`)
        self.shards = 1
        self._fns: dict = {}

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

    def _chunk(self, tensors, host, n, step0, seed, param_values, xla, batch):
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
                        list(tensors), step, host[i + j], seed, params, batch
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
        return self.layout.to_storage_order(list(tensors)), [ta.stack() for ta in tas]

    def _inject(self, tensors, param_values, batch):
        inject = getattr(self.assemble_params, "inject", None)
        return list(tensors) if inject is None else inject(list(tensors), list(param_values), batch)

    def trace(self, tensors, host, seed, params, batch: int, training: bool, params_values=()):
        """Trace ``host.shape[0]`` steps from step 0 inline into the current graph.

        Used by the Keras model: ``n`` and ``batch`` are static, so short runs
        are unrolled (no loop overhead, e.g. one-step networks) and longer ones
        use a ``tf.while_loop`` with a static trip count, which both backprop
        and XLA need. Returns the final tensors and ``(n, *shape, batch)``
        probe tensors.
        """
        n = int(host.shape[0])
        seed = tf.constant(seed, tf.int64)
        tensors = self._inject(self.layout.to_loop_order(tensors), params_values, batch)
        if n <= UNROLL_TRAINING:
            outs = [[] for _ in self.probe_sigs]
            for k in range(n):
                step = tf.constant(k + 1, tf.int64)
                tensors, probes = self._one_step(list(tensors), step, host[k], seed, params, batch, training)
                for o, p in zip(outs, probes):
                    o.append(p)
            return self.layout.to_storage_order(list(tensors)), [tf.stack(o, axis=0) for o in outs]

        def body(i, tensors, tas):
            step = tf.cast(i, tf.int64) + 1
            tensors, probes = self._one_step(list(tensors), step, host[i], seed, params, batch, training)
            return i + 1, tensors, [ta.write(i, p) for ta, p in zip(tas, probes)]

        _, tensors, tas = tf.while_loop(
            lambda i, *_: i < n,
            body,
            (tf.constant(0, tf.int32), list(tensors), self._probe_arrays(n, batch)),
            maximum_iterations=n,
        )
        return self.layout.to_storage_order(list(tensors)), [ta.stack() for ta in tas]

    def _function(self, xla: bool, shards: int = 1):
        key = (xla, shards)
        if key not in self._fns:
            batch = self.batch // shards
            # autograph off: the body is plain Python building a graph, and
            # converting it costs seconds per trace
            # each Simulator legitimately traces its own function. TensorFlow counts
            # traces per code object (to catch tf.function created in a loop), so
            # closures would make every Simulator after the fifth warn about
            # "retracing"; a partial has no code object and is counted on its own
            chunk = functools.partial(self._chunk, xla=xla, batch=batch)
            fn = tf.function(chunk, jit_compile=xla, autograph=False, reduce_retracing=not xla)
            if shards > 1:
                fn = tf.function(functools.partial(_run_sharded, fn, shards), autograph=False)
            self._fns[key] = fn
        return self._fns[key]

    # --- running ---------------------------------------------------------
    def run(self, tensors: list, host: np.ndarray, step0: int, seed: int, param_values: list = ()):
        """Run ``len(host)`` steps from ``tensors``; returns new tensors and probe arrays.

        Probe arrays have shape ``(n, *sig.shape, batch)``.
        """
        n = host.shape[0]
        xla = self.xla and n > SMALL_RUN
        if n > self.max_chunk:
            raise ValueError(f"chunk of {n} steps exceeds the largest chunk {self.max_chunk}")
        if xla and n < XLA_CHUNK:
            pad = np.zeros((XLA_CHUNK - n,) + host.shape[1:], dtype=host.dtype)
            host = np.concatenate([host, pad], axis=0)
        fn = self._function(xla, self.shards if xla else 1)
        new, probes = fn(
            tensors,
            tf.constant(host),
            tf.constant(n, tf.int32),
            tf.constant(step0, tf.int64),
            tf.constant(seed, tf.int64),
            list(param_values),
        )
        return new, [p.numpy()[:n] for p in probes]

    @property
    def max_chunk(self) -> int:
        """Largest number of steps one call may run."""
        return XLA_CHUNK if self.xla else 4096

"""The TensorFlow Simulator under ``tf.distribute`` strategies.

Build the Simulator inside ``strategy.scope()`` and train as usual::

    strategy = tf.distribute.MultiWorkerMirroredStrategy()   # TF_CONFIG names the cluster
    with strategy.scope():
        sim = Simulator(net, minibatch_size=64)               # 64: the GLOBAL batch
        sim.compile(optimizer, loss)
    sim.fit(x, y, epochs=5)                                   # every worker passes the same x, y

``minibatch_size`` (and ``fit``'s ``batch_size``) is the global batch, as in NengoDL:
each of the ``num_replicas_in_sync`` replicas simulates ``global / replicas`` samples of
every batch, and the gradients are summed across replicas with the loss scaled by
``1 / replicas``, so an epoch takes the same steps on the same samples as one process with
the same global batch. Every worker passes the whole data set: the batches are built
from the full arrays (shuffled with the simulator's seed, identical on every worker) and
each worker keeps its own slice of every global batch (:func:`distribute_batches`; one
replica per worker process). A local ``MirroredStrategy`` splits the batches itself.

Every worker must build the same network: seed it (``nengo.Network(seed=...)``), since
nengo's build draws encoders, gains and noise from that seed. The Simulator compares a
fingerprint of its parameters and seed across workers when it is built and raises if
they differ.

This module holds the pieces the Simulator needs; it imports TensorFlow only through
:mod:`._tf`, on first use.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import numpy as np

from nhw.backends.tensorflow._tf import tf
from nhw.errors import BackendError, UnsupportedFeatureError


class WorkerMismatchError(BackendError, ValueError):
    """The workers of a multi-worker strategy built different simulations."""


def current_strategy():
    """The ``tf.distribute`` strategy of the enclosing scope, or None outside any scope."""
    return tf.distribute.get_strategy() if tf.distribute.has_strategy() else None


def num_workers(strategy: Any) -> int:
    """Number of worker processes (hosts) taking part in ``strategy`` (1 for local strategies)."""
    if strategy is None:
        return 1
    return int(getattr(strategy.extended, "_num_workers", 1) or 1)


def replica_batch_zeros(spec: Any) -> Any:
    """Zero tensors shaped as one replica's batch of a :func:`distribute_batches` dataset.

    Keras builds its compiled metrics on one data batch, which it takes from a fresh
    iterator of the training data; a reshuffling dataset then starts its first epoch on
    its second permutation. The build needs only the shapes, which these have.
    """
    return tf.nest.map_structure(lambda s: tf.zeros(s.shape, s.dtype), spec)


def local_batch(strategy: Any, batch: Any) -> Any:
    """``batch`` with every distributed value replaced by this worker's first replica's value.

    Keras builds its compiled metrics on one data batch. Under a multi-worker strategy it
    averages the distributed batch across workers with ``strategy.reduce``, which the
    collective strategy cannot do for a nested structure (dicts of inputs, ``(x, y)``
    tuples). Only the shapes matter for the build, and one replica's batch has the same
    shapes as that average, without any communication.
    """
    def one(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    return tf.nest.map_structure(one, batch)


def fingerprint(arrays: list, seed: int) -> float:
    """A number identifying ``arrays`` and ``seed`` (equal on workers that built the same network).

    A float from the first 6 bytes of a SHA-256 digest: exact in float64, so the values
    gathered from the workers agree only when every worker has the same digest prefix.
    """
    h = hashlib.sha256(str(int(seed)).encode())
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return float(int.from_bytes(h.digest()[:6], "big"))


def check_same_on_workers(strategy: Any, value: float, what: str) -> None:
    """Raise :class:`WorkerMismatchError` unless every worker of ``strategy`` passes the same ``value``.

    A collective: every worker must call it at the same point (the Simulator does, when it
    is built inside the strategy's scope).
    """
    if num_workers(strategy) <= 1:
        return
    local = tf.constant([value], tf.float64)

    def replica_fn():
        return tf.distribute.get_replica_context().all_gather(local, axis=0)

    # traced: the strategy warns about (and is slow at) running collectives eagerly
    every = strategy.experimental_local_results(tf.function(lambda: strategy.run(replica_fn))())[0].numpy()
    lo, hi = float(every.min()), float(every.max())
    if lo != hi:
        raise WorkerMismatchError(
            f"{what} differs between the {num_workers(strategy)} workers of the "
            f"{type(strategy).__name__}: expected every worker to build the same network "
            f"(fingerprints from {lo:.0f} to {hi:.0f}; this worker {value:.0f}). Seed the "
            "network (nengo.Network(seed=...)) and give every worker the same network, data "
            "and Simulator arguments"
        )


def tf_config() -> dict | None:
    """The parsed ``TF_CONFIG`` environment variable, or None when it is unset or empty."""
    raw = os.environ.get("TF_CONFIG", "").strip()
    if not raw:
        return None
    try:
        cfg = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BackendError(f"TF_CONFIG is not valid JSON ({exc}); got {raw[:200]!r}") from None
    if not isinstance(cfg, dict) or "cluster" not in cfg or "task" not in cfg:
        raise BackendError(
            "TF_CONFIG must be a JSON object with 'cluster' and 'task' entries, e.g. "
            '{"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", '
            f'"index": 0}}; got {raw[:200]!r}'
        )
    return cfg


def is_chief(config: dict | None = None) -> bool:
    """Whether this process is the chief of its ``TF_CONFIG`` cluster (True without one).

    The chief is the task of type ``chief``, or worker 0 in a cluster without a chief.
    """
    cfg = tf_config() if config is None else config
    if cfg is None:
        return True
    task = cfg.get("task", {})
    kind, index = task.get("type"), int(task.get("index", 0))
    if kind == "chief":
        return True
    return kind == "worker" and index == 0 and "chief" not in cfg.get("cluster", {})


def replicas(strategy: Any) -> int:
    """Number of replicas ``strategy`` keeps in sync (1 without a strategy)."""
    return 1 if strategy is None else int(strategy.num_replicas_in_sync)


def replica_spec(strategy: Any, dataset, what: str) -> Any:
    """The element spec of one replica's share of ``dataset``'s global batches.

    Raises :class:`BackendError` unless the batch size is static and a multiple of the
    replicas in sync. A 1-tuple element (inputs only) gives its one member.
    """
    flat = tf.nest.flatten(dataset.element_spec)
    total = flat[0].shape[0] if flat[0].shape.rank else None
    n_rep = replicas(strategy)
    if total is None or total % n_rep:
        raise BackendError(
            f"{what}: under {type(strategy).__name__} the global batch must be a static multiple "
            f"of the {n_rep} replicas in sync; got a batch of {total} samples (set minibatch_size "
            f"or batch_size to a multiple of {n_rep})"
        )
    spec = tf.nest.map_structure(lambda s: tf.TensorSpec([total // n_rep, *s.shape[1:]], s.dtype),
                                 dataset.element_spec)
    return spec[0] if isinstance(spec, tuple) and len(spec) == 1 else spec


def distribute_batches(strategy: Any, dataset, what: str):
    """``dataset`` of global batches, split so that every worker of ``strategy`` gets its slice.

    Parameters
    ----------
    strategy
        A multi-worker ``tf.distribute`` strategy with one replica per worker.
    dataset
        A ``tf.data.Dataset`` whose elements are whole global batches with a static
        batch size (the leading axis of every component).
    what
        The calling method, for error messages.

    Returns
    -------
    tuple
        ``(distributed dataset, one replica's element spec)``. Every worker reads the
        whole dataset (the same global batches in the same order) and keeps its own
        slice: worker ``w`` gets samples ``[w * b, (w + 1) * b)`` of every global batch,
        where ``b = global batch / workers``. The slices keep a static size, which the
        simulation graph needs (``tf.data``'s own rebatching loses it under a
        multi-worker strategy).

    Raises
    ------
    UnsupportedFeatureError
        When a worker holds several replicas (devices); one worker process per device
        is supported.
    """
    n_rep = replicas(strategy)
    if n_rep != num_workers(strategy):
        raise UnsupportedFeatureError(
            f"{what}: under {type(strategy).__name__} nhw splits the global batch over one replica "
            f"per worker; expected {num_workers(strategy)} replicas for {num_workers(strategy)} "
            f"workers, got {n_rep} (several devices per worker): start one worker process per "
            "device (e.g. CUDA_VISIBLE_DEVICES=<one GPU> for each)"
        )
    replica = replica_spec(strategy, dataset, what)
    per_replica = tf.nest.flatten(replica)[0].shape[0]

    def per_pipeline(ctx):
        # one replica per worker (checked above): pipeline i keeps slice i of every batch
        start = ctx.input_pipeline_id * per_replica

        def split(*batch):
            mine = tuple(tf.nest.map_structure(lambda a: a[start:start + per_replica], b) for b in batch)
            return mine if len(mine) > 1 else mine[0]

        return dataset.map(split).prefetch(tf.data.AUTOTUNE)

    # datasets from a function are not sharded by TensorFlow: per_pipeline is the split.
    # A multi-worker strategy reads such a dataset with "partial batch handling", which
    # gives the replicas' batches an unknown size; every worker here gets whole batches
    # of the same size, so it is switched off while the dataset is distributed (the
    # strategy decides it once, when the distributed dataset is built)
    extended = strategy.extended
    flag = "experimental_enable_get_next_as_optional"
    saved = getattr(extended, flag, None)
    if saved is not None:
        setattr(extended, flag, False)
    try:
        return strategy.distribute_datasets_from_function(per_pipeline), replica
    finally:
        if saved is not None:
            setattr(extended, flag, saved)


def in_multi_worker_mode(strategy: Any) -> bool:
    """Whether ``strategy`` is a multi-worker strategy actually spanning several workers."""
    if strategy is None:
        return False
    in_mode = getattr(strategy.extended, "_in_multi_worker_mode", None)
    return bool(in_mode()) if callable(in_mode) else num_workers(strategy) > 1


def logs_for_worker_reduce(logs: dict) -> dict:
    """Scalar step logs as length-1 vectors, for Keras' multi-worker reduction.

    Keras averages every value a train/test step returns over the workers with
    ``strategy.reduce("MEAN", value, axis=0)``, which fails on scalars (every metric
    result is one). The metric results agree on all replicas (their variables are
    aggregated across replicas on read), so the mean of the length-1 vectors is the
    metric itself, a scalar again.
    """
    return {k: (tf.reshape(v, [1]) if getattr(v, "shape", None) is not None and v.shape.rank == 0 else v)
            for k, v in logs.items()}

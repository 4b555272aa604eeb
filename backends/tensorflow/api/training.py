"""Keras-style training of the TensorFlow Simulator: compile, fit, evaluate.

These are thin layers over ``sim.keras_model``: they translate nengo keys
(Nodes, Probes, their labels) into the Keras model's input/output names,
validate shapes with errors that name the object, batch numpy data into
static-shape datasets (the simulation graph needs a static batch), and pass
every other Keras keyword argument through unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from nhw.backends.tensorflow._tf import keras, tf  # imported on first use
from nengo.exceptions import SimulationError, ValidationError

from nhw.backends.tensorflow.api import class_weights, executions, sample_weights, train_checks
from nhw.backends.tensorflow.api.output_loss import output_loss
from nhw.backends.tensorflow.api.keras_io import STEPS_KEY
from nhw.backends.tensorflow.api.keras_state import KerasStateMixin
from nhw.backends.tensorflow.api.dynamic_inputs import keras_dataset
from nhw.backends.tensorflow.runtime.predict import (is_dynamic, normalize_inputs, split_steps_input, truncate_batch,
                                                     warn_one_step_synapses)
from nhw.backends.tensorflow.settings import get_setting


def _probe_desc(p) -> str:
    return f"Probe {p.label!r}" if p.label else repr(p)


class TrainingMixin(KerasStateMixin):
    """compile/fit/evaluate for :class:`~nhw.backends.tensorflow.Simulator`."""

    # --- names ----------------------------------------------------------------
    def _probe_key(self, key: Any, what: str) -> str:
        """Keras output name of a Probe, its name or label."""
        if isinstance(key, str):
            if key in self._probe_by_name:
                return key
            matches = [p for p in self._probes if p.label == key]
            if len(matches) == 1:
                return self._probe_names[matches[0]]
        elif key in self._probe_names:
            return self._probe_names[key]
        known = ", ".join(repr(n) for n in self._probe_by_name) or "none"
        raise ValidationError(f"{what}: {key!r} is not a probe of this network; probes: {known}", attr=what)

    def _per_probe(self, value: Any, what: str, default_all: bool) -> dict:
        """Normalize a loss/metric spec to ``{probe name: value}``."""
        if value is None:
            return {}
        if isinstance(value, Mapping):
            return {self._probe_key(k, what): v for k, v in value.items()}
        if isinstance(value, (list, tuple)) and what == "loss":
            if len(value) != len(self._probes):
                raise ValidationError(
                    f"compile: got {len(value)} losses for {len(self._probes)} probes; give "
                    "one per probe, a dict keyed by probe, or a single loss",
                    attr="loss",
                )
            return {self._probe_names[p]: v for p, v in zip(self._probes, value) if v is not None}
        if default_all:
            return {self._probe_names[p]: value for p in self._probes}
        return value

    # --- compile ---------------------------------------------------------------
    def compile(self, optimizer: Any = "rmsprop", loss: Any = None, metrics: Any = None,
                loss_weights: Any = None, **kwargs) -> None:
        """Configure training, as ``keras.Model.compile``.

        Parameters
        ----------
        optimizer
            A Keras optimizer or its name.
        loss
            One loss for every probe, a list (one per probe, in network order)
            or a dict keyed by Probe or probe name.
        metrics
            Metrics for every probe with a loss, or a dict keyed by probe.
        loss_weights
            Per-probe loss weights (dict keyed by probe, or a list).
        **kwargs
            Passed to ``keras.Model.compile`` (``jit_compile``,
            ``steps_per_execution``, ...). Without ``steps_per_execution``,
            ``fit`` runs several batches per call of the traced step where no
            callback can tell (see :mod:`.executions`); ``steps_per_execution=1``
            keeps one batch per call.
        """
        self._check_open("compile")
        # as NengoDL: inference_only=True still compiles (for evaluate); only fit is refused
        losses = self._per_probe(loss, "loss", default_all=True)
        if isinstance(metrics, Mapping):
            mets = {k: (list(v) if isinstance(v, (list, tuple)) else [v])
                    for k, v in self._per_probe(metrics, "metrics", False).items()}
        else:
            mlist = [] if metrics is None else (list(metrics) if isinstance(metrics, (list, tuple)) else [metrics])
            mets = {k: list(mlist) for k in losses}
        weighted = kwargs.pop("weighted_metrics", None)
        if isinstance(weighted, Mapping):
            weighted = {k: (list(v) if isinstance(v, (list, tuple)) else [v])
                        for k, v in self._per_probe(weighted, "weighted_metrics", False).items()}
        elif weighted is not None:
            wlist = list(weighted) if isinstance(weighted, (list, tuple)) else [weighted]
            weighted = {k: list(wlist) for k in losses}
        if len(losses) == 1:
            # Keras only reports per-output losses for several outputs; users
            # (and the seed's logs) expect "<probe>_loss" in any case
            (name, fn), = losses.items()
            weighted = weighted or {}
            weighted.setdefault(name, []).append(output_loss(fn, f"{name}_loss"))
        if isinstance(loss_weights, Mapping):
            loss_weights = {self._probe_key(k, "loss_weights"): v for k, v in loss_weights.items()}
        elif isinstance(loss_weights, (list, tuple)):
            loss_weights = {self._probe_names[p]: w for p, w in zip(self._probes, loss_weights)}
        # XLA cannot compile steps that touch variables mirrored on other
        # devices (tf.distribute); there each replica runs the plain graph
        distributed = tf.distribute.has_strategy() or self._distributed
        kwargs.setdefault("jit_compile", bool(self._loop.xla) and not distributed)
        self._compiled_losses = set(losses)
        # None: fit chooses per call (executions.fit_steps)
        self._given_steps = kwargs.get("steps_per_execution")
        # Keras names a lone output's metrics without the output's name
        # ("accuracy"); NengoDL programs read "<probe>_accuracy" (renamed in fit/evaluate)
        outputs = set(losses) | set(mets) | set(weighted or {})
        self._lone_output = next(iter(outputs)) if len(outputs) == 1 else None
        # the Keras model outputs only the probes training looks at: Keras
        # wants targets for every output that has a loss or metric
        self.keras_model.output_probes = outputs or None
        self.keras_model.compile(
            optimizer=optimizer, loss=losses or None, metrics=mets or None, loss_weights=loss_weights,
            weighted_metrics=weighted or None, **kwargs
        )

    def _check_trainable(self, what: str) -> None:
        if self.inference_only:
            raise SimulationError(
                f"{what}: this Simulator was built with inference_only=True, so it has nothing to train; "
                f"expected a Simulator built with configure_settings(inference_only=False) for {what} "
                "(compile, evaluate and predict work with inference_only=True)"
            )

    # --- data -------------------------------------------------------------------
    def _xy(self, x: Any, y: Any, n_steps: int | None, what: str, need_y: bool) -> tuple:
        """Validated ``({input name: array}, {probe name: array})``."""
        x, n_steps, steps_rows = split_steps_input(x, n_steps, what)
        xd = normalize_inputs(x, self.input_nodes, n_steps, what, self._input_names)
        if xd:
            n_steps = next(iter(xd.values())).shape[1]
        yd: dict = {}
        if y is not None:
            items = y.items() if isinstance(y, Mapping) else (
                zip(self._probes, y) if isinstance(y, (list, tuple)) else [(self._probes[0], y)]
            )
            for k, arr in items:
                name = self._probe_key(k, what)
                p = self._probe_by_name[name]
                a = np.asarray(arr)
                size = int(np.prod(self.model.sig[p]["in"].shape))
                # size 1 along the last axis: class labels for sparse losses
                if a.ndim != 3 or a.shape[2] not in (size, 1):
                    raise ValidationError(
                        f"{what}: targets for {_probe_desc(p)} have shape {a.shape}; expected "
                        f"(batch, n_steps, {size}) (or (batch, n_steps, 1) class labels)",
                        attr="y",
                    )
                yd[name] = a
        if need_y:
            missing = sorted(self._compiled_losses - set(yd))
            if missing:
                raise ValidationError(
                    f"{what}: no targets given for probe(s) {missing}, which have a loss "
                    "(give y for them or compile without their loss)",
                    attr="y",
                )
            unknown = sorted(set(yd) - self._compiled_losses)
            if unknown:
                raise ValidationError(
                    f"{what}: targets given for probe(s) {unknown} that have no loss; "
                    f"probes with a loss: {sorted(self._compiled_losses)}",
                    attr="y",
                )
        if not xd:
            if n_steps is None:
                n_steps = next(iter(yd.values())).shape[1] if yd else None
            if n_steps is None:
                raise ValidationError(f"{what}: give input data or n_steps", attr="n_steps")
            n = next(iter(yd.values())).shape[0] if yd else (steps_rows or self._batch)
            xd = {None: np.zeros((n, int(n_steps), 0))}
        sizes = {a.shape[0] for a in xd.values()} | {a.shape[0] for a in yd.values()}
        if len(sizes) > 1:
            desc = ", ".join(f"{self._input_label(k)}: {a.shape}" for k, a in xd.items())
            desc += ", " + ", ".join(f"{k}: {a.shape}" for k, a in yd.items())
            raise ValidationError(f"{what}: x and y have different numbers of samples ({desc})", attr="y")
        n_steps = next(iter(xd.values())).shape[1]
        # as NengoDL: no warning for a stateful call (its state carries over)
        warn_one_step_synapses(getattr(self.model, "toplevel", None), self._target_probes(), n_steps,
                               bool(getattr(self, "_keras_stateful", False)), what)
        for name, a in yd.items():
            p = self._probe_by_name[name]
            expect = self._probe_steps(p, n_steps)
            if a.shape[1] != expect:
                raise ValidationError(
                    f"{what}: targets for {_probe_desc(p)} have {a.shape[1]} steps (shape {a.shape}); "
                    f"the inputs run {n_steps} steps, so the probe has {expect}",
                    attr="y",
                )
        keyed = {(STEPS_KEY if k is None else self._input_names[k]): a.astype(self.dtype) for k, a in xd.items()}
        return keyed, {k: a.astype(self.dtype) for k, a in yd.items()}

    def _input_label(self, node) -> str:
        return STEPS_KEY if node is None else self._input_names[node]

    def _dataset(self, x: Any, y: Any, n_steps, what: str, batch_size, shuffle: bool, need_y: bool,
                 validation_split: float = 0.0):
        """A batched ``tf.data.Dataset`` of ``(inputs, targets)`` (and the validation
        part when ``validation_split`` is given: then a pair of datasets)."""
        if is_dynamic(x):
            kind = "tf.data.Dataset" if isinstance(x, tf.data.Dataset) else "generator"
            if y is not None:
                raise ValidationError(
                    f"{what}: y must be None when x is a {kind}; expected the targets inside x's "
                    f"(inputs, targets) elements; received y of type {type(y).__name__}",
                    attr="y",
                )
            if validation_split:
                raise ValidationError(
                    f"{what}: validation_split={validation_split!r} needs array data; with a "
                    f"{kind} pass validation_data=<another dataset or generator> instead",
                    attr="validation_split",
                )
            # named, cast and batched to a static shape (dynamic_inputs.py)
            return keras_dataset(self, x, n_steps, what, need_y)
        xd, yd = self._xy(x, y, n_steps, what, need_y)
        bs = self._batch if batch_size is None else int(batch_size)
        # NengoDL's rule: a partial last minibatch is dropped, with a warning
        xd, yd = truncate_batch(xd, bs, what, targets=yd)
        if not validation_split:
            return self._batches(xd, yd, bs, shuffle)
        n = next(iter(xd.values())).shape[0]
        # Keras' split: the last fraction of the samples, before any shuffling
        split = int(n * (1 - float(validation_split)))
        if split % bs or (n - split) % bs or split == 0 or split == n:
            raise ValidationError(
                f"{what}: validation_split={validation_split!r} splits {n} samples into {split} "
                f"training and {n - split} validation samples; both must be non-zero multiples of "
                f"the batch size {bs}",
                attr="validation_split",
            )
        train = self._batches({k: v[:split] for k, v in xd.items()}, {k: v[:split] for k, v in yd.items()},
                              bs, shuffle)
        val = self._batches({k: v[split:] for k, v in xd.items()}, {k: v[split:] for k, v in yd.items()},
                            bs, False)
        return train, val

    def _batches(self, xd: dict, yd: dict, bs: int, shuffle: bool):
        n = next(iter(xd.values())).shape[0]
        data = (xd, yd) if yd else (xd,)
        # shuffled and batched sample indices, each batch gathered from the whole
        # arrays in one op (as Keras does for arrays): shuffling the samples
        # themselves moves every sample through tf.data one by one. The same seed
        # gives the same order as shuffling the samples.
        idx = tf.data.Dataset.range(n)
        if shuffle:
            idx = idx.shuffle(n, seed=self.seed, reshuffle_each_iteration=True)
        idx = idx.batch(bs, drop_remainder=True)
        ds = tf.data.Dataset.zip((idx, tf.data.Dataset.from_tensors(data).repeat()))
        ds = ds.map(lambda i, d: tf.nest.map_structure(lambda a: tf.gather(a, i), d),
                    num_parallel_calls=tf.data.AUTOTUNE)
        return ds.prefetch(tf.data.AUTOTUNE)

    def _rename_logs(self, logs: dict) -> dict:
        """``accuracy`` -> ``<probe>_accuracy`` (also ``val_...``) for a lone output, in place."""
        name = getattr(self, "_lone_output", None)
        if name is None or not isinstance(logs, dict):
            return logs
        for key in list(logs):
            prefix, base = ("val_", key[4:]) if key.startswith("val_") else ("", key)
            if base == "loss" or base.startswith(f"{name}_"):
                continue
            logs[f"{prefix}{name}_{base}"] = logs.pop(key)
        return logs

    def _rename_metric_objects(self) -> None:
        """Give a lone output's built Keras metrics NengoDL's names (``probe_mae``).

        Keras builds compiled metrics on the first batch; renamed then, later
        results carry the name natively, so monitor callbacks (EarlyStopping
        with ``mode="auto"``) find the metric by the name the user gives.
        """
        name = getattr(self, "_lone_output", None)
        if name is None:
            return
        # CompileMetrics.metrics lists the built metric objects themselves
        for m in self.keras_model.metrics:
            for metric in getattr(m, "metrics", None) or ():
                inner = getattr(metric, "metrics", None)
                for one in inner if isinstance(inner, list) else [metric]:
                    if one.name != "loss" and not one.name.startswith(f"{name}_"):
                        one.name = f"{name}_{one.name}"

    def _with_renamer(self, callbacks: Any) -> list:
        callbacks = [callbacks] if isinstance(callbacks, keras.callbacks.Callback) else list(callbacks or [])
        if getattr(self, "_lone_output", None) is None:
            return callbacks
        # first, so later callbacks (EarlyStopping, History, ...) see NengoDL's names
        return [_rename_logs(self)] + callbacks

    # --- fit / evaluate --------------------------------------------------------
    def fit(self, x: Any = None, y: Any = None, n_steps: int | None = None, stateful: bool = False,
            batch_size: int | None = None, validation_data: Any = None, validation_split: float = 0.0,
            shuffle: bool = True, **kwargs) -> keras.callbacks.History:
        """Train the network's parameters on ``(x, y)``, as ``keras.Model.fit``.

        Parameters
        ----------
        x
            Inputs as for :meth:`predict` (array, list, dict keyed by Node, name
            or label, optionally with the ``"n_steps"`` input), or a generator or
            ``tf.data.Dataset`` of ``(inputs, targets)`` elements keyed by name; a
            dataset batched without ``drop_remainder`` is re-batched to
            ``minibatch_size`` (see :mod:`.dynamic_inputs`).
        y
            Targets: an array for the only probe with a loss, a list, or a dict
            keyed by Probe or probe name; each ``(batch, n_steps, size)``.
        n_steps
            Steps per sample (only needed without input data).
        stateful
            As NengoDL: every minibatch begins in the simulator's current state
            (the initial state at step 0; after ``run_steps``/``predict(stateful=True)``
            where those left it). False (the default): each minibatch starts from
            that state and the simulator's state and time are unchanged afterwards.
            True: each minibatch (and epoch, and validation batch) continues from
            the previous one's final state, which the simulator keeps at the end;
            ``sim.n_steps`` advances by ``n_steps`` per batch. Starting from a state
            other than the initial one needs ``batch_size`` equal to
            ``minibatch_size`` and no ``tf.distribute`` strategy.
        batch_size
            Samples per gradient step (default ``minibatch_size``; NengoDL
            ignores it, so a different value warns). Samples beyond the last
            whole batch are dropped with a warning, as in NengoDL.
        validation_data
            ``(x_val, y_val)`` in the same forms, or a dataset.
        validation_split
            Fraction of the samples (the last ones, before shuffling) used for
            validation instead of training; both parts must be whole batches.
        shuffle
            Reshuffle the samples every epoch.
        **kwargs
            Passed to ``keras.Model.fit`` (``epochs``, ``callbacks``, ``verbose``, ...),
            except ``sample_weight`` (see ``evaluate``) and ``class_weight``
            (``{class: weight}`` for the one target probe's class at every item and
            step; see :mod:`.class_weights`), which nhw puts into the data.

        Returns
        -------
        keras.callbacks.History
            Metrics named as NengoDL names them (``loss``, ``<probe>_loss``,
            ``<probe>_<metric>``, ``val_...``).
        """
        self._check_open("fit")
        self._check_trainable("fit")
        if getattr(self.keras_model, "optimizer", None) is None or not getattr(self.keras_model, "compiled", True):
            raise SimulationError("fit: call sim.compile(optimizer, loss) first")
        mode = self._keras_call_checks("fit", stateful, batch_size)
        if validation_split and validation_data is not None:
            raise ValidationError(
                "fit: give validation_data or validation_split, not both", attr="validation_split"
            )
        weights = self._sample_weight(kwargs.pop("sample_weight", None), x, y, "fit")
        class_weight = kwargs.pop("class_weight", None)
        if class_weight is not None:
            if y is None or is_dynamic(x):
                raise ValidationError(
                    "fit: class_weight needs x and y given as arrays; with a tf.data.Dataset or "
                    "generator, expected the weights inside it as (inputs, targets, sample_weights)",
                    attr="class_weight")
            weights = class_weights.combine(weights, class_weights.class_sample_weight(class_weight, y, "fit"))
        # weighted: the items are shuffled with their weights (sample_weights.with_weights)
        ds = self._dataset(x, y, n_steps, "fit", batch_size, shuffle and weights is None, need_y=True,
                           validation_split=validation_split)
        if validation_split:
            ds, validation_data = ds
            if weights is not None:
                validation_data = self._weighted(validation_data, weights, batch_size, "fit",
                                                 start=int(ds.cardinality()) * self._batch_of(batch_size))
        elif validation_data is not None:
            if is_dynamic(validation_data):
                vx, vy, vw = validation_data, None, None
            else:
                if not isinstance(validation_data, (list, tuple)) or len(validation_data) not in (2, 3):
                    raise ValidationError(
                        "fit: validation_data must be (x_val, y_val), (x_val, y_val, sample_weight_val) "
                        f"or a tf.data.Dataset; got {type(validation_data).__name__}", attr="validation_data"
                    )
                vx, vy = validation_data[0], validation_data[1]
                vw = self._sample_weight(validation_data[2] if len(validation_data) == 3 else None,
                                         vx, vy, "fit(validation_data)")
            validation_data = self._dataset(vx, vy, None, "fit(validation_data)", batch_size, False, True)
            if vw is not None:
                validation_data = self._weighted(validation_data, vw, batch_size, "fit(validation_data)")
        if weights is not None:
            ds = self._weighted(ds, weights, batch_size, "fit", shuffle=shuffle)
        callbacks = list(kwargs.get("callbacks") or [])
        if getattr(self, "_quantizer", None) is not None:
            from nhw.backends.tensorflow.builders import chip_quantize

            callbacks.append(chip_quantize.refresh_callback(self._quantizer))  # the chip factors move with training
        kwargs["callbacks"] = self._with_renamer(callbacks)
        strategy_used = (tf.distribute.has_strategy() or bool(getattr(self, "_distributed", False))
                         or getattr(self.keras_model, "_distribute_strategy", None) is not None)
        # several batches per call of the traced step where no callback can tell
        steps = executions.fit_steps(getattr(self, "_given_steps", None), callbacks,
                                     executions.epoch_batches(ds, kwargs.get("steps_per_epoch")),
                                     validation=validation_data is not None, distributed=strategy_used)
        self._static_shapes("train_function", ds)
        if validation_data is not None:
            self._static_shapes("test_function", validation_data)
        if validation_data is not None:
            validation_data = self._distribute(validation_data, "fit(validation_data)")
        ds = self._distribute(ds, "fit")  # last: Keras builds the metrics on its batch spec
        self._build_optimizer()
        before = self._snapshot()
        # zero gradients everywhere / a NaN loss: stop and say why (train_checks.py)
        # (several batches per call: checks that count the batches each call covers)
        checks = (train_checks.FitChecks if steps == 1 else executions.ExecutionChecks)(
            self, before[0], bool(get_setting(getattr(self.model, "toplevel", None), "zero_gradient_check")))
        kwargs["callbacks"] = kwargs["callbacks"] + [checks.callback()]
        compiled_steps = self.keras_model.steps_per_execution
        # for this call only: the traced function follows the value (SimulatorModel)
        self.keras_model.steps_per_execution = steps
        try:
            # shuffling happened in the dataset (Keras ignores it for datasets)
            with self._keras_state(mode, "fit", [ds, validation_data]):
                history = self.keras_model.fit(ds, validation_data=validation_data, shuffle=False, **kwargs)
        except ValueError as exc:
            if "No gradients provided" not in str(exc):
                raise
            raise SimulationError(
                "fit: no probe with a loss depends on any trainable parameter within the "
                "simulated steps (e.g. synapses delay a one-step sample's output past its "
                "only step: use synapse=None or more n_steps), or nothing is trainable"
            ) from None
        finally:
            self.keras_model.steps_per_execution = compiled_steps
        if checks.failure is not None:
            self._restore(before)
            checks.raise_failure()
        self._guard_finite(before, "fit")
        return history

    def _sample_weight(self, sample_weight: Any, x: Any, y: Any, what: str) -> Any:
        """Validated ``sample_weight`` of ``fit``/``evaluate`` (None if not given).

        As in NengoDL (Keras), one weight per minibatch item, ``(n,)``, or per item and
        timestep, ``(n, n_steps)``, or a dict of those keyed by Probe or probe name. With
        a ``tf.data.Dataset`` or generator the weights belong inside it, as Keras requires.
        """
        if sample_weight is None:
            return None
        if y is None:
            raise ValidationError(
                f"{what}: sample_weight needs the targets y given as arrays (x: {type(x).__name__}, y: None); "
                "with a tf.data.Dataset or generator, expected the weights inside it, as "
                "(inputs, targets, sample_weights) elements, and sample_weight=None",
                attr="sample_weight",
            )
        return sample_weights.check_sample_weight(sample_weight, sample_weights.n_samples(y), self._probe_key,
                                                  what)

    def _batch_of(self, batch_size: Any) -> int:
        return self._batch if batch_size is None else int(batch_size)

    def _weighted(self, ds: Any, weights: Any, batch_size: Any, what: str, start: int = 0,
                  shuffle: bool = False) -> Any:
        """``ds`` of array data (ordered) with the weights added to every batch."""
        if int(ds.cardinality()) < 0:
            raise ValidationError(
                f"{what}: sample_weight needs array data of a known number of samples; expected x and y "
                "as arrays (or the weights inside a dataset); received data of unknown length",
                attr="sample_weight",
            )
        return sample_weights.with_weights(ds, weights, self._batch_of(batch_size), start, shuffle, self.seed)

    def _build_optimizer(self) -> None:
        """Create the optimizer's slot variables before Keras traces the training step.

        Without a distribution strategy Keras builds the optimizer inside the first
        trace of ``train_function``; a ``tf.function`` that creates variables is traced
        a second time, which doubles the first epoch's tracing (the whole simulation
        loop and its gradient).
        """
        model = self.keras_model
        opt = getattr(model, "optimizer", None)
        if opt is None or opt.built:
            return
        strategy = getattr(model, "_distribute_strategy", None)
        if strategy is not None:  # Keras builds it in the strategy's scope itself
            return
        opt.build(model.trainable_weights)

    def _distribute(self, ds, what: str):
        """``ds`` (global batches) prepared for the strategy the model was built under.

        Under a multi-worker strategy the batches are split over the workers here (see
        :mod:`nhw.backends.tensorflow.distribute`); a local strategy with several replicas
        splits them itself. Either way Keras builds its metrics on zeros shaped as one
        replica's batch rather than on a batch it would draw from ``ds``.
        """
        from nhw.backends.tensorflow.distribute import (distribute_batches, in_multi_worker_mode,
                                                        replica_spec, replicas)

        strategy = getattr(self.keras_model, "_distribute_strategy", None)
        if replicas(strategy) <= 1 and not in_multi_worker_mode(strategy):
            return ds
        if not in_multi_worker_mode(strategy):
            self._replica_spec = replica_spec(strategy, ds, what)
            return ds
        distributed, self._replica_spec = distribute_batches(strategy, ds, what)
        return distributed

    def _static_shapes(self, function: str, ds) -> None:
        """Drop Keras' traced ``function`` when ``ds`` has other shapes than it was traced for.

        Keras retraces its step function with ``reduce_retracing``, which turns a
        changed dimension into ``None`` on the second shape; the simulation needs
        static batch and step counts. A fresh function traces the new shapes exactly
        (two fits with different ``batch_size`` or ``n_steps``, as NengoDL allows).
        """
        shapes = tuple(tuple(spec.shape) for spec in tf.nest.flatten(ds.element_spec))
        traced = self.__dict__.setdefault("_traced_shapes", {})
        if traced.get(function) not in (None, shapes):
            self.keras_model.forget(function)
        traced[function] = shapes

    def _snapshot(self) -> tuple:
        """Model weights, (if built) optimizer state and the simulation state, to roll
        back a diverged fit (a ``stateful=True`` fit leaves its final state behind)."""
        opt = self.keras_model.optimizer
        opt_vals = [v.numpy() for v in opt.variables] if getattr(opt, "built", False) else None
        return [v.numpy() for v in self.keras_model.weights], opt_vals, self._save_state()

    def evaluate(self, x: Any = None, y: Any = None, n_steps: int | None = None, stateful: bool = False,
                 batch_size: int | None = None, return_dict: bool = True, **kwargs):
        """Loss and metrics on ``(x, y)``, as ``keras.Model.evaluate``.

        Parameters
        ----------
        x, y, n_steps, batch_size
            As for :meth:`fit` (a partial last batch is dropped with a warning).
        stateful
            As for :meth:`fit`: every batch begins in the simulator's current
            state; True keeps the final state (and advances ``sim.n_steps``).
        return_dict
            True (NengoDL's form): ``{"loss": ..., "<probe>_loss": ...,
            "<probe>_<metric>": ...}``; False: Keras' list.
        **kwargs
            Passed to ``keras.Model.evaluate`` (``verbose``, ``callbacks``, ``steps``, ...).
        """
        self._check_open("evaluate")
        if getattr(self.keras_model, "optimizer", None) is None:
            raise SimulationError("evaluate: call sim.compile(optimizer, loss) first")
        mode = self._keras_call_checks("evaluate", stateful, batch_size)
        weights = self._sample_weight(kwargs.pop("sample_weight", None), x, y, "evaluate")
        ds = self._dataset(x, y, n_steps, "evaluate", batch_size, False, need_y=True)
        if weights is not None:
            ds = self._weighted(ds, weights, batch_size, "evaluate")
        kwargs["callbacks"] = self._with_renamer(kwargs.get("callbacks"))
        self._static_shapes("test_function", ds)
        ds = self._distribute(ds, "evaluate")
        with self._keras_state(mode, "evaluate", [ds]):
            out = self.keras_model.evaluate(ds, return_dict=return_dict, **kwargs)
        return self._rename_logs(dict(out)) if return_dict else out

    def _restore(self, before: tuple) -> None:
        """Weights, optimizer state and simulation state back to ``before`` (a :meth:`_snapshot`)."""
        weights, opt_vals, state = before
        self._restore_state(state)
        for v, val in zip(self.keras_model.weights, weights):
            v.assign(val)
        opt = self.keras_model.optimizer
        for i, v in enumerate(opt.variables):
            v.assign(opt_vals[i] if opt_vals is not None else np.zeros(v.shape, v.dtype))

    def _guard_finite(self, before: tuple, what: str) -> None:
        """Roll back to ``before`` (weights and optimizer state) and raise if training
        produced NaN/Inf weights; NaN optimizer moments would poison every later fit."""
        bad = [v.path for v in self.keras_model.weights if not np.all(np.isfinite(v.numpy()))]
        if bad:
            self._restore(before)
            raise train_checks.TrainingError(
                f"{what}: training made parameter(s) {', '.join(bad[:5])}"
                f"{' ...' if len(bad) > 5 else ''} non-finite (NaN/Inf loss); the parameters "
                "and the simulation state were restored to their values before this call (lower the learning rate, "
                "or check the data and targets for NaN/Inf)"
            )


def _rename_logs(sim) -> Any:
    """A callback renaming Keras' metric keys to NengoDL's in the ``logs`` later callbacks see.

    Defined on first use: subclassing a Keras class at import would import TensorFlow.
    """

    class _RenameLogs(keras.callbacks.Callback):
        """Renames Keras' metric keys to NengoDL's in the ``logs`` every later callback sees."""

        def __init__(self, sim) -> None:
            super().__init__()
            self._sim = sim

        def _rename(self, logs) -> None:
            self._sim._rename_metric_objects()
            self._sim._rename_logs(logs)

        def on_epoch_end(self, epoch, logs=None):
            self._rename(logs)

        def on_train_batch_end(self, batch, logs=None):
            self._rename(logs)

        def on_test_batch_end(self, batch, logs=None):
            self._rename(logs)

        def on_test_end(self, logs=None):
            self._rename(logs)

        def on_train_end(self, logs=None):
            self._rename(logs)

    return _RenameLogs(sim)

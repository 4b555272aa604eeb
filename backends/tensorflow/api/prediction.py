"""``predict`` and ``predict_on_batch`` for :class:`~nhw.backends.tensorflow.Simulator`.

Mixed into the Simulator like :class:`~nhw.backends.tensorflow.api.training.TrainingMixin`;
it runs the compiled simulation through the Simulator's ``_prepare`` and ``_simulate``.
"""

from __future__ import annotations

import time as _time
import warnings
from typing import Any

import numpy as np
from nengo.exceptions import ValidationError

from nhw.backends.tensorflow.runtime.predict import (check_batch, fmt_seconds as _fmt, is_dynamic, normalize_inputs,
                                                     split_steps_input, truncate_batch, warn_one_step_synapses)

#: Keras ``predict`` arguments about data loading: accepted, nothing to do here
_NO_EFFECT_PREDICT_KWARGS = frozenset({"max_queue_size", "workers", "use_multiprocessing"})


class PredictMixin:
    """NengoDL's ``predict``/``predict_on_batch`` with Keras' keyword arguments."""

    def predict_on_batch(self, x: Any = None, n_steps: int | None = None, stateful: bool = False,
                         **kwargs: Any) -> dict:
        """Simulate one minibatch and return ``{probe: (batch, n_steps, *dims)}``.

        Parameters
        ----------
        x
            Input data: an array for the first input Node, a list in network order,
            or a dict keyed by Node, name (``sim.get_name``: ``"node_1"``) or label,
            each ``(minibatch_size, n_steps, size_out)``; the dict may hold the
            special ``"n_steps"`` input, ``(minibatch_size, 1)`` copies of the number
            of steps. Nodes without data compute their own output.
        n_steps
            Number of steps (required without data; must agree with the data).
        stateful
            Keep the final state and advance ``sim.time`` (else state is unchanged).
        **kwargs
            Keras' ``predict`` arguments (``verbose``, ``callbacks``), as for :meth:`predict`.
        """
        return self._predict(x, n_steps, stateful, "predict_on_batch", multiple=False, **kwargs)

    def predict(self, x: Any = None, n_steps: int | None = None, stateful: bool = False,
                **kwargs: Any) -> dict:
        """Simulate the samples of ``x`` minibatch by minibatch (``keras.Model.predict``).

        Parameters
        ----------
        x, n_steps
            As for :meth:`predict_on_batch`; the number of samples may be any
            multiple of ``minibatch_size``. Other numbers are cut down to the
            largest multiple, with a warning (as in NengoDL). ``x`` may also be
            a generator or ``tf.data.Dataset`` yielding such dicts (keyed by
            name), lists or arrays; its elements are read (up to ``steps``) and
            simulated together. Probes with ``sample_every`` return every step
            (as in NengoDL; only ``run_steps`` thins them).
        stateful
            False: every minibatch starts from the current state, which is
            left unchanged. True: each minibatch continues from the previous
            one's final state and the simulator keeps the last one (its time
            advances by ``n_steps`` per minibatch).
        **kwargs
            Keras' ``predict`` arguments: ``verbose`` (0 silences the timing
            line, 1 or 2 add Keras' progress bar), ``callbacks`` (Keras
            callbacks, called per minibatch with the minibatch's outputs keyed by
            probe name in ``logs``),
            ``steps`` (simulate only the first ``steps`` minibatches),
            ``batch_size`` (ignored with a warning, as in NengoDL: the
            minibatch size is ``minibatch_size``), ``max_queue_size``,
            ``workers``, ``use_multiprocessing`` (accepted; no effect here).

        Returns
        -------
        dict
            ``{probe: array (n_samples, n_steps, *probe shape)}``.
        """
        return self._predict(x, n_steps, stateful, "predict", multiple=True, **kwargs)

    def _predict(self, x, n_steps, stateful, what, multiple, verbose: Any = "auto", callbacks: Any = None,
                 steps: int | None = None, batch_size: int | None = None, **ignored: Any) -> dict:
        self._check_open(what)
        unknown = sorted(set(ignored) - _NO_EFFECT_PREDICT_KWARGS)
        if unknown:
            raise TypeError(
                f"{what}() got unexpected keyword argument(s) {unknown}; expected x, n_steps, "
                "stateful, verbose, callbacks, steps, batch_size, "
                + ", ".join(sorted(_NO_EFFECT_PREDICT_KWARGS))
            )
        if batch_size is not None and batch_size != self._batch:
            warnings.warn(
                f"{what}: batch_size={batch_size!r} is ignored; the batch size is the Simulator's "
                f"minibatch_size ({self._batch}), fixed when it was built"
            )
        if stateful and not self.stateful:
            warnings.warn(
                f"{what}: ignoring stateful=True, since the Simulator was built from a network "
                "with configure_settings(stateful=False)"
            )
            stateful = False
        steps_rows = None
        if multiple and is_dynamic(x):
            # a generator or dataset: read it all (up to ``steps`` elements), then
            # simulate its samples as arrays
            from nhw.backends.tensorflow.api.dynamic_inputs import collect_inputs

            data, n_steps, steps_rows = collect_inputs(self, x, n_steps, steps, what)
            steps = None
        else:
            x, n_steps, steps_rows = split_steps_input(x, n_steps, what)
            data = normalize_inputs(x, self.input_nodes, n_steps, what, self._input_names)
        if multiple:
            data = truncate_batch(data, self._batch, what)
        else:
            check_batch(data, self._batch, what, multiple=False)
            if not data and steps_rows is not None and steps_rows != self._batch:
                raise ValidationError(
                    f"{what}: the 'n_steps' input has {steps_rows} rows; expected {self._batch} "
                    "(the Simulator's minibatch_size)",
                    attr="x",
                )
        if data:
            n_steps = next(iter(data.values())).shape[1]
        if n_steps is None:
            raise ValidationError(
                f"{what}: n_steps must be given when no input data is supplied", attr="n_steps"
            )
        if isinstance(n_steps, bool) or int(n_steps) != n_steps or n_steps < 1:
            raise ValidationError(f"{what}: n_steps must be a positive integer; got {n_steps!r}", attr="n_steps")
        n_steps = int(n_steps)
        warn_one_step_synapses(getattr(self.model, "toplevel", None), self._target_probes(), n_steps, stateful, what)
        total = next(iter(data.values())).shape[0] if data else max(steps_rows or 0, self._batch)
        n_batches = total // self._batch
        if steps is not None:
            if isinstance(steps, bool) or int(steps) != steps or steps < 1:
                raise ValidationError(f"{what}: steps must be a positive integer; got {steps!r}", attr="steps")
            n_batches = min(n_batches, int(steps))
        cbs = self._predict_callbacks(callbacks, verbose, n_batches)
        results: dict = {p: [] for p in self._probes}
        t0 = _time.time()
        if cbs is not None:
            cbs.on_predict_begin()
        with self._every_step():  # sample_every thins run_steps' records only (NengoDL)
            self._predict_batches(data, n_steps, n_batches, stateful, cbs, results)
        if cbs is not None:
            cbs.on_predict_end()
        if verbose != 0:
            self._say(f"Simulation finished in {_fmt(_time.time() - t0)}")
        out = {p: np.concatenate(v, axis=0) for p, v in results.items()}
        out = {p: v if self._keeps_history(p) else v[:, -1:] for p, v in out.items()}
        return out

    def _target_probes(self) -> list:
        """The probes NengoDL checks for filters: those with a loss once compiled, else all."""
        losses = getattr(self, "_compiled_losses", None)
        return [p for p in self._probes if self._probe_names[p] in losses] if losses else list(self._probes)

    def _predict_batches(self, data: dict, n_steps: int, n_batches: int, stateful: bool, cbs: Any,
                         results: dict) -> None:
        """Simulate ``n_batches`` minibatches of ``data``, appending each probe's output to ``results``."""
        for i in range(n_batches):
            start = i * self._batch
            part = {k: v[start:start + self._batch] for k, v in data.items()}
            if cbs is not None:
                cbs.on_predict_batch_begin(i)
            saved = self._tensors
            out = self._simulate(n_steps, part, record=False, commit=True)
            if not stateful:
                self._tensors = saved
            else:
                self._n_steps += n_steps
            batch_out = {}
            for p, chunks in out.items():
                arr = np.concatenate(chunks, axis=0) if chunks else np.zeros((0,))
                batch_out[p] = np.moveaxis(arr, -1, 0)
                results[p].append(batch_out[p])
            if cbs is not None:
                # callbacks (IsolateState) may reset the state between minibatches
                # keyed by probe name, like the Keras model's outputs
                cbs.on_predict_batch_end(i, {"outputs": {self._probe_names[p]: v for p, v in batch_out.items()}})

    def _predict_callbacks(self, callbacks: Any, verbose: Any, n_batches: int):
        """A Keras ``CallbackList`` for predict (None when there is nothing to call)."""
        progbar = verbose in (1, 2)
        if not callbacks and not progbar:
            return None
        from nhw.backends.tensorflow._tf import keras

        if isinstance(callbacks, keras.callbacks.Callback):
            callbacks = [callbacks]
        return keras.callbacks.CallbackList(
            list(callbacks or []), add_history=False, add_progbar=progbar, model=self.keras_model,
            verbose=verbose, epochs=1, steps=n_batches,
        )

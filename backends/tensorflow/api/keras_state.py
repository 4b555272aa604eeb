"""Where a Keras call (fit, evaluate) of the TensorFlow Simulator starts: NengoDL's ``stateful``.

As in NengoDL, every call begins in the simulator's current state (after ``run_steps``,
``predict(stateful=True)``, ...), not at step 0; ``stateful=True`` also keeps the final
state of the call's last batch. The Keras model reads its start from a saved state
(:class:`.keras_model.SavedState`); this mixin decides the start, refuses the cases
nhw cannot start from a saved state, and loads and collects that state around the call.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
from nengo.exceptions import ValidationError

from nhw.backends.tensorflow._tf import tf  # imported on first use
from nhw.errors import UnsupportedFeatureError


class KerasStateMixin:
    """The start state of ``fit``/``evaluate`` for :class:`~nhw.backends.tensorflow.Simulator`."""

    def _keras_call_checks(self, what: str, stateful: bool, batch_size: Any) -> str:
        """NengoDL's ``stateful=`` and ``batch_size=`` for fit/evaluate; returns where the
        Keras call starts (:attr:`.SimulatorModel.state_mode`).

        As in NengoDL every call begins in the simulator's current state (after
        ``run_steps``, ``predict(stateful=True)``, ...): ``"initial"`` at step 0 (or with
        ``configure_settings(stateful=False)``), else ``"state"``; ``stateful=True``
        (``"stateful"``) also keeps the final state of the call's last batch.
        """
        if batch_size is not None and batch_size != self._batch:
            warnings.warn(
                f"{what}: batch_size={batch_size} differs from minibatch_size={self._batch}; NengoDL "
                f"ignores batch_size, nhw uses it as the number of samples per {what} batch",
                UserWarning,
                stacklevel=3,
            )
        if stateful and not self.stateful:
            warnings.warn(
                f"{what}: ignoring stateful=True, since the Simulator was built from a network "
                "with configure_settings(stateful=False)",
                UserWarning,
                stacklevel=3,
            )
            stateful = False
        self._keras_stateful = bool(stateful)
        if stateful:
            mode = "stateful"
        elif self.stateful and not self._state_is_initial():
            mode = "state"
        else:
            return "initial"
        why = f"the simulator is at step {self._n_steps}" if mode == "state" else f"{what}(stateful=True)"
        if batch_size is not None and batch_size != self._batch:
            raise ValidationError(
                f"{what}: {why}, so every batch starts from the simulator's saved state, which holds "
                f"minibatch_size={self._batch} samples; batch_size={batch_size} cannot start from it. "
                f"Expected batch_size=None (or {self._batch}), or call sim.reset(include_trainable=False) "
                "first to start from the initial state",
                attr="batch_size",
            )
        strategy = getattr(self.keras_model, "_distribute_strategy", None)
        if tf.distribute.has_strategy() or self._distributed or strategy is not None:
            raise UnsupportedFeatureError(
                f"{what}: {why}, so every batch would start from the simulator's saved state, which "
                "nhw cannot share between the replicas of a tf.distribute strategy; expected a call "
                "from the initial state under a strategy: call sim.reset(include_trainable=False) "
                f"first{'' if mode == 'state' else ' and use stateful=False'}"
            )
        return mode

    def _given_inputs(self, ds: Any) -> set:
        """Keras input names a dataset's elements carry."""
        spec = ds.element_spec
        x = spec[0] if isinstance(spec, tuple) else spec
        return set(x) if isinstance(x, Mapping) else set()

    def _check_host_from_state(self, what: str, given: set, n: int, mode: str) -> None:
        """Refuse a run from the current state whose host-computed inputs (Nodes without
        data, noise processes) would differ from those of a run from step 0: the Keras
        model's traced step holds the latter as constants."""
        live = [f for f in self._feeds if f.op is not None and f.size
                and not (f.node is not None and self._input_names.get(f.node) in given)]
        if not live:
            return
        const = self._host_constants(n)
        from nhw.backends.tensorflow.runtime.host import HostPlan

        plan = HostPlan(self.model, self._step_order, list(self._host.host_ops), self._feeds, self.dtype)
        plan.reset(self.seed)
        for done in range(0, self._n_steps, 4096):  # the steps so far, in bounded chunks
            plan.inputs(min(4096, self._n_steps - done), done, 1)
        later = plan.inputs(n, self._n_steps, 1)
        bad = []
        for f in live:
            a, b = f.cols
            same = np.array_equal(later[:, a:b], const[:, a:b])
            if mode == "stateful":  # later batches continue: only inputs constant in time repeat
                same = same and bool(np.all(const[:, a:b] == const[:1, a:b]))
            if not same:
                bad.append(repr(f.node if f.node is not None else f.op))
        if bad:
            raise UnsupportedFeatureError(
                f"{what}: the simulator is at step {self._n_steps}{' and stateful=True' if mode == 'stateful' else ''}"
                f", but {', '.join(bad)} change(s) over time without input data, and nhw's {what} "
                "computes such inputs from step 0 only; expected input data for them in x, or "
                "sim.reset(include_trainable=False) before this call"
            )

    @contextlib.contextmanager
    def _keras_state(self, mode: str, what: str, datasets: list) -> Iterator[None]:
        """Run the Keras call inside from the simulator's current state (``mode`` as
        :meth:`_keras_call_checks` returns it); a ``"stateful"`` call leaves its final
        state and step count behind, as NengoDL's ``stateful=True``."""
        model = self.keras_model
        if mode == "initial":
            yield
            return
        given = set()
        n = None
        for ds in datasets:
            if ds is None:
                continue
            given |= self._given_inputs(ds)
            spec = tf.nest.flatten(ds.element_spec)
            n = max([n or 0] + [int(sp.shape[1]) for sp in spec
                                if sp.shape.rank and sp.shape.rank >= 2 and sp.shape[1] is not None])
        if n:
            self._check_host_from_state(what, given, n, mode)
        state = model.saved_state()
        state.load(self._loop.state_values(self._tensors), self._n_steps)
        model.state_mode = mode
        self._keras_state_live = mode == "stateful"
        try:
            yield
        finally:
            model.state_mode = "initial"
            self._keras_state_live = False
            if mode == "stateful":
                values, step = state.values()
                with self._device():
                    self._tensors = self._loop.state_from_values(values)
                self._n_steps = step
                if self._data is not None:
                    self._data.reset()

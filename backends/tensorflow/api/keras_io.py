"""Keras inputs and outputs of a simulation: host input tensors and probe outputs.

:class:`KerasIOMixin` gives the Simulator the conversions between the Keras model's
dict-of-arrays interface (see :mod:`.keras_model`) and the loop's time-major host
input and probe buffers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
from nengo.exceptions import ValidationError

from nhw.backends.tensorflow._tf import tf  # imported on first use
from nhw.backends.tensorflow.runtime.host import HostPlan

#: input key that carries only ``n_steps`` for networks without input Nodes
STEPS_KEY = "n_steps"


class KerasIOMixin:
    """Simulator side of the Keras model: host inputs, probe outputs, parameter values."""

    def _param_values(self) -> list:
        return [v.value for v in self.keras_model.param_vars]

    def _host_constants(self, n: int) -> np.ndarray:
        """Host inputs ``(n, columns, 1)`` of a run from step 0 (cached per ``n``).

        A separate host plan keeps the simulator's own host state untouched.
        """
        if n not in self._host_cache:
            plan = HostPlan(self.model, self._step_order, list(self._host.host_ops), self._feeds, self.dtype)
            plan.reset(self.seed)
            self._host_cache[n] = plan.inputs(n, 0, 1)
        return self._host_cache[n]

    def _keras_host(self, inputs: dict, n: int, batch: int):
        """The ``(n, columns, batch)`` host tensor with user data spliced in."""
        const = self._host_constants(n)
        by_name = {self._input_names[f.node]: f for f in self._feeds if f.node in self._input_names}
        given = {}
        for name, x in inputs.items():
            if name == STEPS_KEY:
                continue
            f = by_name.get(name)
            if f is None:
                raise ValidationError(
                    f"keras_model: unknown input {name!r}; inputs: {sorted(by_name)}", attr="inputs"
                )
            given[f.cols] = tf.transpose(tf.cast(x, self._layout.dtype), (1, 2, 0))
        parts = []
        for f in sorted(self._feeds, key=lambda f: f.cols):
            if f.size == 0:
                continue
            a, b = f.cols
            part = given.get(f.cols)
            if part is None:
                part = tf.broadcast_to(tf.constant(const[:, a:b, :]), (n, b - a, batch))
            parts.append(part)
        if not parts:
            return tf.zeros((n, 0, batch), dtype=self._layout.dtype)
        return parts[0] if len(parts) == 1 else tf.concat(parts, axis=1)

    def _probe_steps(self, probe, n: int) -> int:
        """How many steps of ``probe`` the Keras model outputs for a run of ``n`` steps.

        Every step (``sample_every`` applies to ``run_steps``/``sim.data`` only, as
        in NengoDL), or the last one for a probe without ``keep_history``.
        """
        return n if self._keeps_history(probe) else 1

    def _probe_keep(self, probe, step0: int, n: int) -> np.ndarray:
        """Which of steps ``step0 + 1 .. step0 + n`` ``probe`` records (its ``sample_every``).

        Inside :meth:`_every_step` (``predict``) every step is kept.
        """
        if getattr(self, "_all_steps", False):
            return np.ones(n, dtype=bool)
        period = 1 if probe.sample_every is None else probe.sample_every / self.dt
        idx = np.arange(step0 + 1, step0 + n + 1)
        return idx % period < 1

    @contextlib.contextmanager
    def _every_step(self) -> Iterator[None]:
        """Simulate with every step of every probe kept (NengoDL's ``predict``)."""
        saved = getattr(self, "_all_steps", False)
        self._all_steps = True
        try:
            yield
        finally:
            self._all_steps = saved

    def _keras_outputs(self, probes: list, n: int, batch: int) -> dict:
        # every step, as NengoDL's predict/fit/evaluate (sample_every: run_steps only)
        out = {}
        for p, arr in zip(self._probes, probes):
            keep = np.arange(n)
            if not self._keeps_history(p):
                keep = keep[-1:]
            if keep.size != n:
                arr = tf.gather(arr, keep, axis=0)
            nd = len(arr.shape)
            arr = tf.transpose(arr, (nd - 1,) + tuple(range(nd - 1)))
            out[self._probe_names[p]] = tf.reshape(arr, (batch, int(keep.size), -1))
        return out

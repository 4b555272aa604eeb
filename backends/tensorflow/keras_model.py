"""``sim.keras_model``: the simulation as a real ``keras.Model``.

Inputs are a dict ``{input name: (batch, n_steps, size)}`` (one entry per input
Node that gets data; with no input Nodes a ``(batch, n_steps, 0)`` entry named
:data:`STEPS_KEY` carries ``n_steps``); outputs are ``{probe name: (batch,
n_steps, size)}``. Every call simulates from the initial state at step 0, so a
Keras train step is one complete, differentiable simulation. Batch and
``n_steps`` come from the static input shape: short runs are unrolled, longer
ones loop with a static trip count (see :meth:`CompiledLoop.trace`).

The trainable nengo parameters (see :mod:`.params`) are this model's weights,
together with the weights of Keras layers inside TensorNodes, so optimizers,
callbacks (ModelCheckpoint, EarlyStopping, ...), ``save_weights`` and
``tf.distribute`` strategies work on them as on any Keras model.
"""

from __future__ import annotations

import re

import numpy as np

from ._tf import tf  # before keras, so TensorFlow is imported quietly
import keras

from nengo.exceptions import ValidationError

from .host import HostPlan
from .params import ParamView

#: input key that carries only ``n_steps`` for networks without input Nodes
STEPS_KEY = "n_steps"


def _variable_name(name: str) -> str:
    # Keras forbids "/" in variable names; keep them readable and unique-ish
    # (optimizer slot names derived from it become TF scope names: [A-Za-z0-9_.-])
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", name).strip("_")


class SimulatorModel(keras.Model):
    """Keras model wrapping one :class:`~backends.tensorflow.Simulator`.

    Parameters
    ----------
    sim
        The simulator (its layout, loop, parameters and host inputs).
    """

    def __init__(self, sim) -> None:
        super().__init__(name="nhw_simulator")
        self._nhw_sim = sim
        #: one flat variable per parameter group (see params.ParamGroup); each
        #: parameter's ``variable`` is a view of its slice
        self.param_vars = []
        for g in sim._groups:
            var = self.add_weight(
                shape=(g.size,),
                initializer="zeros",
                dtype=sim.dtype,
                trainable=True,
                name=_variable_name(g.name),
            )
            var.assign(np.asarray(g.initial(), dtype=sim.dtype))
            g.variable = var
            for p, off in zip(g.params, g.offsets):
                p.variable = ParamView(g, off, p)
            self.param_vars.append(var)
        #: Keras layers inside TensorNodes (tracked: they train and save)
        self.tensor_layers = list(sim._ctx.keras_layers)
        #: names of the probes returned by ``call`` (None: all); set by ``sim.compile``
        self.output_probes = None
        #: L2 penalty on the trainable nengo parameters, added to the training loss
        self.weight_decay = 0.0

    def call(self, inputs, training=None):
        sim = self._nhw_sim
        inputs = dict(inputs)
        if not inputs:
            raise ValueError(
                "nhw_simulator: call with at least one input (Node data or "
                f"{STEPS_KEY!r} shaped (batch, n_steps, 0))"
            )
        first = next(iter(inputs.values()))
        batch, n = first.shape[0], first.shape[1]
        if batch is None or n is None:
            raise ValueError(
                f"nhw_simulator: batch size and n_steps must be static; got input shape "
                f"{tuple(first.shape)} (batch datasets with drop_remainder=True)"
            )
        host = sim._keras_host(inputs, int(n), int(batch))
        tensors = [tf.constant(v) for v in sim._layout.initial_slots(int(batch))]
        values = [v.value for v in self.param_vars]
        params = sim._assemble(values)
        _, probes = sim._loop.trace(tensors, host, sim.seed, params, int(batch), bool(training), values)
        if training and self.weight_decay:
            self.add_loss(self.weight_decay * tf.add_n([tf.reduce_sum(tf.square(v.value)) for v in self.param_vars]))
        out = sim._keras_outputs(probes, int(n), int(batch))
        if self.output_probes is not None:
            out = {k: v for k, v in out.items() if k in self.output_probes}
        return out


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
            if name == "n_steps":
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
        """How many samples ``probe`` records in a run of ``n`` steps."""
        if not self.keep_history:
            return 1
        return int(np.count_nonzero(self._probe_keep(probe, 0, n)))

    def _probe_keep(self, probe, step0: int, n: int) -> np.ndarray:
        period = 1 if probe.sample_every is None else probe.sample_every / self.dt
        idx = np.arange(step0 + 1, step0 + n + 1)
        return idx % period < 1

    def _keras_outputs(self, probes: list, n: int, batch: int) -> dict:
        out = {}
        for p, arr in zip(self._probes, probes):
            keep = np.nonzero(self._probe_keep(p, 0, n))[0]
            if not self.keep_history:
                keep = keep[-1:]
            if keep.size != n:
                arr = tf.gather(arr, keep, axis=0)
            nd = len(arr.shape)
            arr = tf.transpose(arr, (nd - 1,) + tuple(range(nd - 1)))
            out[self._probe_names[p]] = tf.reshape(arr, (batch, int(keep.size), -1))
        return out

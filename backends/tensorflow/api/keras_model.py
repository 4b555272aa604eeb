"""``sim.keras_model``: the simulation as a real ``keras.Model``.

Inputs are a dict ``{input name: (batch, n_steps, size)}`` (one entry per input
Node that gets data; with no input Nodes a ``(batch, n_steps, 0)`` entry named
:data:`STEPS_KEY` carries ``n_steps``); outputs are ``{probe name: (batch,
n_steps, size)}``. A call simulates from the initial state at step 0, so a
Keras train step is one complete, differentiable simulation; within
``sim.fit``/``sim.evaluate`` it starts from the simulator's current state instead
(NengoDL's saved state; see :attr:`SimulatorModel.state_mode`). Batch and
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

from nhw.backends.tensorflow._tf import keras, tf  # imported on first use

from nhw.backends.tensorflow.api import cache_damage
from nhw.backends.tensorflow.api.keras_io import STEPS_KEY
from nhw.backends.tensorflow.runtime.params import ParamView


def _variable_name(name: str) -> str:
    # Keras forbids "/" in variable names; keep them readable and unique-ish
    # (optimizer slot names derived from it become TF scope names: [A-Za-z0-9_.-])
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", name).strip("_")


class SimulatorModel(keras.Model):
    """Keras model wrapping one :class:`~nhw.backends.tensorflow.Simulator`.

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
        #: where a call starts (read when Keras traces a function; each mode keeps its
        #: own traced functions, so switching retraces once per mode, not per call):
        #: ``"initial"`` the initial state at step 0 (constants: the common case costs
        #: nothing); ``"state"`` the values of :attr:`state` (the simulator's current
        #: state and step, assigned by ``sim.fit``/``sim.evaluate`` before the Keras
        #: call); ``"stateful"`` as ``"state"`` and each call writes its final state
        #: and step back (``stateful=True``: the next batch continues from it)
        self.state_mode = "initial"
        #: the saved state (:class:`SavedState`), created on first use
        self.state = None
        #: functions traced under other (steps, mode) keys (a plain holder: untracked)
        self._nhw_fns = _Traced()
        # every weight exists now (the simulation fixes them), so Keras' save_weights /
        # load_weights work before the first call, as on a model built on its inputs
        self.built = True

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras (TF backend) builds its metrics on a strategy.reduce of a first batch
        # drawn from a fresh iterator: the multi-worker (collective) strategy cannot
        # reduce dict inputs (keras-team/keras#20329), and the extra iterator moves a
        # reshuffling dataset to its next permutation. Only the shapes matter: build on
        # zeros shaped as one replica's batch (sim.fit/evaluate record that spec), else
        # on this worker's own replica batch
        strategy = getattr(self, "_distribute_strategy", None)
        if iterator is not None and data_batch is None and strategy is not None:
            from nhw.backends.tensorflow.distribute import local_batch, replica_batch_zeros

            spec = getattr(self._nhw_sim, "_replica_spec", None)
            if spec is not None:  # no iterator: it would advance the shuffling
                return super()._maybe_symbolic_build(data_batch=replica_batch_zeros(spec))
            for _, _, it in iterator:
                data_batch = local_batch(strategy, next(it))
                break
            iterator = None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def make_train_function(self, force=False):
        self._match_steps("train_function")
        super().make_train_function(force)
        return self._guard("train_function")

    def make_test_function(self, force=False):
        self._match_steps("test_function")
        super().make_test_function(force)
        return self._guard("test_function")

    def make_predict_function(self, force=False):
        self._match_steps("predict_function")
        super().make_predict_function(force)
        return self._guard("predict_function")

    def _guard(self, name: str):
        # Keras calls the attribute (its make_* return nothing when they trace): a damaged
        # saved program must not read as the end of the data
        fn = cache_damage.guarded(getattr(self, name, None), self, name)
        setattr(self, name, fn)
        return fn

    def _match_steps(self, function: str) -> None:
        # Keras reads steps_per_execution when it traces a function, and its epoch
        # iterator counts batches with the current value; sim.fit sets the value per
        # call (executions.py), so a function traced under another value is retraced.
        # The start (state_mode) is fixed at tracing too: a function traced for each
        # (steps, mode) is kept, so alternating modes does not retrace every call
        traced, traced_mode = f"_nhw_{function}_steps", f"_nhw_{function}_mode"
        key = (self.steps_per_execution, self.state_mode)
        before = (getattr(self, traced, None), getattr(self, traced_mode, "initial"))
        current = getattr(self, function, None)
        if before != key:
            if current is not None and before[0] is not None:
                self._nhw_fns.kept[(function, before)] = current
            setattr(self, function, self._nhw_fns.kept.pop((function, key), None))
        setattr(self, traced, self.steps_per_execution)
        setattr(self, traced_mode, self.state_mode)

    def forget(self, function: str) -> None:
        """Drop ``function`` (``"train_function"``, ...) traced under any mode or steps
        (its input shapes changed): the next call traces it afresh."""
        setattr(self, function, None)
        for key in [k for k in self._nhw_fns.kept if k[0] == function]:
            del self._nhw_fns.kept[key]

    def saved_state(self) -> "SavedState":
        """:attr:`state`, created (outside any traced function) on first use."""
        if self.state is None:
            sim = self._nhw_sim
            with tf.init_scope(), sim._device():
                self.state = SavedState(sim._layout.initial_slots(sim._batch))
        return self.state

    def train_step(self, data):
        return self._worker_logs(super().train_step(data))

    def test_step(self, data):
        return self._worker_logs(super().test_step(data))

    def _worker_logs(self, logs):
        strategy = getattr(self, "_distribute_strategy", None)
        if strategy is None or not isinstance(logs, dict):
            return logs
        from nhw.backends.tensorflow.distribute import in_multi_worker_mode, logs_for_worker_reduce

        return logs_for_worker_reduce(logs) if in_multi_worker_mode(strategy) else logs

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
        state = None
        if self.state_mode != "initial":
            if int(batch) != sim._batch:  # sim.fit/evaluate refuse this before Keras traces
                raise ValueError(
                    f"nhw_simulator: a run from the simulator's current state needs batches of "
                    f"minibatch_size={sim._batch} (the state's batch); got batch {int(batch)}"
                )
            state = self.saved_state()
        if state is None:
            tensors = [tf.constant(v) for v in sim._layout.initial_slots(int(batch))]
            step0 = None
        else:
            tensors = [v.value() for v in state.slots]
            step0 = state.step.value()
        values = [v.value for v in self.param_vars]
        params = sim._assemble(values)
        if sim.learning_phase is not None:  # NengoDL's learning_phase setting fixes the mode
            training = sim.learning_phase
        final, probes = sim._loop.trace(tensors, host, sim.seed, params, int(batch), bool(training), values,
                                        step0=step0)
        if state is not None and self.state_mode == "stateful":
            # NengoDL's stateful call: the final state is saved for the next batch
            for var, val in zip(state.slots, final):
                var.assign(tf.stop_gradient(val))
            state.step.assign_add(int(n))
        if training and self.weight_decay:
            self.add_loss(self.weight_decay * tf.add_n([tf.reduce_sum(tf.square(v.value)) for v in self.param_vars]))
        out = sim._keras_outputs(probes, int(n), int(batch))
        if self.output_probes is not None:
            out = {k: v for k, v in out.items() if k in self.output_probes}
        return out


class SavedState:
    """The simulation state a Keras call starts from (NengoDL's ``saved_state``).

    One non-trainable variable per loop-state slot, ``(length, minibatch_size)``,
    and the step count. Kept outside Keras' tracking (a plain object): they are no
    weights of the model (``save_weights``, optimizers and checkpoints ignore them).
    """

    def __init__(self, slots: list) -> None:
        self.slots = [tf.Variable(v, trainable=False, name=f"saved_state_{i}") for i, v in enumerate(slots)]
        self.step = tf.Variable(np.int64(0), trainable=False, name="saved_state_step")

    def load(self, values: list, step: int) -> None:
        """Assign slot ``values`` (arrays, ``(length, batch)``) and the step count."""
        for var, val in zip(self.slots, values):
            var.assign(np.asarray(val, dtype=var.dtype.as_numpy_dtype))
        self.step.assign(int(step))

    def values(self) -> tuple:
        """``([slot arrays], step)``."""
        return [v.numpy() for v in self.slots], int(self.step.numpy())


class _Traced:
    """Traced Keras functions kept per ``(function, (steps_per_execution, state_mode))``."""

    def __init__(self) -> None:
        self.kept: dict = {}

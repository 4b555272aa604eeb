"""The public TensorFlow Simulator.

Pipeline: nengo's builder -> nengo's operator merger (the same as the reference
simulator, so operators, signals and random streams line up) -> one builder per
merged operator (:mod:`.op_builders` and friends) -> a compiled chunk loop
(:mod:`.loop`), fed by host-precomputed inputs (:mod:`.host`).
"""

from __future__ import annotations

import time as _time
import warnings
from typing import Any

import nengo
import numpy as np

from nhw.backends.tensorflow._tf import import_seconds as late_import_seconds  # noqa: F401 (benchmarks read it)
from nhw.backends.tensorflow._tf import tf
from nengo.builder import Model
from nengo.builder.processes import SimProcess
from nengo.builder.operator import SimPyFunc
from nengo.cache import get_default_decoder_cache
from nengo.exceptions import ValidationError
from nengo.utils.progress import Progress, ProgressBar, ProgressTracker
from nengo.utils.simulator import operator_dependency_graph

from nhw.backends.base import SimulationData, SimulatorBase
from nhw.errors import UnsupportedFeatureError
from nhw.backends.tensorflow.builders import learning_builders, neuron_builders, process_builders  # noqa: F401 (registration)
from nhw.backends.tensorflow.builders import neuron_extras, tensor_node_builder  # noqa: F401 (registration)
from nhw.backends.tensorflow.runtime.host import Feed, HostPlan
from nhw.backends.tensorflow.runtime.loop import CompiledLoop, choose_shards
from nhw.backends.tensorflow.builders.neuron_builders import elementwise_neuron_bases
from nhw.backends.tensorflow.passes.step_local import neuron_input_bases
from nhw.backends.tensorflow.api.keras_io import KerasIOMixin
from nhw.backends.tensorflow.api.sim_data import SignalValues, TFSimulationData
from nhw.backends.tensorflow.builders.op_builders import BuildContext
from nhw.backends.tensorflow.passes.filter_merge import merge_filters
from nhw.backends.tensorflow.passes.opmerge import optimize as opmerge_optimize, stable_toposort
from nhw.backends.tensorflow.passes.outer_delta import factor_outer_deltas, loop_layout
from nhw.backends.tensorflow.runtime.params import ParamAssembler, group_params, object_names, select_params
from nhw.backends.tensorflow.runtime.predict import check_batch, fmt_seconds as _fmt, normalize_inputs
from nhw.backends.tensorflow.registry import OPS
from nhw.backends.tensorflow.settings import get_setting
from nhw.backends.tensorflow.runtime.signals import SignalLayout
from nhw.backends.tensorflow.api.gradient_check import GradientCheckMixin
from nhw.backends.tensorflow.api.param_methods import ParamsMixin
from nhw.backends.tensorflow.api.prediction import PredictMixin
from nhw.backends.tensorflow.api.training import TrainingMixin
from nhw.backends.tensorflow.api.dl_compat import DLCompatMixin

try:  # convolution is optional: a missing module must not break the core
    from nhw.backends.tensorflow.builders import conv_builders  # noqa: F401
except ImportError:  # pragma: no cover
    conv_builders = None


def _private_copy(model: Model) -> Model:
    """A copy of a built ``model`` whose operators and signals can be rewritten.

    The nengo objects it was built from (its keys) stay shared, so probes and
    ``sim.data[obj]`` still address them.
    """
    import copy

    shared = [*model.params, *model.seeds, *model.probes, model.toplevel, model.decoder_cache]
    return copy.deepcopy(model, {id(obj): obj for obj in shared if obj is not None})


def _interactive() -> bool:
    """Whether stdout is a terminal (live progress bars) rather than a pipe or a log."""
    import sys

    return sys.stdout.isatty()


class Simulator(PredictMixin, TrainingMixin, ParamsMixin, GradientCheckMixin, KerasIOMixin, DLCompatMixin,
                SimulatorBase):
    """Simulate a nengo Network with TensorFlow.

    Parameters
    ----------
    network : nengo.Network
        The network to simulate.
    dt : float
        Time step in seconds.
    seed : int, optional
        Seed for the simulation's random streams (noise, processes); as in
        ``nengo.Simulator`` it defaults to ``network.seed + 1``.
    minibatch_size : int, optional
        Number of independent samples simulated in parallel. ``None`` (the
        default) simulates one, sets ``sim.minibatch_size`` to 1 (as NengoDL
        does) and drops the batch axis from ``sim.data``; inputs and
        ``predict`` outputs keep their batch axis of 1.
    device : str, optional
        TensorFlow device string (e.g. ``"/cpu:0"``); ``None`` lets TF choose.
    progress_bar : bool
        Print build and simulation timing lines.
    dtype : str, optional
        ``"float32"`` or ``"float64"``; default: the network's ``dtype`` setting,
        else ``"float32"``.
    unroll_simulation : int
        Time steps traced per loop iteration (trades compile time for speed).
    model : nengo.builder.Model, optional
        A model to build into (or an already built one with ``network=None``),
        as for ``nengo.Simulator``.
    """

    def __init__(
        self,
        network,
        dt: float = 0.001,
        seed: int | None = None,
        minibatch_size: int | None = None,
        device: str | None = None,
        progress_bar: bool = True,
        dtype: str | None = None,
        unroll_simulation: int = 1,
        model: Model | None = None,
    ) -> None:
        super().__init__(dt if model is None else model.dt)
        self.closed = True  # until construction succeeded
        #: NengoDL's learning_phase setting: None (fit trains in training mode, every
        #: other call simulates in inference mode), True or False (every call in that mode)
        self.learning_phase = get_setting(network, "learning_phase") if network is not None else None
        if dtype is None:
            dtype = get_setting(network, "dtype") or "float32"
        self.inference_only = bool(get_setting(network, "inference_only"))
        self.keep_history = bool(get_setting(network, "keep_history"))
        self._network_config = None if network is None else network.config
        self.stateful = bool(get_setting(network, "stateful"))
        if dtype not in ("float32", "float64"):
            raise ValidationError(
                f"dtype must be 'float32' or 'float64'; got {dtype!r}", attr="dtype", obj=self
            )
        if minibatch_size is not None and (int(minibatch_size) != minibatch_size or minibatch_size < 1):
            raise ValidationError(
                f"minibatch_size must be a positive integer or None; got {minibatch_size!r}",
                attr="minibatch_size",
                obj=self,
            )
        if int(unroll_simulation) != unroll_simulation or unroll_simulation < 1:
            raise ValidationError(
                f"unroll_simulation must be an integer >= 1; got {unroll_simulation!r}",
                attr="unroll_simulation",
                obj=self,
            )
        #: samples simulated in parallel (1 when none was given, as in NengoDL)
        self.minibatch_size = 1 if minibatch_size is None else int(minibatch_size)
        self._batch = self.minibatch_size
        # whether minibatch_size was given: sim.data keeps a batch axis only then
        self._minibatched = minibatch_size is not None
        self.device = device
        self.progress_bar = progress_bar
        self.dtype = dtype
        self.unroll = int(unroll_simulation)

        t0 = _time.time()
        if model is None:
            model = Model(
                dt=float(dt), label=f"{network}, dt={dt:f}", decoder_cache=get_default_decoder_cache()
            )
        elif network is None:
            model = _private_copy(model)  # the caller's built model must survive our optimisation passes
        self.model = model
        if network is not None:
            self.model.build(network)
            from nhw.backends.tensorflow.builders.chip_inputs import insert_chip_operators

            # with a chip target: the chip's input encoding, spike delivery and integer synapses
            insert_chip_operators(self.model, network)
        self._say(f"Build finished in {_fmt(_time.time() - t0)}")

        t0 = _time.time()
        dg = opmerge_optimize(self.model, operator_dependency_graph(self.model.operators))
        nengo_order = [op for op in stable_toposort(dg) if hasattr(op, "make_step")]
        self._step_order = factor_outer_deltas(nengo_order, keep=[self.model.sig[p]["in"] for p in self.model.probes])
        # the factor rewrite swaps operators one for one, with the same dependencies
        swap = {a: b for a, b in zip(nengo_order, self._step_order) if a is not b}
        dg = {swap.get(a, a): [swap.get(b, b) for b in children] for a, children in dg.items()}
        # what the loop runs: nengo's order with same-depth synapses merged; the
        # host plan keeps nengo's order (its random draws must line up)
        self._exec_order = merge_filters(self._step_order, self.model.dt, dg=dg)
        self._say(f"Optimization finished in {_fmt(_time.time() - t0)}")

        t0 = _time.time()
        with self._device():
            self._construct(network)
            from nhw.backends.tensorflow.api.model_metrics import simulator_model_class  # Keras loads only after nengo's build

            #: the simulation as a ``keras.Model`` (trainable parameters are its weights)
            self.keras_model = simulator_model_class()(self)
        # built inside a tf.distribute strategy scope: the variables are mirrored
        self._distributed = tf.distribute.has_strategy()
        self._say(f"Construction finished in {_fmt(_time.time() - t0)}")

        if seed is None:
            if network is not None and network.seed is not None:
                seed = network.seed + 1
            else:
                seed = np.random.randint(np.iinfo(np.int32).max)
        self.seed = int(seed)
        if self._distributed:
            self._check_workers_agree()
        self.closed = False
        self._reset(self.seed)

    def _check_workers_agree(self) -> None:
        """Under a multi-worker strategy, raise unless every worker built the same simulation
        (an unseeded network builds different parameters on each; training would silently
        average unrelated models)."""
        from nhw.backends.tensorflow.distribute import check_same_on_workers, current_strategy, fingerprint

        arrays = [np.asarray(g.initial()) for g in self._groups] + list(self._layout.initial_slots(1))
        check_same_on_workers(current_strategy(), fingerprint(arrays, self.seed),
                              "the Simulator's initial parameters, state or seed")

    # --- construction ------------------------------------------------------
    def _construct(self, network) -> None:
        model = self.model
        nodes = list(network.all_nodes) if network is not None else []
        self.input_nodes = [
            n for n in nodes if n.size_in == 0 and n.output is not None and n.size_out > 0
        ]
        writer = {}
        for op in self._step_order:
            if isinstance(op, (SimPyFunc, SimProcess)) and op.output is not None:
                writer.setdefault(op.output, op)

        feeds: list[Feed] = []
        col = 0
        self._node_feed: dict = {}
        fed_ops = set()
        for node in self.input_nodes:
            sig = model.sig[node]["out"]
            op = writer.get(sig)
            if op is not None and _input(op) is not None:
                continue  # cannot happen for size_in=0 Nodes; keep the loop honest
            mode = "inc" if op is not None and getattr(op, "mode", "set") == "inc" else "set"
            f = Feed(signal=sig, op=op, mode=mode, cols=(col, col + sig.size), node=node)
            col += sig.size
            feeds.append(f)
            self._node_feed[node] = f
            if op is not None:
                fed_ops.add(op)
        host_ops = []
        for op in self._step_order:
            if isinstance(op, (SimPyFunc, SimProcess)):
                # input-free ops are precomputed; input-driven ones without a
                # TensorFlow builder are called back; both need nengo's step function
                if _input(op) is None or not _native(op):
                    host_ops.append(op)
                if _input(op) is None and op not in fed_ops:
                    out = op.output
                    f = Feed(signal=out, op=op, mode=_mode(op), cols=(col, col + (out.size if out is not None else 0)))
                    col += f.size
                    feeds.append(f)
        self._feeds = feeds
        const_feeds = [f for f in feeds if f.op is None]

        # flat neuron state and uncarried input currents pay off with a minibatch
        # only (SignalLayout, step_local.py); at batch 1 they cost time
        ops = self._exec_order
        batched = self._batch > 1
        flat_last = elementwise_neuron_bases(ops) if batched else []
        self._layout = SignalLayout(
            ops, [f.signal.base for f in const_feeds], self.dtype, flat_batch_last=flat_last,
            step_local=neuron_input_bases(ops) if batched else [], **loop_layout(ops),
        )
        self._host = HostPlan(model, self._step_order, host_ops, feeds, self.dtype, batch=self._batch)
        ctx = BuildContext(
            layout=self._layout,
            dt=self.dt,
            batch=self._batch,
            dtype=self._layout.dtype,
            host_columns={f.key: f.cols for f in feeds},
            host_steps=self._host.steps,
            host_signals=self._host.signals,
            training_mode=get_setting(network, "training_mode"),
            lif_smoothing=get_setting(network, "lif_smoothing"),
            surrogate=get_setting(network, "surrogate"),
            surrogate_slope=get_setting(network, "surrogate_slope"),
            target=get_setting(network, "target"),
            chip_inference=get_setting(network, "chip_inference"),
        )
        self._ctx = ctx
        builders = []
        from nhw.backends.tensorflow.builders.process_builders import HostFedBuilder

        for f in const_feeds:
            builders.append(HostFedBuilder(None, ctx, signal=f.signal, mode="set"))
        for op in ops:
            builders.append(OPS.get(type(op), op)(op, ctx))
        xla = all(b.xla_ok for b in builders)
        self._probes = list(model.probes)
        probe_sigs = [model.sig[p]["in"] for p in self._probes]
        for sig in probe_sigs + [f.signal for f in feeds if f.signal is not None]:
            self._layout.register_access(sig)
        self._layout.finalize()
        self._params = [] if self.inference_only else select_params(model, network, self._layout, ops)
        self._params_of: dict = {}  # nengo object -> its trainable parameters
        for p in self._params:
            self._params_of.setdefault(p.obj, []).append(p)
        self._groups = group_params(self._params, self._layout)
        self._assemble = ParamAssembler(self._groups, self._layout)
        self._loop = CompiledLoop(
            builders, self._layout, probe_sigs, self._batch, self.dt, xla=xla, unroll=self.unroll,
            assemble_params=self._assemble, host_columns=self._host.n_cols,
            training=bool(self.learning_phase),
        )
        self._quantizer = None
        if get_setting(network, "quantize") if network is not None else False:
            self._quantizer = self._install_quantizer(network)
        on_gpu = bool(tf.config.list_logical_devices("GPU")) and "CPU" not in str(self.device).upper()
        self._loop.shards = choose_shards(
            self._batch, builders, get_setting(network, "batch_shards"), on_gpu,
            state_bytes=self._layout.written_bytes(self._batch),
            matrix_bytes=self._layout.matrix_bytes(self._batch),
        )
        self._probe_data = {p: [] for p in self._probes}
        self._name_io(network)
        self._host_cache: dict = {}
        #: probe -> its own keep_history config value (None: the network's)
        self._probe_history: dict = {}

    def _name_io(self, network) -> None:
        """Keras names of input Nodes and Probes: NengoDL's (:mod:`.api.io_names`)."""
        from nhw.backends.tensorflow.api.io_names import apply_io_names

        apply_io_names(self)
        self._object_names = object_names(network) if network is not None else {}

    @property
    def quantizer(self):
        """The chip quantiser installed by ``configure_settings(quantize=True)`` (None otherwise).

        ``sim.quantizer.report()`` says what the chip's formats cost each quantised parameter.
        """
        return self._quantizer

    def _install_quantizer(self, network):
        """configure_settings(quantize=True): train and run with the target's quantised values."""
        from nhw.backends.tensorflow.builders import chip_quantize

        if get_setting(network, "target") is None:
            raise ValidationError("configure_settings(quantize=True) needs the target whose formats to use; "
                                  "expected configure_settings(target='loihi-emu', quantize=True)",
                                  attr="quantize", obj=self)
        if self.inference_only:
            return None  # no parameters held here: loihi-emu quantises the values it is given
        from nhw.backends.tensorflow.builders.chip_options import network_map_options

        try:
            # fixed (trainable=False) weights and biases are quantised too: the chip rounds them
            return chip_quantize.quantize_for_chip(self, network_map_options(network))
        except UnsupportedFeatureError:
            return None  # the chip programs nothing from these values: quantising changes nothing

    def _keeps_history(self, probe) -> bool:
        """keep_history of ``probe``: its own config value (NengoDL's per-probe setting), else the network's."""
        # read once per probe, as the network's setting is read once at build
        own = self._probe_history.get(probe, _UNREAD)
        if own is _UNREAD:
            own = None
            cfg = self._network_config
            if cfg is not None:
                try:
                    own = getattr(cfg[probe], "keep_history")
                except (AttributeError, KeyError, nengo.exceptions.ConfigError):
                    own = None
            self._probe_history[probe] = own
        return self.keep_history if own is None else bool(own)

    def _device(self):
        return tf.device(self.device) if self.device is not None else _NullContext()

    def _say(self, msg: str) -> None:
        if self.progress_bar:
            print(msg, flush=True)

    # --- SimulatorBase hooks ------------------------------------------------
    @property
    def data(self) -> SimulationData:
        if self._data is None:
            axis = 1 if self._minibatched else 0
            self._data = TFSimulationData(
                self.model.params, self._probe_data, axis, self._current_built, lambda: self.closed
            )
        return self._data

    def _reset(self, seed: int | None) -> None:
        if seed is not None:
            self.seed = int(seed)
        self._host.reset(self.seed)
        with self._device():
            self._tensors = self._loop.initial_state()
        self._fresh_tensors = self._tensors

    def _close(self) -> None:
        self._tensors = None

    def __del__(self) -> None:
        # like nengo.Simulator: an open simulator that is garbage collected
        # holds TF resources until then, which usually means a missing close()
        if not getattr(self, "closed", True):
            warnings.warn(
                f"{type(self).__name__} deallocated while open; use it as a context "
                "manager or call close()",
                ResourceWarning,
            )

    @property
    def signals(self) -> SignalValues:
        """Current values of the model's signals (read-only numpy arrays)."""
        return SignalValues(self)

    def run_steps(self, n_steps: int | None = None, data: Any = None, progress_bar: Any = None,
                  stateful: bool = True, *, steps: int | None = None) -> None:
        """Simulate ``n_steps`` time steps, recording probes into ``sim.data``.

        Parameters
        ----------
        n_steps : int
            Number of steps (NengoDL's name; ``steps=`` is nengo's and is
            accepted too).
        data : optional
            Node inputs, as for :meth:`predict` (``(minibatch_size, n_steps, size)``).
        progress_bar : optional
            Ignored (timing lines follow the constructor's ``progress_bar``);
            a nengo ``ProgressBar`` instance is updated.
        stateful : bool
            True: the run continues from the current state and leaves its
            final state and time behind. False: probe data is recorded, but the
            state and ``sim.time`` stay as they were (as in NengoDL).
        """
        self._check_open("run_steps")
        if steps is not None:
            if n_steps is not None:
                raise ValidationError(
                    f"run_steps: got both n_steps={n_steps!r} and steps={steps!r}; give one",
                    attr="n_steps",
                )
            n_steps = steps
        if n_steps is None:
            raise ValidationError("run_steps: n_steps (the number of steps) is required", attr="n_steps")
        if isinstance(n_steps, bool) or int(n_steps) != n_steps or n_steps < 0:
            raise ValidationError(
                f"run_steps: n_steps must be an integer >= 0; got {n_steps!r}", attr="n_steps"
            )
        n_steps = int(n_steps)
        feed_data = self._prepare(data, n_steps, "run_steps", multiple=False)
        # stateful=False (configure_settings) keeps the initial state for every
        # call but still advances time; stateful=False on this call isolates it
        # completely (NengoDL: the time and state are restored afterwards)
        commit = self.stateful and bool(stateful)
        t0 = _time.time()
        if progress_bar is None and self.progress_bar and n_steps > 1 and _interactive():
            progress_bar = True  # nengo's live bar on a terminal, as NengoDL shows
        tracked = isinstance(progress_bar, ProgressBar) or progress_bar is True
        recorded = {p: len(chunks) for p, chunks in self._probe_data.items()}
        if tracked:  # the bar prints its own closing line
            with ProgressTracker(progress_bar, Progress("Simulating", "Simulation", n_steps)) as pt:
                self._simulate(n_steps, feed_data, record=True, commit=commit, progress=pt.total_progress)
        else:
            self._simulate(n_steps, feed_data, record=True, commit=commit)
        if stateful:
            self._n_steps += n_steps
        axis = 1 if self._minibatched else 0
        for p, chunks in self._probe_data.items():
            if not self._keeps_history(p):
                # as NengoDL: each call adds its last step, so the data grows one row per call
                new = [c for c in chunks[recorded[p]:] if c.shape[axis]]
                chunks[recorded[p]:] = [np.take(new[-1], [new[-1].shape[axis] - 1], axis=axis)] if new else []
        if self._data is not None:
            self._data.reset()
        if not tracked and self.progress_bar:
            self._say(f"Simulation finished in {_fmt(_time.time() - t0)}")

    def step(self, **kwargs: Any) -> None:
        """Simulate one time step; ``kwargs`` (``data``, ``stateful``, ...) as for :meth:`run_steps`."""
        self.run_steps(1, **kwargs)

    def run(self, time_in_seconds: float, **kwargs: Any) -> None:
        """Simulate ``time_in_seconds`` (rounded to whole steps); ``kwargs`` as for :meth:`run_steps`."""
        if time_in_seconds < 0:
            raise ValidationError(
                f"run: time_in_seconds must be >= 0; got {time_in_seconds!r}", attr="time_in_seconds", obj=self
            )
        n = int(np.round(float(time_in_seconds) / self._dt))
        if n == 0:
            warnings.warn(
                f"run: {time_in_seconds!r} s is less than half a time step (dt={self._dt}); "
                f"no steps simulated, the simulator stays at time {self.time:g}"
            )
            return
        self.run_steps(n, **kwargs)

    # --- reset / state ---------------------------------------------------------
    def reset(self, seed: int | None = None, include_trainable: bool = True,
              include_probes: bool = True, include_processes: bool = True) -> None:
        """Return to time 0 (NengoDL's ``reset``).

        Parameters
        ----------
        seed : int, optional
            New simulator seed (it becomes the default for later resets).
        include_trainable : bool
            Also undo training: trainable nengo parameters (encoders, biases,
            connection weights) return to their built values. Weights of Keras
            layers inside TensorNodes keep their values (as in NengoDL).
        include_probes : bool
            Also clear recorded probe data.
        include_processes : bool
            Also restart Processes and input Nodes (their random streams
            begin again from ``seed``).
        """
        self._check_open("reset")
        if seed is not None:
            self.seed = int(seed)
        if include_processes:
            self._host.reset(self.seed)
        with self._device():
            self._tensors = self._loop.initial_state()
        self._fresh_tensors = self._tensors
        if include_trainable:
            for g in self._groups:
                g.variable.assign(np.asarray(g.initial(), dtype=self.dtype))
        self._n_steps = 0
        if include_probes:
            for key in self._probe_data:
                self._probe_data[key] = []
        if self._data is not None:
            self._data.reset()

    def soft_reset(self, include_trainable: bool = False, include_probes: bool = False) -> None:
        """Deprecated (as in NengoDL): ``reset(include_trainable=..., include_probes=...,
        include_processes=False)``."""
        warnings.warn(
            "Simulator.soft_reset is deprecated; use Simulator.reset(include_trainable=False, "
            "include_probes=False, include_processes=False)",
            DeprecationWarning,
            stacklevel=2,
        )
        self.reset(include_trainable=include_trainable, include_probes=include_probes, include_processes=False)

    def _save_state(self) -> tuple:
        """The loop state and time (tensors are immutable: holding them is a snapshot)."""
        return self._tensors, self._n_steps

    def _restore_state(self, saved: tuple) -> None:
        """Go back to a :meth:`_save_state` snapshot (used by ``callbacks.IsolateState``).

        Inside a ``stateful=True`` fit/evaluate the Keras model's saved state (which
        its next batch starts from) goes back too, as NengoDL's callback assigns it.
        """
        self._tensors, self._n_steps = saved
        if getattr(self, "_keras_state_live", False):
            self.keras_model.saved_state().load(self._loop.state_values(self._tensors), self._n_steps)
        if self._data is not None:
            self._data.reset()

    def _state_is_initial(self) -> bool:
        """Whether the simulation state is the one at step 0 (as after ``reset``)."""
        return self._n_steps == 0 and self._tensors is getattr(self, "_fresh_tensors", None)

    def _run_steps(self, steps: int) -> None:  # pragma: no cover - run_steps overridden
        self._simulate(steps, {}, record=True, commit=True)

    def _prepare(self, x: Any, n_steps: int | None, what: str, multiple: bool) -> dict:
        data = normalize_inputs(x, self.input_nodes, n_steps, what)
        check_batch(data, self._batch, what, multiple=multiple)
        return data

    def _simulate(self, steps: int, data: dict, record: bool, commit: bool, progress=None) -> dict:
        """Run ``steps`` steps from the current state; returns probe arrays (n, *, B)."""
        tensors = self._tensors
        step0 = self._n_steps
        out: dict = {p: [] for p in self._probes}
        done = 0
        chunk = self._loop.max_chunk
        with self._device():
            while done < steps:
                n = min(chunk, steps - done)
                feed_data = {
                    self._node_feed[node]: arr[:, done:done + n] for node, arr in data.items()
                }
                host = self._host.inputs(n, step0 + done, self._batch, feed_data)
                self._ctx.host_error = None
                try:
                    tensors, probes = self._loop.run(
                        tensors, host, step0 + done, self.seed, self._param_values()
                    )
                except tf.errors.OpError:
                    # an exception inside a Python Node surfaces as a TF error;
                    # re-raise the user's own exception instead
                    if self._ctx.host_error is not None:
                        raise self._ctx.host_error from None
                    raise
                if progress is not None:
                    progress.step(n)
                for p, arr in zip(self._probes, probes):
                    if p.sample_every is not None:  # every step kept otherwise: no copy
                        arr = arr[self._probe_keep(p, step0 + done, n)]
                    if record:
                        self._probe_data[p].append(
                            np.moveaxis(arr, -1, 0) if self._minibatched else arr[..., 0]
                        )
                    out[p].append(arr)
                done += n
        if commit:
            self._tensors = tensors
        return out

    def _current_built(self, obj, built):
        """``model.params[obj]`` with trained values (encoders, gain-folded, bias, weights)."""
        vals = {p.key: p for p in self._params_of.get(obj, ())}
        if not vals or not hasattr(built, "_replace"):
            return built
        cur = {}
        for k, p in vals.items():
            v = np.array(p.variable.numpy())
            # untrained values keep the built (float64) arrays, exactly as nengo has them
            if not np.array_equal(v, np.asarray(p.initial(), dtype=v.dtype)):
                cur[k] = v
        if not cur:
            return built
        if "weights" in cur:
            if vals["weights"].sparse:
                return built  # sparse: the trained values live in the variable
            return built._replace(weights=cur["weights"])
        repl = {}
        if "encoders" in cur:
            repl["scaled_encoders"] = cur["encoders"]
            repl["encoders"] = cur["encoders"] * obj.radius / np.asarray(built.gain)[:, None]
        if "bias" in cur:
            repl["bias"] = cur["bias"]
        return built._replace(**repl)


#: a probe whose keep_history config was not read yet
_UNREAD = object()


class _NullContext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _input(op):
    return op.input if isinstance(op, SimProcess) else op.x


def _mode(op) -> str:
    return "inc" if getattr(op, "mode", "set") == "inc" else "set"


def _native(op) -> bool:
    """Whether an input-driven operator runs natively (else it is a host call)."""
    from nhw.backends.tensorflow.registry import runs_natively

    return runs_natively(op)

"""The ``opencl`` target: nengo-ocl on an OpenCL device (PoCL on a CPU).

What this adapter adds to ``nengo_ocl.Simulator``:

* the OpenCL context is chosen without ever prompting: an explicit ``context``,
  or ``platform``/``device`` (index or case-insensitive name fragment), or the
  ``PYOPENCL_CTX`` environment variable, or the first device of the first
  platform;
* features that nengo-ocl 3.0 gets wrong or cannot run on nengo 4.1 are rejected
  before planning with an error naming the object (see :data:`CHECKS`);
* noise processes, whose OpenCL kernels need the RANLUX generator that current
  pyopencl no longer ships, run through nengo's own step function on the host,
  which gives the same numbers as ``reference``; they are listed in
  :attr:`Simulator.host_ops`;
* host-side processes with ``mode="inc"`` (``Ensemble.noise``) add to their target
  instead of overwriting it, as nengo-ocl's own host path does;
* ``reset(seed)`` with a new seed, nengo's rule ``seed = network.seed + 1``, and
  ``progress_bar=False`` honoured by ``run``/``run_steps``.
"""

from __future__ import annotations

import warnings
from typing import Callable

import nengo
import nengo.builder
from nengo.builder.learning_rules import SimRLS
from nengo.builder.neurons import SimNeurons
from nengo.builder.transforms import ConvInc
from nengo.cache import get_default_decoder_cache

try:  # ConvTransposeInc exists from nengo 3.2
    from nengo.builder.transforms import ConvTransposeInc
except ImportError:  # pragma: no cover
    ConvTransposeInc = None

import nengo_ocl
import numpy as np
from nengo_ocl.plan import PythonPlan

from .base import Simulator as SimulatorContract
from .neuron_types import NEURON_TYPES
from nhw.errors import UnsupportedFeatureError
from .reference import NengoSimulationData
from .opencl_device import check_no_tensorflow, make_context

# --- features nengo-ocl 3.0 cannot run correctly on nengo 4.1 ----------------

def _no_check(neurons: nengo.neurons.NeuronType) -> str | None:
    return None


def _lif_check(neurons: nengo.neurons.NeuronType) -> str | None:
    if getattr(neurons, "min_voltage", 0) != 0:
        return f"LIF min_voltage={neurons.min_voltage} is not implemented by nengo-ocl (only 0)"
    return None


# the neuron types nengo-ocl implements, each with a check of the instance's parameters
for _type, _check in [
    (nengo.LIF, _lif_check),
    (nengo.LIFRate, _lif_check),
    (nengo.AdaptiveLIF, _lif_check),
    (nengo.AdaptiveLIFRate, _lif_check),
    (nengo.RectifiedLinear, _no_check),
    (nengo.SpikingRectifiedLinear, _no_check),
    (nengo.Sigmoid, _no_check),
]:
    NEURON_TYPES.attach(_type, "opencl", _check)
del _type, _check


def _check_neurons(op: SimNeurons) -> str | None:
    neurons = op.neurons
    # nengo-ocl dispatches on the exact class name, so subclasses are not covered
    check = NEURON_TYPES.lookup(type(neurons), "opencl", exact=True)
    if check is not None:
        return check(neurons)
    return (
        f"neuron type {type(neurons).__name__} is not implemented by nengo-ocl "
        f"(supported: {', '.join(NEURON_TYPES.supported('opencl'))}); use the 'reference' or "
        "'tensorflow' target"
    )


def _check_conv(op: ConvInc) -> str | None:
    groups = getattr(op.conv, "groups", 1)
    if groups != 1:
        return (
            f"Convolution with groups={groups}: nengo-ocl ignores 'groups' and would "
            "compute a full convolution; use groups=1 or another target"
        )
    if op.conv.dimensions not in (1, 2):
        return f"{op.conv.dimensions}-D convolution is not implemented by nengo-ocl (1-D and 2-D are)"
    return None


def _check_conv_transpose(op) -> str | None:
    return "ConvolutionTranspose is not implemented by nengo-ocl; use another target"


def _check_rls(op) -> str | None:
    return "the RLS learning rule is not implemented by nengo-ocl; use PES or another target"


#: Operator type -> check returning a problem description or ``None``.
CHECKS: dict[type, Callable] = {SimNeurons: _check_neurons, ConvInc: _check_conv, SimRLS: _check_rls}
if ConvTransposeInc is not None:
    CHECKS[ConvTransposeInc] = _check_conv_transpose


def _owners(model: nengo.builder.Model) -> dict:
    """Map each built signal back to the nengo object that owns it."""
    owners = {}
    for obj, sigs in model.sig.items():
        for sig in sigs.values():
            if sig is not None:
                owners.setdefault(sig, obj)
    return owners


def _name(op, owners: dict) -> str:
    for sig in op.all_signals:
        obj = owners.get(sig.base)
        if obj is not None:
            obj = getattr(obj, "ensemble", obj)  # Neurons -> its Ensemble
            return repr(obj)
    return f"operator {op}"


def check_model(model: nengo.builder.Model) -> None:
    """Raise :class:`UnsupportedFeatureError` for operators nengo-ocl would mis-simulate.

    Parameters
    ----------
    model
        A built nengo model.
    """
    problems = []
    owners = None
    for op in model.operators:
        for cls in type(op).__mro__:
            check = CHECKS.get(cls)
            if check is not None:
                problem = check(op)
                if problem:
                    owners = owners if owners is not None else _owners(model)
                    problems.append(f"{_name(op, owners)}: {problem}")
                break
    if problems:
        raise UnsupportedFeatureError(
            "the 'opencl' target cannot simulate this network correctly:\n  " + "\n  ".join(problems)
        )


class Simulator(nengo_ocl.Simulator, SimulatorContract):
    """nengo-ocl simulator behind the nhw Simulator contract.

    Parameters
    ----------
    network : nengo.Network or None
        Network to build.
    dt : float
        Time step in seconds.
    seed : int, optional
        Simulator seed.
    model : nengo.builder.Model, optional
        A model to build into (or an already built one when ``network`` is None).
    context : pyopencl.Context, optional
        Explicit OpenCL context; overrides ``platform``/``device``.
    platform, device : int or str, optional
        OpenCL platform/device by index or name fragment (see :func:`make_context`).
    progress_bar : bool
        Show nengo's progress bar.
    **kwargs
        Passed to :class:`nengo_ocl.Simulator` (``n_prealloc_probes``, ``planner``, …).
    """

    def __init__(
        self,
        network,
        dt=0.001,
        seed=None,
        model=None,
        context=None,
        platform=None,
        device=None,
        progress_bar=True,
        **kwargs,
    ):
        self.closed = True  # nengo-ocl's __del__ reads it even if __init__ fails
        if context is None:
            context = make_context(platform, device)
        else:
            check_no_tensorflow(context.devices[0].platform)
        if model is None:
            model = nengo.builder.Model(
                dt=float(dt),
                label=f"{network}, dt={dt:f}",
                decoder_cache=get_default_decoder_cache(),
            )
        if network is not None:
            model.build(network)
        check_model(model)
        if seed is None and network is not None and network.seed is not None:
            seed = network.seed + 1  # nengo's rule, so both targets sample alike
        self._options = dict(kwargs, progress_bar=progress_bar)
        self._plan(model, dt, seed, context)
        self.data = NengoSimulationData(self._probe_outputs)

    def _plan(self, model, dt, seed, context):
        self.host_ops = []
        self._host_states: list[dict] = []
        with warnings.catch_warnings():
            # nengo-ocl warns that it was not tested with nengo 4.1; check_model and
            # our conformance tests cover the gaps, so the warning is only noise.
            warnings.filterwarnings("ignore", "This version of `nengo_ocl` has not been tested")
            nengo_ocl.Simulator.__init__(self, None, dt=dt, seed=seed, model=model, context=context, **self._options)

    def __enter__(self):
        if self.closed:
            from nengo.exceptions import SimulatorClosed

            raise SimulatorClosed("Cannot re-open: the simulator is closed")
        return self

    def reset(self, seed=None):
        """Return to time 0; a new ``seed`` re-plans the built model with that seed.

        nengo-ocl cannot change the seed of a planned simulator, so the already built
        model is planned again (no rebuild, so decoders and parameters are unchanged,
        exactly as in nengo's ``reset(seed)``).
        """
        if seed is not None and not self.closed:
            self._plan(self.model, self.model.dt, seed, self.context)
            self.data = NengoSimulationData(self._probe_outputs)
            return
        super().reset(seed)
        for state in self._host_states:
            for array, initial in state.values():
                array[...] = initial

    def _plan_python_process(self, op):
        """Run one process with nengo's own step function on the host.

        Replaces nengo-ocl's version, which always *sets* the output: processes with
        ``mode="inc"`` (e.g. ``Ensemble.noise``) must add to the input current, not
        overwrite it.  Process state is restored on :meth:`reset`.
        """
        # 'set' and 'update' both write the output; the planner places an update
        # after every reader of the old value, so only 'inc' needs different code.
        self.host_ops.append(op)
        shape_in = op.input.shape if op.input is not None else (0,)
        shape_out = op.output.shape if op.output is not None else (0,)
        dt = self.model.dt
        rng = op.process.get_rng(self.rng)
        state = op.process.make_state(shape_in, shape_out, dt, dtype=None)
        step_fn = op.process.make_step(shape_in, shape_out, dt, rng=rng, state=state)
        self._python_rngs[rng] = rng.get_state()
        self._host_states.append({k: (v, np.array(v)) for k, v in state.items()})

        data = self.all_data
        t_idx = self.sidx[self.model.time]
        x_idx = self.sidx[op.input] if op.input is not None else None
        y_idx = self.sidx[op.output] if op.output is not None else None
        increment = op.mode == "inc"

        def step():
            args = [float(data[t_idx][0, 0])]
            if x_idx is not None:
                args.append(data[x_idx].reshape(shape_in))
            y = step_fn(*args)
            if y_idx is not None:
                y = np.asarray(y).reshape(data[y_idx].shape)
                data[y_idx] = data[y_idx] + y if increment else y

        return [PythonPlan(step, name="python_process", tag=type(op.process).__name__)]

    # nengo-ocl plans WhiteNoise with pyopencl's RANLUX kernels, which pyopencl
    # removed, and FilteredNoise not at all; nengo's own step functions are exact.
    def _plan_host_processes(self, ops):
        return [plan for op in ops for plan in self._plan_python_process(op)]

    _plan_WhiteNoise = _plan_host_processes
    _plan_FilteredNoise = _plan_host_processes

    # nengo-ocl defaults these to a progress bar even when the Simulator was created
    # with progress_bar=False; nengo's contract is "None means the Simulator's setting".
    def run(self, time_in_seconds, progress_bar=None):
        """Simulate for ``time_in_seconds``; ``progress_bar=None`` uses the Simulator's setting."""
        return super().run(time_in_seconds, progress_bar=self._bar(progress_bar))

    def run_steps(self, steps, progress_bar=None):
        """Simulate ``steps`` steps; ``progress_bar=None`` uses the Simulator's setting."""
        return super().run_steps(steps, progress_bar=self._bar(progress_bar))

    def _bar(self, progress_bar):
        return self.progress_bar if progress_bar is None else progress_bar

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
  :attr:`Simulator.host_ops`.
"""

from __future__ import annotations

from typing import Callable

import nengo
import nengo.builder
from nengo.builder.neurons import SimNeurons
from nengo.builder.transforms import ConvInc
from nengo.cache import get_default_decoder_cache

try:  # ConvTransposeInc exists from nengo 3.2
    from nengo.builder.transforms import ConvTransposeInc
except ImportError:  # pragma: no cover
    ConvTransposeInc = None

import nengo_ocl

from .base import Simulator as SimulatorContract
from .base import missing_data_error
from .errors import UnsupportedFeatureError
from .opencl_device import device_problem, make_context  # noqa: F401  (re-exported)

# --- features nengo-ocl 3.0 cannot run correctly on nengo 4.1 ----------------

_OCL_NEURONS = (
    nengo.LIF,
    nengo.LIFRate,
    nengo.AdaptiveLIF,
    nengo.AdaptiveLIFRate,
    nengo.RectifiedLinear,
    nengo.SpikingRectifiedLinear,
    nengo.Sigmoid,
)


def _check_neurons(op: SimNeurons) -> str | None:
    neurons = op.neurons
    # nengo-ocl dispatches on the exact class name, so subclasses are not covered.
    if type(neurons) in _OCL_NEURONS:
        return None
    supported = ", ".join(t.__name__ for t in _OCL_NEURONS)
    return (
        f"neuron type {type(neurons).__name__} is not implemented by nengo-ocl "
        f"(supported: {supported}); use the 'reference' or 'tensorflow' target"
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


#: Operator type -> check returning a problem description or ``None``.
CHECKS: dict[type, Callable] = {SimNeurons: _check_neurons, ConvInc: _check_conv}
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


class _SimulationData(nengo.simulator.SimulationData):
    def __getitem__(self, key):
        if key not in self.raw:
            raise missing_data_error(key)
        return super().__getitem__(key)


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
        self.host_ops: list = []
        self.closed = True  # nengo-ocl's __del__ reads it even if __init__ fails
        if context is None:
            context = make_context(platform, device)
        if model is None:
            model = nengo.builder.Model(
                dt=float(dt),
                label=f"{network}, dt={dt:f}",
                decoder_cache=get_default_decoder_cache(),
            )
        if network is not None:
            model.build(network)
        check_model(model)
        super().__init__(
            None, dt=dt, seed=seed, model=model, context=context, progress_bar=progress_bar, **kwargs
        )
        self.data = _SimulationData(self._probe_outputs)

    # nengo-ocl plans WhiteNoise with pyopencl's RANLUX kernels, which pyopencl
    # removed, and FilteredNoise not at all; nengo's step function is exact.
    def _plan_host_process(self, ops):
        self.host_ops.extend(ops)
        return [plan for op in ops for plan in self._plan_python_process(op)]

    _plan_WhiteNoise = _plan_host_process
    _plan_FilteredNoise = _plan_host_process

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

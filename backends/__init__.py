"""Simulation backends for nhw behind one Simulator interface.

>>> from nhw import backends
>>> backends.available()            # doctest: +SKIP
['reference', 'opencl', 'tensorflow', 'loihi-emu']
>>> Simulator = backends.get("reference")

Targets are registered in :mod:`nhw.backends.registry`; importing this package imports
neither TensorFlow nor pyopencl.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import registry
from .base import Simulator, SimulatorBase, SimulationData
from nhw.errors import (
    BackendError,
    BackendUnavailableError,
    SimulationDataKeyError,
    UnknownBackendError,
    UnsupportedFeatureError,
)
from .registry import BackendSpec, register

__all__ = [
    "BackendError",
    "BackendSpec",
    "BackendStatus",
    "BackendUnavailableError",
    "SimulationData",
    "SimulationDataKeyError",
    "Simulator",
    "SimulatorBase",
    "UnknownBackendError",
    "UnsupportedFeatureError",
    "available",
    "describe",
    "get",
    "register",
]

register(
    BackendSpec(
        name="reference",
        target="nhw.backends.reference:Simulator",
        summary="nengo's reference CPU simulator (numpy)",
    )
)
register(
    BackendSpec(
        name="opencl",
        target="nhw.backends.opencl:Simulator",
        requires=(
            ("pyopencl", "pip install 'nhw[ocl]' (pyopencl)"),
            ("nengo_ocl", "pip install 'nhw[ocl]' (nengo-ocl)"),
        ),
        probe="nhw.backends.opencl_device:device_problem",
        own_process=True,  # PoCL and TensorFlow both bundle LLVM and crash together
        summary="nengo-ocl on an OpenCL device (PoCL on a CPU)",
    )
)
register(
    BackendSpec(
        name="tensorflow",
        target="nhw.backends.tensorflow:Simulator",
        requires=(
            ("tensorflow", "pip install 'tensorflow>=2.16'"),
            ("nhw.backends.tensorflow.simulator", "the TensorFlow simulator is not part of this installation yet"),
        ),
        summary="nhw's TensorFlow/Keras 3 simulator (training and batched inference)",
    )
)
register(
    BackendSpec(
        name="loihi-emu",
        target="nhw.backends.loihi_emu:Simulator",
        requires=(("nhw.backends.loihi_emu", "the chip emulator is not part of this installation yet"),),
        summary="nhw's Loihi-style integer chip emulator (hw_emulator)",
    )
)


@dataclass(frozen=True)
class BackendStatus:
    """Availability of one target, as returned by :func:`describe`."""

    name: str
    available: bool
    reason: str
    summary: str


def get(name: str) -> type:
    """Return the Simulator class of target ``name``.

    Parameters
    ----------
    name
        A registered target name, e.g. ``"reference"`` or ``"opencl"``.

    Raises
    ------
    UnknownBackendError
        ``name`` is not registered; the message lists the known names.
    BackendUnavailableError
        A dependency or device is missing; the message says how to install it.
    """
    return registry.spec(name).load()


def available() -> list[str]:
    """Names of the targets whose dependencies import and whose devices exist."""
    return [n for n in registry.names() if registry.spec(n).unavailable_reason() is None]


def describe() -> list[BackendStatus]:
    """Every registered target with its availability and the reason if unavailable."""
    out = []
    for n in registry.names():
        s = registry.spec(n)
        reason = s.unavailable_reason()
        out.append(BackendStatus(n, reason is None, reason or "ok", s.summary))
    return out

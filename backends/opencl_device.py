"""Finding an OpenCL device and making a context for it, without ever prompting.

Kept apart from the nengo-ocl adapter so that ``nhw.backends.available()`` can look for
a device without importing nengo-ocl.  The look happens in a short-lived child
process: a driver that crashes (PoCL next to TensorFlow, see below) must not take
the caller down with it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from nhw.errors import BackendUnavailableError

_INSTALL_HINT = (
    "install an OpenCL driver, e.g. 'apt-get install pocl-opencl-icd' on Debian/Ubuntu "
    "(CPU), or your GPU vendor's OpenCL runtime"
)


def device_problem() -> str | None:
    """Return why no OpenCL device can be used here, or ``None`` if one can.

    Runs :func:`local_device_problem` in a child process (about half a second).
    """
    code = "import json, nhw.backends.opencl_device as d; print(json.dumps(d.local_device_problem()))"
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "PYOPENCL_CTX": os.environ.get("PYOPENCL_CTX", "0")})
    except subprocess.TimeoutExpired:
        return "looking for OpenCL devices timed out after 120 s"
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or [f"exit status {out.returncode}"])[-1]
        return f"looking for OpenCL devices failed: {tail}"
    return json.loads(out.stdout.strip().splitlines()[-1])


def local_device_problem() -> str | None:
    """:func:`device_problem`, in this process (never after TensorFlow with PoCL)."""
    import pyopencl as cl

    try:
        platforms = cl.get_platforms()
    except cl.Error as exc:  # raised when no ICD is installed at all
        return f"no OpenCL platform found ({exc}): {_INSTALL_HINT}"
    if not platforms:
        return f"no OpenCL platform found: {_INSTALL_HINT}"
    if not any(p.get_devices() for p in platforms):
        return f"OpenCL platforms {[p.name for p in platforms]} have no devices: {_INSTALL_HINT}"
    return None


def _pick(items: list, choice: int | str | None, what: str) -> object:
    """Select one platform/device by index or name fragment."""
    names = [getattr(i, "name", str(i)).strip() for i in items]
    if choice is None:
        return items[0]
    if isinstance(choice, int) or (isinstance(choice, str) and choice.isdigit()):
        index = int(choice)
        if not 0 <= index < len(items):
            raise BackendUnavailableError(
                f"OpenCL {what} index {index} out of range; available {what}s: "
                + ", ".join(f"{k}: {n}" for k, n in enumerate(names))
            )
        return items[index]
    matches = [i for i, n in zip(items, names) if choice.lower() in n.lower()]
    if not matches:
        raise BackendUnavailableError(
            f"no OpenCL {what} matches {choice!r}; available {what}s: " + ", ".join(names)
        )
    return matches[0]


_CONTEXTS: dict[tuple, object] = {}


def make_context(platform: int | str | None = None, device: int | str | None = None):
    """Create (or reuse) an OpenCL context without prompting.

    Parameters
    ----------
    platform, device
        Index or case-insensitive name fragment.  When both are ``None`` the
        ``PYOPENCL_CTX`` variable (``"P"`` or ``"P:D"``) is honoured, else the first
        device of the first platform is used.
    """
    if "tensorflow" in sys.modules and _pocl_installed():
        raise BackendUnavailableError(_AFTER_TF)  # even listing PoCL's platforms would crash
    problem = local_device_problem()
    if problem is not None:
        raise BackendUnavailableError(problem)
    import pyopencl as cl

    if platform is None and device is None and os.environ.get("PYOPENCL_CTX"):
        parts = os.environ["PYOPENCL_CTX"].split(":")
        platform = parts[0] or None
        device = parts[1] if len(parts) > 1 and parts[1] else None
    plat = _pick(cl.get_platforms(), platform, "platform")
    dev = _pick(plat.get_devices(), device, "device")
    check_no_tensorflow(plat)
    key = (plat.int_ptr, dev.int_ptr)
    if key not in _CONTEXTS:
        _CONTEXTS[key] = cl.Context([dev])
    return _CONTEXTS[key]


# PoCL runs its own LLVM and TensorFlow ships another copy.  Once TensorFlow is
# loaded, PoCL's platform query or kernel compiler crashes the process or fails with
# "unknown target CPU" (kernels compiled before may keep working, new ones do not).
# So the two never share a process: the opencl target refuses, and multi-target runs
# (toolchain.parity) start it in a process of its own.
_POCL = "Portable Computing Language"
_AFTER_TF = (
    "the OpenCL driver PoCL cannot run in a process that has imported TensorFlow (both "
    "bundle LLVM; PoCL would crash); run the 'opencl' target in a process without TensorFlow "
    "(nhw parity does this by itself)"
)


def _pocl_installed() -> bool:
    vendors = Path(os.environ.get("OCL_ICD_VENDORS", "/etc/OpenCL/vendors"))
    icds = vendors.glob("*.icd") if vendors.is_dir() else []
    return any("pocl" in icd.name.lower() or "pocl" in icd.read_text(errors="ignore").lower() for icd in icds)


def check_no_tensorflow(platform) -> None:
    """Raise if ``platform`` is PoCL and TensorFlow is loaded in this process."""
    if _POCL in platform.name and "tensorflow" in sys.modules:
        raise BackendUnavailableError(_AFTER_TF)


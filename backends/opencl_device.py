"""Finding an OpenCL device and making a context for it, without ever prompting.

Kept apart from the nengo-ocl adapter so that ``backends.available()`` can look for
a device without importing nengo-ocl.
"""

from __future__ import annotations

import os

import pyopencl as cl

from .errors import BackendUnavailableError

_INSTALL_HINT = (
    "install an OpenCL driver, e.g. 'apt-get install pocl-opencl-icd' on Debian/Ubuntu "
    "(CPU), or your GPU vendor's OpenCL runtime"
)


def device_problem() -> str | None:
    """Return why no OpenCL device can be used here, or ``None`` if one can."""
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


_CONTEXTS: dict[tuple, cl.Context] = {}


def make_context(platform: int | str | None = None, device: int | str | None = None) -> cl.Context:
    """Create (or reuse) an OpenCL context without prompting.

    Parameters
    ----------
    platform, device
        Index or case-insensitive name fragment.  When both are ``None`` the
        ``PYOPENCL_CTX`` variable (``"P"`` or ``"P:D"``) is honoured, else the first
        device of the first platform is used.
    """
    problem = device_problem()
    if problem is not None:
        raise BackendUnavailableError(problem)
    if platform is None and device is None and os.environ.get("PYOPENCL_CTX"):
        parts = os.environ["PYOPENCL_CTX"].split(":")
        platform = parts[0] or None
        device = parts[1] if len(parts) > 1 and parts[1] else None
    plat = _pick(cl.get_platforms(), platform, "platform")
    dev = _pick(plat.get_devices(), device, "device")
    key = (plat.int_ptr, dev.int_ptr)
    if key not in _CONTEXTS:
        _CONTEXTS[key] = cl.Context([dev])
    return _CONTEXTS[key]

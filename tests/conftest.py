"""Shared test configuration: quiet, non-interactive drivers, and target fixtures."""

from __future__ import annotations

import os

# Set before any test module imports TensorFlow or pyopencl.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("PYOPENCL_CTX", "0")
os.environ.setdefault("MPLBACKEND", "Agg")

import nengo
import pytest

from nhw import backends


def _decoder_cache_per_worker() -> None:
    # pytest-xdist workers sharing nengo's one decoder cache index fight for its lock,
    # and the loser turns its cache read-only (a UserWarning, and no caching there):
    # each worker gets an index of its own
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        base = os.path.expanduser(nengo.rc.get("decoder_cache", "path"))
        nengo.rc.set("decoder_cache", "path", f"{base.rstrip(os.sep)}-nhw-tests-{worker}")


_decoder_cache_per_worker()


def pytest_report_header(config):
    lines = [f"nhw targets: {', '.join(backends.available())}"]
    lines += [f"  unavailable {s.name}: {s.reason}" for s in backends.describe() if not s.available]
    return lines


@pytest.fixture(params=backends.available())
def target(request) -> str:
    """Each available target in turn, ``reference`` included."""
    return request.param


# --- OpenCL tests run in their own pytest process -----------------------------------
# PoCL (the OpenCL driver) crashes in a process that has imported TensorFlow, so tests
# that use the opencl target in-process are marked `opencl` and run separately:
#   pytest -m "not opencl" tests   and   pytest -m opencl tests
# In the second run, modules that import TensorFlow or Keras are not even collected.
_TF_IMPORTS = ("import tensorflow", "import keras", "from keras", "nhw.backends.tensorflow", "nhw.dl",
               'importorskip("keras")', 'importorskip("tensorflow")')


def _opencl_only(config) -> bool:
    return (config.getoption("markexpr", "") or "").strip() == "opencl"


def pytest_ignore_collect(collection_path, config):
    if _opencl_only(config) and collection_path.suffix == ".py" and collection_path.name.startswith("test_"):
        text = collection_path.read_text(errors="ignore")
        return any(s in text for s in _TF_IMPORTS) or None
    return None


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "opencl" in item.nodeid:
            item.add_marker(pytest.mark.opencl)


def pytest_collection_finish(session):
    import sys

    if _opencl_only(session.config) and "tensorflow" in sys.modules:
        raise pytest.UsageError("the opencl test run imported TensorFlow during collection; "
                                "PoCL would crash: keep TensorFlow imports out of that module")

"""Shared test configuration: quiet, non-interactive drivers, and target fixtures."""

from __future__ import annotations

import os

# Set before any test module imports TensorFlow or pyopencl.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("PYOPENCL_CTX", "0")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest

import backends

#: Every available target except ``reference``, which the others are compared to.
OTHER_TARGETS = [t for t in backends.available() if t != "reference"]


def pytest_report_header(config):
    lines = [f"nhw targets: {', '.join(backends.available())}"]
    lines += [f"  unavailable {s.name}: {s.reason}" for s in backends.describe() if not s.available]
    return lines


@pytest.fixture(params=backends.available())
def target(request) -> str:
    """Each available target in turn, ``reference`` included."""
    return request.param

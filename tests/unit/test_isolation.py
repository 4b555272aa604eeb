"""call_for_target: work for targets that need their own process runs in a child."""

import os

import pytest

from nhw.backends import registry
from nhw.backends.registry import BackendSpec
from nhw.errors import ToolchainError
from nhw.toolchain.isolation import call_for_target


def _pid_and(x):
    return os.getpid(), x * 2


def _fail():
    raise ValueError("bad value 7")


def _crash():
    os._exit(3)


@pytest.fixture
def isolated(monkeypatch):
    monkeypatch.setitem(registry._REGISTRY, "fake-own", BackendSpec("fake-own", "x:y", own_process=True))
    return "fake-own"


def test_runs_in_child_and_returns(isolated):
    pid, value = call_for_target(isolated, _pid_and, 21)
    assert value == 42 and pid != os.getpid()


def test_same_process_for_ordinary_targets():
    assert call_for_target("reference", _pid_and, 1)[0] == os.getpid()


def test_exceptions_cross_back(isolated):
    with pytest.raises(ValueError, match="bad value 7"):
        call_for_target(isolated, _fail)


def test_crashed_child_is_a_clear_error(isolated):
    with pytest.raises(ToolchainError, match="target 'fake-own': its process ended without an answer"):
        call_for_target(isolated, _crash)

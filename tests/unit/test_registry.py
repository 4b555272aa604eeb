"""Backend registry: lookup, availability, errors and entry points (no simulation)."""

from importlib.metadata import entry_points

import pytest

from nhw import backends
from nhw.backends.registry import BackendSpec


def test_known_targets_registered():
    assert backends.registry.names()[:4] == ["reference", "opencl", "tensorflow", "loihi-emu"]


def test_reference_always_available():
    assert "reference" in backends.available()
    import nengo

    assert issubclass(backends.get("reference"), nengo.Simulator)
    assert issubclass(backends.get("reference"), backends.Simulator)


def test_unknown_name_lists_known():
    with pytest.raises(backends.UnknownBackendError) as info:
        backends.get("ocl2")
    msg = str(info.value)
    assert "'ocl2'" in msg
    for name in ("reference", "opencl", "tensorflow", "loihi-emu"):
        assert name in msg
    assert isinstance(info.value, KeyError)


def test_missing_dependency_gives_install_hint():
    spec = BackendSpec("fake", "nowhere:Sim", requires=(("surely_not_a_module_xyz", "pip install xyz"),))
    assert spec.unavailable_reason() == "Python module 'surely_not_a_module_xyz' is not installed: pip install xyz"
    with pytest.raises(backends.BackendUnavailableError, match="backend 'fake' is not available: .*pip install xyz"):
        spec.load()


def test_failing_device_probe_is_a_reason_not_a_crash(monkeypatch):
    spec = BackendSpec("fake", "nowhere:Sim", probe="nhw.backends.registry:does_not_exist")
    assert "device check failed" in spec.unavailable_reason()


def test_register_rejects_duplicates():
    with pytest.raises(ValueError, match="already registered"):
        backends.register(BackendSpec("reference", "x:y"))


def test_describe_matches_available():
    status = {s.name: s for s in backends.describe()}
    assert set(status) >= {"reference", "opencl", "tensorflow", "loihi-emu"}
    assert [n for n, s in status.items() if s.available] == backends.available()
    for s in status.values():
        assert s.reason == "ok" if s.available else s.reason != "ok"


def test_opencl_device_problem_names_the_driver(monkeypatch):
    cl = pytest.importorskip("pyopencl")
    from nhw.backends import opencl_device

    monkeypatch.setattr(cl, "get_platforms", lambda: [])
    assert "install pocl-opencl-icd" in opencl_device.local_device_problem()


def test_entry_points():
    eps = {ep.name: ep.value for ep in entry_points(group="nengo.backends")}
    assert eps.get("nhw-reference") == "nhw.backends.reference:Simulator"
    assert eps.get("nhw-opencl") == "nhw.backends.opencl:Simulator"
    assert eps.get("nhw-loihi-emu") == "nhw.backends.loihi_emu:Simulator"
    assert eps.get("nhw-tensorflow") == "nhw.backends.tensorflow:Simulator"

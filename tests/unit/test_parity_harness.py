"""The parity harness's comparison and reporting logic, with a perturbed fake target."""

import json

import nengo
import numpy as np
import pytest

from nhw import backends
from nhw.toolchain import parity, parity_config
from nhw.errors import UnknownNameError
from nhw.toolchain.parity_networks import NETWORKS, Tolerance, get_network

TOL = Tolerance(rmse=0.1, max_abs=0.5)


def test_compare_pass_and_fail():
    ref = np.zeros((100, 2))
    ok = parity.compare("n", "t", "p", ref, ref + 0.05, TOL)
    assert ok.passed and ok.rmse == pytest.approx(0.05) and ok.max_abs == pytest.approx(0.05)
    spike = ref.copy()
    spike[3, 1] = 0.6  # small rmse, max over the bound
    bad = parity.compare("n", "t", "p", ref, spike, TOL)
    assert not bad.passed and bad.rmse < TOL.rmse


def test_compare_shape_mismatch_and_nan():
    r = parity.compare("n", "t", "p", np.zeros((10, 2)), np.zeros((9, 2)), TOL)
    assert not r.passed and "shape (9, 2) != reference (10, 2)" in r.note
    r = parity.compare("n", "t", "p", np.zeros((3, 1)), np.full((3, 1), np.nan), TOL)
    assert not r.passed and r.note == "non-finite output"


def test_every_standard_network_builds():
    assert len(NETWORKS) >= 8
    for net in NETWORKS.values():
        case = net.case(n_per_dim=5)
        assert isinstance(case.network, nengo.Network) and case.probes and case.n_steps > 0
        for probe in case.probes.values():
            assert probe in case.network.all_probes


def test_unknown_network():
    with pytest.raises(UnknownNameError, match="known: communication_channel"):
        get_network("nope")


def test_unknown_target_fails_before_simulating():
    with pytest.raises(backends.UnknownBackendError):
        parity_config.check_parity(["communication_channel"], ["nope"])


class _Perturbed(backends.get("reference")):
    """reference plus a constant offset on every probe."""

    offset = 0.0

    def __init__(self, network, **kwargs):
        super().__init__(network, **kwargs)
        self.data = _Offset(self.data, self.offset)


class _Offset(dict):
    def __init__(self, data, offset):
        super().__init__()
        self.inner, self.offset = data, offset

    def __getitem__(self, key):
        return self.inner[key] + self.offset


@pytest.mark.parametrize("offset, passed", [(0.0, True), (1.0, False)])
def test_check_network_detects_offsets(monkeypatch, offset, passed):
    get = backends.get
    monkeypatch.setattr(_Perturbed, "offset", offset)
    monkeypatch.setattr(backends, "get", lambda name: _Perturbed if name == "fake" else get(name))
    report = parity_config.check_network(get_network("communication_channel"), ["fake"], n_per_dim=10)
    assert report.passed is passed
    assert {r.probe for r in report.results} == {"a", "b"}
    assert json.loads(report.to_json())["passed"] is passed
    assert ("FAIL" in report.to_table()) is not passed


def test_crashing_target_is_a_failure(monkeypatch):
    def boom(network, **kwargs):
        raise RuntimeError("device fell over")

    get = backends.get
    monkeypatch.setattr(backends, "get", lambda name: boom if name == "fake" else get(name))
    report = parity_config.check_network(get_network("communication_channel"), ["fake"], n_per_dim=10)
    assert not report.passed
    assert "RuntimeError: device fell over" in report.to_table()

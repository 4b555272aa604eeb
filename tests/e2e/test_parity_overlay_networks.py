"""``nhw parity --networks`` writes one overlay plot per standard network, like a config's overlay.png."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from nhw import backends
from nhw.backends.registry import BackendSpec
from nhw.toolchain import artifacts
from nhw.toolchain.cli import main

DPI = 90  # nhw.toolchain.plots.save_figure


class _Offset(backends.get("reference")):
    """reference plus a constant offset on every probe: every probe dimension fails."""

    def __init__(self, network, **kwargs):
        super().__init__(network, **kwargs)
        data = self.data

        class View(dict):
            def __getitem__(self, key):
                return data[key] + 0.5

        self.data = View()


@pytest.fixture
def fake_target(monkeypatch):
    real = backends.get
    monkeypatch.setattr(backends, "get", lambda name: _Offset if name == "fake" else real(name))
    monkeypatch.setitem(backends.registry._REGISTRY, "fake",
                        BackendSpec(name="fake", target="nhw.backends.reference:Simulator"))


def _expected_pixels(n_panels: int) -> tuple[int, int]:
    # plot_overlay's grid: one column up to 3 panels, else two; 7.5 x (3.3 rows + 0.8) inches
    cols = 1 if n_panels <= 3 else 2
    rows = -(-n_panels // cols)
    return round(7.5 * cols * DPI), round((3.3 * rows + 0.8) * DPI)


def test_parity_networks_writes_one_overlay_per_network(tmp_path, fake_target):
    import matplotlib.image

    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["parity", "--networks", "communication_channel,integrator", "--targets", "fake",
                                  "--dimensions", "2", "--n-per-dim", "10", "--out", str(out)],
                           catch_exceptions=False)
    assert r.exit_code == 1, r.stdout + r.stderr  # every probe is 0.5 off
    files = set(artifacts.load_run(out).files)
    assert {"parity.json", "parity.txt", "overlay_communication_channel.png", "overlay_integrator.png"} <= files
    assert "overlay.png" not in files
    assert not artifacts.leftover_temps(out) and not artifacts.orphaned_temps(out)
    report = json.loads((out / "parity.json").read_text())
    probes = {(x["network"], x["probe"]) for x in report["results"]}
    assert probes == {("communication_channel", "a"), ("communication_channel", "b"),
                      ("integrator", "memory")}
    # every (probe, dimension) fails, so each gets a panel: 2 probes x 2 dims, and 1 x 2
    for network, n_panels in (("communication_channel", 4), ("integrator", 2)):
        path = out / f"overlay_{network}.png"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        image = matplotlib.image.imread(path)
        height, width = image.shape[:2]
        assert (width, height) == _expected_pixels(n_panels), network
        assert np.ptp(image[..., :3]) > 0.5  # drawn, not a blank canvas


def test_parity_networks_without_out_writes_nothing(tmp_path, fake_target, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, ["parity", "--networks", "integrator", "--targets", "fake", "--n-per-dim", "10"],
                           catch_exceptions=False)
    assert r.exit_code == 1, r.stdout + r.stderr
    assert list(tmp_path.iterdir()) == []

"""What a new user sees first: figures saved where the message says, spike rasters
that show single spikes, and a config whose parity compares nothing refused."""

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from nhw.toolchain import plots
from nhw.toolchain.cli import main

ROOT = Path(__file__).resolve().parents[2]
QUICK = str(ROOT / "configs" / "quickstart.yaml")


def _figure():
    fig = plots._figure(2, 2)
    fig.subplots().plot([0, 1], [1, 0])
    return fig


@pytest.mark.parametrize("name, written", [("plot", "plot.png"), ("plot.svg", "plot.svg"),
                                           ("deep/er/p.png", "deep/er/p.png")])
def test_save_figure_reports_the_file_it_wrote(tmp_path, name, written):
    got = plots.save_figure(_figure(), tmp_path / name)
    assert got == tmp_path / written and got.is_file() and got.stat().st_size > 0
    assert sorted(p.name for p in got.parent.iterdir()) == [got.name]   # no temporary left


def test_save_figure_replaces_an_existing_file_whole(tmp_path):
    path = tmp_path / "p.png"
    path.write_bytes(b"old")
    plots.save_figure(_figure(), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_long_dense_raster_is_cut_to_its_first_steps():
    rng = np.random.default_rng(0)
    spikes = (rng.random((13500, 50)) < 0.1).astype(float)       # 100 Hz for 13.5 s
    n = plots._raster_steps(spikes)
    assert 300 < n < 500                                            # about 40 spikes per neuron
    per_neuron = np.count_nonzero(spikes[:n]) / 50
    assert per_neuron <= plots.RASTER_SPIKES_PER_NEURON


def test_a_sparse_or_silent_raster_is_drawn_whole():
    spikes = np.zeros((2000, 10))
    spikes[::100, 3] = 1
    assert plots._raster_steps(spikes) == 2000
    assert plots._raster_steps(np.zeros((5, 0))) == 5


def test_raster_titles_say_which_part_of_the_run_is_shown(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    t = 0.001 * np.arange(1, 5001)
    dense = (rng.random((5000, 80)) < 0.2).astype(float)
    fig_titles = []
    real = plots.save_figure

    def keep(fig, path, dpi=90):
        fig_titles.extend(ax.get_title(loc="left") for ax in fig.axes)
        fig_titles.append(fig.axes[-1].get_xlim())
        return real(fig, path, dpi)

    monkeypatch.setattr(plots, "save_figure", keep)
    plots.plot_rasters(t, {"dense": dense, "quiet": np.zeros((5000, 4))}, tmp_path / "r.png")
    dense_title, quiet_title, xlim = fig_titles
    assert dense_title.startswith("dense: first 50 of 80 neurons, first 0.1") and "s of 5 s" in dense_title
    assert quiet_title.startswith("quiet: all 4 neurons, first 0.1")    # the same window
    assert xlim[1] < 0.25


def test_a_config_whose_parity_targets_are_only_reference_is_refused(tmp_path):
    r = CliRunner().invoke(main, ["parity", QUICK, "--set", "parity.targets=[reference]",
                                  "--out", str(tmp_path / "run")], prog_name="nhw")
    assert r.exit_code == 2, r.output
    assert "parity.targets reference: nothing to compare" in r.stderr
    assert not (tmp_path / "run").exists()

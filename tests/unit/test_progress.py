"""Live progress: drawn on a terminal console only, with nengo's ProgressBar contract."""

import io
from pathlib import Path

import nengo
import numpy as np
from rich.console import Console

from nhw import backends
from nhw.toolchain import progress

ROOT = Path(__file__).resolve().parents[2]


def _net():
    with nengo.Network(seed=0) as net:
        a = nengo.Ensemble(20, 1)
        nengo.Connection(nengo.Node(0.5), a)
        p = nengo.Probe(a, synapse=0.01)
    return net, p


def test_off_by_default_draws_nothing():
    assert not progress.enabled()
    with progress.stage("building") as bar:
        assert bar is None


def test_a_bar_follows_a_backend_run_and_keeps_its_results():
    out = io.StringIO()
    net, p = _net()
    with backends.get("loihi-emu")(net, seed=0, progress_bar=False) as plain:
        plain.run_steps(200)
    progress.enable(Console(file=out, force_terminal=True, width=120))
    try:
        with backends.get("loihi-emu")(net, seed=0, progress_bar=False) as sim:
            with progress.stage("simulating on loihi-emu", total=200) as bar:
                sim.run_steps(200, progress_bar=bar)
    finally:
        progress.disable()
    text = out.getvalue()
    assert "simulating on loihi-emu" in text and "200/200" in text and " s" in text
    assert sim.n_steps == 200
    np.testing.assert_array_equal(sim.data[p], plain.data[p])  # slices run as one


def test_cli_draws_no_progress_when_not_a_terminal(tmp_path):
    from click.testing import CliRunner

    from nhw.toolchain.cli import main

    r = CliRunner().invoke(main, ["deploy", str(ROOT / "configs/parity/communication_channel.yaml"), "--out",
                                  str(tmp_path / "r")], catch_exceptions=False)
    assert r.exit_code == 0 and "simulating on" not in r.output and not progress.enabled()

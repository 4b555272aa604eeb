"""A new user's first hour (QA round h2): shipped configs, examples, exit codes, the parity
overlay and summary, the snnTorch export message and the resume hint."""

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from nhw.toolchain import plots, tables
from nhw.toolchain.parity import ProbeResult
from nhw.toolchain.parity_networks import Tolerance

from nhw.errors import NhwError, ToolchainError, UserCodeError

ROOT = Path(__file__).resolve().parents[2]


# --- 1. a chip-trained config gives tensorflow the chip's parity limits --------------------
def _limits(section: dict, target: str) -> dict:
    return section.get("per_target", {}).get(target, section.get("tolerances", {}))


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_chip_trained_config_holds_tensorflow_to_the_chips_limits(path):
    """tensorflow deploys a run trained for a chip target with that chip's neurons and weights."""
    conf = yaml.safe_load(path.read_text())
    chip = (conf.get("train") or {}).get("target")
    if not chip or "parity" not in conf:
        pytest.skip("not trained for a chip target")
    assert _limits(conf["parity"], "tensorflow") == _limits(conf["parity"], chip)


def test_digits_cnn_comment_states_what_the_limits_cover():
    text = (ROOT / "configs" / "digits_cnn.yaml").read_text()
    measured = re.search(r"tensorflow rmse ([\d.]+), max ([\d.]+),\s+#?\s*(\d+)/449", text)
    assert measured, "the comment must state tensorflow's measured rmse, max and decisions"
    limits = yaml.safe_load(text)["parity"]["per_target"]["tensorflow"]["output"]
    rmse, worst, agree = float(measured[1]), float(measured[2]), int(measured[3])
    assert rmse < limits["rmse"] and worst < limits["max_abs"]
    assert agree >= 0.9 * 449


# --- 2. digits: a presentation long enough to read a decision from -------------------------
def test_digits_presents_each_digit_long_enough_for_a_decision():
    """At <= 200 Hz a 30 ms digit leaves reference's own decision to spike-count noise
    (measured: 399/449 decisions equal on loihi-emu at 30 ms, 434/449 at 60 ms)."""
    conf = yaml.safe_load((ROOT / "configs" / "digits.yaml").read_text())
    rate, shown = conf["network"]["params"]["max_rate"], conf["deploy"]["presentation_time"]
    assert rate * shown >= 12  # spikes per neuron per digit at the highest rate
    assert conf["parity"]["decisions"] == 0.9  # the requirement stands


# --- 3. every example takes --quick and --out, and the README lists it ---------------------
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
RUNNABLE = [p for p in EXAMPLES if "def main(" in p.read_text()]


@pytest.mark.parametrize("path", RUNNABLE, ids=lambda p: p.name)
def test_example_takes_quick_and_out_and_is_in_the_readme(path):
    text = path.read_text()
    assert 'add_argument("--quick"' in text and 'add_argument("--out"' in text
    assert f"`examples/{path.name}`" in (ROOT / "README.md").read_text()


def test_quickstart_quick_runs_a_shorter_simulation(tmp_path):
    png = tmp_path / "q.png"
    out = subprocess.run([sys.executable, "examples/quickstart.py", "--quick", "--targets", "reference",
                          "--out", str(png)], capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert png.stat().st_size > 1000 and "reference" in out.stdout


# --- 4. the user's network code raising: exit 2, one line naming the factory ---------------
@pytest.fixture
def boom(tmp_path, monkeypatch):
    (tmp_path / "boomnet.py").write_text(textwrap.dedent("""
        def build(width=3, seed=0):
            raise ValueError(f"width {width} is not supported")
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = tmp_path / "boom.yaml"
    cfg.write_text("version: 1\nnetwork: {factory: 'boomnet:build'}\n")
    return cfg


def test_user_code_error_is_a_toolchain_error():
    assert issubclass(UserCodeError, ToolchainError) and issubclass(UserCodeError, NhwError)


@pytest.mark.parametrize("command", [["parity", "--targets", "loihi-emu"], ["deploy", "--target", "reference"]])
def test_a_raising_factory_exits_2_with_one_line(boom, tmp_path, command):
    from nhw.toolchain.cli import main

    args = [command[0], str(boom), *command[1:], "--out", str(tmp_path / "run")]
    r = CliRunner().invoke(main, args, prog_name="nhw")
    assert r.exit_code == 2, (r.exit_code, r.output)
    lines = r.stderr.strip().splitlines()
    expected = f"nhw: error: {boom}: network.factory 'boomnet:build' raised ValueError: width 3 is not supported"
    assert lines == [expected], r.stderr
    assert "Traceback" not in r.output


def test_a_raising_factory_keeps_its_traceback_for_v(boom, tmp_path):
    from nhw.toolchain.cli import main

    r = CliRunner().invoke(main, ["deploy", str(boom), "-v", "--out", str(tmp_path / "run")], prog_name="nhw")
    assert r.exit_code == 2
    assert "Traceback" in r.stderr and "boomnet.py" in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("nhw: error: ")


# --- 5. the overlay shows what failed; the summary counts decisions apart -------------------
def _row(target, probe, passed=True, note="", tol=(1.0, 5.0)):
    wrong = 0.0 if passed else 0.2
    return ProbeResult("net", target, probe, wrong, wrong, Tolerance(*tol), passed, note)


def _digits_like():
    t = np.arange(1, 101) * 1e-3
    ref = np.sin(t[:, None] * np.arange(1, 11))
    targets = {"tensorflow": {"out": ref + 1e-3}, "loihi-emu": {"out": ref + 1e-2}}
    results = [_row("tensorflow", "out"), _row("tensorflow", "out:decisions", note="10/10 decisions agree",
                                              tol=(0.1, 0.1)),
               _row("loihi-emu", "out"), _row("loihi-emu", "out:decisions", passed=False,
                                             note="8/10 decisions agree", tol=(0.1, 0.1))]
    return t, ref, targets, results


def test_overlay_shows_the_target_whose_decisions_failed(tmp_path, monkeypatch):
    t, ref, targets, results = _digits_like()
    panels, failing = plots.overlay_panels({"out": ref}, targets, results)
    assert failing and {p[0] for p in panels} == {"loihi-emu"} and len(panels) == 10
    saved = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path, dpi=90: saved.append(fig) or Path(path))
    plots.plot_overlay(t, {"out": ref}, targets, results, tmp_path / "v.png", max_panels=4)
    title = saved[0]._suptitle.get_text()
    assert "within tolerance" not in title
    assert "loihi-emu decisions of out: 8/10 agree, need 90%" in title and "4 of 10 shown" in title
    assert all(ax.get_title(loc="left").startswith("loihi-emu /") for ax in saved[0].axes[::2])


def test_overlay_when_all_pass_shows_every_target():
    _, ref, targets, results = _digits_like()
    results[-1] = _row("loihi-emu", "out:decisions", note="9/10 decisions agree", tol=(0.1, 0.1))
    panels, failing = plots.overlay_panels({"out": ref}, targets, results)
    assert not failing and [p[0] for p in panels[:4]] == ["tensorflow", "loihi-emu"] * 2


def test_overlay_never_says_within_tolerance_when_a_row_failed_without_data(tmp_path, monkeypatch):
    t, ref, targets, results = _digits_like()
    results = results[:3] + [_row("opencl", "out", passed=False, note="RuntimeError: no device")]
    saved = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path, dpi=90: saved.append(fig) or Path(path))
    plots.plot_overlay(t, {"out": ref}, targets, results, tmp_path / "v.png")
    title = saved[0]._suptitle.get_text()
    assert "every probe dimension within tolerance" not in title and "opencl out: failed" in title


def test_summary_counts_decision_rows_apart_from_probes():
    _, _, _, results = _digits_like()
    assert tables.parity_summary(results) == (
        "2 probes within tolerance, 0 out of tolerance; decisions: 1 target agrees enough, 1 does not")
    assert tables.parity_summary(results[:1]) == "1 probes within tolerance, 0 out of tolerance"


# --- 6. the snnTorch export of a SpikingRectifiedLinear network ----------------------------
def test_snntorch_export_advises_as_for_spiking_rectified_linear():
    import nengo
    from nhw.toolchain.nir.export import export_nir

    with nengo.Network(seed=0) as net:
        x = nengo.Node(np.ones(2), label="input")
        hidden = nengo.Ensemble(8, 1, neuron_type=nengo.SpikingRectifiedLinear(), label="hidden")
        nengo.Connection(x, hidden.neurons, transform=-np.ones((8, 2)), synapse=None)
        nengo.Probe(hidden.neurons, label="hidden")
    lines = {}
    for peer in ("snntorch", "norse", "sinabs"):
        remainder = [r for r in export_nir(net, profile=peer, allow_partial=True).remainder
                     if r.startswith("lower voltage bound")]
        assert len(remainder) == 1, (peer, remainder)
        lines[peer] = remainder[0]
    for peer, line in lines.items():
        assert "nengo's SpikingRectifiedLinear ignores negative input" in line, line
        assert "min_voltage" not in line, line
        assert "ensemble 'hidden' (NIR node 'hidden_1')" in line, line


# --- 7. the resume hint repeats --set ------------------------------------------------------
def test_resume_command_repeats_the_set_options_shell_quoted():
    import shlex

    from nhw.toolchain.config import load_config
    from nhw.toolchain.train import resume_command

    sets = ["train.epochs=40", "train.optimizer={name: adam, learning_rate: 0.01}"]
    cfg = load_config(ROOT / "configs" / "digits.yaml", sets)
    cmd = resume_command(cfg, "runs/my run")
    assert shlex.split(cmd) == ["nhw", "train", str(ROOT / "configs" / "digits.yaml"), "--set", sets[0],
                                "--set", sets[1], "--out", "runs/my run", "--resume"]

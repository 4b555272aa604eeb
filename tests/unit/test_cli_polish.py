"""The CLI's minor issues of QA round h2 (item 10): refused options out of --help,
errors naming what the user typed, a misspelled key reported first, did-you-mean for
standard networks, nothing to compare is an error, and training.png's axes."""

from pathlib import Path

import pytest
from click.testing import CliRunner
from nhw.toolchain import plots
from nhw.toolchain.cli import main

ROOT = Path(__file__).resolve().parents[2]
QUICK = str(ROOT / "configs" / "quickstart.yaml")


def nhw(*args):
    return CliRunner().invoke(main, [str(a) for a in args], prog_name="nhw")


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nhw: error: "), result.stderr
    return lines[0]


# --- 1. nothing compared is an error, before any work -------------------------------------
@pytest.mark.parametrize("args", [[QUICK], ["--networks", "integrator"]], ids=["config", "standard"])
def test_parity_with_only_reference_is_an_error_and_writes_nothing(args, tmp_path):
    r = nhw("parity", *args, "--targets", "reference", "--out", tmp_path / "run")
    line = one_line_error(r)
    assert "--targets reference: nothing to compare" in line and "available here: " in line
    assert not (tmp_path / "run").exists()


# --- 2. --help lists only the global options a command uses -------------------------------
@pytest.mark.parametrize("command, shown, hidden", [
    (["targets"], [], ["--out", "--set", "--seed", "--force"]),
    (["networks"], [], ["--out", "--set", "--seed", "--force"]),
    (["report"], ["--out", "--force"], ["--set", "--seed"]),
    (["export"], ["--set", "--seed", "--force"], ["--out"]),
    (["config", "validate"], ["--set", "--seed"], ["--out", "--force"]),
    (["deploy"], ["--out", "--set", "--seed", "--force"], []),
])
def test_help_lists_only_accepted_global_options(command, shown, hidden):
    r = nhw(*command, "--help")
    assert r.exit_code == 0, r.output
    flags = {w.rstrip(",") for line in r.output.splitlines() for w in line.split() if w.startswith("--")}
    assert set(shown) <= flags and not set(hidden) & flags, flags
    assert {"--json", "--quiet", "--verbose"} <= flags


def test_a_refused_option_still_gives_its_usage_error():
    r = nhw("targets", "--out", "x")
    assert r.exit_code == 2 and "--out: not used by 'nhw targets'" in r.output


# --- 3. a flag's bad value names the flag ---------------------------------------------------
def test_n_steps_error_names_the_flag_not_set(tmp_path):
    line = one_line_error(nhw("deploy", QUICK, "--n-steps", "0", "--out", tmp_path / "r"))
    assert "deploy.n_steps" in line and line.endswith("(from --n-steps 0)") and "--set" not in line


def test_set_error_still_names_the_set(tmp_path):
    line = one_line_error(nhw("deploy", QUICK, "--set", "deploy.n_steps=0", "--out", tmp_path / "r"))
    assert line.endswith("(from --set deploy.n_steps=0)")


# --- 4. a misspelled key is the error reported ----------------------------------------------
def test_misspelled_top_level_key_is_reported_first(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("netwrk:\n  name: integrator\n")
    line = one_line_error(nhw("config", "validate", p))
    assert f"{p}: netwrk: unknown key; did you mean 'network'?" in line


# --- 5. did-you-mean for standard networks ---------------------------------------------------
def test_misspelled_standard_network_gets_a_suggestion():
    line = one_line_error(nhw("parity", "--networks", "integratr", "--targets", "tensorflow"))
    assert "unknown standard network 'integratr'; did you mean 'integrator'?" in line


# --- 6. training.png: the learning rate off the accuracy axis, the test accuracy shown ------
@pytest.fixture
def figures(monkeypatch):
    saved = []
    save = plots.save_figure
    monkeypatch.setattr(plots, "save_figure", lambda fig, path, dpi=90: (saved.append(fig), save(fig, path, dpi))[1])
    return saved


def test_training_plot_gives_the_learning_rate_its_own_axis_and_shows_test_accuracy(tmp_path, figures):
    h = {"loss": [2.0, 1.0, 0.5], "logits_accuracy": [0.5, 0.8, 0.9], "learning_rate": [1e-3, 1e-3, 5e-4]}
    plots.plot_training(h, tmp_path / "t.png", "d", test={"test_output_accuracy": 0.924, "test_loss": 0.3})
    loss_ax, metric_ax, lr_ax = figures[0].axes
    assert "learning_rate" not in {ln.get_label() for ax in (loss_ax, metric_ax) for ln in ax.lines}
    assert [ln.get_label() for ln in lr_ax.lines] == ["learning rate"] and lr_ax.get_ylabel() == "learning rate"
    star = [ln for ln in metric_ax.lines if ln.get_label().startswith("test output_accuracy")]
    assert star and star[0].get_label() == "test output_accuracy 0.9240" and list(star[0].get_ydata()) == [0.924]
    assert not any("loss" in ln.get_label() for ln in metric_ax.lines)

"""Runs of trained weights stay reproducible from the command line.

A deploy run of a trained network keeps the weights it ran (so re-deploying it gives the
same numbers), the trained run's test split cannot be moved by ``--seed``/``--set``, an
``--out`` over the input run is refused, ``nhw train RUN`` starts from initial
parameters, and Ctrl-C / a closed pipe end commands cleanly.
"""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from nhw.toolchain.cli import main

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "configs" / "digits.yaml"
TINY = ["--set", "network.params.n_hidden=32", "--set", "train.epochs=1"]


def nhw(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny trained run and a reference deploy run of it (20 items)."""
    base = tmp_path_factory.mktemp("prov")
    trained = base / "train"
    r = nhw("train", DIGITS, *TINY, "--out", trained, "-q")
    assert r.exit_code == 0, r.output
    dep = base / "dep"
    r = nhw("deploy", trained, "--target", "reference", "--set", "deploy.n_items=20", "--out", dep, "-q")
    assert r.exit_code == 0, r.output
    return trained, dep


def _manifest(run):
    return json.loads((Path(run) / "manifest.json").read_text())


def test_deploy_run_keeps_the_trained_weights_and_redeploys_the_same(runs, tmp_path):
    trained, dep = runs
    m = _manifest(dep)
    assert m["frozen"] == "frozen.npz" and "frozen.npz" in m["files"]
    assert (dep / "frozen.npz").read_bytes() == (trained / "frozen.npz").read_bytes()
    again = tmp_path / "again"
    r = nhw("deploy", dep, "--out", again, "-q")
    assert r.exit_code == 0, r.output
    first, second = m["summary"]["metrics"], _manifest(again)["summary"]["metrics"]
    assert second == first
    assert _manifest(again)["frozen"] == "frozen.npz"  # and that run is self-contained too


def test_a_tampered_weights_copy_is_refused(runs, tmp_path):
    _, dep = runs
    copy = tmp_path / "dep"
    copy.mkdir()
    for f in dep.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    (copy / "frozen.npz").write_bytes(b"not the weights")
    r = nhw("deploy", copy, "--out", tmp_path / "x")
    assert r.exit_code == 2 and "checksum" in r.output


def test_seed_does_not_move_the_test_split(runs, tmp_path):
    trained, dep = runs
    for src in (trained, dep):
        out = tmp_path / f"s-{src.name}"
        r = nhw("deploy", src, "--seed", 7, "--set", "deploy.n_items=2", "--set", "deploy.plots=false",
                "--out", out, "-q")
        assert r.exit_code == 0, r.output
        cfg = _manifest(out)["config"]
        assert cfg["seed"] == 7 and cfg["data"]["seed"] == _manifest(trained)["config"]["seed"]


@pytest.mark.parametrize("setting", ["data.seed=5", "data.test_fraction=0.5", "data.name=sine"])
def test_split_changing_overrides_are_refused(runs, tmp_path, setting):
    trained, dep = runs
    for src in (trained, dep):
        r = nhw("deploy", src, "--set", setting, "--out", tmp_path / "x")
        assert r.exit_code == 2, r.output
        assert f"data.{setting.split('=')[0].split('.')[1]}" in r.output and "trained on" in r.output
        assert not (tmp_path / "x").exists()


def test_out_over_the_input_run_is_refused(runs):
    trained, dep = runs
    before = sorted(p.name for p in trained.iterdir())
    for args in (("deploy", trained, "--target", "reference", "--out", trained, "--force"),
                 ("deploy", dep, "--out", dep / "sub", "--force"),
                 ("parity", trained, "--targets", "reference,tensorflow", "--out", trained, "--force"),
                 ("deploy", dep, "--out", dep.parent, "--force")):
        r = nhw(*args)
        assert r.exit_code == 2 and "overlaps" in r.output, r.output
    assert sorted(p.name for p in trained.iterdir()) == before and (dep / "manifest.json").exists()


def test_train_of_a_run_starts_from_initial_parameters(runs, tmp_path, monkeypatch):
    import nhw.toolchain.train as train_mod

    seen = {}

    def fake_train(cfg, **kwargs):
        seen["frozen"] = cfg.frozen
        raise KeyboardInterrupt

    monkeypatch.setattr(train_mod, "train", fake_train)
    trained, _ = runs
    r = nhw("train", trained, "--out", tmp_path / "re")
    assert r.exit_code == 130 and seen == {"frozen": None}


@pytest.mark.parametrize("command", ["deploy", "parity"])
def test_ctrl_c_exits_130(command, tmp_path, monkeypatch):
    import nhw.toolchain.deploy as deploy_mod
    import nhw.toolchain.parity_config as parity_mod

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(deploy_mod, "deploy", interrupted)
    monkeypatch.setattr(parity_mod, "run_parity", interrupted)
    r = nhw(command, ROOT / "configs" / "quickstart.yaml", "--out", tmp_path / "x")
    assert r.exit_code == 130 and "interrupted" in r.output and "Aborted" not in r.output
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("args, key", [
    (["--seed", "-5"], "seed"),
    (["--set", "seed=-1"], "seed"),
    (["--set", "data.seed=4294967296"], "data.seed"),
    (["--set", "deploy.n_steps=true"], "deploy.n_steps"),
    (["--set", "network.params.n_hidden=true"], "network.params.n_hidden"),
])
def test_config_validate_refuses_bad_seeds_and_boolean_numbers(args, key):
    r = nhw("config", "validate", DIGITS, *args)
    assert r.exit_code == 2 and f": {key}:" in r.output, r.output


def test_summary_counts_are_integers(runs):
    _, dep = runs
    summary = json.loads((dep / "summary.json").read_text())
    assert summary["metrics"]["n_scored"] == 20 and isinstance(summary["metrics"]["n_scored"], int)
    assert isinstance(summary["classification"]["steps_per_item"], int)


def test_empty_targets_are_refused_and_repeats_run_once(monkeypatch):
    import nhw.toolchain.parity_config as parity_mod

    r = nhw("parity", ROOT / "configs" / "quickstart.yaml", "--targets", "")
    assert r.exit_code == 2 and "--targets" in r.output
    seen = {}

    def fake(cfg, targets, **kwargs):
        seen["targets"] = targets
        raise KeyboardInterrupt

    monkeypatch.setattr(parity_mod, "run_parity", fake)
    nhw("parity", ROOT / "configs" / "quickstart.yaml", "--targets", "reference,reference,loihi-emu,reference")
    assert seen["targets"] == ["reference", "loihi-emu"]


@pytest.mark.parametrize("args", [["train", DIGITS, "--workers", "0"], ["targets", "--out", "x"]])
def test_usage_errors_are_one_line(args):
    r = nhw(*args)
    assert r.exit_code == 2 and r.output.startswith("nhw: error: ") and r.output.count("\n") == 1, r.output

"""Issue 24: bad inputs that were accepted silently or ended in a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nhw.errors import ArtifactError, ConfigError, DataError, DeployError
from nhw.toolchain import networks
from nhw.toolchain.artifacts import RunWriter, check_destination, leftover_temps, load_run
from nhw.toolchain.config import load_config
from nhw.toolchain.data import load_npz
from nhw.toolchain.experiment import apply_trained, build_network, feed_inputs

ROOT = Path(__file__).resolve().parents[2]


def _write(tmp_path, text, name="c.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_duplicate_yaml_key_is_an_error(tmp_path):
    p = _write(tmp_path, "network: {name: sin_x2_chain}\ndeploy:\n  n_steps: 10\n  n_steps: 20\n")
    with pytest.raises(ConfigError, match=r"c.yaml:4:3: .*duplicate key 'n_steps' \(first at line 3\)"):
        load_config(p)


def test_yaml_alias_bomb_is_refused(tmp_path):
    lines = ["network: {name: sin_x2_chain, params: {bomb: *i}}"]
    prev = "[x, x, x, x, x, x, x, x, x, x]"
    rows = []
    for i, name in enumerate("abcdefghi"):
        rows.append(f"{name}: &{name} {prev}")
        prev = "[" + ", ".join([f"*{name}"] * 10) + "]"
    text = "anchors:\n" + "\n".join("  " + r for r in rows) + "\n" + lines[0] + "\n"
    with pytest.raises(ConfigError, match="expands to more than"):
        load_config(_write(tmp_path, text))


@pytest.mark.parametrize("setting, match", [
    ("deploy.dt=.inf", "deploy.dt"),
    ("deploy.presentation_time=0.0005", "presentation_time .* shorter than one time step"),
    ("name=../../x", "name: expected letters"),
])
def test_bad_deploy_values_are_refused(setting, match):
    with pytest.raises(ConfigError, match=match):
        load_config(ROOT / "configs" / "quickstart.yaml", [setting])


def test_n_items_beyond_the_data_is_refused():
    cfg = load_config(ROOT / "configs" / "digits.yaml", ["deploy.n_items=100000"])
    built = build_network(cfg)
    with pytest.raises(ConfigError, match=r"deploy.n_items: expected at most \d+ .* got 100000"):
        feed_inputs(cfg, built)


def _npz(path, **arrays):
    base = {"x_train": np.zeros((4, 3)), "y_train": np.zeros(4, int), "x_test": np.zeros((2, 3)),
            "y_test": np.zeros(2, int)}
    base.update(arrays)
    np.savez(path, **base)
    return path


def test_nan_in_x_test_is_a_data_error(tmp_path):
    x = np.zeros((2, 3))
    x[1, 2] = np.nan
    with pytest.raises(DataError, match=r"x_test: 1 of 6 values are NaN or infinite \(first at index \(1, 2\)"):
        load_npz(_npz(tmp_path / "d.npz", x_test=x))


def test_data_file_errors_give_the_real_cause(tmp_path):
    text = tmp_path / "t.npz"
    text.write_text("x,y\n1,2\n")
    with pytest.raises(DataError, match="got a text file"):
        load_npz(text)
    good = _npz(tmp_path / "g.npz")
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good.read_bytes()[:200])
    with pytest.raises(DataError, match="truncated or corrupt"):
        load_npz(cut)


def test_empty_frozen_file_does_not_deploy_the_untrained_network(tmp_path):
    built = networks.build("autoencoder", {"n_in": 8, "n_hidden": 4})
    np.savez(tmp_path / "frozen.npz")
    with pytest.raises(DeployError, match=r"frozen.npz: no trained value for 8 of the network's trained objects"):
        apply_trained(built, tmp_path / "frozen.npz")


def test_factory_with_a_wrong_parameter_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "myfactory_fh.py").write_text(
        "import nengo\n"
        "def build(n=3):\n"
        "    with nengo.Network() as net:\n"
        "        a = nengo.Node([0.0])\n"
        "        p = nengo.Probe(a)\n"
        "    return net, {'a': p}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    p = _write(tmp_path, "network: {factory: 'myfactory_fh:build', params: {m: 3}}\n")
    cfg = load_config(p)
    with pytest.raises(ConfigError, match=r"network.params: factory 'myfactory_fh:build' cannot be called .* takes: n"):
        build_network(cfg)


def test_config_tolerance_beats_the_zoo_per_target_value():
    from nhw.toolchain.parity_config import tolerance_for

    cfg = load_config(ROOT / "configs" / "quickstart.yaml")
    built = build_network(cfg)
    tol = tolerance_for(cfg, built, "loihi-emu", "x")
    assert (tol.rmse, tol.max_abs) == (1e-6, 1e-6)
    # a config that only repeats the zoo default keeps the zoo's per-target refinement
    cfg = load_config(ROOT / "configs" / "parity" / "integrator.yaml")
    tol = tolerance_for(cfg, build_network(cfg), "loihi-emu", "memory")
    assert (tol.rmse, tol.max_abs) == (0.05, 0.12)


def _run(tmp_path, name="run"):
    cfg = load_config(ROOT / "configs" / "quickstart.yaml")
    with RunWriter(tmp_path / name, "deploy", config=cfg) as w:
        w.write_json("summary.json", {})
        w.summary = {}
    return tmp_path / name


def test_changed_config_in_the_manifest_is_detected(tmp_path):
    run = _run(tmp_path)
    m = json.loads((run / "manifest.json").read_text())
    m["config"]["deploy"]["n_steps"] = 900
    (run / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ArtifactError, match="config: does not match config_hash"):
        load_run(run)


def test_force_replaces_only_nhw_runs(tmp_path):
    other = tmp_path / "mine"
    other.mkdir()
    (other / "thesis.tex").write_text("keep")
    with pytest.raises(ArtifactError, match="not an nhw run"):
        check_destination(other, force=True)
    check_destination(_run(tmp_path), force=True)


def test_destination_under_a_file_fails_before_work(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(ArtifactError, match="is a file, not a folder"):
        check_destination(tmp_path / "f" / "run")


def test_orphaned_temps_are_listed_and_removed_only_with_force(tmp_path):
    run = _run(tmp_path)
    (tmp_path / ".run.abc123.tmp").mkdir()
    assert [p.name for p in leftover_temps(tmp_path)] == [".run.abc123.tmp"]
    with RunWriter(run, "deploy", force=True) as w:
        w.summary = {}
    assert leftover_temps(tmp_path) == []


def test_report_refuses_to_replace_the_run_itself(tmp_path):
    from nhw.toolchain.report import render_run

    run = _run(tmp_path)
    with pytest.raises(ArtifactError, match="is the run .* itself"):
        render_run(run, out=run, force=True)
    assert (run / "summary.json").exists()


def test_minimal_manifest_in_report_is_one_line(tmp_path):
    from nhw.toolchain.report import render_run

    run = tmp_path / "r"
    run.mkdir()
    (run / "manifest.json").write_text(json.dumps({"format": "nhw-run", "format_version": 1, "kind": "deploy"}))
    with pytest.raises(ArtifactError, match="incomplete deploy run"):
        render_run(run)

"""Every nhw command through click's CliRunner, and each bad input of issue 7.

Bad input -> one line on stderr, exit status 2, no traceback, nothing half-written.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from nhw import backends
from nhw.toolchain import artifacts
from nhw.toolchain.cli import main

ROOT = Path(__file__).resolve().parents[2]
QUICK = str(ROOT / "configs" / "quickstart.yaml")
SHORT = ["--set", "deploy.n_steps=200"]


def nhw(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def assert_clean_error(result, fragment):
    assert result.exit_code == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nhw: error: "), result.stderr
    assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.stderr + result.stdout


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "quick"
    r = nhw("deploy", QUICK, *SHORT, "--out", out)
    assert r.exit_code == 0, r.stderr
    return out, r


# --- targets, networks ---------------------------------------------------------------
def test_targets_text_and_json():
    r = nhw("targets")
    assert r.exit_code == 0 and r.stdout.startswith("reference ")
    data = json.loads(nhw("targets", "--json").stdout)
    assert [d["name"] for d in data] == [s.name for s in backends.describe()]


def test_networks_lists_the_zoo():
    r = nhw("networks", "-v")
    assert r.exit_code == 0
    assert "digits_classifier" in r.stdout and "params: n_in, n_hidden" in r.stdout
    data = json.loads(nhw("networks", "--json").stdout)
    assert {d["name"]: d["parity"] for d in data}["integrator"] is True
    assert "n_hidden" in {d["name"]: d for d in data}["autoencoder"]["params"]


# --- config validate / schema ------------------------------------------------------------
def test_config_validate_ok():
    r = nhw("config", "validate", QUICK)
    assert r.exit_code == 0 and r.stdout.startswith(f"{QUICK}: ok (network sin_x2_chain")
    r = nhw("config", "validate", QUICK, "--json", "--set", "deploy.n_steps=5")
    data = json.loads(r.stdout)
    assert data["valid"] and data["config"]["deploy"]["n_steps"] == 5 and len(data["config_hash"]) == 64
    r = nhw("config", "validate", QUICK, "-v")
    assert "network:\n  name: sin_x2_chain" in r.stdout


def test_config_schema():
    r = nhw("config", "schema")
    schema = json.loads(r.stdout)
    assert r.exit_code == 0 and schema["title"] == "nhw experiment config"


@pytest.mark.parametrize("text, fragment", [
    ("network:\n  name: x\n deploy: 1\n", "c.yaml:3:2: malformed YAML"),
    ("network:\n  name: sin_x2_chain\n  parms: {}\n", "network.parms: unknown key; did you mean 'params'?"),
    ("network:\n  name: sin_x2_chain\ndeploy:\n  dt: fast\n", "deploy.dt: Input should be a valid number"),
    ("network:\n  name: integrater\n", "network.name: unknown network 'integrater'; did you mean 'integrator'?"),
    ("network:\n  name: sin_x2_chain\ndeploy:\n  target: ocl2\n", "deploy.target: unknown target 'ocl2'"),
    ("network:\n  name: sin_x2_chain\ndata:\n  path: nowhere.npz\n", "data.path: file not found"),
])
def test_config_validate_bad_input(tmp_path, text, fragment):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    assert_clean_error(nhw("config", "validate", p), fragment)


def test_missing_config_file(tmp_path):
    assert_clean_error(nhw("config", "validate", tmp_path / "none.yaml"), "none.yaml: config file not found")
    assert_clean_error(nhw("deploy", tmp_path / "none.yaml"), "none.yaml: config file not found")


# --- train -----------------------------------------------------------------------------------
def test_train_still_validates(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("network:\n  name: sin_x2_chain\ntrain:\n  epoch: 3\n")
    assert_clean_error(nhw("train", p), "train.epoch: unknown key; did you mean 'epochs'?")


# --- deploy ----------------------------------------------------------------------------------
def test_deploy_writes_a_complete_run(quick_run):
    out, r = quick_run
    assert "sin_x2_chain on loihi-emu: 200 steps" in r.stdout and f"wrote {out}" in r.stdout
    assert "Hardware report: loihi-v1" in r.stdout and "ESTIMATE energy" in r.stdout
    run = artifacts.load_run(out)
    assert {"probes.npz", "outputs.png", "summary.json", "hardware_report.json"} <= set(run.files)
    data = run.npz("probes.npz")
    assert data["out"].shape == (200, 1) and data["t"].shape == (200,)
    assert run.manifest["config"]["deploy"]["n_steps"] == 200 and run.summary["target"] == "loihi-emu"


def test_deploy_refuses_existing_out(quick_run):
    out, _ = quick_run
    before = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    assert_clean_error(nhw("deploy", QUICK, *SHORT, "--out", out), "output directory already exists; use --force")
    assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_deploy_force_json_seed_and_precedence(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "old").write_text("x")
    # --force replaces only nhw runs (issue 24): make this folder one
    (out / "manifest.json").write_text('{"format": "nhw-run", "format_version": 1}')
    # global options before the command; --target (a flag) beats --set
    r = nhw("--seed", 3, "--set", "deploy.target=opencl", "deploy", QUICK, "--set", "deploy.n_steps=50",
            "--target", "reference", "--out", out, "--force", "--json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["target"] == "reference" and data["n_steps"] == 50 and data["out"] == str(out)
    m = artifacts.load_run(out).manifest
    assert m["seed"] == 3 and not (out / "old").exists()


def test_deploy_quiet(tmp_path):
    r = nhw("deploy", QUICK, "--set", "deploy.n_steps=20", "--set", "deploy.plots=false", "-q", "--out", tmp_path / "r")
    assert r.exit_code == 0 and r.stdout == f"wrote {tmp_path / 'r'}\n"
    assert "outputs.png" not in artifacts.load_run(tmp_path / "r").files


def test_deploy_bad_target_flag(tmp_path):
    assert_clean_error(nhw("deploy", QUICK, "--target", "loihi", "--out", tmp_path / "r"),
                       "deploy.target: unknown target 'loihi'; did you mean 'loihi-emu'?")
    assert not (tmp_path / "r").exists()


def test_deploy_unavailable_target(tmp_path, monkeypatch):
    spec = backends.registry.spec("opencl")
    monkeypatch.setitem(spec._cache, "reason", "no OpenCL device (test)")
    assert_clean_error(nhw("deploy", QUICK, "--target", "opencl", "--out", tmp_path / "r"),
                       "backend 'opencl' is not available: no OpenCL device (test)")
    assert not (tmp_path / "r").exists()


def test_deploy_from_a_run_is_deterministic(quick_run, tmp_path):
    out, _ = quick_run
    r = nhw("deploy", out, "--out", tmp_path / "again")
    assert r.exit_code == 0, r.stderr
    a, b = artifacts.load_run(out), artifacts.load_run(tmp_path / "again")
    np.testing.assert_array_equal(a.npz("probes.npz")["out"], b.npz("probes.npz")["out"])
    assert a.manifest["config_hash"] == b.manifest["config_hash"]


def test_deploy_from_a_corrupt_or_foreign_run(quick_run, tmp_path):
    import shutil

    out, _ = quick_run
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    with open(bad / "probes.npz", "ab") as f:
        f.write(b"\0")
    assert_clean_error(nhw("deploy", bad, "--out", tmp_path / "x"), "probes.npz: bad checksum")
    assert_clean_error(nhw("report", bad), "probes.npz: bad checksum")
    old = tmp_path / "old"
    shutil.copytree(out, old)
    m = json.loads((old / "manifest.json").read_text())
    m["format_version"] = 0
    (old / "manifest.json").write_text(json.dumps(m))
    assert_clean_error(nhw("deploy", old, "--out", tmp_path / "y"), "incompatible run format version 0")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_clean_error(nhw("deploy", empty), "not an nhw run directory")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_deploy_feeds_digits_and_plots_spikes(tmp_path):
    out = tmp_path / "digits"
    r = nhw("deploy", ROOT / "configs" / "digits.yaml", "--set", "deploy.n_items=3", "--out", out)
    assert r.exit_code == 0, r.stderr
    run = artifacts.load_run(out)
    assert {"spikes.png", "outputs.png", "inputs.npz"} <= set(run.files)
    from nhw.toolchain.config import load_config

    dep = load_config(ROOT / "configs" / "digits.yaml").deploy
    per = round(dep.presentation_time / dep.dt)  # steps per digit
    assert run.npz("probes.npz")["output"].shape == (3 * per, 10)
    assert run.npz("inputs.npz")["x"].shape == (3, 64)
    assert "spikes" in r.stdout and "output_accuracy: " in r.stdout
    assert 0 <= run.summary["metrics"]["output_accuracy"] <= 1


def test_classifier_is_scored_on_the_whole_test_set_with_per_item_predictions(tmp_path):
    """Ten items said little about a classifier: the default scores every test item, and keeps each decision."""
    out = tmp_path / "digits"
    r = nhw("deploy", ROOT / "configs" / "digits.yaml", "--set", "network.params.n_hidden=16", "--set",
            "deploy.probes=[output]", "--out", out)
    assert r.exit_code == 0, r.stderr
    run = artifacts.load_run(out)
    c = run.summary["classification"]
    n_test = run.npz("inputs.npz")["x"].shape[0]
    assert n_test > 400 and run.summary["metrics"]["n_scored"] == n_test  # digits: 25% of 1797
    assert c["probe"] == "output" and len(c["labels"]) == len(c["predictions"]) == n_test
    assert c["labels"] == [int(v) for v in run.npz("inputs.npz")["y"]]
    acc = sum(a == b for a, b in zip(c["labels"], c["predictions"])) / n_test
    assert acc == pytest.approx(run.summary["metrics"]["output_accuracy"])


def test_deploy_feed_size_mismatch(tmp_path):
    out = tmp_path / "r"
    assert_clean_error(
        nhw("deploy", ROOT / "configs" / "autoencoder.yaml", "--set", "network.params.n_in=10", "--out", out),
        "deploy.feed: input node 'input' takes 10 values but dataset 'digits' has 64 features")
    assert not out.exists()


def test_deploy_on_loihi_emu_prints_hardware_report(tmp_path):
    if "loihi-emu" not in backends.available():
        pytest.skip("loihi-emu is not available here")
    out = tmp_path / "emu"
    r = nhw("deploy", QUICK, *SHORT, "--target", "loihi-emu", "--out", out)
    if r.exit_code != 0:
        pytest.skip(f"loihi-emu (being built) could not run the quickstart: {r.stderr.strip()}")
    if "hardware_report.json" not in artifacts.load_run(out).files:
        pytest.skip("this loihi-emu build offers no hardware report")
    json.loads((out / "hardware_report.json").read_text())
    assert (out / "hardware_report.txt").read_text().strip() in r.stdout


# --- parity ------------------------------------------------------------------------------------
class _Offset(backends.get("reference")):
    """reference plus a constant offset on every probe."""

    offset = 0.5

    def __init__(self, network, **kwargs):
        super().__init__(network, **kwargs)
        data, offset = self.data, self.offset

        class View(dict):
            def __getitem__(self, key):
                return data[key] + offset

        self.data = View()


@pytest.fixture
def fake_target(monkeypatch):
    real = backends.get

    def get(name):
        if name == "fake":
            return _Offset
        if name == "crash":
            def boom(*args, **kwargs):
                raise RuntimeError("device fell over")
            return boom
        return real(name)

    monkeypatch.setattr(backends, "get", get)


def test_parity_config_in_tolerance(tmp_path):
    out = tmp_path / "p"
    others = [t for t in ("opencl",) if t in backends.available()]
    r = nhw("parity", QUICK, *SHORT, "--targets", ",".join(["reference", *others]), "--out", out)
    assert r.exit_code == 0, r.stdout + r.stderr
    run = artifacts.load_run(out)
    assert {"parity.json", "parity.txt", "overlay.png", "probes_reference.npz"} <= set(run.files)
    report = json.loads((out / "parity.json").read_text())
    assert report["passed"] and {x["target"] for x in report["results"]} == set(others)


def test_parity_config_out_of_tolerance_exits_1(tmp_path, fake_target):
    out = tmp_path / "p"
    r = nhw("parity", QUICK, *SHORT, "--targets", "fake,crash", "--out", out)
    assert r.exit_code == 1, r.stderr
    assert "FAIL" in r.stdout and "RuntimeError: device fell over" in r.stdout
    assert "0 probes within tolerance, 4 out of tolerance" in r.stdout
    report = json.loads((out / "parity.json").read_text())
    assert report["passed"] is False
    assert {x["target"] for x in report["results"]} == {"fake", "crash"}
    assert "probes_fake.npz" in artifacts.load_run(out).files
    r = nhw("parity", QUICK, *SHORT, "--targets", "fake", "--out", tmp_path / "j", "--json")
    assert r.exit_code == 1 and json.loads(r.stdout)["passed"] is False


def test_parity_per_target_tolerance_and_unsupported(tmp_path, fake_target):
    r = nhw("parity", QUICK, *SHORT, "--targets", "fake", "--out", tmp_path / "a",
            "--set", "parity.per_target={fake: {x: {rmse: 1, max_abs: 1}, out: {rmse: 1, max_abs: 1}}}")
    assert r.exit_code == 2  # 'fake' is not a registered target name in the config
    assert "parity.per_target.fake: unknown target 'fake'" in r.stderr
    r = nhw("parity", QUICK, *SHORT, "--targets", "fake", "--out", tmp_path / "b",
            "--set", "parity.tolerances={x: {rmse: 1, max_abs: 1}, out: {rmse: 1, max_abs: 1}}")
    assert r.exit_code == 0, r.stdout
    if "opencl" not in backends.available():
        return
    r = nhw("parity", QUICK, *SHORT, "--targets", "opencl", "--out", tmp_path / "c",
            "--set", "parity.unsupported={opencl: not today}")
    assert r.exit_code == 0 and "skipped: not today" in r.stdout


def test_parity_bad_input(tmp_path):
    assert_clean_error(nhw("parity", QUICK, "--targets", "ocl2", "--out", tmp_path / "p"),
                       "unknown target 'ocl2'; did you mean 'opencl'? known: reference, opencl")
    assert not (tmp_path / "p").exists()
    r = nhw("parity", QUICK, "--networks", "integrator")
    assert r.exit_code == 2 and "do not combine them with CONFIG" in r.stderr


def test_parity_standard_networks(tmp_path):
    r = nhw("parity", "--networks", "communication_channel", "--targets", "loihi-emu",
            "--out", tmp_path / "s")
    assert r.exit_code == 0 and "(1 networks)" in r.stdout
    assert json.loads((tmp_path / "s" / "parity.json").read_text())["passed"]
    assert_clean_error(nhw("parity", "--networks", "nope", "--targets", "reference"), "unknown standard network 'nope'")


# --- report ------------------------------------------------------------------------------------
def test_report_deploy_run(quick_run, tmp_path):
    out, _ = quick_run
    r = nhw("report", out)
    assert r.exit_code == 0 and "deploy run" in r.stdout and "sin_x2_chain on loihi-emu" in r.stdout
    r = nhw("report", out, "--out", tmp_path / "re")
    assert r.exit_code == 0 and (tmp_path / "re" / "outputs.png").stat().st_size > 1000
    artifacts.load_run(out)  # the run itself is untouched
    data = json.loads(nhw("report", out, "--json").stdout)
    assert data["kind"] == "deploy" and data["summary"]["n_steps"] == 200


def test_report_parity_run(tmp_path, fake_target):
    nhw("parity", QUICK, *SHORT, "--targets", "fake", "--out", tmp_path / "p")
    r = nhw("report", tmp_path / "p", "--out", tmp_path / "re")
    assert r.exit_code == 0 and "0 probes within tolerance, 2 out of tolerance" in r.stdout
    assert (tmp_path / "re" / "overlay.png").is_file()


def test_report_bad_input(tmp_path):
    assert_clean_error(nhw("report", tmp_path / "nope"), "run directory not found")


def test_help_lists_every_command():
    r = nhw("--help")
    for command in ("targets", "networks", "config", "train", "deploy", "parity", "report"):
        assert f"  {command}" in r.stdout
    assert "validate" in nhw("config", "--help").stdout


def test_config_schema_markdown():
    r = nhw("config", "schema", "--markdown")
    assert r.exit_code == 0 and "### `deploy`" in r.stdout


def test_deploy_unknown_target_option(tmp_path):
    assert_clean_error(nhw("deploy", QUICK, "--target", "reference", "--set",
                           "deploy.options.reference.optimise=false", "--out", tmp_path / "r"),
                       "deploy.options.reference.optimise: unknown option 'optimise'; did you mean 'optimize'?")
    assert not (tmp_path / "r").exists()


def test_deploy_user_factory(tmp_path, monkeypatch):
    (tmp_path / "cli_user_net.py").write_text(
        "import nengo\n"
        "def build(n=20, seed=0):\n"
        "    with nengo.Network(seed=seed) as net:\n"
        "        stim = nengo.Node(0.5, label='stim')\n"
        "        e = nengo.Ensemble(n, 1)\n"
        "        nengo.Connection(stim, e)\n"
        "        nengo.Probe(e, synapse=0.02, label='value')\n"
        "    return net\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = tmp_path / "user.yaml"
    cfg.write_text("network:\n  factory: cli_user_net:build\n  params: {n: 30}\ndeploy:\n  n_steps: 300\n")
    r = nhw("deploy", cfg, "--out", tmp_path / "r", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["network"] == "cli_user_net:build"
    value = artifacts.load_run(tmp_path / "r").npz("probes.npz")["value"]
    assert abs(value[-50:].mean() - 0.5) < 0.1


@pytest.mark.parametrize("args, flag", [
    (["targets", "--out", "x"], "--out"),
    (["networks", "--seed", "3"], "--seed"),
    (["config", "schema", "--set", "a=1"], "--set"),
    (["export", "configs/quickstart.yaml", "--out", "d", "-o", "q.nir"], "--out"),
    (["report", "runs/none", "--set", "seed=1"], "--set"),
    (["parity", "--networks", "integrator", "--set", "deploy.n_steps=3"], "--set"),
])
def test_options_a_command_ignores_are_refused(args, flag, tmp_path):
    """A flag that would be silently ignored is a usage error naming it, before any work."""
    from click.testing import CliRunner

    from nhw.toolchain.cli import main

    r = CliRunner().invoke(main, args, prog_name="nhw")
    assert r.exit_code == 2 and f"{flag}: not used by 'nhw " in r.output, r.output
    assert not (tmp_path / "q.nir").exists()


def test_parity_of_a_classifier_states_each_targets_accuracy(tmp_path):
    r = nhw("parity", ROOT / "configs" / "digits.yaml", "--targets", "loihi-emu", "--set", "deploy.n_items=20",
            "--set", "network.params.n_hidden=16", "--out", tmp_path / "p")
    assert "accuracy of output on the fed items: reference " in r.stdout and ", loihi-emu " in r.stdout
    summary = artifacts.load_run(tmp_path / "p").summary
    assert set(summary["accuracy"]) == {"reference", "loihi-emu"}
    assert all(0 <= a <= 1 for a in summary["accuracy"].values())

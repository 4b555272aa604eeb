"""Config schema and loader: every shipped config, overrides, precedence, and errors."""

import json
from pathlib import Path

import pytest

from nhw.toolchain import config as C
from nhw.toolchain.experiment import build_network
from nhw.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "configs").rglob("*.yaml"))


def write(tmp_path, text, name="c.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


MINIMAL = "network:\n  name: sin_x2_chain\n"


@pytest.mark.parametrize("path", CONFIGS, ids=[p.relative_to(ROOT / "configs").as_posix() for p in CONFIGS])
def test_every_shipped_config_loads(path):
    cfg = C.load_config(path)
    assert cfg.network.name or cfg.network.factory
    assert len(cfg.config_hash()) == 64


def test_shipped_configs_cover_every_standard_network():
    from nhw.toolchain.parity_networks import NETWORKS

    names = {C.load_config(p, check=False).network.name for p in (ROOT / "configs" / "parity").glob("*.yaml")}
    assert names == set(NETWORKS)
    for name in ("quickstart", "autoencoder", "digits"):
        assert (ROOT / "configs" / f"{name}.yaml").is_file()


def test_parity_configs_match_declared_tolerances():
    from nhw.toolchain.parity_networks import NETWORKS

    for p in (ROOT / "configs" / "parity").glob("*.yaml"):
        cfg = C.load_config(p, check=False)
        for probe, t in cfg.parity.tolerances.items():
            tol = NETWORKS[cfg.network.name].tolerance_for("opencl", probe)  # a target without overrides
            assert (t.rmse, t.max_abs) == (tol.rmse, tol.max_abs), f"{p.name}: {probe}"


def test_defaults_and_train_section_validated(tmp_path):
    cfg = C.load_config(ROOT / "configs" / "digits.yaml")
    assert cfg.train.optimizer.name == "adam" and cfg.train.loss == {"logits": "sparse_categorical_crossentropy"}
    assert cfg.train.regularization.firing_rate.probe == "hidden"
    assert cfg.seed_for("train") == cfg.seed and cfg.seed_for("data") == cfg.seed
    cfg = C.load_config(write(tmp_path, MINIMAL))
    assert cfg.deploy.target == "reference" and cfg.deploy.dt == 0.001 and cfg.train is None
    assert cfg.label == "c"


def test_precedence_defaults_yaml_set_flags(tmp_path):
    p = write(tmp_path, MINIMAL + "deploy:\n  n_steps: 100\n  target: reference\n")
    assert C.load_config(p).deploy.n_steps == 100                       # YAML beats default
    cfg = C.load_config(p, ["deploy.n_steps=200"])
    assert cfg.deploy.n_steps == 200                                    # --set beats YAML
    cfg = C.load_config(p, ["deploy.n_steps=200", "deploy.n_steps=300"])  # flags come last
    assert cfg.deploy.n_steps == 300


def test_set_values_are_yaml(tmp_path):
    cfg = C.load_config(write(tmp_path, MINIMAL), ["deploy.probes=[x, out]", "deploy.plots=false",
                                                    "network.params.n_per_dim=7", "name=demo"])
    assert cfg.deploy.probes == ["x", "out"] and cfg.deploy.plots is False
    assert cfg.network.params == {"n_per_dim": 7} and cfg.label == "demo"


def test_hash_is_stable_and_tracks_changes(tmp_path):
    p = write(tmp_path, MINIMAL)
    assert C.load_config(p).config_hash() == C.load_config(p).config_hash()
    assert C.load_config(p).config_hash() != C.load_config(p, ["seed=1"]).config_hash()
    # the resolved config is plain JSON and validates back to the same hash
    cfg = C.load_config(p)
    again = C.from_dict(json.loads(json.dumps(cfg.resolved())))
    assert again.config_hash() == cfg.config_hash()


def test_data_path_is_relative_to_the_config(tmp_path):
    import numpy as np

    (tmp_path / "sub").mkdir()
    np.savez(tmp_path / "sub" / "d.npz", x_train=np.zeros((2, 3)), y_train=np.zeros(2),
             x_test=np.zeros((1, 3)), y_test=np.zeros(1))
    cfg = C.load_config(write(tmp_path, MINIMAL + "data:\n  path: sub/d.npz\n"))
    assert Path(cfg.data.path) == (tmp_path / "sub" / "d.npz").resolve()


BAD = [
    # (yaml text, overrides, expected fragment of the message)
    ("network:\n  name: sin_x2_chain\n  params: {n_per_dim: 5\ndeploy: [\n", [], "c.yaml:4:7: malformed YAML"),
    ("network:\n  nam: sin_x2_chain\n", [], "c.yaml: network.nam: unknown key; did you mean 'name'?"),
    (MINIMAL + "deploy:\n  n_step: 10\n", [], "deploy.n_step: unknown key; did you mean 'n_steps'?"),
    (MINIMAL + "deply: {}\n", [], "c.yaml: deply: unknown key; did you mean 'deploy'?"),
    (MINIMAL + "deploy:\n  n_steps: many\n", [], "deploy.n_steps: Input should be a valid integer"),
    (MINIMAL + "deploy:\n  n_steps: -5\n", [], "deploy.n_steps: Input should be greater than 0 (got -5)"),
    ("network:\n  name: sin_x2_chan\n", [], "network.name: unknown network 'sin_x2_chan'; did you mean 'sin_x2_chain'?"),
    ("network:\n  name: nope\n", [], "unknown network 'nope'; known: autoencoder"),
    ("network:\n  name: sin_x2_chain\n  params: {n_per_dm: 3}\n", [],
     "network.params.n_per_dm: unknown key; did you mean 'n_per_dim'?"),
    ("network:\n  name: autoencoder\n  params: {neuron_type: relux}\n", [], "network.params.neuron_type: Input should be"),
    ("network: {name: sin_x2_chain, factory: 'a:b'}\n", [], "network: give exactly one of 'name'"),
    (MINIMAL + "deploy:\n  target: loihi_emu\n", [], "deploy.target: unknown target 'loihi_emu'; did you mean 'loihi-emu'?"),
    (MINIMAL + "parity:\n  targets: [opencl, ocl2]\n", [], "parity.targets[1]: unknown target 'ocl2'"),
    (MINIMAL + "deploy:\n  probes: [ou]\n", [], "deploy.probes[0]: unknown probe 'ou'; did you mean 'out'?"),
    (MINIMAL + "parity:\n  tolerances:\n    outt: {rmse: 1, max_abs: 1}\n", [], "parity.tolerances.outt: unknown probe"),
    (MINIMAL + "parity:\n  tolerances:\n    out: {rmse: 1}\n", [], "parity.tolerances.out.max_abs: required key is missing"),
    (MINIMAL + "deploy:\n  feed: x\n", [], "deploy.feed: feeding an input needs a 'data' section"),
    (MINIMAL + "deploy:\n  feed: xx\n", [], "deploy.feed: unknown input node 'xx'; did you mean 'x'?"),
    (MINIMAL + "deploy:\n  classify: out\n", [], "deploy.classify: scoring a probe needs deploy.feed"),
    (MINIMAL + "deploy:\n  classify: ot\n", [], "deploy.classify: unknown probe 'ot'"),
    (MINIMAL + "data:\n  path: missing.npz\n", [], "data.path: file not found"),
    (MINIMAL + "data:\n  name: mnist\n", [], "data.name: unknown dataset 'mnist'"),
    (MINIMAL + "train:\n  optimizer: {name: adamw}\n", [], "train.optimizer.name: Input should be 'adam', 'rmsprop' or 'sgd'"),
    (MINIMAL + "train:\n  loss: {outt: mse}\n", [], "train.loss.outt: unknown probe 'outt'; did you mean 'out'?"),
    (MINIMAL + "version: 2\n", [], "version: Input should be 1"),
    ("deploy: {}\n", [], "c.yaml: network: required key is missing"),
    ("", [], "c.yaml: the file is empty"),
    ("- 1\n", [], "expected a mapping at the top level"),
    (MINIMAL, ["deploy.n_stepz=3"], "deploy.n_stepz: unknown key; did you mean 'n_steps'?"),
    (MINIMAL, ["deploy.n_steps=x"], "(from --set deploy.n_steps=x)"),
    (MINIMAL + "seed: 3\n", ["seed.x=1"], "seed: is int, not a mapping (--set seed.x=1)"),
    (MINIMAL, ["seed.x=1"], "seed: Input should be a valid integer (from --set seed.x=1)"),
    (MINIMAL, ["nokey"], "--set 'nokey': expected KEY=VALUE"),
]


@pytest.mark.parametrize("text, overrides, fragment", BAD, ids=[b[2][:40] for b in BAD])
def test_bad_configs_give_one_clear_line(tmp_path, text, overrides, fragment):
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        # names inside the network are checked when the experiment builds it
        build_network(C.load_config(p, overrides))
    msg = str(info.value)
    assert fragment in msg
    assert "\n" not in msg and "Traceback" not in msg
    if "--set '" not in fragment:
        assert msg.startswith(str(p))


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: config file not found"):
        C.load_config(tmp_path / "nope.yaml")


def test_schema_is_json_schema():
    schema = C.json_schema()
    json.dumps(schema)
    assert schema["title"] == "nhw experiment config"
    assert {"network", "data", "train", "deploy", "parity"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False
    assert "network" in schema["required"]


def test_yaml_is_read_safely(tmp_path):
    p = write(tmp_path, "!!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(ConfigError, match="malformed YAML"):
        C.load_config(p)


def test_user_factory(tmp_path, monkeypatch):
    (tmp_path / "my_nets.py").write_text(
        "import nengo\n"
        "def build(n=10, seed=0):\n"
        "    with nengo.Network(seed=seed) as net:\n"
        "        stim = nengo.Node([0.5], label='stim')\n"
        "        e = nengo.Ensemble(n, 1)\n"
        "        nengo.Connection(stim, e)\n"
        "        nengo.Probe(e, synapse=0.01, label='value')\n"
        "    return net\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    p = write(tmp_path, "network:\n  factory: my_nets:build\n  params: {n: 5}\ndeploy:\n  probes: [value]\n")
    assert C.load_config(p).network.factory == "my_nets:build"
    p = write(tmp_path, "network:\n  factory: my_nets:nope\n")
    with pytest.raises(ConfigError, match="has no function 'nope'"):
        C.load_config(p)
    p = write(tmp_path, "network:\n  factory: not_a_module_xyz:build\n")
    with pytest.raises(ConfigError, match="cannot import 'not_a_module_xyz'"):
        C.load_config(p)


def test_loading_runs_no_network_code_and_deploy_builds_once(tmp_path, monkeypatch):
    (tmp_path / "counted_nets.py").write_text(
        "import nengo\n"
        "CALLS = []\n"
        "def build(seed=0):\n"
        "    CALLS.append(seed)\n"
        "    with nengo.Network(seed=seed) as net:\n"
        "        stim = nengo.Node([0.5], label='stim')\n"
        "        nengo.Probe(stim, label='value')\n"
        "    return net\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import counted_nets

    from nhw.toolchain.deploy import deploy

    p = write(tmp_path, "network:\n  factory: counted_nets:build\ndeploy:\n  n_steps: 5\n  probes: [value]\n")
    cfg = C.load_config(p)
    assert counted_nets.CALLS == []
    deploy(cfg, target="reference")
    assert counted_nets.CALLS == [0]

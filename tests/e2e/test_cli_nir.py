"""End-to-end: nhw export / nhw import round trip through a NIR file."""

from pathlib import Path

import numpy as np
from click.testing import CliRunner

from nhw.toolchain.cli import main

CONFIG = "configs/parity/communication_channel.yaml"


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_export_import_deploy(tmp_path):
    """The round trip keeps the network's input: the exported stimulus is replayed, not zeros."""
    net = tmp_path / "cc.nir"
    cfg = tmp_path / "cc.yaml"
    out = run("export", CONFIG, "-o", str(net))
    assert out.exit_code == 0, out.output
    assert "NIR nodes" in out.output
    out = run("import", str(net), "-o", str(cfg))
    assert out.exit_code == 0, out.output
    text = cfg.read_text()
    assert text.startswith("# written by `nhw import`") and "replay the stimulus recorded at export" in text
    assert str(tmp_path) not in text  # the NIR file is named relative to the config
    assert run("deploy", CONFIG, "--out", str(tmp_path / "orig")).exit_code == 0
    out = run("deploy", str(cfg), "--out", str(tmp_path / "run"))
    assert out.exit_code == 0, out.output
    orig = np.load(tmp_path / "orig" / "probes.npz", allow_pickle=False)
    data = np.load(tmp_path / "run" / "probes.npz", allow_pickle=False)
    assert set(data.files) >= {"a", "b"} and data["a"].shape == orig["a"].shape == (1000, 1)
    assert np.abs(orig["a"]).max() > 0.3  # a real signal, not zeros
    for name in ("a", "b"):  # same input, same neurons: the same decoded values
        assert np.sqrt(np.mean((data[name] - orig[name]) ** 2)) < 0.02, name


def test_import_of_a_file_without_stimulus_refuses_to_run_on_zeros(tmp_path):
    """A peer's NIR Input carries no data: deploy must say so instead of simulating zeros."""
    import nir

    from nhw.toolchain.nir import stimulus

    net, bare, cfg = tmp_path / "cc.nir", tmp_path / "bare.nir", tmp_path / "bare.yaml"
    assert run("export", CONFIG, "-o", str(net)).exit_code == 0
    graph = nir.read(str(net))
    for node in graph.nodes.values():
        if isinstance(node, nir.Input):
            node.metadata = {k: v for k, v in (node.metadata or {}).items() if k != stimulus.STIMULUS_KEY}
    graph.metadata = {}
    nir.write(str(bare), graph)
    assert run("import", str(bare), "-o", str(cfg)).exit_code == 0
    out = run("deploy", str(cfg), "--out", str(tmp_path / "run0"))
    assert out.exit_code == 2 and "would run on zeros" in out.output
    out = run("deploy", str(cfg), "--set", "network.params.zero_inputs=true", "--out", str(tmp_path / "run"))
    assert out.exit_code == 0, out.output


def test_classifier_round_trip_keeps_data_feed_and_scoring(tmp_path):
    """An imported classifier keeps its data, feed, presentation and scored probe (and seed)."""
    import yaml

    net, cfg = tmp_path / "d.nir", tmp_path / "d.yaml"
    assert run("export", "configs/digits.yaml", "-o", str(net)).exit_code == 0
    assert run("import", str(net), "-o", str(cfg)).exit_code == 0
    conf = yaml.safe_load(cfg.read_text())
    assert conf["data"] == {"name": "digits"}
    shown = yaml.safe_load(Path("configs/digits.yaml").read_text())["deploy"]["presentation_time"]
    assert {k: conf["deploy"][k] for k in ("feed", "classify", "presentation_time")} == {
        "feed": "input", "classify": "output", "presentation_time": shown}
    assert "n_steps" not in conf["deploy"]  # a fed run's length follows its items
    assert "n_items" not in conf["deploy"]  # unset in digits.yaml: the whole test set, as there
    out = run("deploy", str(cfg), "--out", str(tmp_path / "run"))
    assert out.exit_code == 0 and "output_accuracy" in out.output, out.output


def test_export_refuses_existing_file_and_unexportable(tmp_path):
    net = tmp_path / "x.nir"
    net.write_text("keep me")
    out = run("export", CONFIG, "-o", str(net))
    assert out.exit_code == 2 and "exists; pass --force" in out.output
    assert net.read_text() == "keep me"
    out = run("export", "configs/parity/pes_learning.yaml", "-o", str(tmp_path / "p.nir"))
    assert out.exit_code == 2 and "learning rules cannot be expressed in NIR" in out.output
    out = run("export", "configs/parity/pes_learning.yaml", "-o", str(tmp_path / "p.nir"), "--allow-partial")
    assert out.exit_code == 0 and "not exported:" in out.output


def test_import_rejects_non_nir(tmp_path):
    junk = tmp_path / "junk.nir"
    junk.write_text("not a nir file")
    out = run("import", str(junk), "-o", str(tmp_path / "c.yaml"))
    assert out.exit_code == 2 and "not a readable NIR file" in out.output
    assert not (tmp_path / "c.yaml").exists()


def test_written_files_get_the_modes_plain_writes_would(tmp_path):
    """``.nir`` files were 0600 (mkstemp's mode) while every other output follows the umask."""
    import os
    import stat

    from nhw.backends.atomic import file_mode

    net, cfg = tmp_path / "cc.nir", tmp_path / "cc.yaml"
    assert run("export", CONFIG, "-o", str(net)).exit_code == 0
    assert run("import", str(net), "-o", str(cfg)).exit_code == 0
    modes = {p.name: stat.S_IMODE(os.stat(p).st_mode) for p in (net, cfg)}
    assert modes == {"cc.nir": file_mode(), "cc.yaml": file_mode()}, modes


def test_import_own_export_reads_a_peers_own_file(tmp_path):
    """--own-export undoes a peer exporter's known deviation (Norse 1.1 writes dt * tau)."""
    import nir

    from nhw.toolchain.nir.profiles import exact_tau

    dt, tau, n = 1e-3, 0.02, 3  # the norse profile reads at 1 ms when the file names no dt
    graph = nir.NIRGraph(nodes={
        "in": nir.Input(input_type={"input": np.array([n])}),
        "w": nir.Affine(np.eye(n), np.zeros(n)),
        "lif": nir.LIF(tau=np.full(n, dt * tau), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n),
                       v_reset=np.zeros(n)),
        "out": nir.Output(output_type={"output": np.array([n])})},
        edges=[("in", "w"), ("w", "lif"), ("lif", "out")])
    f = tmp_path / "norse.nir"
    nir.write(str(f), graph)
    out = run("import", str(f), "-o", str(tmp_path / "a.yaml"), "--from", "norse")
    assert out.exit_code != 0 and "--own-export" in out.output
    out = run("import", str(f), "-o", str(tmp_path / "a.yaml"), "--own-export")
    assert out.exit_code == 2 and "needs --from" in out.output
    out = run("import", str(f), "-o", str(tmp_path / "b.yaml"), "--from", "norse", "--own-export")
    assert out.exit_code == 0, out.output
    read = nir.read(str(tmp_path / "b.nir"))
    assert np.allclose(read.nodes["lif"].tau, exact_tau(np.full(n, tau), dt))

"""End-to-end: nhw export / nhw import round trip through a NIR file."""

import numpy as np
from click.testing import CliRunner

from nhw.toolchain.cli import main

CONFIG = "configs/parity/communication_channel.yaml"


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_export_import_deploy(tmp_path):
    net = tmp_path / "cc.nir"
    cfg = tmp_path / "cc.yaml"
    out = run("export", CONFIG, "-o", str(net))
    assert out.exit_code == 0, out.output
    assert "NIR nodes" in out.output
    out = run("import", str(net), "-o", str(cfg))
    assert out.exit_code == 0, out.output
    assert cfg.read_text().startswith("# written by `nhw import`")
    assert str(tmp_path) not in cfg.read_text()  # the NIR file is named relative to the config
    out = run("deploy", str(cfg), "--out", str(tmp_path / "run0"))
    assert out.exit_code == 2 and "would run on zeros" in out.output  # NIR stores no stimulus
    out = run("deploy", str(cfg), "--set", "network.params.zero_inputs=true", "--out", str(tmp_path / "run"))
    assert out.exit_code == 0, out.output
    data = np.load(tmp_path / "run" / "probes.npz", allow_pickle=False)
    assert set(data.files) >= {"a", "b"}


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

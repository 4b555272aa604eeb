"""Run directories: atomic, checksummed, pickle-free, refused when they exist."""

import json

import numpy as np
import pytest

from nhw.toolchain import artifacts
from nhw.toolchain.config import from_dict
from nhw.errors import ArtifactError

CFG = {"network": {"name": "sin_x2_chain"}, "seed": 4}


def make(out, force=False, config=True):
    with artifacts.RunWriter(out, "deploy", force=force, config=from_dict(CFG) if config else None) as w:
        w.write_npz("probes.npz", {"out": np.arange(6.0).reshape(3, 2), "t": np.arange(3)})
        w.write_json("summary.json", {"a": np.float64(1.5)})
        w.write_text("sub/notes.txt", "hello")
        w.summary = {"target": "reference"}
    return out


def test_round_trip_and_manifest(tmp_path):
    out = make(tmp_path / "run")
    run = artifacts.load_run(out)
    assert run.kind == "deploy" and run.summary == {"target": "reference"}
    np.testing.assert_array_equal(run.npz("probes.npz")["out"], np.arange(6.0).reshape(3, 2))
    assert run.json("summary.json") == {"a": 1.5}
    m = run.manifest
    assert m["format"] == "nhw-run" and m["format_version"] == artifacts.FORMAT_VERSION
    assert m["seed"] == 4 and m["config"]["network"]["name"] == "sin_x2_chain"
    assert m["config_hash"] == from_dict(CFG).config_hash()
    assert {"python", "numpy", "nengo", "nhw"} <= set(m["versions"])
    assert set(m["files"]) == {"probes.npz", "summary.json", "sub/notes.txt"}
    assert m["files"]["sub/notes.txt"] == artifacts.sha256_file(out / "sub" / "notes.txt")
    with np.load(out / "probes.npz", allow_pickle=False) as f:  # readable without pickle
        assert set(f.files) == {"out", "t"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left


def test_refuses_existing_unless_force(tmp_path):
    out = make(tmp_path / "run")
    with pytest.raises(ArtifactError, match="already exists; use --force"):
        make(out)
    (out / "extra").write_text("x")
    make(out, force=True)
    assert not (out / "extra").exists()
    artifacts.load_run(out)
    empty = tmp_path / "empty"
    empty.mkdir()
    make(empty)  # an empty folder is fine
    f = tmp_path / "file"
    f.write_text("")
    with pytest.raises(ArtifactError, match="not a directory"):
        make(f)


def test_failure_leaves_nothing(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(RuntimeError):
        with artifacts.RunWriter(out, "deploy") as w:
            w.write_text("a.txt", "a")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_failure_with_force_keeps_the_old_run(tmp_path):
    out = make(tmp_path / "run")
    with pytest.raises(RuntimeError):
        with artifacts.RunWriter(out, "deploy", force=True) as w:
            w.write_text("a.txt", "a")
            raise RuntimeError("boom")
    artifacts.load_run(out)


def test_bad_checksum_and_missing_file(tmp_path):
    out = make(tmp_path / "run")
    (out / "summary.json").write_text('{"a": 2}')
    with pytest.raises(ArtifactError, match=r"summary.json: bad checksum .* modified or corrupted"):
        artifacts.load_run(out)
    artifacts.load_run(out, verify=False)
    out = make(tmp_path / "run2")
    (out / "probes.npz").unlink()
    with pytest.raises(ArtifactError, match="probes.npz: listed in the manifest but missing"):
        artifacts.load_run(out)


def test_incompatible_or_foreign_manifests(tmp_path):
    out = make(tmp_path / "run")
    m = json.loads((out / "manifest.json").read_text())
    m["format_version"] = 99
    (out / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ArtifactError, match="incompatible run format version 99"):
        artifacts.load_run(out)
    (out / "manifest.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="corrupt manifest"):
        artifacts.load_run(out)
    (out / "manifest.json").write_text('{"format": "other"}')
    with pytest.raises(ArtifactError, match="not an nhw run manifest"):
        artifacts.load_run(out)
    (out / "manifest.json").unlink()
    with pytest.raises(ArtifactError, match="not an nhw run directory"):
        artifacts.load_run(out)
    with pytest.raises(ArtifactError, match="run directory not found"):
        artifacts.load_run(tmp_path / "nope")


def test_object_arrays_are_refused(tmp_path):
    with pytest.raises(ArtifactError, match="dtype object"):
        with artifacts.RunWriter(tmp_path / "run", "deploy") as w:
            w.write_npz("x.npz", {"x": np.array([{"a": 1}], dtype=object)})
    assert not (tmp_path / "run").exists()


def test_default_out_is_fresh(tmp_path):
    a = artifacts.default_out("q", "deploy", tmp_path)
    a.mkdir()
    b = artifacts.default_out("q", "deploy", tmp_path)
    assert a != b and b.name.startswith("q-deploy-")


@pytest.mark.parametrize("edit", [
    lambda m: m["summary"].update(target="opencl"),  # what `nhw report` prints
    lambda m: m.update(seed=7),
    lambda m: m.update(kind="train"),
])
def test_an_edited_manifest_is_refused(tmp_path, edit):
    """The files' checksums live in the manifest, so the manifest carries its own: an edit
    of what `nhw report` prints from it (summary, seed, kind) is caught like a file's."""
    out = make(tmp_path / "run")
    m = json.loads((out / "manifest.json").read_text())
    edit(m)
    (out / "manifest.json").write_text(json.dumps(m, indent=2))
    with pytest.raises(ArtifactError, match="manifest_sha256.*the manifest was modified"):
        artifacts.load_run(out)


def test_a_manifest_without_its_own_checksum_still_loads(tmp_path):
    """Runs written before the manifest recorded its checksum: files and config still checked."""
    out = make(tmp_path / "run")
    m = json.loads((out / "manifest.json").read_text())
    del m[artifacts.SELF_HASH]
    (out / "manifest.json").write_text(json.dumps(m, indent=2))
    assert artifacts.load_run(out).summary == {"target": "reference"}

"""Run and artifact directories: written whole or not at all, checked when read.

A run directory holds a ``manifest.json`` (kind, resolved config and its hash, seed,
package versions, a summary, and the sha256 of every other file) next to its data
(``.npz`` without pickle, ``.json``, ``.png``).  :class:`RunWriter` fills a hidden
temporary folder beside the destination and renames it into place at the end, so a
crash leaves no half-written run; an existing destination is refused unless
``force``.  :func:`load_run` refuses a directory whose checksums do not match or whose
format version this nhw cannot read.

>>> with RunWriter("runs/demo", kind="deploy") as w:     # doctest: +SKIP
...     w.write_npz("probes.npz", {"out": data})
...     w.summary = {"target": "reference"}
>>> load_run("runs/demo").npz("probes.npz")["out"]        # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import os
import platform
import shutil
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from nhw.backends.atomic import folder_mode, write_bytes, write_text
from nhw.errors import ArtifactError

MANIFEST = "manifest.json"
#: The manifest's own checksum: the files' checksums live in the manifest, so this
#: covers what ``nhw report`` prints from it (summary, seed, target) as well.
SELF_HASH = "manifest_sha256"
#: Trained values: written by ``nhw train``; a deploy/parity run of them keeps a copy.
FROZEN = "frozen.npz"
FORMAT = "nhw-run"
#: Layout version of run directories; readers accept only this version.
FORMAT_VERSION = 1


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages a run's numbers depend on."""
    out = {"python": platform.python_version()}
    for name in ("nhw", "nengo", "numpy", "scipy", "pydantic", "nengo-ocl", "tensorflow"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def is_run_dir(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a directory holding an nhw run manifest (any format version)."""
    mpath = Path(path) / MANIFEST
    if not mpath.is_file():
        return False
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == FORMAT


def orphaned_temps(out: str | os.PathLike) -> list[Path]:
    """Temporary folders left beside ``out`` by interrupted writes of ``out``.

    :class:`RunWriter` fills ``.<name>.<random>.tmp`` and moves an old run aside as
    ``.<name>.old-<pid>``; a killed process leaves them behind.
    """
    out = Path(out)
    parent = out.parent
    if not parent.is_dir():
        return []
    found = [*parent.glob(f".{out.name}.*.tmp"), *parent.glob(f".{out.name}.old-*")]
    return sorted(p for p in found if p.is_dir())


def leftover_temps(folder: str | os.PathLike) -> list[Path]:
    """Every temporary run folder that interrupted writes left in ``folder`` (see :func:`orphaned_temps`)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [*folder.glob(".*.tmp"), *folder.glob(".*.old-*")]
    return sorted(p for p in found if p.is_dir())


def _check_writable_parent(out: Path) -> None:
    """The nearest existing folder above ``out`` is a folder we may write to."""
    parent = out.parent
    while not parent.exists():
        if parent == parent.parent:
            break
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise ArtifactError(f"{out}: cannot create the output directory: {parent} is a file, "
                            "not a folder; choose another --out")
    if parent.is_dir() and not os.access(parent, os.W_OK | os.X_OK):
        raise ArtifactError(f"{out}: cannot create the output directory: {parent} is not writable; "
                            "choose another --out")


def check_destination(out: str | os.PathLike, force: bool = False) -> Path:
    """Check that a run can be written at ``out`` (before any work is done).

    An existing non-empty ``out`` is refused unless ``force``; even with ``force`` only
    an nhw run directory is replaced, never any other folder.  A destination under a
    file or in a read-only folder is refused here, before a long simulation runs.

    Raises
    ------
    ArtifactError
        Naming ``out`` and what is wrong with it.
    """
    out = Path(out)
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise ArtifactError(f"{out}: exists and is not a directory; choose another --out")
        if any(out.iterdir()):
            if not force:
                raise ArtifactError(f"{out}: output directory already exists; use --force to replace it")
            if not is_run_dir(out):
                raise ArtifactError(f"{out}: exists and is not an nhw run (no {MANIFEST}); --force replaces "
                                    "only nhw runs; choose another --out or remove it yourself")
        if not os.access(out.parent, os.W_OK | os.X_OK):
            raise ArtifactError(f"{out}: cannot replace it: {out.parent} is not writable")
    else:
        _check_writable_parent(out)
    return out


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    clean = {}
    for k, v in arrays.items():
        a = np.asarray(v)
        if a.dtype == object:
            raise ArtifactError(f"array {k!r} has dtype object; runs store numeric arrays only (no pickle)")
        clean[k] = a
    np.savez_compressed(buf, **clean)
    return buf.getvalue()


class RunWriter:
    """Write a run directory atomically (use as a context manager).

    Parameters
    ----------
    out
        Destination directory.
    kind
        What produced the run (``"deploy"``, ``"parity"``, ``"train"``).
    force
        Replace an existing destination.
    config
        The resolved experiment config, recorded with its hash and seed.
    """

    def __init__(self, out: str | os.PathLike, kind: str, *, force: bool = False, config: Any = None) -> None:
        self.out = check_destination(out, force)
        self.kind, self.force, self.config = kind, force, config
        self.summary: dict[str, Any] = {}
        self.tmp: Path | None = None

    def __enter__(self) -> "RunWriter":
        if self.force:
            # the user asked to replace this run: leftovers of its interrupted writes go too
            for tmp in orphaned_temps(self.out):
                shutil.rmtree(tmp, ignore_errors=True)
        try:
            self.out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ArtifactError(f"{self.out}: cannot create the output directory: {exc.strerror or exc}") from None
        try:
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.", suffix=".tmp", dir=self.out.parent))
        except OSError as exc:
            raise ArtifactError(f"{self.out}: cannot write the run: {exc.strerror or exc}") from None
        self.tmp.chmod(folder_mode())  # mkdtemp makes 0700; a run is shared like any output
        self._keep_frozen()
        return self

    def _keep_frozen(self) -> None:
        """Copy the trained values a deploy/parity run uses into it (checksummed with its files).

        So the run is self-contained: ``nhw deploy RUN`` of it runs the same weights.
        """
        frozen = getattr(self.config, "frozen", None)
        if self.kind == "train" or frozen is None:
            return
        try:
            data = Path(frozen).read_bytes()
        except OSError as exc:
            raise ArtifactError(f"{frozen}: cannot read the trained values: {exc.strerror or exc}") from None
        write_bytes(self.path(FROZEN), data)

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                self.commit()
            except OSError as err:
                exc_type, exc = type(err), err
        if exc_type is not None and self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
        if exc is not None and isinstance(exc, OSError) and not isinstance(exc, ArtifactError):
            # a full or read-only disk mid-write: one line, and nothing half-written is left
            raise ArtifactError(f"{self.out}: cannot write the run: {exc.strerror or exc}"
                                f"{f' ({exc.filename})' if exc.filename else ''}") from None

    @property
    def folder(self) -> Path:
        """The folder being filled (moved to ``out`` at commit)."""
        if self.tmp is None:
            raise RuntimeError("RunWriter used outside its 'with' block")
        return self.tmp

    def path(self, name: str) -> Path:
        """Where file ``name`` goes (inside the temporary folder until commit)."""
        if self.tmp is None:
            raise RuntimeError("RunWriter used outside its 'with' block")
        p = self.tmp / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def write_npz(self, name: str, arrays: dict[str, np.ndarray]) -> Path:
        """Save numeric arrays as a compressed ``.npz`` (loadable with ``allow_pickle=False``)."""
        p = self.path(name)
        write_bytes(p, _npz_bytes(arrays))
        return p

    def write_json(self, name: str, obj: Any) -> Path:
        """Save ``obj`` as indented JSON."""
        p = self.path(name)
        write_text(p, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")
        return p

    def write_text(self, name: str, text: str) -> Path:
        """Save UTF-8 text."""
        p = self.path(name)
        write_text(p, text)
        return p

    def manifest(self) -> dict[str, Any]:
        """The manifest as it will be written (checksums of the files so far)."""
        files = sorted(p for p in self.tmp.rglob("*") if p.is_file() and p.name != MANIFEST)
        cfg = self.config
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "versions": package_versions(),
            "seed": None if cfg is None else cfg.seed,
            "config_source": None if cfg is None else cfg.source,
            "config_hash": None if cfg is None else cfg.config_hash(),
            "config": None if cfg is None else cfg.resolved(),
            # the run's network has trained values (FROZEN, in its files): re-runs use them
            **({"frozen": FROZEN} if self.kind != "train" and getattr(cfg, "frozen", None) else {}),
            "summary": self.summary,
            "files": {p.relative_to(self.tmp).as_posix(): sha256_file(p) for p in files},
        }

    def commit(self) -> Path:
        """Write the manifest and move the run into place."""
        manifest = json.loads(json.dumps(self.manifest(), default=_json_default))  # as it will read back
        manifest[SELF_HASH] = manifest_digest(manifest)
        write_text(self.tmp / MANIFEST, json.dumps(manifest, indent=2) + "\n")
        old = None
        if self.out.exists():
            # --force: move the old run aside first, so a failure leaves one complete run.
            check_destination(self.out, self.force)
            old = self.out.with_name(f".{self.out.name}.old-{os.getpid()}")
            os.replace(self.out, old)
        os.replace(self.tmp, self.out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        self.tmp = None
        return self.out


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


class Run:
    """A run directory read back and verified (see :func:`load_run`)."""

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path, self.manifest = path, manifest

    @property
    def kind(self) -> str:
        return self.manifest.get("kind", "?")

    @property
    def summary(self) -> dict[str, Any]:
        return self.manifest.get("summary", {})

    @property
    def files(self) -> dict[str, str]:
        return self.manifest.get("files", {})

    def npz(self, name: str) -> dict[str, np.ndarray]:
        """Load an ``.npz`` of the run without pickle."""
        try:
            with np.load(self.path / name, allow_pickle=False) as f:
                return {k: f[k] for k in f.files}
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"{self.path / name}: cannot load: {exc}") from None

    def json(self, name: str) -> Any:
        """Load a JSON file of the run."""
        return json.loads((self.path / name).read_text(encoding="utf-8"))


def load_run(path: str | os.PathLike, *, verify: bool = True) -> Run:
    """Open a run directory, checking its format version and (``verify``) checksums.

    Raises
    ------
    ArtifactError
        Not a run directory, an unreadable or foreign manifest, an incompatible format
        version, or a file missing or modified since it was written.
    """
    path = Path(path)
    if not path.is_dir():
        raise ArtifactError(f"{path}: run directory not found")
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise ArtifactError(f"{path}: not an nhw run directory (no {MANIFEST})")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{mpath}: corrupt manifest: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArtifactError(f"{mpath}: not an nhw run manifest (format {manifest.get('format') if isinstance(manifest, dict) else None!r})")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        made_by = manifest.get("versions", {}).get("nhw", "unknown")
        raise ArtifactError(
            f"{path}: incompatible run format version {version!r} (written by nhw {made_by}); "
            f"this nhw ({package_versions().get('nhw', '?')}) reads version {FORMAT_VERSION}"
        )
    if verify:
        _check_config_hash(mpath, manifest)  # the more specific message first
        _check_manifest_digest(mpath, manifest)
        files = manifest.get("files", {})
        if not isinstance(files, dict):
            raise ArtifactError(f"{mpath}: files: expected a mapping of file name -> sha256; "
                                f"got {type(files).__name__}")
        for name, digest in files.items():
            f = path / name
            if not f.is_file():
                raise ArtifactError(f"{f}: listed in the manifest but missing")
            got = sha256_file(f)
            if got != digest:
                raise ArtifactError(
                    f"{f}: bad checksum (sha256 {got[:12]}..., manifest says {digest[:12]}...): "
                    "the file was modified or corrupted"
                )
    return Run(path, manifest)


def manifest_digest(manifest: dict[str, Any]) -> str:
    """sha256 of a manifest's canonical JSON, its own :data:`SELF_HASH` left out."""
    body = {k: v for k, v in manifest.items() if k != SELF_HASH}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _check_manifest_digest(mpath: Path, manifest: dict[str, Any]) -> None:
    """The manifest must still hash to its recorded :data:`SELF_HASH` (runs written
    before it was recorded have none; their files and config are still checked)."""
    recorded = manifest.get(SELF_HASH)
    if recorded is None:
        return
    got = manifest_digest(manifest)
    if got != recorded:
        raise ArtifactError(f"{mpath}: does not match its {SELF_HASH} (expected {str(recorded)[:12]}..., "
                            f"the manifest hashes to {got[:12]}...): the manifest was modified")


def _check_config_hash(mpath: Path, manifest: dict[str, Any]) -> None:
    """The recorded config must still hash to the recorded ``config_hash``.

    The config is what ``nhw deploy RUN`` runs; a changed value (an edited manifest)
    would run something else than the run reports.
    """
    config, recorded = manifest.get("config"), manifest.get("config_hash")
    if config is None and recorded is None:
        return
    blob = json.dumps(config, sort_keys=True, separators=(",", ":"))
    got = hashlib.sha256(blob.encode()).hexdigest()
    if got != recorded:
        raise ArtifactError(f"{mpath}: config: does not match config_hash (expected {str(recorded)[:12]}..., "
                            f"the recorded config hashes to {got[:12]}...): the manifest was modified")


def default_out(label: str, command: str, root: str | os.PathLike = "runs") -> Path:
    """``runs/<label>-<command>-<UTC timestamp>``: a fresh default output directory."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = Path(root) / f"{label}-{command}-{stamp}"
    k = 1
    while out.exists():
        out, k = Path(root) / f"{label}-{command}-{stamp}-{k}", k + 1
    return out

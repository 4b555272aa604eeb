"""NIR files on disk: atomic writes, and importing a file into a deployable config."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import nir
import yaml

from nhw.backends.atomic import write_text
from nhw.errors import NIRError
from nhw.toolchain.nir.importer import ImportedNetwork, import_nir, read_graph


def write_nir(path: str | Path, graph: nir.NIRGraph, *, force: bool = False) -> None:
    """Write ``graph`` to ``path`` through a temporary file and a rename.

    Parameters
    ----------
    path
        Destination; its folder must exist.
    graph
        The graph to write.
    force
        Replace an existing file (otherwise an existing file is an error).
    """
    path = Path(path)
    if path.exists() and not force:
        raise NIRError(f"{path}: exists; pass --force to replace it")
    if not path.parent.is_dir():
        raise NIRError(f"{path}: folder {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        nir.write(tmp, graph)
        read_graph(tmp)  # what we wrote must read back
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def import_to_config(nir_path: str | Path, out: str | Path, *, target: str = "reference",
                     force: bool = False) -> tuple[str, ImportedNetwork]:
    """Import ``nir_path`` (checking that it builds) and write a config deploying it.

    Returns
    -------
    tuple
        The YAML text written and the imported network.
    """
    nir_path, out = Path(nir_path).resolve(), Path(out)
    imported = import_nir(nir_path)
    if out.exists() and not force:
        raise NIRError(f"{out}: exists; pass --force to replace it")
    config = {
        "version": 1,
        "name": nir_path.stem,
        "description": f"network imported from {nir_path.name}",
        "seed": 0,
        "network": {"name": "nir", "params": {"path": str(nir_path)}},
        "deploy": {"target": target, "n_steps": 1000, "probes": sorted(imported.outputs)},
    }
    text = "# written by `nhw import`\n" + yaml.safe_dump(config, sort_keys=False)
    write_text(out, text)
    return text, imported

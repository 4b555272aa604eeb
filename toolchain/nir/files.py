"""NIR files on disk: atomic writes, and importing a file into a deployable config."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import nir
import yaml

from nhw.backends.atomic import file_mode, write_text
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
        os.chmod(tmp, file_mode())  # mkstemp makes 0600; every written file gets the same mode
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def import_to_config(nir_path: str | Path, out: str | Path, *, target: str = "reference",
                     force: bool = False, profile: str = "spec") -> tuple[str, ImportedNetwork]:
    """Import ``nir_path`` (checking that it builds) and write a config deploying it.

    With a peer ``profile`` (``snntorch``, ``norse``, ``rockpool``, ``sinabs``: see
    :mod:`nhw.toolchain.nir.profiles`) the file is read in that peer's conventions and
    its strict-NIR equivalent is written next to the config (``out`` with suffix
    ``.nir``), which the config deploys.

    Returns
    -------
    tuple
        The YAML text written and the imported network.
    """
    from nhw.toolchain.nir.profiles import from_profile, get_profile

    nir_path, out = Path(nir_path).resolve(), Path(out)
    chosen = get_profile(profile)
    if out.exists() and not force:
        raise NIRError(f"{out}: exists; pass --force to replace it")
    source = nir_path
    if chosen.normalise:
        graph = from_profile(read_graph(nir_path), chosen)
        imported = import_nir(graph)  # builds before anything is written
        source = out.resolve().with_suffix(".nir")
        if source == nir_path:
            source = source.with_name(f"{source.stem}.spec.nir")
        write_nir(source, graph, force=force)
    else:
        imported = import_nir(nir_path)
    config = {
        "version": 1,
        "name": nir_path.stem,
        "description": f"network imported from {nir_path.name}"
                       + (f" ({chosen.name} conventions, as strict NIR in {source.name})" if chosen.normalise else ""),
        "seed": 0,
        # relative to the config, so the pair can be moved or shared together
        "network": {"name": "nir", "params": {"path": os.path.relpath(source, out.resolve().parent)}},
        "deploy": {"target": target, "n_steps": 1000, "probes": sorted(imported.outputs)},
    }
    head = "# written by `nhw import`\n"
    if imported.inputs:
        # NIR holds no stimulus: say so instead of letting deploy run on zeros
        config["network"]["params"]["zero_inputs"] = False
        head += (f"# NIR stores no input data: feed input(s) {', '.join(sorted(imported.inputs))} with\n"
                 "# data + deploy.feed, or set network.params.zero_inputs: true to run them on zeros.\n")
    text = head + yaml.safe_dump(config, sort_keys=False)
    write_text(out, text)
    return text, imported

"""NIR files on disk: atomic writes, and importing a file into a deployable config."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import nir
import yaml

from nhw.backends.atomic import file_mode, write_text
from nhw.errors import NIRError
from nhw.toolchain.nir import sections, stimulus
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


def carry_experiment(result, cfg, built) -> None:
    """Store what the exported network needs to run as it did: its experiment and its stimuli.

    ``result`` is the export of ``built`` (a config's network, see
    :func:`nhw.toolchain.experiment.build_network`): inputs that generate their own
    signal get it recorded (:mod:`.stimulus`), and the config's data/deploy keys go
    into the graph's metadata (:mod:`.sections`).
    """
    n_steps = cfg.deploy.n_steps or built.n_steps
    names = {name: result.names[node] for name, node in built.inputs.items() if node in result.names}
    own = {name: node for name, node in stimulus.self_driven(built.inputs, fed=cfg.deploy.feed).items()
           if names.get(name) in result.graph.nodes}
    recorded = stimulus.record(built.network, own, n_steps=n_steps, dt=cfg.deploy.dt, seed=cfg.seed)
    stimulus.attach(result.graph, names, recorded, cfg.deploy.dt)
    meta = dict(result.graph.metadata or {})
    meta[sections.SECTIONS_KEY] = sections.export_sections(cfg, names, n_steps)
    result.graph.metadata = meta


def import_to_config(nir_path: str | Path, out: str | Path, *, target: str = "reference",
                     force: bool = False, profile: str = "spec",
                     own_export: bool = False) -> tuple[str, ImportedNetwork]:
    """Import ``nir_path`` (checking that it builds) and write a config deploying it.

    With a peer ``profile`` (``snntorch``, ``norse``, ``rockpool``, ``sinabs``: see
    :mod:`nhw.toolchain.nir.profiles`) the file is read in that peer's conventions and
    its strict-NIR equivalent is written next to the config (``out`` with suffix
    ``.nir``), which the config deploys; ``own_export``: the peer's own exporter wrote
    it (see :func:`nhw.toolchain.nir.profiles.from_profile`).

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
        graph = from_profile(read_graph(nir_path), chosen, own_export=own_export)
        imported = import_nir(graph)  # builds before anything is written
        source = out.resolve().with_suffix(".nir")
        if source == nir_path:
            source = source.with_name(f"{source.stem}.spec.nir")
        write_nir(source, graph, force=force)
    else:
        imported = import_nir(nir_path)
    carried = sections.import_sections(read_graph(source).metadata, out)
    replay_steps = max(imported.replayed.values(), default=None)
    deploy = {"target": target, **carried.get("deploy", {}), "probes": sorted(imported.outputs)}
    if "feed" not in deploy:
        deploy.setdefault("n_steps", replay_steps or 1000)
    config = {
        "version": 1,
        "name": nir_path.stem,
        "description": f"network imported from {nir_path.name}"
                       + (f" ({chosen.name} conventions, as strict NIR in {source.name})" if chosen.normalise else ""),
        "seed": carried.get("seed", 0),
        # relative to the config, so the pair can be moved or shared together
        "network": {"name": "nir", "params": {"path": os.path.relpath(source, out.resolve().parent)}},
        **({"data": carried["data"]} if carried.get("data") else {}),
        "deploy": deploy,
    }
    head = "# written by `nhw import`\n"
    if imported.replayed:
        head += (f"# input(s) {', '.join(sorted(imported.replayed))} replay the stimulus recorded at export "
                 f"({replay_steps} steps)\n")
    idle = sorted(set(imported.inputs) - set(imported.replayed) - {deploy.get("feed")})
    if idle:
        # nothing drives them: say so instead of letting deploy run on zeros
        config["network"]["params"]["zero_inputs"] = False
        head += (f"# the NIR file holds no input data for {', '.join(idle)}: feed them with\n"
                 "# data + deploy.feed, or set network.params.zero_inputs: true to run them on zeros.\n")
    text = head + yaml.safe_dump(config, sort_keys=False)
    write_text(out, text)
    return text, imported

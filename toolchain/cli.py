"""The ``nhw`` command line: a thin click layer over toolchain functions.

Each command parses its options, loads a config, calls one toolchain function,
renders the result, and turns known errors into a one-line message with exit code 2.
Global options (``--out``, ``--set``, ``--seed``, ``--json``, ``--force``, ``-q``,
``-v``) work before or after the command name; the one after it wins.  Precedence of
settings: defaults < YAML < ``--set a.b=v`` < explicit flags (``--target``, ``--seed``).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import click

from nhw.toolchain import run_source

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("PYOPENCL_CTX", "0")
os.environ.setdefault("MPLBACKEND", "Agg")


# --- global options ----------------------------------------------------------------------
@dataclass
class Globals:
    """Global options, merged from the group and the command."""

    out: str | None = None
    sets: list[str] = field(default_factory=list)
    seed: int | None = None
    json: bool = False
    force: bool = False
    verbosity: int = 0


def _store(key: str):
    def callback(ctx: click.Context, param: click.Parameter, value):
        g = ctx.find_root().ensure_object(Globals)
        if key == "sets":
            g.sets.extend(value)
        elif key == "verbosity":
            g.verbosity += value if param.name == "verbose" else -value
        elif value not in (None, False):
            setattr(g, key, value)
        return value

    return callback


#: Global options by Globals field: (flags, click.option keywords). ``json`` and
#: ``verbosity`` apply to every command; the others only where a command uses them.
_GLOBAL_OPTIONS: dict[str, tuple[tuple[str, ...], dict]] = {
    "out": (("--out",), {"metavar": "DIR", "callback": _store("out"),
                         "help": "Output directory (default: runs/<name>-<command>-<time>)."}),
    "sets": (("--set", "sets"), {"metavar": "KEY=VALUE", "multiple": True, "callback": _store("sets"),
                                 "help": "Override a config value, e.g. deploy.n_steps=500 (repeatable)."}),
    "seed": (("--seed",), {"type": int, "callback": _store("seed"),
                           "help": "Top-level seed (beats the file and --set)."}),
    "json": (("--json", "json_"), {"is_flag": True, "callback": _store("json"),
                                   "help": "Machine-readable JSON on stdout."}),
    "force": (("--force",), {"is_flag": True, "callback": _store("force"),
                             "help": "Replace an existing output directory."}),
    "quiet": (("-q", "--quiet"), {"count": True, "callback": _store("verbosity"), "help": "Less output."}),
    "verbose": (("-v", "--verbose"), {"count": True, "callback": _store("verbosity"), "help": "More output."}),
}


#: Global options by Globals field -> flag, for messages.
_FLAGS = {"out": "--out", "sets": "--set", "seed": "--seed", "force": "--force"}


def global_options(func=None, *, uses: tuple[str, ...] = tuple(_FLAGS), hint: str = ""):
    """Add the global options to a command (they are also accepted before it).

    Parameters
    ----------
    uses
        The global options (``out``, ``sets``, ``seed``, ``force``) the command acts on.
        The others stay parseable but are left out of ``--help`` and refused with a
        usage error instead of being silently ignored (``--json``, ``-q`` and ``-v``
        apply everywhere).
    hint
        Added to that usage error.
    """
    if func is None:
        return functools.partial(global_options, uses=uses, hint=hint)

    @functools.wraps(func)
    def checked(*args, **kwargs):
        g = _g()
        given = [f for f in _FLAGS if f not in uses and getattr(g, f) not in (None, False, [])]
        if given:
            ctx = click.get_current_context()
            flags = ", ".join(_FLAGS[f] for f in given)
            raise click.UsageError(f"{flags}: not used by '{ctx.command_path}'{hint}", ctx=ctx)
        return func(*args, **kwargs)

    for name, (decls, kwargs) in reversed(list(_GLOBAL_OPTIONS.items())):
        refused = name in _FLAGS and name not in uses
        checked = click.option(*decls, expose_value=False, hidden=refused, **kwargs)(checked)
    return checked


def _g() -> Globals:
    return click.get_current_context().find_root().ensure_object(Globals)


def _clean_errors(func):
    """Known errors -> 'nhw: error: ...' on stderr and exit code 2, without a traceback.

    Known errors are nhw's own, the user's network code failing included
    (:class:`nhw.errors.UserCodeError`); with ``-v`` the traceback of the error's cause
    comes first.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from nhw import backends
        from nhw.errors import ToolchainError

        g = _g()
        live = not g.json and g.verbosity >= 0 and sys.stderr.isatty()
        if live:  # live build/simulate progress on a terminal only
            from nhw.toolchain import progress

            progress.enable()
        try:
            return func(*args, **kwargs)
        except (backends.BackendError, ToolchainError) as exc:
            if g.verbosity > 0 and exc.__cause__ is not None:  # -v: where the user's code failed
                import traceback

                traceback.print_exception(exc.__cause__, file=sys.stderr)
            click.echo(f"nhw: error: {exc}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            # Ctrl-C: 130 like a shell (click would say "Aborted!" and exit 1, which for
            # parity means "out of tolerance"); runs are written atomically, so nothing
            # half-written is left
            click.echo(f"\nnhw {click.get_current_context().info_name}: interrupted", err=True)
            sys.exit(130)
        except BrokenPipeError:
            # `nhw deploy ... | head -1`: the reader left; the run itself is fully written.
            # Point stdout at /dev/null so Python's exit flush does not fail again.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(0)
        finally:
            if live:
                progress.disable()

    return wrapper


def _csv(value: str | None, flag: str = "") -> list[str] | None:
    """Comma-separated names, each once (None: not given).

    An empty list (``--targets ""``) is refused rather than read as "all".
    """
    if value is None:
        return None
    names = list(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))  # dedupe, keep order
    if not names:
        raise click.BadParameter(f"expected comma-separated names; got {value!r}", param_hint=flag or None)
    return names


def _echo(text: str, level: int = 0) -> None:
    """Print human output when verbosity allows (never in --json mode)."""
    g = _g()
    if not g.json and g.verbosity >= level:
        click.echo(text)


def _emit_json(obj) -> None:
    click.echo(json.dumps(obj, indent=2, default=str))


#: Config keys that command-line flags set, by key -> flag (errors name the flag, not ``--set``).
_FLAG_KEYS = {"seed": "--seed", "deploy.target": "--target", "deploy.n_steps": "--n-steps"}


def _load(source: str, flags: dict[str, object] | None = None, *, trained: bool = True):
    """A config file, or the resolved config of a run directory, with overrides applied.

    ``flags`` (dotted key -> value) are applied after ``--set``, so explicit flags win;
    an error in one of their values names its flag (:data:`_FLAG_KEYS`).

    A run of trained weights (an ``nhw train`` run, or a deploy/parity run of one, which
    keeps a checksummed copy of the ``frozen.npz`` it used) runs those weights, on the
    training run's data split: its ``data.seed`` is pinned (``--seed`` does not move it)
    and overrides that change the split are refused.  ``trained=False`` (``nhw train
    RUN``) re-runs the recorded config from the network's initial parameters.
    """
    from nhw.toolchain import config as cfgmod

    g = _g()
    given = {"seed": g.seed, **(flags or {})}
    from_flags = {f"{k}={json.dumps(v)}": f"{_FLAG_KEYS[k]} {v}" for k, v in given.items() if v is not None}
    overrides = list(g.sets) + list(from_flags)
    path = Path(source)
    if path.is_dir():
        from nhw.toolchain.artifacts import FROZEN, load_run

        run = load_run(path)  # checksums verified, frozen.npz included
        raw = run.manifest.get("config")
        if not isinstance(raw, dict):
            raise cfgmod.ConfigError(f"{path}: the run records no config to deploy")
        frozen = trained and (run.kind == "train" or run.manifest.get("frozen") == FROZEN)
        if frozen:
            raw = run_source.pin_split(raw, run.manifest)
        new = cfgmod.apply_overrides(raw, overrides, str(path))
        if frozen:
            run_source.refuse_split_change(path, raw, new)
        cfg = cfgmod.from_dict(new, source=str(path), overrides=overrides, origins=from_flags)
        if frozen:  # deploy/parity the trained network
            cfg.use_frozen(path / FROZEN)
        return cfg
    return cfgmod.load_config(path, overrides, origins=from_flags)


def _list_files(out) -> None:
    """With -v: every file of the run, with its size."""
    if _g().verbosity < 1 or out is None:
        return
    for f in sorted(Path(out).rglob("*")):
        if f.is_file():
            click.echo(f"  {f.relative_to(out)}  ({f.stat().st_size} bytes)")


def _out(cfg_label: str, command: str, source: str | None = None) -> Path:
    from nhw.toolchain.artifacts import default_out

    g = _g()
    out = Path(g.out) if g.out else default_out(cfg_label, command)
    run_source.refuse_overlap(source, out)
    _note_leftovers(out)
    return out


def _note_leftovers(out: Path) -> None:
    """Say (on stderr) which temporary folders interrupted runs left beside ``out``.

    They are never deleted behind the user's back: ``--force`` removes those of the
    same ``--out``; the others are the user's to remove.
    """
    from nhw.toolchain.artifacts import leftover_temps

    found = leftover_temps(out.parent)
    if found and not _g().json and _g().verbosity >= 0:
        names = ", ".join(p.name for p in found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
        click.echo(f"nhw: note: {out.parent}/ holds {len(found)} temporary folder(s) left by interrupted runs "
                   f"({names}); remove them, or rerun with --force to the same --out", err=True)


# --- commands ----------------------------------------------------------------------------
class _Group(click.Group):
    """The ``nhw`` group: usage errors read ``nhw: error: ...`` (one line, exit 2) like every
    other error, and Ctrl-C outside a command exits 130 instead of click's "Aborted!" (1)."""

    def main(self, *args, **kwargs):  # noqa: D102 - click's entry point
        kwargs["standalone_mode"] = False
        try:
            rv = super().main(*args, **kwargs)
        except getattr(click.exceptions, "NoArgsIsHelpError", ()) as exc:  # `nhw config`: its help
            exc.show()
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            hint = f"{exc.ctx.command_path}: " if exc.ctx is not None and exc.ctx.parent is not None else ""
            click.echo(f"nhw: error: {hint}{exc.format_message()} (see --help)", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("\nnhw: interrupted", err=True)
            sys.exit(130)
        sys.exit(rv if isinstance(rv, int) else 0)  # --help/--version return their exit code


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nhw")
@global_options
def main() -> None:
    """nhw: train, freeze, deploy and parity-check Nengo networks on neuromorphic targets.

    \b
    nhw targets                                    what can run here, and why not
    nhw config validate configs/quickstart.yaml    check a config
    nhw deploy configs/quickstart.yaml             run it, write probes, plots, report
    nhw parity configs/quickstart.yaml             compare every target with reference
    nhw report RUN_DIR                             re-render a saved run
    """


@main.command()
@global_options(uses=())
@_clean_errors
def targets() -> None:
    """List every target, whether it is available here, and why not."""
    from nhw import backends

    statuses = backends.describe()
    if _g().json:
        _emit_json([{"name": s.name, "available": s.available, "reason": s.reason, "summary": s.summary}
                    for s in statuses])
        return
    for s in statuses:
        mark = "yes" if s.available else "no "
        click.echo(f"{s.name:<11} {mark}  {s.summary if s.available else s.reason}")


@main.command()
@global_options(uses=())
@_clean_errors
def networks() -> None:
    """List the model zoo (standard parity networks marked 'parity')."""
    from nhw.toolchain import networks as zoo

    if _g().json:
        _emit_json([{"name": e.name, "description": e.description, "parity": e.name in _standard_names(),
                     "params": e.params.model_json_schema().get("properties", {})} for e in zoo.ZOO.values()])
        return
    for e in zoo.ZOO.values():
        params = ", ".join(e.params.model_fields)
        mark = "parity" if e.name in _standard_names() else "      "
        click.echo(f"{e.name:<22} {mark}  {e.description}")
        _echo(f"{'':<30}params: {params}", 1)


def _standard_names() -> set[str]:
    from nhw.toolchain.parity_networks import NETWORKS

    return set(NETWORKS)


@main.group()
def config() -> None:
    """Validate configs and print their JSON Schema."""


@config.command("validate")
@click.argument("file", type=click.Path(dir_okay=False, path_type=str))
@global_options(uses=("sets", "seed"))
@_clean_errors
def config_validate(file: str) -> None:
    """Validate FILE (schema, names, network parameters, probes); exit 2 if invalid."""
    from nhw.toolchain.experiment import build_network

    cfg = _load(file)
    build_network(cfg)  # probe and input names live in the network
    if _g().json:
        _emit_json({"file": file, "valid": True, "config_hash": cfg.config_hash(), "config": cfg.resolved()})
        return
    net = cfg.network.name or cfg.network.factory
    _echo(f"{file}: ok (network {net}, deploy target {cfg.deploy.target}, config {cfg.config_hash()[:12]})")
    if _g().verbosity > 0:
        import yaml

        click.echo(yaml.safe_dump(cfg.resolved(), sort_keys=False).rstrip())


@config.command("schema")
@click.option("--markdown", is_flag=True, help="Print the config reference as Markdown instead.")
@global_options(uses=())
def config_schema(markdown: bool) -> None:
    """Print the JSON Schema of experiment configs (for editors)."""
    if markdown:
        from nhw.toolchain.config.docs import reference_markdown

        click.echo(reference_markdown(), nl=False)
        return
    from nhw.toolchain.config import json_schema

    _emit_json(json_schema())


@main.command()
@click.argument("config_file", metavar="CONFIG", type=click.Path(path_type=str))
@click.option("--resume", is_flag=True, help="Continue an interrupted training run.")
@click.option("--workers", type=int, default=1, show_default=True,
              help="Train with N local worker processes (tf.distribute multi-worker; "
                   "train.minibatch_size is the global batch).")
@global_options
@_clean_errors
def train(config_file: str, resume: bool, workers: int) -> None:
    """Train CONFIG in the TensorFlow simulator and write a run directory.

    Writes frozen.npz (trained values; `nhw deploy RUN` and `nhw parity RUN` run the
    trained network on any target), params.npz, history.json, training.png,
    summary.json and manifest.json.  Every epoch is checkpointed to RUN.checkpoint;
    --resume continues an interrupted run.  --workers N trains with N local worker
    processes; on several hosts start one `nhw train` per host with TF_CONFIG set
    (docs/cli.md).
    """
    from nhw.toolchain.train import train as run_train

    if workers < 1:
        raise click.BadParameter(f"expected a number of worker processes >= 1; got {workers}",
                                 param_hint="--workers")
    if workers > 1 and os.environ.get("TF_CONFIG", "").strip():
        raise click.UsageError("--workers starts a local cluster, but TF_CONFIG already names one; "
                               "give one of them (unset TF_CONFIG, or drop --workers)")
    cfg = _load(config_file, trained=False)  # a run re-trains from initial parameters
    g = _g()
    out = _out(cfg.label, "train", config_file)
    if resume and not g.out:
        # the newest interrupted run of this config (its checkpoint sits next to it)
        found = sorted(out.parent.glob(f"{cfg.label}-train-*.checkpoint"), key=lambda p: p.stat().st_mtime)
        if not found:
            raise click.UsageError(f"--resume: no interrupted run of {cfg.label!r} under {out.parent}/ (give -o RUN)")
        out = found[-1].with_name(found[-1].name[: -len(".checkpoint")])
    try:
        if workers > 1:
            _train_workers(config_file, cfg, out, resume, workers)  # worker 0 reports
            return
        result = run_train(cfg, out=out, resume=resume, force=g.force, verbose=0 if g.json or g.verbosity < 0 else 2)
    except KeyboardInterrupt as exc:
        # Ctrl-C: say how to continue instead of a traceback (130: killed by SIGINT)
        notes = getattr(exc, "__notes__", None) or ["nhw train: interrupted before the first epoch finished"]
        click.echo("\n".join(notes), err=True)
        sys.exit(130)
    if g.json:
        _emit_json({"out": str(result.out), **result.summary()})
        return
    _echo(result.to_table())
    _list_files(result.out)
    _echo(f"wrote {result.out}", -1)


def _train_workers(config_file: str, cfg, out: Path, resume: bool, workers: int) -> None:
    """``nhw train --workers N``: the same command in N local worker processes (worker 0 reports)."""
    from nhw.backends.tensorflow.distribute_launch import run_local_workers
    from nhw.toolchain.train import check_workers

    check_workers(cfg, workers)  # a config that cannot be split fails here, before N imports of TensorFlow
    g = _g()
    # every worker gets the resolved destination, so they agree on it
    args = ["train", config_file, "--out", str(out), *(a for s in g.sets for a in ("--set", s))]
    args += [f for f, on in (("--resume", resume), ("--force", g.force), ("--json", g.json)) if on]
    args += [] if g.seed is None else ["--seed", str(g.seed)]
    args += ["-v"] * max(g.verbosity, 0) + ["-q"] * max(-g.verbosity, 0)
    run_local_workers(args, workers)


@main.command()
@click.argument("source", metavar="CONFIG_OR_RUN", type=click.Path(path_type=str))
@click.option("--target", help="Target to deploy on (beats deploy.target).")
@click.option("--n-steps", type=int, help="Steps to run (beats deploy.n_steps).")
@global_options
@_clean_errors
def deploy(source: str, target: str | None, n_steps: int | None) -> None:
    """Build CONFIG (or a run directory's config) on a target, run it, write the results.

    Writes probes.npz, outputs.png, spikes.png (spiking probes), summary.json,
    hardware_report.{json,txt} when the target offers one, and manifest.json.
    """
    from nhw.toolchain.deploy import deploy as run_deploy

    cfg = _load(source, {"deploy.target": target, "deploy.n_steps": n_steps})
    g = _g()
    result = run_deploy(cfg, out=_out(cfg.label, "deploy", source), force=g.force)
    if g.json:
        _emit_json({"out": str(result.out), **result.summary()})
        return
    _echo(result.to_table())
    if result.run.hardware_report is not None:
        from nhw.toolchain import tables

        _echo("\n" + tables.hardware_table(result.run.hardware_report))
    _list_files(result.out)
    _echo(f"wrote {result.out}", -1)


@main.command()
@click.argument("source", metavar="[CONFIG_OR_RUN]", required=False, type=click.Path(path_type=str))
@click.option("--targets", "targets_", help="Comma-separated targets (default: parity.targets, else every available one).")
@click.option("--networks", "networks_", help="Standard networks to check instead of a CONFIG (default: all).")
@click.option("--dimensions", type=int, help="Standard networks: override each network's dimensionality.")
@click.option("--n-per-dim", default=50, show_default=True, type=int, help="Standard networks: neurons per dimension.")
@global_options
@_clean_errors
def parity(source: str | None, targets_: str | None, networks_: str | None, dimensions: int | None,
           n_per_dim: int) -> None:
    """Run CONFIG (or the standard networks) on each target and compare with reference.

    Prints a per-probe error table and writes parity.json, parity.txt and overlay.png
    (standard networks: overlay_<network>.png each).
    Exits with status 1 when any probe is out of tolerance, 2 on errors.
    """
    g = _g()
    if source is not None:
        if networks_ or dimensions:
            raise click.UsageError("--networks/--dimensions select standard networks; do not combine them with CONFIG")
        from nhw.toolchain.parity_config import run_parity

        cfg = _load(source)
        _check_compared(_csv(targets_, "--targets"), cfg.parity.targets)
        run = run_parity(cfg, _csv(targets_, "--targets"), out=_out(cfg.label, "parity", source), force=g.force)
        report, out, what, accuracy = run.report, run.out, cfg.label, run.accuracy
    else:
        report, out, what = _standard_parity(_csv(networks_, "--networks"), _csv(targets_, "--targets"), dimensions, n_per_dim)
        accuracy = {}
    if g.json:
        _emit_json({"out": str(out) if out else None, **json.loads(report.to_json()),
                    **({"accuracy": accuracy} if accuracy else {})})
    else:
        _echo(report.to_table())
        if accuracy:
            _echo(f"accuracy of {cfg.deploy.classify} on the fed items: "
                  + ", ".join(f"{t} {a:.4f}" for t, a in accuracy.items()))
        if not report.results and not report.skipped:
            click.echo("nothing compared: only 'reference' is available", err=True)
        from nhw.toolchain.tables import parity_summary

        _echo(f"{parity_summary(report.results)} ({what})", -1)
        if out:
            _list_files(out)
            _echo(f"wrote {out}", -1)
    sys.exit(0 if report.passed else 1)


def _check_compared(named: list[str] | None, configured: list[str] | None = None) -> None:
    """Refuse targets that leave nothing to compare with ``reference``, before any work.

    ``named`` is ``--targets``; without it, the config's ``parity.targets``.
    """
    from nhw.toolchain.parity import REFERENCE

    from nhw import backends
    from nhw.errors import ConfigError

    where = "--targets"
    if named is None:
        named, where = configured, "parity.targets"
    if named is None or any(t != REFERENCE for t in named):
        return
    others = [t for t in backends.available() if t != REFERENCE]
    raise ConfigError(f"{where} {','.join(named)}: nothing to compare: every target is compared with "
                      f"{REFERENCE!r}; expected at least one other target; available here: "
                      f"{', '.join(others) or 'none (see nhw targets)'}")


def _standard_parity(networks_, targets_, dimensions, n_per_dim):
    from nhw.toolchain.artifacts import RunWriter, check_destination
    from nhw.toolchain.parity_config import check_parity, write_network_overlays
    from nhw.toolchain.parity_networks import NETWORKS, get_network

    for name in networks_ or ():
        get_network(name)  # unknown names first, with their suggestion
    _check_compared(targets_)
    g = _g()
    if g.sets:
        raise click.UsageError("--set: not used by 'nhw parity' on the standard networks (there is no config to "
                               "change); use --dimensions/--n-per-dim/--seed, or give a CONFIG")
    if g.out:
        check_destination(g.out, g.force)
    runs: dict = {}
    report = check_parity(networks_, targets_, seed=g.seed or 0, dimensions=dimensions, n_per_dim=n_per_dim,
                          runs=runs)
    n = len(NETWORKS if networks_ is None else networks_)
    if g.out:
        with RunWriter(g.out, "parity", force=g.force) as w:
            w.write_text("parity.json", report.to_json() + "\n")
            w.write_text("parity.txt", report.to_table() + "\n")
            write_network_overlays(w, runs)
            w.summary = {"network": "standard networks", "targets": [], "networks": networks_ or list(NETWORKS),
                         "passed": report.passed, "n_results": len(report.results),
                         "n_failures": len(report.failures)}
    return report, g.out, f"{n} networks"


#: NIR peer profiles (nhw.toolchain.nir.profiles.PROFILES; listed here so --help needs no nir import)
_NIR_PROFILES = ["spec", "snntorch", "norse", "rockpool", "sinabs"]


@main.command("export")
@click.argument("source", metavar="CONFIG_OR_RUN", type=click.Path(path_type=str))
@click.option("--format", "fmt", type=click.Choice(["nir"]), default="nir", show_default=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=str), help="File to write.")
@click.option("--allow-partial", is_flag=True, help="Export what NIR can express and list the rest.")
@click.option("--for", "profile", type=click.Choice(_NIR_PROFILES), default="spec", show_default=True,
              help="Write the equivalent graph in this NIR peer's conventions (docs/nir.md).")
@global_options(uses=("sets", "seed", "force"), hint="; the file to write is -o/--output")
@_clean_errors
def export_cmd(source: str, fmt: str, output: str, allow_partial: bool, profile: str) -> None:
    """Export the network of CONFIG (or a run directory) to a NIR file."""
    from nhw.toolchain.experiment import build_network
    from nhw.toolchain.nir.export import export_nir
    from nhw.toolchain.nir.files import carry_experiment, write_nir

    cfg = _load(source)
    built = build_network(cfg)
    names = {obj: name for group in (built.inputs, built.probes) for name, obj in group.items()}
    result = export_nir(built.network, dt=cfg.deploy.dt, allow_partial=allow_partial, names=names,
                        profile=profile)
    carry_experiment(result, cfg, built)
    write_nir(output, result.graph, force=_g().force)
    if _g().json:
        _emit_json({"out": output, "nodes": len(result.graph.nodes), "edges": len(result.graph.edges),
                    "remainder": result.remainder})
        return
    _echo(f"wrote {output}: {len(result.graph.nodes)} NIR nodes, {len(result.graph.edges)} edges")
    for line in result.remainder:
        _echo(f"  not exported: {line}")


@main.command("import")
@click.argument("nir_file", metavar="NET.nir", type=click.Path(dir_okay=False, path_type=str))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=str),
              help="Config (YAML) to write; it deploys the imported network.")
@click.option("--target", default="reference", show_default=True, help="deploy.target of the new config.")
@click.option("--from", "profile", type=click.Choice(_NIR_PROFILES), default="spec", show_default=True,
              help="Read the file in this NIR peer's conventions (docs/nir.md).")
@click.option("--own-export", is_flag=True,
              help="With --from: the file was written by the peer's own exporter; undo its known deviations "
                   "from NIR (Norse 1.1: time constants written as dt * tau).")
@global_options(uses=("force",), hint="; the config to write is -o/--output")
@_clean_errors
def import_cmd(nir_file: str, output: str, target: str, profile: str, own_export: bool) -> None:
    """Import a NIR file: check it builds, and write a config that deploys it."""
    from nhw.toolchain.nir.files import import_to_config

    if own_export and profile == "spec":
        raise click.UsageError("--own-export needs --from PEER (whose exporter wrote the file)")
    text, imported = import_to_config(nir_file, output, target=target, force=_g().force, profile=profile,
                                      own_export=own_export)
    if _g().json:
        _emit_json({"out": output, "inputs": sorted(imported.inputs), "outputs": sorted(imported.outputs)})
        return
    _echo(f"wrote {output} (inputs: {', '.join(sorted(imported.inputs)) or '-'}; "
          f"outputs: {', '.join(sorted(imported.outputs)) or '-'})")


@main.command()
@click.argument("run_dir", metavar="RUN_DIR", type=click.Path(path_type=str))
@global_options(uses=("out", "force"))
@_clean_errors
def report(run_dir: str) -> None:
    """Re-render a saved run (checksums verified); with --out, re-draw its plots there."""
    from nhw.toolchain.report import render_run

    g = _g()
    rendered = render_run(run_dir, out=g.out, force=g.force)
    if g.json:
        _emit_json(rendered.as_dict())
        return
    _echo(rendered.text)
    for f in rendered.files:
        _echo(f"wrote {f}", -1)


if __name__ == "__main__":  # pragma: no cover
    main()

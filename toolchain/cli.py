"""The ``nhw`` command line: a thin click layer over toolchain functions.

Each command parses its options, calls one toolchain function, renders the result,
and turns known errors into a one-line message with exit code 2.
"""

from __future__ import annotations

import functools
import os
import sys

import click

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("PYOPENCL_CTX", "0")


def _clean_errors(func):
    """Known errors -> 'nhw: error: ...' and exit code 2, without a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        import backends
        from toolchain.errors import ToolchainError

        try:
            return func(*args, **kwargs)
        except (backends.BackendError, ToolchainError) as exc:
            click.echo(f"nhw: error: {exc}", err=True)
            sys.exit(2)

    return wrapper


def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nhw")
def main() -> None:
    """nhw: train, freeze, deploy and parity-check Nengo networks on neuromorphic targets."""


@main.command()
@_clean_errors
def targets() -> None:
    """List every target, whether it is available here, and why not."""
    import backends

    for s in backends.describe():
        mark = "yes" if s.available else "no "
        click.echo(f"{s.name:<11} {mark}  {s.summary if s.available else s.reason}")


@main.command()
@click.option("--networks", help="Comma-separated standard networks (default: all).")
@click.option("--targets", "targets_", help="Comma-separated targets (default: every available one).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--dimensions", type=int, help="Override each network's dimensionality.")
@click.option("--n-per-dim", default=50, show_default=True, type=int, help="Neurons per dimension.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write the report as JSON.")
@_clean_errors
def parity(networks, targets_, seed, dimensions, n_per_dim, json_path) -> None:
    """Run standard networks on targets and compare every probe against reference.

    Exits with status 1 when any probe is out of tolerance.
    """
    from toolchain.parity import check_parity
    from toolchain.parity_networks import NETWORKS

    report = check_parity(_csv(networks), _csv(targets_), seed=seed, dimensions=dimensions, n_per_dim=n_per_dim)
    click.echo(report.to_table())
    if json_path:
        from toolchain.atomic import write_text

        write_text(json_path, report.to_json())
    if not report.results and not report.skipped:
        click.echo("nothing compared: only 'reference' is available", err=True)
    n_bad = len(report.failures)
    click.echo(f"{len(report.results) - n_bad} probes within tolerance, {n_bad} out of tolerance "
               f"({len(NETWORKS if networks is None else _csv(networks))} networks)")
    sys.exit(0 if report.passed else 1)


@main.command()
@_clean_errors
def networks() -> None:
    """List the standard parity/benchmark networks."""
    from toolchain.parity_networks import NETWORKS

    for net in NETWORKS.values():
        click.echo(f"{net.name:<22} {net.description}")


if __name__ == "__main__":  # pragma: no cover
    main()

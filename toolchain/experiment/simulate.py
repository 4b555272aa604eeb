"""Stage 3 of an experiment: run the built network on one target and collect its probes."""

from __future__ import annotations

import time
from types import SimpleNamespace
from dataclasses import dataclass
from typing import Any

import nengo
import numpy as np

from nhw import backends
from nhw.errors import ConfigError, DeployError, ToolchainError
from nhw.toolchain import networks, progress
from nhw.toolchain.experiment import footprint
from nhw.toolchain.config.schema import ExperimentConfig
from nhw.names import unknown


def spiking_probes(probes: dict[str, nengo.Probe]) -> list[str]:
    """Names of probes that record unfiltered spikes of spiking neurons."""
    out = []
    for name, p in probes.items():
        obj = p.obj
        if (isinstance(obj, nengo.ensemble.Neurons) and p.attr == "output" and p.synapse is None
                and obj.ensemble.neuron_type.spiking):
            out.append(name)
    return out


def select_probes(cfg: ExperimentConfig, built: networks.BuiltNetwork, names: list[str] | None,
                  where: str) -> dict[str, nengo.Probe]:
    """The probes named in ``names`` (all when ``None``); unknown names are errors."""
    if names is None:
        return dict(built.probes)
    for i, n in enumerate(names):
        if n not in built.probes:
            raise ConfigError(f"{cfg.source}: {where}[{i}]: {unknown('probe', n, list(built.probes))}")
    return {n: built.probes[n] for n in names}


def check_options(target: str, simulator: type, options: dict[str, Any]) -> None:
    """Refuse Simulator options the target does not take, before building anything."""
    import inspect

    try:
        params = inspect.signature(simulator).parameters
    except (TypeError, ValueError):  # no introspectable signature: let the target decide
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    known = [n for n, p in params.items() if n not in ("self", "network", "dt", "seed", "progress_bar")
             and p.kind is not inspect.Parameter.VAR_POSITIONAL]
    for name in options:
        if name not in params:
            raise DeployError(f"deploy.options.{target}.{name}: {unknown('option', name, known)}")


@dataclass
class Simulated:
    """Probe data of one run on one target, with timings and the hardware report."""

    target: str
    data: dict[str, np.ndarray]
    t: np.ndarray
    build_s: float
    run_s: float
    hardware_report: Any = None
    hardware_note: str = ""


def simulate(target: str, built: networks.BuiltNetwork, probes: dict[str, nengo.Probe], n_steps: int, *,
             dt: float = 0.001, seed: int = 0, options: dict[str, Any] | None = None) -> Simulated:
    """Build ``built`` on ``target``, run ``n_steps`` and collect ``probes`` as float64.

    Errors of nengo's builder or the target become :class:`DeployError` naming the
    target; backend errors (unknown or unavailable targets) pass through.
    """
    Simulator = backends.get(target)
    check_options(target, Simulator, options or {})
    footprint.check_fits(built.network, target)  # before the builder starts allocating
    t0 = time.perf_counter()
    try:
        with progress.stage(f"building on {target}"):
            sim = Simulator(built.network, dt=dt, seed=seed, progress_bar=False, **(options or {}))
    except (backends.BackendError, ToolchainError):
        raise
    except TypeError as exc:
        # Almost always an option the target's Simulator does not take.
        hint = f" (check deploy.options.{target}: {sorted(options)})" if options else ""
        raise DeployError(f"target {target!r}: cannot build the network: TypeError: {exc}{hint}") from exc
    except (nengo.exceptions.NengoException, ValueError, NotImplementedError) as exc:
        raise DeployError(f"target {target!r}: cannot build the network: {type(exc).__name__}: {exc}") from exc
    items = item_feed(built.network)
    with sim:
        t1 = time.perf_counter()
        try:
            with progress.stage(f"simulating on {target}", total=n_steps) as bar:
                if items is not None:
                    data, t, item_reports = _run_per_item(sim, items, probes, n_steps, seed, bar)
                elif bar is None:
                    sim.run_steps(n_steps)
                else:
                    sim.run_steps(n_steps, progress_bar=bar)
        except nengo.exceptions.NengoException as exc:
            raise DeployError(f"target {target!r}: simulation failed: {type(exc).__name__}: {exc}") from exc
        t2 = time.perf_counter()
        if items is None:
            data = {name: np.asarray(sim.data[p], dtype=np.float64) for name, p in probes.items()}
            t = np.asarray(sim.trange(), dtype=np.float64)
        report, note = None, ""
        make_report = getattr(sim, "hardware_report", None)
        if callable(make_report):
            try:
                if items is not None and item_reports:
                    # each item ran from a reset (which zeroes the activity counters): the run's
                    # activity is the sum of the items'
                    report = type(item_reports[0]).combined(item_reports)
                else:
                    report = make_report()
            except Exception as exc:  # a report is a bonus; its failure must not lose the run
                note = f"hardware report failed: {type(exc).__name__}: {exc}"
        return Simulated(target, data, t, t1 - t0, t2 - t1, report, note)


def item_feed(network: nengo.Network):
    """The network's per-item input (a Node whose output is an ``ItemFeed``), or None."""
    from nhw.toolchain.experiment.feed import ItemFeed

    feeds = [n.output for n in network.all_nodes if isinstance(n.output, ItemFeed)]
    if len(feeds) > 1:
        raise DeployError(f"deploy.reset_per_item: expected one fed input, found {len(feeds)}")
    return feeds[0] if feeds else None


def _run_per_item(sim, items, probes: dict[str, nengo.Probe], n_steps: int, seed: int,
                  bar) -> tuple[dict[str, np.ndarray], np.ndarray, list]:
    """Run each fed item from the initial state (a reset before every item but the first).

    The probe data of the runs are concatenated, and time counts on across them, so
    the result has the shape and time axis of one continuous run. Targets with a
    hardware report give one per item (a reset zeroes its activity counters).
    """
    make_report = getattr(sim, "hardware_report", None)
    reports = []
    if n_steps > items.n_items * items.steps:
        raise DeployError(f"deploy.n_steps {n_steps} is longer than the {items.n_items} fed items "
                          f"({items.n_items} x {items.steps} steps) that reset_per_item runs one by one")
    chunks: dict[str, list[np.ndarray]] = {name: [] for name in probes}
    done, item = 0, 0
    while done < n_steps:
        steps = min(items.steps, n_steps - done)
        if item:
            sim.reset(seed=seed)
        items.show(item)
        sim.run_steps(steps)
        for name, p in probes.items():
            chunks[name].append(np.asarray(sim.data[p], dtype=np.float64))
        if callable(make_report):
            try:
                reports.append(make_report())
            except Exception:  # reported (with its error) when the run's report is made
                make_report, reports = None, []
        done, item = done + steps, item + 1
        if bar is not None:  # nengo's ProgressBar interface: a Progress-like object
            bar.update(SimpleNamespace(n_steps=done, max_steps=n_steps))
    items.show(0)
    data = {name: np.concatenate(c) for name, c in chunks.items()}
    return data, (np.arange(n_steps, dtype=np.float64) + 1) * sim.dt, reports


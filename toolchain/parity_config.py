"""Parity for experiment configs: the config's network on each target vs ``reference``.

Uses the comparison and report of :mod:`nhw.toolchain.parity`, with tolerances from the
config's ``parity`` section.  First match wins: the config's ``per_target[target][probe]``,
the config's ``tolerances[probe]``, the zoo network's declared tolerance for that target,
the zoo network's default, then ``parity.default``.  What a config states explicitly
always beats the zoo's defaults, so a tightened tolerance is never silently loosened;
a ``tolerances[probe]`` that merely repeats the zoo network's own default for the probe
overrides nothing (the zoo's per-target value still refines it).

>>> run = run_parity(load_config("configs/parity/integrator.yaml"), ["opencl"])  # doctest: +SKIP
>>> print(run.report.to_table()); run.report.passed                              # doctest: +SKIP
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from nhw import backends

from nhw.toolchain.config import ExperimentConfig, from_dict
from nhw.toolchain.experiment import Simulated, build_network, feed_inputs, select_probes, simulate
from nhw.toolchain.isolation import call_for_target
from nhw.toolchain.networks import BuiltNetwork
from nhw.toolchain.parity import REFERENCE, ParityReport, ProbeResult, compare
from nhw.toolchain.parity_networks import NETWORKS, ParityNetwork, Tolerance, get_network


def tolerance_for(cfg: ExperimentConfig, built: BuiltNetwork, target: str, probe: str) -> Tolerance:
    """The tolerance ``probe`` must meet on ``target`` (see the module docstring)."""
    p, std = cfg.parity, built.standard
    if probe in p.per_target.get(target, {}):
        t = p.per_target[target][probe]
    elif probe in p.tolerances and not _repeats_zoo_default(p.tolerances[probe], std, probe):
        t = p.tolerances[probe]
    elif std is not None:
        return std.tolerance_for(target, probe)
    else:
        t = p.default
    return Tolerance(rmse=t.rmse, max_abs=t.max_abs)


def _repeats_zoo_default(t, std, probe: str) -> bool:
    """Whether config tolerance ``t`` only restates the zoo network's own default for ``probe``.

    Such a value (``configs/parity/*.yaml`` repeat the declared ones) overrides
    nothing, so the zoo's per-target refinement still applies; any other value is the
    user's explicit choice and wins.
    """
    if std is None:
        return False
    spec = std.tolerance.get(probe) if isinstance(std.tolerance, dict) else std.tolerance
    return spec is not None and (float(spec.rmse), float(spec.max_abs)) == (float(t.rmse), float(t.max_abs))


def unsupported_reason(cfg: ExperimentConfig, built: BuiltNetwork, target: str) -> str | None:
    """Why ``target`` is skipped for this network (config first, then the zoo), or None."""
    if target in cfg.parity.unsupported:
        return cfg.parity.unsupported[target]
    if built.standard is not None:
        return built.standard.unsupported.get(target)
    return None


@dataclass
class ParityRun:
    """A config's parity run: the report and every target's probe data."""

    config: ExperimentConfig
    report: ParityReport
    reference: Simulated
    runs: dict[str, Simulated] = field(default_factory=dict)
    n_steps: int = 0
    out: Path | None = None
    #: classifier configs: accuracy of ``deploy.classify`` on the fed items, per target (reference first)
    accuracy: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict:
        """Plain-data summary (stored in the run's manifest)."""
        return {
            "network": self.config.label,
            "targets": list(self.runs),
            "n_steps": self.n_steps,
            **({"accuracy": self.accuracy} if self.accuracy else {}),
            "passed": self.report.passed,
            "n_results": len(self.report.results),
            "n_failures": len(self.report.failures),
            "skipped": [{"target": t, "reason": w} for _, t, w in self.report.skipped],
        }


def resolve_targets(cfg: ExperimentConfig, targets: Iterable[str] | None) -> list[str]:
    """Targets to compare: the argument, else ``parity.targets``, else every available one.

    Unknown or unavailable targets named explicitly are errors, raised before any run.
    """
    named = list(targets) if targets is not None else cfg.parity.targets
    if named is None:
        return [t for t in backends.available() if t != REFERENCE]
    for t in named:
        backends.get(t)
    return [t for t in named if t != REFERENCE]


def _run(cfg: ExperimentConfig, target: str, probe_names: list[str] | None, n_steps: int | None):
    # A fresh build per target: simulators may keep state on the network's objects.
    built = build_network(cfg)
    fed = feed_inputs(cfg, built)
    if cfg.deploy.classify is not None and fed and probe_names is not None and cfg.deploy.classify not in probe_names:
        probe_names = [*probe_names, cfg.deploy.classify]  # scored on every target
    probes = select_probes(cfg, built, probe_names, "parity.probes")
    steps = n_steps or (int(fed["n_steps"]) if fed else built.n_steps)
    sim = simulate(target, built, probes, steps, dt=cfg.deploy.dt, seed=cfg.seed,
                   options=cfg.deploy.options.get(target))
    return built, sim, steps


def _run_target(cfg: ExperimentConfig, target: str, probe_names: list[str] | None, n_steps: int | None):
    # module level and returning only data, so it can run in a process of its own
    return _run(cfg, target, probe_names, n_steps)[1]


def run_parity(cfg: ExperimentConfig, targets: Iterable[str] | None = None, out: str | Path | None = None,
               force: bool = False) -> ParityRun:
    """Run the config's network on ``reference`` and each target and compare every probe.

    Parameters
    ----------
    cfg
        A validated config.
    targets
        Targets to compare (default: ``parity.targets``, else every available target).
    out
        Run directory to write: ``parity.json`` (the report), ``parity.txt`` (the table),
        ``overlay.png``, ``probes_<target>.npz``, ``manifest.json``.
    force
        Replace an existing ``out``.

    A target that fails to build or run is a failed result naming the error; targets the
    config or the zoo declare unsupported are skipped with their reason.
    """
    from nhw.toolchain.artifacts import RunWriter, check_destination

    if out is not None:
        check_destination(out, force)
    names = resolve_targets(cfg, targets)
    probe_names = cfg.parity.probes
    n_steps = cfg.parity.n_steps or cfg.deploy.n_steps
    built, ref, steps = _run(cfg, REFERENCE, probe_names, n_steps)
    run = ParityRun(cfg, ParityReport(), ref, n_steps=steps)
    labels = feed_inputs(cfg, build_network(cfg)).get("y") if cfg.deploy.classify else None
    score = lambda sim: _accuracy(cfg, sim, labels)  # noqa: E731
    if score(ref) is not None:
        run.accuracy[REFERENCE] = score(ref)
    label = cfg.label
    for target in names:
        reason = unsupported_reason(cfg, built, target)
        if reason is not None:
            run.report.skipped.append((label, target, reason))
            continue
        try:
            got = call_for_target(target, _run_target, cfg, target, probe_names, n_steps)
        except Exception as exc:  # a crash on a target is a reported parity failure
            for probe in ref.data:
                tol = tolerance_for(cfg, built, target, probe)
                run.report.results.append(ProbeResult(label, target, probe, float("nan"), float("nan"), tol,
                                                      False, f"{type(exc).__name__}: {exc}"))
            continue
        run.runs[target] = got
        if score(got) is not None:
            run.accuracy[target] = score(got)
        for probe, r in ref.data.items():
            tol = tolerance_for(cfg, built, target, probe)
            run.report.results.append(compare(label, target, probe, r, got.data[probe], tol))
        decided = compare_decisions(cfg, ref, got, label, target)
        if decided is not None:
            run.report.results.append(decided)
    if out is not None:
        with RunWriter(out, "parity", force=force, config=cfg) as w:
            write_parity_files(w, run)
            w.summary = run.summary()
        run.out = Path(out)
    return run


def _accuracy(cfg: ExperimentConfig, sim: Simulated, labels) -> float | None:
    """``deploy.classify``'s accuracy on the fed items in ``sim`` (None: not a classifier run)."""
    from nhw.toolchain.deploy import classify

    probe = cfg.deploy.classify
    if labels is None or probe not in sim.data:
        return None
    metrics = classify(sim.data[probe], labels, cfg.deploy.presentation_time / cfg.deploy.dt, probe)
    return metrics.get(f"{probe}_accuracy")


def compare_decisions(cfg: ExperimentConfig, ref: Simulated, got: Simulated, label: str,
                      target: str) -> ProbeResult | None:
    """A row for ``parity.decisions``: the fraction of fed items classified differently.

    Spike timing legitimately differs between targets (integer state, quantised
    weights), so a classifier's filtered outputs can differ step by step while every
    decision agrees; this compares what matters for a classifier. The row's error
    columns hold the disagreeing fraction, its tolerance ``1 - parity.decisions``.
    """
    from nhw.toolchain.deploy import decisions

    need, probe = cfg.parity.decisions, cfg.deploy.classify
    if need is None or probe is None or cfg.deploy.feed is None or probe not in ref.data:
        return None
    per = cfg.deploy.presentation_time / cfg.deploy.dt
    n_items = int(len(ref.data[probe]) // round(per))
    a = decisions(ref.data[probe], n_items, per)
    b = decisions(got.data[probe], n_items, per)
    agree = int(np.sum(a == b))
    wrong = 1.0 - agree / n_items if n_items else 0.0
    tol = Tolerance(rmse=round(1.0 - need, 12), max_abs=round(1.0 - need, 12))
    ok = agree >= need * n_items - 1e-9  # counted, so 9/10 meets 0.9 exactly
    return ProbeResult(label, target, f"{probe}:decisions", wrong, wrong, tol, ok,
                       f"{agree}/{n_items} decisions agree")


def write_parity_files(w, run: ParityRun) -> None:
    """Write the report, the table, each target's probe data and the overlay plot."""
    from nhw.toolchain import plots

    w.write_text("parity.json", run.report.to_json() + "\n")
    w.write_text("parity.txt", run.report.to_table() + "\n")
    w.write_npz("probes_reference.npz", {**run.reference.data, "t": run.reference.t})
    for target, sim in run.runs.items():
        w.write_npz(f"probes_{target}.npz", {**sim.data, "t": sim.t})
    plots.plot_overlay(run.reference.t, run.reference.data, {t: s.data for t, s in run.runs.items()},
                       run.report.results, w.path("overlay.png"), f"{run.config.label}: targets vs reference")


def report_from_json(text: str) -> ParityReport:
    """Rebuild a :class:`ParityReport` from :meth:`ParityReport.to_json` output."""
    raw = json.loads(text)
    nan = lambda v: float("nan") if v is None else float(v)  # noqa: E731
    report = ParityReport()
    for r in raw.get("results", []):
        tol = Tolerance(**r["tolerance"])
        report.results.append(ProbeResult(r["network"], r["target"], r["probe"], nan(r["max_abs"]),
                                          nan(r["rmse"]), tol, bool(r["passed"]), r.get("note", "")))
    report.skipped = [(s["network"], s["target"], s["reason"]) for s in raw.get("skipped", [])]
    return report


__all__ = ["ParityRun", "check_network", "check_parity", "overlay_name", "report_from_json", "resolve_targets",
           "run_parity", "tolerance_for", "write_network_overlays"]


def check_network(net: ParityNetwork, targets: Sequence[str], *, seed: int = 0, dimensions: int | None = None,
                  n_per_dim: int = 50, report: ParityReport | None = None,
                  runs: dict[str, ParityRun] | None = None) -> ParityReport:
    """Run one standard network on ``reference`` and each target, and compare.

    The network runs as the config ``{network: {name: <net>, params: ...}, seed: seed}``
    through :func:`run_parity`, so standard networks and configs share one path: the
    network's declared tolerances and unsupported targets apply, a target that raises
    is a failed result naming the error.  With ``runs``, the network's
    :class:`ParityRun` (its probe data on every target) is stored there under its name.
    """
    params: dict = {"n_per_dim": n_per_dim}
    if dimensions is not None:
        params["dimensions"] = dimensions
    cfg = from_dict({"name": net.name, "seed": seed, "network": {"name": net.name, "params": params}})
    run = run_parity(cfg, [t for t in targets if t != REFERENCE])
    if runs is not None:
        runs[net.name] = run
    report = report if report is not None else ParityReport()
    report.results += run.report.results
    report.skipped += run.report.skipped
    return report


def check_parity(networks: Iterable[str] | None = None, targets: Iterable[str] | None = None, *, seed: int = 0,
                 dimensions: int | None = None, n_per_dim: int = 50,
                 runs: dict[str, ParityRun] | None = None) -> ParityReport:
    """Run standard networks on targets and compare every probe against ``reference``.

    Parameters
    ----------
    networks
        Standard network names (default: all of :data:`~nhw.toolchain.parity_networks.NETWORKS`).
    targets
        Target names (default: every available target other than ``reference``).
    seed
        Network and simulator seed.
    dimensions
        Override each network's default dimensionality.
    n_per_dim
        Neurons per represented dimension.
    runs
        If given, filled with each network's :class:`ParityRun` (for
        :func:`write_network_overlays`).

    >>> report = check_parity(["communication_channel"], ["opencl"])   # doctest: +SKIP
    >>> print(report.to_table()); report.passed                        # doctest: +SKIP
    """
    names = list(networks) if networks is not None else list(NETWORKS)
    nets = [get_network(name) for name in names]  # unknown names fail before any simulation
    targets = list(targets) if targets is not None else [t for t in backends.available() if t != REFERENCE]
    for t in targets:
        backends.registry.spec(t)
    report = ParityReport()
    for net in nets:
        check_network(net, targets, seed=seed, dimensions=dimensions, n_per_dim=n_per_dim, report=report,
                      runs=runs)
    return report


def overlay_name(network: str) -> str:
    """The file name of a standard network's overlay plot in a parity run directory."""
    return f"overlay_{network}.png"


def write_network_overlays(w, runs: dict[str, ParityRun]) -> list[str]:
    """Write one overlay plot per standard network into the open run writer ``w``.

    Each is :func:`nhw.toolchain.plots.plot_overlay` of that network's targets over
    ``reference`` (the plot a config's parity run writes as ``overlay.png``), named by
    :func:`overlay_name`; the run directory appears, with all of them, only when the
    writer commits.  Returns the file names in ``runs`` order.
    """
    from nhw.toolchain import plots

    names = []
    for network, run in runs.items():
        name = overlay_name(network)
        plots.plot_overlay(run.reference.t, run.reference.data, {t: s.data for t, s in run.runs.items()},
                           run.report.results, w.path(name), f"{network}: targets vs reference")
        names.append(name)
    return names

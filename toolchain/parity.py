"""Cross-backend parity: run standard networks on several targets and compare every
probe against ``reference`` within the network's declared tolerances.

>>> report = check_parity(["communication_channel"], ["opencl"])   # doctest: +SKIP
>>> print(report.to_table()); report.passed                        # doctest: +SKIP
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Iterable, Sequence

import numpy as np

from nhw import backends

from nhw.toolchain.isolation import call_for_target
from nhw.toolchain.parity_networks import NETWORKS, Case, ParityNetwork, Tolerance, get_network

REFERENCE = "reference"


@dataclass(frozen=True)
class ProbeResult:
    """Comparison of one probe of one network on one target against ``reference``."""

    network: str
    target: str
    probe: str
    max_abs: float
    rmse: float
    tolerance: Tolerance
    passed: bool
    note: str = ""


@dataclass
class ParityReport:
    """All comparisons of a parity run, plus the (network, target) pairs not run."""

    results: list[ProbeResult] = field(default_factory=list)
    skipped: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every compared probe is within tolerance."""
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> list[ProbeResult]:
        """The probes out of tolerance (or whose run failed)."""
        return [r for r in self.results if not r.passed]

    def to_table(self) -> str:
        """A fixed-width table, one row per probe, then the skipped pairs."""
        head = f"{'network':<22} {'target':<11} {'probe':<12} {'max|err|':>9} {'rmse':>9} {'tol rmse':>9} {'tol max':>8}  result"
        rows = [head, "-" * len(head)]
        for r in self.results:
            verdict = ("pass" if r.passed else "FAIL") + (f": {r.note}" if r.note else "")
            rows.append(
                f"{r.network:<22} {r.target:<11} {r.probe:<12} {r.max_abs:9.4f} {r.rmse:9.4f} "
                f"{r.tolerance.rmse:9.4f} {r.tolerance.max_abs:8.3f}  {verdict}"
            )
        rows += [f"{n:<22} {t:<11} skipped: {why}" for n, t, why in self.skipped]
        return "\n".join(rows)

    def to_json(self) -> str:
        """The report as JSON (NaN written as null)."""
        def clean(d):
            return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in d.items()}

        return json.dumps(
            {
                "passed": self.passed,
                "results": [clean(asdict(r)) for r in self.results],
                "skipped": [{"network": n, "target": t, "reason": w} for n, t, w in self.skipped],
            },
            indent=2,
        )


def simulate(target: str, case: Case, seed: int = 0, dt: float = 0.001, **options) -> dict[str, np.ndarray]:
    """Run ``case`` on ``target`` and return each named probe's data as float64.

    Parameters
    ----------
    target
        Registered backend name.
    case
        A built standard network.
    seed
        Simulator seed (the same on every target, so that sampled parameters agree).
    dt
        Time step in seconds.
    **options
        Extra keyword arguments for the target's Simulator.
    """
    Simulator = backends.get(target)
    with Simulator(case.network, dt=dt, seed=seed, progress_bar=False, **options) as sim:
        sim.run_steps(case.n_steps)
        return {name: np.asarray(sim.data[p], dtype=np.float64) for name, p in case.probes.items()}


def simulate_standard(name: str, target: str, dimensions: int | None, n_per_dim: int, seed: int) -> dict[str, np.ndarray]:
    """Build standard network ``name`` and run it on ``target`` (see :func:`simulate`).

    Takes names and numbers only, so it can run in a process of its own.
    """
    return simulate(target, get_network(name).case(dimensions, n_per_dim, seed), seed=seed)


def compare(network: str, target: str, probe: str, ref: np.ndarray, got: np.ndarray, tol: Tolerance) -> ProbeResult:
    """Compare one probe's data against the reference data.

    A shape mismatch is a failure (with the two shapes in the note), not an exception.
    """
    if ref.shape != got.shape:
        note = f"shape {got.shape} != reference {ref.shape}"
        return ProbeResult(network, target, probe, float("nan"), float("nan"), tol, False, note)
    err = got - ref
    max_abs = float(np.max(np.abs(err))) if err.size else 0.0
    rmse = float(np.sqrt(np.mean(err**2))) if err.size else 0.0
    finite = np.isfinite(max_abs)
    passed = bool(finite and rmse <= tol.rmse and max_abs <= tol.max_abs)
    return ProbeResult(network, target, probe, max_abs, rmse, tol, passed, "" if finite else "non-finite output")


def check_network(
    net: ParityNetwork,
    targets: Sequence[str],
    *,
    seed: int = 0,
    dimensions: int | None = None,
    n_per_dim: int = 50,
    report: ParityReport | None = None,
) -> ParityReport:
    """Run one standard network on ``reference`` and each target, and compare.

    Targets declared unsupported for the network are recorded as skipped with
    their reason; a target that raises is a failed result naming the error.
    """
    report = report if report is not None else ParityReport()
    case = net.case(dimensions, n_per_dim, seed)
    ref = simulate(REFERENCE, case, seed=seed)
    for target in targets:
        if target == REFERENCE:
            continue
        if target in net.unsupported:
            report.skipped.append((net.name, target, net.unsupported[target]))
            continue
        try:
            got = call_for_target(target, simulate_standard, net.name, target, dimensions, n_per_dim, seed)
        except Exception as exc:  # a crash on a target is a parity failure, reported
            for probe in case.probes:
                report.results.append(
                    ProbeResult(net.name, target, probe, float("nan"), float("nan"),
                                net.tolerance_for(target, probe), False, f"{type(exc).__name__}: {exc}")
                )
            continue
        for probe in case.probes:
            tol = net.tolerance_for(target, probe)
            report.results.append(compare(net.name, target, probe, ref[probe], got[probe], tol))
    return report


def check_parity(
    networks: Iterable[str] | None = None,
    targets: Iterable[str] | None = None,
    *,
    seed: int = 0,
    dimensions: int | None = None,
    n_per_dim: int = 50,
) -> ParityReport:
    """Run standard networks on targets and compare every probe against ``reference``.

    Parameters
    ----------
    networks
        Standard network names (default: all of :data:`NETWORKS`).
    targets
        Target names (default: every available target other than ``reference``).
    seed
        Network and simulator seed.
    dimensions
        Override each network's default dimensionality.
    n_per_dim
        Neurons per represented dimension.
    """
    names = list(networks) if networks is not None else list(NETWORKS)
    targets = list(targets) if targets is not None else [t for t in backends.available() if t != REFERENCE]
    for t in targets:
        backends.registry.spec(t)  # unknown names fail before any simulation
    report = ParityReport()
    for name in names:
        check_network(get_network(name), targets, seed=seed, dimensions=dimensions,
                      n_per_dim=n_per_dim, report=report)
    return report

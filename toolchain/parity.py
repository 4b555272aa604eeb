"""Cross-backend parity: the comparison of a target's probes with ``reference`` and its report.

Every parity run, of a config or of the standard networks, goes through
:func:`nhw.toolchain.parity_config.run_parity`; this module holds what it compares
with and reports.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

from nhw.toolchain import experiment
from nhw.toolchain.networks import BuiltNetwork
from nhw.toolchain.parity_networks import Case, Tolerance

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
        """Text tables: probe errors, classifier decisions (``agree n/N``), then the skipped pairs."""
        from nhw.toolchain.tables import parity_tables

        return parity_tables(self.results, self.skipped)

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
    """Run a built standard network ``case`` on ``target``; each named probe's data as float64.

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
    built = BuiltNetwork(case.network, {}, dict(case.probes), case.n_steps)
    return experiment.simulate(target, built, dict(case.probes), case.n_steps, dt=dt, seed=seed,
                               options=options).data


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

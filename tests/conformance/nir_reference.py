"""The NIR paper's reference case: one LIF neuron driven by a ramp, against the
analytic solution of its ODE.

The neuron obeys ``tau dv/dt = -v + I(t)`` with ``I(t) = slope * t``, spikes when
``v`` reaches 1, resets to 0 and stays there for ``tau_ref``.  Between resets the ODE
has the closed form ``v(t) = slope * (t - tau) + C exp(-t / tau)`` with ``C`` fixed by
``v(t0) = 0``; spike times are its roots of ``v(t) = 1``.  :func:`compare_target`
imports the one-neuron NIR graph, runs it on a target, and reports how far the
simulated voltage and spike times are from those.
"""

from __future__ import annotations

from dataclasses import dataclass

import nengo
import nir
import numpy as np
from scipy.optimize import brentq

from nhw import backends

from nhw.toolchain.nir.importer import import_nir


@dataclass(frozen=True)
class RampCase:
    """Parameters of the reference case (seconds, and current per second)."""

    tau: float = 0.02
    tau_ref: float = 0.002
    slope: float = 20.0
    duration: float = 0.5


@dataclass(frozen=True)
class RampComparison:
    """Differences between a target's run and the analytic solution."""

    target: str
    dt: float
    n_spikes_sim: int
    n_spikes_exact: int
    max_spike_time_error: float
    max_voltage_error_before_first_spike: float

    def row(self) -> str:
        """One line of the comparison table."""
        return (f"{self.target:<11} dt={self.dt:g}  spikes {self.n_spikes_sim}/{self.n_spikes_exact}  "
                f"max |spike time error| {self.max_spike_time_error * 1e3:.3f} ms  "
                f"max |v error| before 1st spike {self.max_voltage_error_before_first_spike:.2e}")


def ramp_graph(case: RampCase = RampCase()) -> nir.NIRGraph:
    """The one-neuron NIR graph: Input -> LIF -> Output."""
    one = np.ones(1)
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([1])}),
            "lif": nir.LIF(tau=case.tau * one, r=one, v_leak=0 * one, v_threshold=one, v_reset=0 * one,
                           metadata={"tau_ref": case.tau_ref}),
            "output": nir.Output(output_type={"output": np.array([1])}),
        },
        edges=[("input", "lif"), ("lif", "output")],
    )


def exact_voltage(t: np.ndarray, t0: float, case: RampCase) -> np.ndarray:
    """Analytic voltage for ``t >= t0`` given ``v(t0) = 0`` (no threshold)."""
    c = -case.slope * (t0 - case.tau) * np.exp(t0 / case.tau)
    return case.slope * (t - case.tau) + c * np.exp(-t / case.tau)


def exact_spike_times(case: RampCase = RampCase()) -> np.ndarray:
    """Spike times of the analytic solution within ``case.duration``."""
    spikes, t0 = [], 0.0
    while True:
        f = lambda t: exact_voltage(np.asarray(t), t0, case) - 1.0  # noqa: E731
        if f(case.duration) < 0:
            return np.asarray(spikes)
        t_spike = brentq(f, t0, case.duration, xtol=1e-12)
        spikes.append(t_spike)
        t0 = t_spike + case.tau_ref


def compare_target(target: str, case: RampCase = RampCase(), dt: float = 0.001) -> RampComparison:
    """Run the imported reference graph on ``target`` and compare with the analytic solution.

    Parameters
    ----------
    target
        A registered backend name.
    case
        Neuron and ramp parameters.
    dt
        Simulation time step.
    """
    imported = import_nir(ramp_graph(case))
    imported.inputs["input"].output = lambda t: case.slope * t
    ens = imported.objects["lif"]
    with imported.network:
        voltage = nengo.Probe(ens.neurons, "voltage")
    with backends.get(target)(imported.network, dt=dt, progress_bar=False) as sim:
        sim.run(case.duration)
        t = sim.trange()
        spikes = np.asarray(sim.data[imported.outputs["output"]]).reshape(-1)
        v = np.asarray(sim.data[voltage]).reshape(-1)
    sim_times = t[spikes > 0]
    exact = exact_spike_times(case)
    n = min(len(sim_times), len(exact))
    # a spike recorded at step k happened within (t_k - dt, t_k]
    spike_err = float(np.max(np.abs(sim_times[:n] - exact[:n]))) if n else float("inf")
    # up to the step before the first spike (that step's sample is already reset)
    before = t < (exact[0] - dt if len(exact) else case.duration)
    v_err = float(np.max(np.abs(v[before] - exact_voltage(t[before], 0.0, case)))) if before.any() else 0.0
    return RampComparison(target, dt, len(sim_times), len(exact), spike_err, v_err)

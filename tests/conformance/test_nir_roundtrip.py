"""NIR round trips and the NIR paper's single-neuron reference case.

Round trip: export -> nir.write -> nir.read -> import must reproduce the original
network spike for spike on ``reference`` (both run nengo's own arithmetic on the
same parameters).  Reference case: one LIF neuron driven by a ramp, against the
analytic solution, on every available target.
"""

import nengo
import nir
import numpy as np
import pytest

from nhw import backends
from nhw.toolchain.nir.export import export_nir
from nhw.toolchain.nir.importer import import_nir
from nir_reference import RampCase, compare_target, exact_spike_times
from nhw.toolchain.parity_networks import NETWORKS, Tolerance

#: standard networks NIR can express (PES learning cannot: learning rules)
EXPRESSIBLE = ["communication_channel", "sin_x2_chain", "integrator", "oscillator",
               "circular_convolution", "basal_ganglia", "neuron_chain"]


@pytest.mark.parametrize("name", EXPRESSIBLE)
def test_round_trip_is_spike_identical_on_reference(name, tmp_path):
    case = NETWORKS[name].case(n_per_dim=20)
    with nengo.Simulator(case.network, progress_bar=False) as sim:
        sim.run_steps(case.n_steps)
        original = {k: sim.data[p] for k, p in case.probes.items()}
    exported = export_nir(case.network)
    path = tmp_path / f"{name}.nir"
    nir.write(str(path), exported.graph)
    imported = import_nir(nir.read(str(path)))
    # replay every input as the original run saw it, random signals included
    for node in case.network.all_nodes:
        name_in = exported.names.get(node)
        if name_in in imported.inputs:
            imported.inputs[name_in].output = _replay(case.network, node, case.n_steps)
    with nengo.Simulator(imported.network, progress_bar=False) as sim:
        sim.run_steps(case.n_steps)
        for probe_name, probe in case.probes.items():
            got = sim.data[imported.outputs[exported.names[probe]]]
            assert np.allclose(got, original[probe_name], atol=1e-9), probe_name


def _replay(network, node, n_steps, dt=0.001):
    """The node's output as nengo.Simulator(network) produced it, replayed by step."""
    with network:
        probe = nengo.Probe(node)
    try:
        with nengo.Simulator(network, progress_bar=False) as sim:
            sim.run_steps(n_steps)
            values = np.array(sim.data[probe])
    finally:
        network.probes.remove(probe)
    return lambda t: values[min(int(round(t / dt)) - 1, n_steps - 1)]


def test_analytic_spike_times_are_sane():
    times = exact_spike_times(RampCase())
    assert len(times) > 10 and np.all(np.diff(times) > RampCase().tau_ref)


#: target -> (ramp, max spike-time error, max voltage error before the first spike).
#: Float targets integrate nengo's LIF update: within one step of the analytic times.
#: loihi-emu gets the input current as spikes from on/off generators (the chip has no
#: analog input) and quantised state, so it runs a gentler ramp (currents up to 2,
#: not 10, which saturate the generators: 29 of 70 spikes) and is held to 10 ms.
REFERENCE_CASE = {
    "loihi-emu": (RampCase(slope=2.0, duration=1.0), 0.010, 0.01),
}


@pytest.mark.parametrize("target", backends.available())
def test_reference_case_against_analytic_solution(target):
    case, max_dt, max_dv = REFERENCE_CASE.get(target, (RampCase(), 0.001, 0.02))
    result = compare_target(target, case, dt=0.001)
    print(result.row())
    # a target allowed to lag by max_dt may push the spikes of the run's last max_dt
    # past its end (the chip's whole-step refractory period makes loihi-emu lag)
    late = int(np.sum(exact_spike_times(case) > case.duration - max_dt))
    assert result.n_spikes_exact - late <= result.n_spikes_sim <= result.n_spikes_exact
    assert result.max_spike_time_error <= max_dt
    assert result.max_voltage_error_before_first_spike < max_dv


def test_reference_case_converges_with_dt():
    fine = compare_target("reference", dt=0.0001)
    assert fine.max_spike_time_error <= 0.0001 and fine.max_voltage_error_before_first_spike < 0.002


#: Imported NIR graphs carry fixed neuron-to-neuron weights, solved for nengo's LIF
#: rate curve.  loihi-emu cannot re-solve them for the chip's whole-step spike periods
#: (it does for nengo's own decoded connections: rmse 0.016 there), so the error is
#: larger: measured rmse 0.13 (a) and 0.26 (b), max 0.25 / 0.44, on signals of 0.8.
IMPORTED_TOLERANCE = {"loihi-emu": Tolerance(0.35, 0.6)}


@pytest.mark.parametrize("target", [t for t in backends.available() if t != "reference"])
def test_imported_network_runs_on_every_target(target):
    case = NETWORKS["communication_channel"].case(n_per_dim=30)
    exported = export_nir(case.network)
    imported = import_nir(exported.graph)
    stim = next(n for n in case.network.all_nodes if exported.names.get(n) in imported.inputs)
    imported.inputs[exported.names[stim]].output = stim.output
    runs = {}
    for name in ("reference", target):
        with backends.get(name)(imported.network, progress_bar=False) as sim:
            sim.run_steps(case.n_steps)
            runs[name] = {p: np.asarray(sim.data[imported.outputs[exported.names[probe]]])
                          for p, probe in case.probes.items()}
    for p in case.probes:
        tol = IMPORTED_TOLERANCE.get(target) or NETWORKS["communication_channel"].tolerance_for(target, p)
        err = runs[target][p] - runs["reference"][p]
        assert np.sqrt(np.mean(err**2)) <= tol.rmse and np.max(np.abs(err)) <= tol.max_abs, (target, p)

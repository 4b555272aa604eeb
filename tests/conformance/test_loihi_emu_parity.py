"""loihi-emu against nengo's reference simulator, and its build-time errors.

Tolerances (decoded outputs, RMSE vs reference over the run, probes filtered as
stated): communication channel < 0.1 for both decode strategies; sin(x^2) chain
< 0.1; integrator < 0.1; oscillator < 0.2.  Single-neuron rates are compared with
the discretised rate model (SPEC.md) within 1 Hz.
"""

from __future__ import annotations

import json
import warnings

import nengo
import numpy as np
import pytest

from nhw import backends
from nhw.backends.loihi_emu import Simulator
from nhw.hw_emulator import rates
from nhw.hw_emulator.chip import LOIHI_V1
from nhw.errors import DiscretizationError, ResourceError, UnsupportedFeatureError


def _rmse(a, b):
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def _both(net, seconds, **kw):
    with nengo.Simulator(net, progress_bar=False) as ref:
        ref.run(seconds)
    with Simulator(net, **kw) as emu:
        emu.run(seconds)
    return ref, emu


def _channel():
    with nengo.Network(seed=3) as net:
        stim = nengo.Node(lambda t: np.sin(2 * np.pi * t))
        a = nengo.Ensemble(100, 1)
        b = nengo.Ensemble(100, 1)
        nengo.Connection(stim, a)
        nengo.Connection(a, b)
        pb = nengo.Probe(b, synapse=0.02)
    return net, pb


@pytest.mark.parametrize("decode", ["weights", "neurons"])
def test_communication_channel(decode):
    net, pb = _channel()
    ref, emu = _both(net, 1.0, decode=decode)
    assert _rmse(emu.data[pb], ref.data[pb]) < 0.1


def test_sin_x2_chain_error_comparable_to_reference():
    with nengo.Network(seed=0) as net:
        stim = nengo.Node(lambda t: np.sin(2 * np.pi * t))
        a = nengo.Ensemble(100, 1)
        b = nengo.Ensemble(100, 1)
        nengo.Connection(stim, a)
        nengo.Connection(a, b, function=lambda x: x**2)
        pb = nengo.Probe(b, synapse=0.02)
        px = nengo.Probe(stim, synapse=0.02)
    ref, emu = _both(net, 1.0)
    ideal = ref.data[px] ** 2
    assert _rmse(emu.data[pb], ref.data[pb]) < 0.1
    assert _rmse(emu.data[pb], ideal) < _rmse(ref.data[pb], ideal) + 0.05


def test_integrator():
    with nengo.Network(seed=1) as net:
        stim = nengo.Node(lambda t: 1.0 if 0.1 < t < 0.4 else 0.0)
        ens = nengo.Ensemble(200, 1)
        nengo.Connection(stim, ens, transform=0.1 * 2.0, synapse=0.1)
        nengo.Connection(ens, ens, synapse=0.1)
        p = nengo.Probe(ens, synapse=0.02)
    ref, emu = _both(net, 1.0)
    assert _rmse(emu.data[p], ref.data[p]) < 0.1


def test_oscillator():
    with nengo.Network(seed=2) as net:
        kick = nengo.Node(lambda t: [1, 0] if t < 0.1 else [0, 0])
        ens = nengo.Ensemble(200, 2)
        w = 2 * np.pi * 1.0 * 0.1
        nengo.Connection(kick, ens)
        nengo.Connection(ens, ens, transform=[[1, -w], [w, 1]], synapse=0.1)
        p = nengo.Probe(ens, synapse=0.02)
    ref, emu = _both(net, 1.0)
    assert _rmse(emu.data[p], ref.data[p]) < 0.2


@pytest.mark.parametrize("neuron_type", [nengo.LIF(), nengo.LIF(tau_rc=0.05, tau_ref=0.005),
                                         nengo.SpikingRectifiedLinear()])
def test_single_neuron_rates_match_discretised_model(neuron_type):
    gains, biases = np.ones(4), np.array([1.5, 3.0, 8.0, 20.0])
    with nengo.Network(seed=0) as net:
        ens = nengo.Ensemble(4, 1, neuron_type=neuron_type, gain=gains, bias=biases)
        p = nengo.Probe(ens.neurons)
    T = 2.0
    with Simulator(net) as sim:
        sim.run(T)
        block = sim.mapped.ensemble_blocks[ens]
        measured = (sim.data[p] > 0).sum(axis=0) / T
        assert np.allclose(sim.data[p][sim.data[p] > 0], 1.0 / sim.dt)  # nengo's spike amplitude
    for i in range(4):
        period = rates.compartment_period(int(block.bias[i]), int(block.decay_v[i]), int(block.vth[i]),
                                          int(block.refractory_delay[i]))
        predicted = 1.0 / (period * sim.dt)
        # spikes are counted in whole periods within T, hence one period of slack
        assert abs(measured[i] - predicted) <= max(1.0, predicted * period * sim.dt / T)


def test_probes_voltage_node_sample_every_and_reset():
    with nengo.Network(seed=0) as net:
        stim = nengo.Node(np.sin)
        ens = nengo.Ensemble(10, 1)
        nengo.Connection(stim, ens)
        pv = nengo.Probe(ens.neurons, "voltage")
        pn = nengo.Probe(stim, sample_every=0.005)
        pd = nengo.Probe(ens, synapse=0.01)
    with Simulator(net) as sim:
        sim.run(0.1)
        assert sim.data[pv].shape == (100, 10)
        assert 0 <= sim.data[pv].min() and sim.data[pv].max() <= 1.0
        assert sim.data[pn].shape == (20, 1) and len(sim.trange(sample_every=0.005)) == 20
        assert np.allclose(sim.data[pn][:, 0], np.sin(sim.trange(sample_every=0.005)))
        first = sim.data[pd].copy()
        sim.reset()
        sim.run(0.1)
        assert np.array_equal(first, sim.data[pd])
        report = sim.hardware_report()
        assert report.n_steps == 100 and report.total_spikes > 0
        assert json.loads(report.to_json())["n_cores"] == report.n_cores


@pytest.mark.parametrize("closed_loop", [False, True])
def test_neuron_input_current_probe_matches_reference(closed_loop):
    """``Probe(ens.neurons, "input")`` reads ``(u + bias) / c``: nengo's J, quantised
    (both the batched and the step-by-step run paths)."""
    with nengo.Network(seed=1) as net:
        stim = nengo.Node(lambda t: np.sin(6 * t))
        a = nengo.Ensemble(40, 1)
        nengo.Connection(stim, a)
        b = nengo.Ensemble(40, 1)
        nengo.Connection(a, b, synapse=0.01)
        if closed_loop:
            host = nengo.Node(size_in=1)
            nengo.Connection(b, host)
            nengo.Connection(host, a, transform=0.1)
        pa = nengo.Probe(a.neurons, "input")
        pb = nengo.Probe(b.neurons, "input", synapse=0.01)
    data = {}
    for target in ("reference", "loihi-emu"):
        with backends.get(target)(net, progress_bar=False) as sim:
            sim.run(0.4)
            data[target] = (sim.data[pa], sim.data[pb])
    for ref, emu in zip(data["reference"], data["loihi-emu"]):
        assert emu.shape == ref.shape == (400, 40)
        # measured: rmse 0.25-0.7 on currents spanning -500..40, correlation 0.9999+
        assert np.sqrt(np.mean((emu - ref) ** 2)) < 0.01 * np.ptp(ref)
        assert np.corrcoef(emu.ravel(), ref.ravel())[0, 1] > 0.999


def test_closed_loop_through_host_node():
    with nengo.Network(seed=0) as net:
        stim = nengo.Node(0.5)
        a = nengo.Ensemble(100, 1)
        relay = nengo.Node(lambda t, x: -x, size_in=1)
        b = nengo.Ensemble(100, 1)
        nengo.Connection(stim, a)
        nengo.Connection(a, relay)
        nengo.Connection(relay, b)
        p = nengo.Probe(b, synapse=0.05)
    ref, emu = _both(net, 0.5)
    assert emu._closed_loop
    assert _rmse(emu.data[p][200:], ref.data[p][200:]) < 0.1


def test_neuron_to_neuron_and_multiple_synapses():
    with nengo.Network(seed=0) as net:
        stim = nengo.Node(0.6)
        a = nengo.Ensemble(50, 1)
        b = nengo.Ensemble(50, 1)
        nengo.Connection(stim, a)
        nengo.Connection(a.neurons, b.neurons, transform=np.eye(50) * 0.02, synapse=0.01)
        nengo.Connection(stim, b, synapse=0.05)
        p = nengo.Probe(b, synapse=0.05)
    ref, emu = _both(net, 0.5)
    assert any(blk.is_dendrite for blk in emu.mapped.chip.blocks)  # two time constants
    assert _rmse(emu.data[p][200:], ref.data[p][200:]) < 0.15


@pytest.mark.parametrize("seed", [0, 1])
def test_dense_random_neuron_weights_do_not_wrap_the_accumulator(seed):
    # dense uniform(-1, 1) weights: the excitatory half of the sources spiking in one
    # step is the worst case for q; a bound on the signed sum wrapped q 279 (seed 0)
    # and 496 (seed 1) times in this run and shifted the decoded output
    from nhw.toolchain.parity_networks import neuron_chain

    case = neuron_chain(1, 50, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # the backend's wrap warning
        with Simulator(case.network, seed=seed) as emu:
            emu.run_steps(case.n_steps)
    assert emu.emulator.q_overflows == 0

def test_resource_errors_name_object_and_numbers():
    with nengo.Network() as net:
        for i in range(130):
            nengo.Ensemble(5, 1, label=f"e{i}")
    with pytest.raises(ResourceError, match=r"needs 130 cores; 1 chip\(s\) x 128 cores = 128"):
        Simulator(net, pack=False, n_chips=1)  # a fixed board (the default is sized to the network)
    Simulator(net, pack=False, n_chips=2).close()
    small = LOIHI_V1.with_limits(synapse_memory_bytes=256)
    with nengo.Network(seed=0) as net2:
        a = nengo.Ensemble(200, 1, label="wide")
        b = nengo.Ensemble(10, 1, label="narrow")
        nengo.Connection(a, b)
    with pytest.raises(ResourceError, match=r"Block 'narrow' neuron \d+: synapse memory [\d.]+ KiB exceeds 0.2 KiB"):
        Simulator(net2, chip=small, decode="weights")  # auto would route it through decode neurons


def test_unsupported_features_name_object_and_alternative():
    with nengo.Network() as net:
        nengo.Ensemble(10, 1, neuron_type=nengo.Direct(), label="direct")
    with pytest.raises(UnsupportedFeatureError, match=r"Ensemble 'direct'.*nengo.LIF"):
        Simulator(net)
    with nengo.Network() as net:
        a = nengo.Ensemble(10, 1, label="a")
        b = nengo.Ensemble(10, 1, label="b")
        nengo.Connection(a, b, synapse=nengo.Alpha(0.01))
    with pytest.raises(UnsupportedFeatureError, match=r"Alpha.*nengo.Lowpass"):
        Simulator(net)
    with nengo.Network() as net:
        a = nengo.Ensemble(10, 1)
        b = nengo.Ensemble(10, 1)
        nengo.Connection(a.neurons, b.neurons, transform=np.zeros((10, 10)), learning_rule_type=nengo.BCM())
    with pytest.raises(UnsupportedFeatureError, match="BCM.*nengo.PES only"):
        Simulator(net)
    with nengo.Network() as net:
        a = nengo.Ensemble(10, 1)
        nengo.Probe(a, "input")
    with pytest.raises(UnsupportedFeatureError, match="probing 'input'"):
        Simulator(net)
    with nengo.Network() as net:
        a = nengo.Ensemble(10, 1, label="slow")
        nengo.Connection(a, a, synapse=100.0)
    with pytest.raises(DiscretizationError, match="tau=100"):
        Simulator(net)


def test_unknown_option_lists_the_available_ones():
    with nengo.Network() as net:
        nengo.Ensemble(5, 1)
    with pytest.raises(TypeError, match=r"unknown option\(s\) 'optimize'; available: decode, .*input_pairs"):
        Simulator(net, optimize=False)


def test_host_encoder_saturation_warns():
    with nengo.Network(seed=0) as net:
        stim = nengo.Node(lambda t: 5.0)  # a function: its range is unknown at build time
        const = nengo.Node(5.0)  # a constant: the encoder is sized for it
        a = nengo.Ensemble(20, 1)
        b = nengo.Ensemble(20, 1)
        nengo.Connection(stim, a)
        nengo.Connection(const, b)
    with Simulator(net) as sim, warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        sim.run(0.05)
    msgs = [str(x.message) for x in w if "spike encoder" in str(x.message)]
    assert len(msgs) == 1 and "Node" in msgs[0]


def test_unseeded_process_node_matches_reference_stream():
    # regression: host processes draw their seeds from the simulator's rng like nengo's
    with nengo.Network(seed=4) as net:
        stim = nengo.Node(nengo.processes.WhiteSignal(0.5, high=5))
        p = nengo.Probe(stim)
    with nengo.Simulator(net, seed=0, progress_bar=False) as ref:
        ref.run(0.1)
    with Simulator(net, seed=0) as emu:
        emu.run(0.1)
    assert np.allclose(emu.data[p], ref.data[p])


def test_long_run_equals_the_same_run_in_pieces():
    """A run longer than one host batch (1000 steps) keeps counting time across batches.

    Regression: every batch of one ``run_steps`` call restarted host time at t = dt,
    so PresentInput replayed its first items (a converted CNN lost half its accuracy).
    """
    with nengo.Network(seed=5) as net:
        stim = nengo.Node(nengo.processes.PresentInput(np.linspace(-1, 1, 25)[:, None], 0.1))
        a = nengo.Ensemble(60, 1)
        nengo.Connection(stim, a)
        p_in, p_a = nengo.Probe(stim), nengo.Probe(a, synapse=0.01)
    with Simulator(net) as whole:
        whole.run_steps(2500)
    with Simulator(net) as pieces:
        for n in (1000, 1000, 500):
            pieces.run_steps(n)
    assert np.array_equal(whole.trange(), pieces.trange())
    assert np.array_equal(whole.data[p_in], pieces.data[p_in])
    assert np.allclose(whole.data[p_a], pieces.data[p_a])
    # the stimulus really advanced: its last item is shown at the end
    assert np.allclose(whole.data[p_in][-1], 1.0)


#: Decoded standard networks (ideal run: nengo.Direct) and the seeds their error ratio is
#: averaged over: all five where a run is cheap; the two 4-D networks (several seconds a
#: seed) over three, where their per-seed ratios already agree (benchmarks/chip_accuracy.py
#: gives all five seeds of every network)
DECODED_NETWORKS = {
    "communication_channel": range(5),
    "sin_x2_chain": range(5),
    "integrator": range(5),
    "oscillator": range(5),
    "circular_convolution": range(3),
    "basal_ganglia": range(3),
    # PES is taught post = stim: its ideal is that channel (benchmarks.chip_accuracy.TAUGHT)
    "pes_learning": range(5),
}


@pytest.mark.parametrize("name", sorted(DECODED_NETWORKS))
def test_decoded_error_follows_reference(name):
    # decoders solved on the chip's rate curve: loihi-emu's error against the ideal
    # (the network with nengo.Direct neurons) stays within 1.25x of reference's own,
    # averaged over seeds, on every probe that passes through neurons
    from benchmarks.chip_accuracy import measure

    rows = measure(name, DECODED_NETWORKS[name])
    assert {r.ideal for r in rows} == {"taught" if name == "pes_learning" else "direct"}
    checked = [r for r in rows if not np.isnan(r.ratio)]  # a Node's own probe is exact on both
    assert checked
    for r in checked:
        assert np.mean(r.emulator) <= 1.25 * np.mean(r.reference), (r.probe, r.reference, r.emulator)
    _assert_parity_tolerances(name, rows)


def _assert_parity_tolerances(name, rows):
    # the same runs against reference: the declared loihi-emu tolerance holds on every seed
    from nhw.toolchain.parity_networks import NETWORKS

    for r in rows:
        tol = NETWORKS[name].tolerance_for("loihi-emu", r.probe)
        assert max(r.parity_rmse) <= tol.rmse and max(r.parity_max) <= tol.max_abs, (r.probe, tol, r)


def test_rate_ideal_network_neuron_chain():
    # neuron->neuron weights are compared with the network's rate-mode twin; the chip's
    # rate curve (whole-step periods) is not absorbed by decoders there, so the
    # comparison that must follow reference is loihi-emu against the same rate network
    # on the chip's rate curve
    from benchmarks.chip_accuracy import measure

    rows = measure("neuron_chain", range(5), chip_curve=True)
    assert {r.ideal for r in rows} == {"rate"}
    for r in rows:
        if r.probe == "b_rates":
            # raw rates: the rate curve alone moves them further from nengo's than spikes do
            assert np.mean(r.curve) > np.mean(r.reference), r
        assert np.mean(r.emu_vs_curve) <= 1.25 * np.mean(r.reference), (r.probe, r.reference, r.emu_vs_curve)
    _assert_parity_tolerances("neuron_chain", rows)

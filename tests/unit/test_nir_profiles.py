"""NIR export/import profiles for the field's peers (snnTorch, Norse, Rockpool, Sinabs).

Structure: no identity ``Scale``, neurons with ``r = 1`` and ``v_leak = 0``, weights
scaled as each profile documents.  Numerics: the profile's graph read back with the
matching ``--from`` convention and run on the reference simulator reproduces the
original network's per-neuron spike counts (within ``TOL_SPIKES``) and outputs.
"""

import nengo
import nir
import numpy as np
import pytest
from click.testing import CliRunner
from nhw.toolchain.nir.export import export_nir
from nhw.toolchain.nir.importer import import_nir
from nhw.toolchain.nir.profiles import PROFILES, from_profile, get_profile, to_profile

from nhw.errors import NIRError

PEERS = [p for p in PROFILES if p != "spec"]
#: per-neuron spike-count tolerance over T seconds (exact algebra; float rounding only)
TOL_SPIKES = 1
#: a CubaLIF's bias passes its synapse in peer profiles: a start-up transient of a few tau_syn
TOL_SPIKES_CUBA = 2
T = 0.5
ZERO_V = {"voltage": nengo.dists.Choice([0.0])}  # peers start at 0


def _ff(synapse=None, seed=3):
    """Input -> LIF a (direct weights) -> LIF b (decoded) -> passthrough Node -> probes."""
    rng = np.random.RandomState(seed)
    with nengo.Network(seed=seed) as net:
        stim = nengo.Node([0.6, -0.3, 0.8], label="stim")
        a = nengo.Ensemble(12, 1, neuron_type=nengo.LIF(tau_ref=0, initial_state=ZERO_V), label="a")
        b = nengo.Ensemble(10, 1, neuron_type=nengo.LIF(tau_ref=0, initial_state=ZERO_V), label="b")
        out = nengo.Node(size_in=1, label="out")
        nengo.Connection(stim, a.neurons, transform=rng.uniform(-1, 1, (12, 3)), synapse=synapse)
        nengo.Connection(a, b, synapse=synapse)
        nengo.Connection(b, out, synapse=None)
        nengo.Probe(a.neurons, label="a_spikes")
        nengo.Probe(b.neurons, label="b_spikes")
        nengo.Probe(out, synapse=0.02, label="value")
    return net


def _digits_like(seed=4):
    """The digits classifier's shape: Input -> spiking ReLU (IF) -> Node (logits)."""
    rng = np.random.RandomState(seed)
    with nengo.Network(seed=seed) as net:
        inp = nengo.Node(rng.uniform(0, 1, 16), label="input")
        hidden = nengo.Ensemble(20, 1, neuron_type=nengo.SpikingRectifiedLinear(initial_state=ZERO_V),
                                max_rates=nengo.dists.Choice([200]), intercepts=nengo.dists.Choice([0.0]),
                                label="hidden")
        out = nengo.Node(size_in=4, label="output")
        nengo.Connection(inp, hidden.neurons, transform=rng.normal(0, 0.3, (20, 16)), synapse=None)
        nengo.Connection(hidden.neurons, out, transform=rng.normal(0, 0.3, (4, 20)), synapse=None)
        nengo.Probe(hidden.neurons, label="hidden_spikes")
        nengo.Probe(out, synapse=0.01, label="logits")
    return net


def _run_original(net):
    with nengo.Simulator(net, progress_bar=False) as sim:
        sim.run(T)
    return {p.label: sim.data[p] for p in net.all_probes}, sim.dt


def _simulate(net, graph, profile):
    names = {p: p.label for p in net.all_probes}
    names.update({n: n.label for n in net.all_nodes if n.output is not None and n.size_in == 0})
    imported = import_nir(from_profile(graph, profile))
    for node in net.all_nodes:
        if node.label in imported.inputs:
            imported.inputs[node.label].output = np.asarray(node.output)
    with nengo.Simulator(imported.network, progress_bar=False) as sim:
        sim.run(T)
    return {k: sim.data[p] for k, p in imported.outputs.items()}


def _export(net, profile):
    names = {p: p.label for p in net.all_probes}
    names.update({n: n.label for n in net.all_nodes if n.output is not None and n.size_in == 0})
    return export_nir(net, profile=profile, names=names).graph


def _structure(graph):
    assert not any(isinstance(n, nir.Scale) for n in graph.nodes.values())
    for name, node in graph.nodes.items():
        if isinstance(node, (nir.LIF, nir.IF, nir.CubaLIF)):
            if not (isinstance(node, nir.CubaLIF) and graph.metadata["nhw_profile"] == "snntorch"):
                assert np.all(np.asarray(node.r) == 1), name
            assert np.all(np.asarray(getattr(node, "v_leak", 0)) == 0), name
            assert "v_init" not in (node.metadata or {})


@pytest.mark.parametrize("profile", PEERS)
def test_feedforward_lif_structure_and_equivalence(profile):
    net = _ff()
    spec, graph = _export(net, "spec"), _export(net, profile)
    _structure(graph)
    assert graph.metadata["nhw_profile"] == profile
    assert not any(isinstance(n, nir.LI) for n in graph.nodes.values())  # probe filter left out
    assert graph.nodes["value"].metadata["nhw_probe_taus"] == [0.02]
    # documented weight scaling: rows x gain (= spec r) and, after a spiking layer, x 1/dt_peer
    pdt = get_profile(profile).peer_dt(0.001)
    w_spec = np.asarray(spec.nodes["conn_1"].weight) * np.asarray(spec.nodes["b"].r)[:, None]
    step = 1 / pdt if get_profile(profile).spikes_per_step else 1.0
    # sinabs adds a LIF's input once per step: its weights and bias carry nengo's step factor
    per_step = -np.expm1(-pdt / 0.02) if nir.LIF in get_profile(profile).input_per_step else 1.0
    assert np.allclose(graph.nodes["conn_1"].weight, w_spec * step * per_step)
    assert np.allclose(graph.nodes["conn_1"].bias, np.asarray(spec.nodes["b"].v_leak) * per_step)
    if profile == "sinabs":
        assert all(type(n) is not nir.Linear for n in graph.nodes.values())
        assert np.allclose(graph.nodes["a"].tau, 0.02 / 0.001)  # in steps
    ref, _ = _run_original(net)
    got = _simulate(net, graph, profile)
    for probe in ("a_spikes", "b_spikes"):
        counts_ref = (ref[probe] > 0).sum(0)
        counts_got = (got[probe] > 0).sum(0)
        assert np.abs(counts_ref - counts_got).max() <= TOL_SPIKES, (probe, counts_ref, counts_got)
    assert np.allclose(ref["value"], got["value"], atol=1e-6)


@pytest.mark.parametrize("profile", ["snntorch", "norse", "rockpool"])
def test_cubalif_bias_through_synapse(profile):
    net = _ff(synapse=0.005)
    graph = _export(net, profile)
    _structure(graph)
    assert any(isinstance(n, nir.CubaLIF) for n in graph.nodes.values())
    if profile == "snntorch":
        b = graph.nodes["b"]
        # written for snnTorch's Euler step: 1 - dt/tau_mem' = exp(-dt/tau_mem)
        assert np.allclose(b.tau_mem, 1e-4 / -np.expm1(-1e-4 / 0.02))
        assert np.allclose(b.r, b.tau_mem / 1e-4)  # snnTorch's CubaLIF requirement
    ref, _ = _run_original(net)
    got = _simulate(net, graph, profile)
    for probe in ("a_spikes", "b_spikes"):
        diff = np.abs((ref[probe] > 0).sum(0) - (got[probe] > 0).sum(0))
        assert diff.max() <= TOL_SPIKES_CUBA, (probe, diff)


def test_sinabs_refuses_cubalif():
    with pytest.raises(NIRError, match="CubaLIF .*cannot be read by sinabs"):
        _export(_ff(synapse=0.005), "sinabs")


@pytest.mark.parametrize("profile", ["sinabs", "norse", "snntorch"])
def test_spiking_relu_digits_shape(profile):
    net = _digits_like()
    graph = _export(net, profile)
    _structure(graph)
    neuron = nir.LIF if profile == "snntorch" else nir.IF  # snnTorch reads IF as a leaky neuron
    assert {type(n) for n in graph.nodes.values()} <= {nir.Input, nir.Output, neuron, nir.Linear, nir.Affine}
    hidden = graph.nodes["hidden"]
    if profile == "snntorch":  # an integrator to 0.1 % over 1000 steps
        assert np.allclose(hidden.tau, 2 ** 20 * 1e-4) and hidden.metadata["nhw_if_as_lif"] > 0
        assert 1 - 1e-4 / hidden.tau[0] == np.float32(1 - 2 ** -20)
    ref, _ = _run_original(net)
    got = _simulate(net, graph, profile)
    diff = np.abs((ref["hidden_spikes"] > 0).sum(0) - (got["hidden_spikes"] > 0).sum(0))
    assert diff.max() <= TOL_SPIKES
    assert np.allclose(ref["logits"], got["logits"], atol=1e-6)


def test_if_refused_where_peer_lacks_it():
    with pytest.raises(NIRError, match="node 'hidden': IF .*cannot be read by rockpool"):
        _export(_digits_like(), "rockpool")


def test_refractory_period_that_matters_is_refused_naming_the_ensemble():
    with nengo.Network(seed=0) as net:
        stim = nengo.Node([0.5], label="stim")
        ens = nengo.Ensemble(10, 1, label="slowpoke")  # nengo's LIF: tau_ref = 2 ms, 200-400 Hz
        nengo.Connection(stim, ens, synapse=None)
    with pytest.raises(NIRError, match="ensemble 'slowpoke': refractory period tau_ref=0.002"):
        export_nir(net, profile="snntorch")
    assert export_nir(net).graph.nodes["slowpoke"].metadata["tau_ref"] == 0.002  # spec keeps it
    # a refractory period far below the firing interval does not matter
    with nengo.Network(seed=0) as net:
        stim = nengo.Node([0.5], label="stim")
        ens = nengo.Ensemble(10, 1, neuron_type=nengo.LIF(tau_ref=1e-5), max_rates=nengo.dists.Choice([50]),
                             label="fine")
        nengo.Connection(stim, ens, synapse=None)
    export_nir(net, profile="snntorch")


def test_filter_inside_the_network_is_refused():
    with nengo.Network(seed=0) as net:
        stim = nengo.Node([0.5], label="stim")
        mid = nengo.Node(size_in=1, label="mid")
        ens = nengo.Ensemble(5, 1, neuron_type=nengo.LIF(tau_ref=0), label="e")
        nengo.Connection(stim, mid, synapse=0.01)
        nengo.Connection(mid, ens, synapse=None)
    with pytest.raises(NIRError, match="LI .*cannot be read by norse"):
        export_nir(net, profile="norse")


def test_registry_and_unknown_names():
    assert set(PROFILES) == {"spec", "snntorch", "norse", "rockpool", "sinabs"}
    assert all(p.doc for p in PROFILES.values())
    with pytest.raises(NIRError, match="unknown NIR profile 'brian'"):
        export_nir(_ff(), profile="brian")
    spec = _export(_ff(), "spec")
    assert to_profile(spec, "spec", dt=0.001) is spec


def test_imports_refuse_files_that_cannot_be_what_they_claim():
    net = _ff()
    spec = _export(net, "spec")
    with pytest.raises(NIRError, match="not a snntorch NIR file:(.|\n)*r != 1"):
        from_profile(spec, "snntorch")
    with pytest.raises(NIRError, match="exported by nhw for sinabs, not norse"):
        from_profile(_export(net, "sinabs"), "norse")
    stripped = _export(net, "norse")
    stripped.metadata.pop("nhw_profile")
    with pytest.raises(NIRError, match="not in steps"):
        from_profile(stripped, "sinabs")
    sinabs = _export(net, "sinabs")
    sinabs.metadata.pop("nhw_profile")
    with pytest.raises(NIRError, match="in steps .*not norse"):
        from_profile(sinabs, "norse")


def test_cli_export_for_and_import_from(tmp_path):
    from nhw.toolchain.cli import main

    run = lambda *a: CliRunner().invoke(main, list(a), catch_exceptions=False)
    f = tmp_path / "cc.nir"
    out = run("export", "configs/parity/communication_channel.yaml", "-o", str(f), "--for", "snntorch")
    assert out.exit_code == 2 and "refractory period" in out.output  # NEF ensembles: tau_ref matters
    cfg = tmp_path / "d.yaml"
    net = _ff()
    nir.write(str(f), _export(net, "snntorch"))
    out = run("import", str(f), "--from", "snntorch", "-o", str(cfg))
    assert out.exit_code == 0, out.output
    assert (tmp_path / "d.nir").is_file() and "path: d.nir" in cfg.read_text()
    out = run("import", str(f), "--from", "sinabs", "-o", str(tmp_path / "e.yaml"))
    assert out.exit_code == 2 and "exported by nhw for snntorch" in out.output


def test_lower_voltage_bound_is_recorded_and_its_loss_listed():
    """nengo's LIF clamps at min_voltage = 0; NIR's and the peers' LIF do not."""
    net = _ff()
    spec = export_nir(net)
    assert spec.graph.nodes["a"].metadata["min_voltage"] == 0.0 and not spec.remainder
    peer = export_nir(net, profile="norse")
    lost = [line for line in peer.remainder if line.startswith("lower voltage bound")]
    assert any("ensemble 'a': nengo clamps its voltage at min_voltage=0 and norse has no lower bound" in line
               for line in lost), peer.remainder
    assert peer.graph.metadata["nhw_unclamped"]
    # NIR's unbounded LIF exactly: nothing lost, and nhw imports it unbounded
    with nengo.Network(seed=1) as free:
        stim = nengo.Node([0.5, -0.5], label="stim")
        e = nengo.Ensemble(4, 1, neuron_type=nengo.LIF(tau_ref=0, min_voltage=-np.inf), label="e")
        nengo.Connection(stim, e.neurons, transform=[[1, -1]] * 4, synapse=None)
    out = export_nir(free, profile="snntorch")
    assert not out.remainder and "nhw_unclamped" not in out.graph.metadata
    imported = import_nir(from_profile(out.graph, "snntorch"))
    assert imported.objects["e"].neuron_type.min_voltage == -np.inf


def test_peer_files_import_without_a_lower_bound():
    """A peer-written LIF (no nhw metadata) is unbounded: inhibition drives it below 0,
    so it fires later than nengo's clamped LIF would."""
    n = 1
    graph = nir.NIRGraph(nodes={
        "in": nir.Input(input_type={"input": np.array([1])}),
        "w": nir.Linear(np.array([[1.0]])),
        "lif": nir.LIF(tau=np.full(n, 0.02), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n),
                       v_reset=np.zeros(n)),
        "out": nir.Output(output_type={"output": np.array([n])})},
        edges=[("in", "w"), ("w", "lif"), ("lif", "out")])
    imported = import_nir(from_profile(graph, "norse", dt=0.001))
    assert imported.objects["lif"].neuron_type.min_voltage == -np.inf
    # input -1 for 50 ms then +2: unbounded, the voltage starts its rise from about -1
    imported.inputs["in"].output = lambda t: [-1.0 if t < 0.05 else 2.0]
    with nengo.Simulator(imported.network, progress_bar=False) as sim:
        sim.run(0.1)
    first = sim.trange()[np.flatnonzero(sim.data[imported.outputs["out"]][:, 0])[0]]
    # clamped at 0 it would first fire 0.02 * ln(2) = 13.9 ms after 50 ms; from -1, 0.02 * ln(3) = 22 ms
    assert first - 0.05 > 0.018
    assert import_nir(graph).objects["lif"].neuron_type.min_voltage == 0.0  # strict import: nengo's default


def test_snntorch_euler_time_constants_round_trip():
    """snnTorch's Euler step with the written tau equals nengo's exact step with the
    original one, and ``--from snntorch`` reads the original back."""
    from nhw.toolchain.nir.profiles import euler_tau, exact_tau

    tau, dt = np.array([0.002, 0.02, 0.5]), 1e-4
    written = euler_tau(tau, dt)
    assert np.allclose(1 - dt / written, np.exp(-dt / tau))
    assert np.allclose(exact_tau(written, dt), tau)
    with pytest.raises(NIRError, match="<= dt"):
        exact_tau(np.array([1e-4]), dt, "node 'x' tau")


def test_norse_own_export_time_constants_are_read_back_when_asked():
    """Norse 1.1's to_nir writes ``dt * tau``; ``own_export=True`` divides by ``dt`` (then
    maps Norse's Euler step to nengo's), and refuses nhw's own exports."""
    from nhw.toolchain.nir.profiles import exact_tau

    dt, tau, n = 1e-4, 0.02, 2
    graph = nir.NIRGraph(nodes={
        "in": nir.Input(input_type={"input": np.array([n])}),
        "w": nir.Affine(np.eye(n), np.zeros(n)),
        "lif": nir.LIF(tau=np.full(n, dt * tau), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n),
                       v_reset=np.zeros(n)),
        "out": nir.Output(output_type={"output": np.array([n])})},
        edges=[("in", "w"), ("w", "lif"), ("lif", "out")])
    read = from_profile(graph, "norse", dt=dt, own_export=True)
    assert np.allclose(read.nodes["lif"].tau, exact_tau(np.full(n, tau), dt))
    with pytest.raises(NIRError, match="<= dt.*own_export=True"):  # as written, 2e-6 s is below the step
        from_profile(graph, "norse", dt=dt)
    nhw_file = _export(_ff(), "norse")
    with pytest.raises(NIRError, match="exported by nhw for norse"):
        from_profile(nhw_file, "norse", own_export=True)

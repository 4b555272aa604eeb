"""Default loihi-emu options fit real networks (issue 28 item 4).

A chain of 1000-neuron ensembles with decoded connections deploys with default
options: ``decode="auto"`` maps the connections through decode neurons (dense
weights would need many cores of synapse memory), the board is sized to the network,
and ``decode="weights"`` still works by splitting output axons across cores.
"""

from __future__ import annotations

import textwrap
import time

import nengo
import numpy as np
import pytest

from nhw import backends
from nhw.backends.loihi_emu import Simulator
from nhw.errors import ResourceError
from nhw.hw_emulator.chip import LOIHI_V1


def chain(n_ens: int, n: int, seed: int = 0) -> tuple[nengo.Network, nengo.Probe]:
    """``n_ens`` ensembles of ``n`` LIF neurons (1-D) in a decoded chain, input into the first."""
    with nengo.Network(seed=seed, label="chain") as net:
        stim = nengo.Node(lambda t: 0.8 * np.sin(2 * np.pi * t), label="stim")
        ens = [nengo.Ensemble(n, 1, label=f"ens{i}") for i in range(n_ens)]
        nengo.Connection(stim, ens[0])
        for a, b in zip(ens[:-1], ens[1:]):
            nengo.Connection(a, b)
        probe = nengo.Probe(ens[-1], synapse=0.02, label="out")
    return net, probe


def _deploy_and_compare(n_ens: int, seconds: float) -> dict:
    net, probe = chain(n_ens, 1000)
    t0 = time.perf_counter()
    with backends.get("loihi-emu")(net, progress_bar=False) as emu:
        t1 = time.perf_counter()
        emu.run(seconds)
        t2 = time.perf_counter()
        rep, choices, y = emu.hardware_report(), dict(emu.mapped.decode_choices), emu.data[probe]
    with backends.get("reference")(net, progress_bar=False) as ref:
        t3 = time.perf_counter()
        ref.run(seconds)
        t4 = time.perf_counter()
        y_ref = ref.data[probe]
    return {"report": rep, "choices": choices, "build_s": t1 - t0, "emu_s": t2 - t1, "ref_s": t4 - t3,
            "rmse": float(np.sqrt(np.mean((y - y_ref) ** 2)))}


def test_scaled_chain_deploys_with_default_options():
    # 6 x 1000: dense weights would need ~19 cores of synapse memory per target
    r = _deploy_and_compare(6, 0.5)
    assert set(r["choices"].values()) == {"neurons"} and len(r["choices"]) == 5
    rep = r["report"]
    assert rep.board_chips is None and rep.n_chips == 1
    assert 6 <= rep.n_cores <= 12
    assert f"used: {rep.n_cores} core(s) on 1 chip(s)" in rep.to_table()
    # five decode-neuron hops: spike noise, no extra filter per hop
    assert r["rmse"] < 0.08, r["rmse"]


@pytest.mark.slow
def test_full_chain_20_x_1000_deploys_with_default_options():
    r = _deploy_and_compare(20, 1.0)
    assert set(r["choices"].values()) == {"neurons"} and len(r["choices"]) == 19
    assert r["report"].n_chips == 1 and r["report"].n_cores <= LOIHI_V1.cores_per_chip
    assert r["rmse"] < 0.25, r["rmse"]  # 19 decode-neuron hops


def test_auto_keeps_weights_where_they_fit():
    net, _ = chain(3, 100)
    with Simulator(net, progress_bar=False) as sim:
        assert set(sim.mapped.decode_choices.values()) == {"weights"}
        assert not any(".decode" in b.label for b in sim.mapped.chip.blocks)
    with Simulator(net, progress_bar=False, decode="neurons") as sim:
        assert set(sim.mapped.decode_choices.values()) == {"neurons"}
        # decode_synapse="post": unfiltered into the decode neurons, conn synapse out
        taus = {g.target.label: int(g.target.decay_u[0]) for g in sim.mapped.chip.groups}
        assert any(v == LOIHI_V1.decay_max for k, v in taus.items() if ".decode" in k)
    with pytest.raises(ValueError, match="decode_synapse='mid'"):
        Simulator(net, decode_synapse="mid")
    with pytest.raises(ValueError, match="decode='dense'; expected one of auto, weights, neurons"):
        Simulator(net, decode="dense")


def test_auto_switches_the_largest_input_first():
    # with a budget of the post's one core: either input alone fits it (200 x 300 and
    # 150 x 300 synapses of 19 bits < 1 Mibit), both do not: only the larger goes
    # through decode neurons
    with nengo.Network(seed=1) as net:
        a, b, post = (nengo.Ensemble(n, 1, label=lbl) for n, lbl in ((200, "a"), (150, "b"), (300, "post")))
        ca, cb = nengo.Connection(a, post), nengo.Connection(b, post)
    with Simulator(net, progress_bar=False, auto_core_factor=1) as sim:
        assert sim.mapped.decode_choices == {ca: "neurons", cb: "weights"}
    # the default budget (4 cores' worth) keeps both as exact weights
    with Simulator(net, progress_bar=False) as sim:
        assert sim.mapped.decode_choices == {ca: "weights", cb: "weights"}


def test_weights_split_output_axons_and_fixed_board_errors():
    net, _ = chain(2, 1000)
    with Simulator(net, progress_bar=False, decode="weights") as sim:
        limit = sim.options.spec.output_axons_per_core
        cores = sim.placement.cores
        assert all(c.output_axons <= limit for c in cores)
        src = sim.mapped.ensemble_blocks[net.ensembles[0]]
        # every ens0 neuron reaches each of ens1's synapse-memory pieces: ens0 is split
        assert len(np.unique(sim.placement.core_of[src])) > 1
        n_cores = len(cores)
    small = LOIHI_V1.with_limits(cores_per_chip=8)
    need = -(-n_cores // 8)
    with pytest.raises(ResourceError, match=rf"needs {n_cores} cores; 1 chip\(s\) x 8 cores = 8 available, "
                                            rf"{need} chip\(s\) needed"):
        Simulator(net, decode="weights", n_chips=1, chip=small)
    with Simulator(net, progress_bar=False, decode="weights", chip=small) as sim:
        assert sim.hardware_report().n_chips == need


FACTORY = '''
import nengo

def chain(n_ens=2, n=150, seed=0):
    with nengo.Network(seed=seed) as net:
        stim = nengo.Node(0.5, label="stim")
        ens = [nengo.Ensemble(n, 1, label=f"ens{i}") for i in range(n_ens)]
        nengo.Connection(stim, ens[0])
        for a, b in zip(ens[:-1], ens[1:]):
            nengo.Connection(a, b)
        return net, {"out": nengo.Probe(ens[-1], synapse=0.02)}
'''


@pytest.mark.parametrize("options, choice, board", [
    ({}, "weights", None),
    ({"decode": "neurons", "n_chips": 2}, "neurons", 2),
])
def test_yaml_deploy_options_reach_the_simulator(tmp_path, monkeypatch, options, choice, board):
    from nhw.toolchain.config.loader import from_dict
    from nhw.toolchain.deploy import deploy

    (tmp_path / "fit_factory.py").write_text(textwrap.dedent(FACTORY))
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = from_dict({
        "version": 1, "name": "fit", "seed": 0,
        "network": {"factory": "fit_factory:chain", "params": {"n_ens": 2, "n": 150}},
        "deploy": {"target": "loihi-emu", "n_steps": 50, "plots": False,
                   "options": {"loihi-emu": options}},
    })
    result = deploy(cfg)
    rep = result.run.hardware_report
    assert rep.board_chips == board
    assert "used:" in rep.to_table()
    # the mapping choice shows in the chip program: decode neurons are their own block
    assert any(".decode" in c.contents for c in rep.cores) == (choice == "neurons")

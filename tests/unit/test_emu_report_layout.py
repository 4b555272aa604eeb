"""The hardware report's placement-only part is computed once per simulator; the figures are
those of a per-synapse count (what the report summed before the layout was kept)."""

from __future__ import annotations

import nengo
import numpy as np
import pytest
from nhw.backends.loihi_emu import simulator as emu_simulator
from nhw.backends.loihi_emu.simulator import Simulator
from nhw.hw_emulator.blocks import InputAxons
from nhw.hw_emulator.report import build_report
from nhw.hw_emulator.report_layout import report_layout, synapse_group_memory


def _network(learning: bool) -> nengo.Network:
    with nengo.Network(seed=3) as net:
        stim = nengo.Node(lambda t: [np.sin(6 * t), np.cos(4 * t)])
        a = nengo.Ensemble(120, 2)
        b = nengo.Ensemble(90, 2)
        nengo.Connection(stim, a)
        c = nengo.Connection(a, b, function=lambda x: x ** 2)
        if learning:
            c.learning_rule_type = nengo.PES(learning_rate=1e-4)
            err = nengo.Ensemble(60, 2)
            nengo.Connection(b, err)
            nengo.Connection(stim, err, transform=-1)
            nengo.Connection(err, c.learning_rule)
        nengo.Probe(b, synapse=0.01)
    return net


def _per_synapse(sim) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spikes, synaptic ops and active updates per core, synapse by synapse (independent of the layout)."""
    pl, em = sim.placement, sim.emulator
    n = len(pl.cores)
    spikes, synops, active = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64)
    for b in pl.net.blocks:
        for i, core in enumerate(pl.core_of[b]):
            spikes[core] += em.spike_count[em.slice_of(b)][i]
            active[core] += em.active_count[em.slice_of(b)][i]
    for g in pl.net.groups:
        counts = (em.input_count[em.input_slice(g.source)] if isinstance(g.source, InputAxons)
                  else em.spike_count[em.slice_of(g.source)])
        src, tgt, _ = g.coo()
        for s, t in zip(src, tgt):
            synops[pl.core_of[g.target][t]] += counts[s]
    return spikes, synops, active


@pytest.mark.parametrize("learning", [False, True], ids=["fixed", "pes"])
def test_report_figures_equal_a_per_synapse_count_after_every_reset(learning):
    with Simulator(_network(learning), seed=1, progress_bar=False, decode="weights") as sim:
        for run in range(3):
            if run:
                sim.reset(seed=1 + run)
            sim.run_steps(60 + 20 * run)
            rep = sim.hardware_report()
            spikes, synops, active = _per_synapse(sim)
            assert [c.spikes for c in rep.cores] == spikes.tolist()
            assert [c.synaptic_ops for c in rep.cores] == synops.tolist()
            assert [c.active_updates for c in rep.cores] == active.tolist()
            assert rep.total_synaptic_ops == int(synops.sum()) > 0
            assert rep.n_steps == 60 + 20 * run
            assert rep.synapse_groups == synapse_group_memory(sim.placement)
            if learning:
                lw = next(iter(sim.emulator.learned.values()))[1]
                assert lw.epochs > 0
                assert rep.total_synaptic_updates == lw.epochs * sum(
                    g.n_synapses for g in sim.placement.net.groups if g.learning is not None)
            # the kept layout gives the report a fresh layout gives
            assert rep.as_dict() == build_report(sim.placement, sim.emulator, sim.mapped.quantization,
                                                 sim.dt).as_dict()


def test_reset_does_not_rebuild_the_report_layout(monkeypatch):
    calls = []

    def counting(placement):
        calls.append(placement)
        return report_layout(placement)

    monkeypatch.setattr(emu_simulator, "report_layout", counting)
    with Simulator(_network(False), seed=1, progress_bar=False) as sim:
        reports = []
        for item in range(4):
            if item:
                sim.reset()
            sim.run_steps(40)
            reports.append(sim.hardware_report().as_dict())
        assert calls == [sim.placement]
        # each item runs from the same reset state with a time-only input: the same activity
        assert all(r == reports[0] for r in reports[1:])


def test_reports_do_not_share_mutable_parts():
    with Simulator(_network(False), seed=1, progress_bar=False) as sim:
        sim.run_steps(20)
        one, two = sim.hardware_report(), sim.hardware_report()
        one.synapse_groups[0]["label"] = "changed"
        assert two.synapse_groups[0]["label"] != "changed"


def test_a_layout_of_another_placement_is_refused():
    with Simulator(_network(False), seed=1, progress_bar=False) as a, \
            Simulator(_network(False), seed=1, progress_bar=False) as b:
        with pytest.raises(ValueError, match="layout describes placement"):
            build_report(a.placement, a.emulator, None, a.dt, report_layout(b.placement))

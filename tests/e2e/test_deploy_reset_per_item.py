"""``deploy.reset_per_item``: every fed sample runs from the initial state, on every target."""

from __future__ import annotations

import nengo
import numpy as np
import pytest

from nhw import backends
from nhw.errors import ConfigError
from nhw.toolchain.config import load_config
from nhw.toolchain.deploy import deploy
from nhw.toolchain.experiment import build_network, load_data

SMALL = ["network.params.n_hidden=16", "deploy.n_items=4", "deploy.plots=false"]


def _fresh_run(cfg, item: np.ndarray, steps: int, target: str) -> np.ndarray:
    # the same network built anew, the sample held from t = 0: what a reset must reproduce
    built = build_network(cfg)
    built.inputs[cfg.deploy.feed].output = item
    with backends.get(target)(built.network, dt=cfg.deploy.dt, seed=cfg.seed, progress_bar=False) as sim:
        sim.run_steps(steps)
        return np.asarray(sim.data[built.probes[cfg.deploy.classify]])


@pytest.mark.parametrize("target", [t for t in ("reference", "loihi-emu") if t in backends.available()])
def test_each_item_runs_as_from_a_fresh_simulator(target):
    cfg = load_config("configs/digits.yaml", [*SMALL, "deploy.reset_per_item=true"])
    result = deploy(cfg, target=target)
    steps = int(round(cfg.deploy.presentation_time / cfg.deploy.dt))
    out = result.run.data[cfg.deploy.classify]
    assert out.shape[0] == 4 * steps
    assert np.allclose(result.run.t, (np.arange(4 * steps) + 1) * cfg.deploy.dt)  # time counts on
    x = load_data(cfg).x_test
    for i in range(4):
        np.testing.assert_allclose(out[i * steps:(i + 1) * steps], _fresh_run(cfg, x[i], steps, target))
    # one continuous run differs from the second item on (state carries over)
    continuous = deploy(load_config("configs/digits.yaml", SMALL), target=target).run.data[cfg.deploy.classify]
    assert np.allclose(continuous[:steps], out[:steps]) and not np.allclose(continuous[steps:], out[steps:])
    assert result.metrics["n_scored"] == 4


def test_reset_per_item_needs_a_fed_input():
    with pytest.raises(ConfigError, match="reset_per_item.*deploy.feed"):
        load_config("configs/quickstart.yaml", ["deploy.reset_per_item=true"])


def test_item_feed_plays_flat_samples_and_series():
    from nhw.toolchain.experiment.feed import ItemFeed

    flat = ItemFeed(np.arange(6.0).reshape(3, 2), 0.001, steps=5)
    assert flat.steps == 5 and np.array_equal(flat(0.004), [0, 1])
    flat.show(2)
    assert np.array_equal(flat(0.001), [4, 5])
    series = ItemFeed(np.arange(12.0).reshape(2, 3, 2), 0.001, steps=None)
    series.show(1)
    assert series.steps == 3
    assert [series(k * 0.001)[0] for k in (1, 2, 3, 4)] == [6, 8, 10, 10]  # held at its last step
    with nengo.Network():
        assert nengo.Node(series).size_out == 2


@pytest.mark.skipif("loihi-emu" not in backends.available(), reason="needs loihi-emu")
def test_hardware_report_counts_every_item():
    # a reset zeroes the emulator's activity counters: the run's report sums the items'
    cfg = load_config("configs/digits.yaml", [*SMALL, "deploy.reset_per_item=true"])
    run = deploy(cfg, target="loihi-emu").run
    rep, spikes = run.hardware_report, run.data["hidden"]
    steps = 4 * int(round(cfg.deploy.presentation_time / cfg.deploy.dt))
    assert rep.n_steps == steps
    assert rep.total_spikes == int(np.count_nonzero(spikes)) > 0  # every item's spikes, not the last one's
    assert rep.spikes_per_step == pytest.approx(rep.total_spikes / steps)
    assert rep.energy_estimate_per_step_j == pytest.approx(rep.energy_estimate_j / steps)
    assert sum(c.spikes for c in rep.cores) == rep.total_spikes


def test_combined_report_sums_activity_and_rederives_per_step_figures():
    from dataclasses import replace

    from nhw.hw_emulator.report import CoreReport, HardwareReport, combine_reports

    core = CoreReport(0, 0, "a", 10, 1024, 1, 4096, 1, 4096, 1.0, 131072, spikes=4, synaptic_ops=40,
                      active_updates=10, inactive_updates=0, time_estimate_s=2e-6)
    one = HardwareReport("c", 1, 1, 10, 0.001, cores=[core], total_spikes=4, total_synaptic_ops=40,
                         energy_estimate_j=1e-9, energy_estimate_per_step_j=1e-10, time_estimate_per_step_s=2e-7)
    two = replace(one, n_steps=30, cores=[replace(core, spikes=8, time_estimate_s=9e-6)], total_spikes=8,
                  energy_estimate_j=3e-9)
    both = combine_reports([one, two])
    assert both.n_steps == 40 and both.total_spikes == 12 and both.cores[0].spikes == 12
    assert both.spikes_per_step == pytest.approx(0.3)
    assert both.energy_estimate_j == pytest.approx(4e-9) and both.energy_estimate_per_step_j == pytest.approx(1e-10)
    assert both.time_estimate_per_step_s == pytest.approx(11e-6 / 40)
    with pytest.raises(ValueError, match="differently placed"):
        combine_reports([one, replace(one, cores=[replace(core, compartments=11)])])

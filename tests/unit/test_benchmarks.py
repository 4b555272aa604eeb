"""The benchmark harness's bookkeeping (no measurement)."""

from __future__ import annotations

import pytest

from benchmarks.run import _better, _table


def _row(target, speed, peak, **extra):
    return {"target": target, "network": "integrator", "dims": 16, "minibatch": 1, "build_s": 1.0,
            "import_s": 0.0, "first_run_s": 0.5, "steps_per_s": speed, "sample_steps_per_s": speed,
            "peak_mb": peak, **extra}


def test_rounds_keep_the_fastest_measurement_and_the_largest_peak():
    slow, fast = _row("tensorflow", 100.0, 900.0, round=1), _row("tensorflow", 300.0, 800.0, round=2)
    assert _better(None, slow) is slow
    kept = _better(slow, fast)
    assert kept["round"] == 2 and kept["sample_steps_per_s"] == 300.0 and kept["peak_mb"] == 900.0
    assert _better(kept, {"error": "timed out"}) is kept
    assert _better({"error": "timed out"}, slow) is slow


def test_table_ratios_are_against_reference_of_the_same_run():
    table = _table([_row("reference", 100.0, 100.0), _row("tensorflow", 250.0, 700.0)])
    line = [ln for ln in table.splitlines() if ln.startswith("tensorflow")][0]
    assert line.split()[-1] == "2.50" and line.split()[-2] == "1.00"


def test_xla_layout_probe_shapes_and_table(capsys):
    from benchmarks.xla_layout import main, shapes

    assert shapes(96) == [(96,), (24, 4), (12, 8), (6, 16), (3, 32)]
    assert shapes(7) == [(7,)]
    pytest.importorskip("tensorflow")
    assert main(["--size", "64", "--steps", "3"]) == 0
    rows = [ln.split() for ln in capsys.readouterr().out.splitlines()[1:]]
    assert [r[0] for r in rows] == ["(64,)", "(16,", "(8,", "(4,", "(2,", "(1,"]
    assert rows[0][-1] == "1.00" and all(float(r[-2]) > 0 for r in rows)


def test_ensemble_chain_has_dims_times_chain_length_ensembles():
    import nengo

    from benchmarks.run import CHAIN_LENGTH, EXTRA_NETWORKS, main

    net = EXTRA_NETWORKS["ensemble_chain"](3, 10, 0).network
    assert len(net.all_ensembles) == 3 * CHAIN_LENGTH
    assert all(e.n_neurons == 10 and e.dimensions == 1 for e in net.all_ensembles)
    assert len(net.all_connections) == 3 * CHAIN_LENGTH and len(net.all_probes) == 1
    with nengo.Simulator(net, progress_bar=False) as sim:
        sim.run_steps(5)
    with pytest.raises(SystemExit):
        main(["--networks", "ensemble_chains"])  # unknown names are refused

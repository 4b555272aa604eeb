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


def test_ceiling_counts_each_product_once_and_learned_matrices_apart():
    from benchmarks.ceiling import count_work

    # integrator: encoders (n x d), and the recurrent connection and the probe
    # decode with identical decoders from the same neurons: one d x n product
    work = count_work("integrator", 2, n_per_dim=10)
    assert work == {"macs": 2 * 20 * 2, "matrix_elements": 0, "neurons": {"LIF": 20}}
    # pes: the learned decoders are per-sample matrices, not dense products
    work = count_work("pes", 2, n_per_dim=10)
    assert work["matrix_elements"] == 2 * 20
    assert work["neurons"] == {"LIF": 40}
    # pre and post encoders, and post's decoders (error, probe: identical, one product)
    assert work["macs"] == 3 * 2 * 20


def test_ceiling_floors_and_ratios():
    from benchmarks.ceiling import ceiling

    work = {"macs": 1000, "matrix_elements": 500, "neurons": {"LIF": 100}}
    rates = {"gemm_flops": 1e9, "stream_bytes": 1e9, "lif_s": 1e-9}
    got = ceiling(work, batch=10, ref_steps_per_s=100.0, rates=rates)
    assert got["dense_us"] == pytest.approx(20.0)      # 2 * 1000 * 10 / 1e9 s
    assert got["matrices_us"] == pytest.approx(40.0)   # read + write 500 floats x 10
    assert got["neurons_us"] == pytest.approx(1.0)
    assert got["strict_us"] == pytest.approx(40.0) and got["practical_us"] == pytest.approx(61.0)
    assert got["strict_x"] == pytest.approx(10 / 40e-6 / 100.0)
    no_learning = ceiling(dict(work, matrix_elements=0), 10, 100.0, dict(rates, stream_bytes=float("nan")))
    assert no_learning["matrices_us"] == 0.0 and no_learning["strict_us"] == pytest.approx(20.0)


def test_profile_step_reports_kernel_times():
    import subprocess
    import sys

    pytest.importorskip("tensorflow")
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.profile_step", "integrator", "2", "--n-per-dim", "10",
         "--minibatch", "4", "--steps", "100", "--top", "5"],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert lines[0].startswith("integrator d=2 batch=4:") and "us/step of kernels" in lines[0]
    rows = [ln.split() for ln in lines[1:]]  # kernel names may hold spaces ("end: ...")
    assert 1 <= len(rows) <= 5 and all(r[-3] == "us" and r[-1] == "%" for r in rows), out.stdout
    times = [float(r[-4]) for r in rows]
    # sorted, slowest first; the smallest may print as 0.0 us
    assert times[0] > 0 and times == sorted(times, reverse=True) and min(times) >= 0, out.stdout

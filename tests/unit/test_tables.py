"""Text tables: columns that hold large numbers, literal text, and parity rows of different kinds apart."""

import pytest

from nhw.toolchain import tables
from nhw.toolchain.deploy import summary_table
from nhw.toolchain.parity import ParityReport, ProbeResult
from nhw.toolchain.parity_networks import Tolerance


def _columns(text):
    """Start of each column in the header line (the rule line below it spans the table)."""
    head = text.splitlines()[0]
    starts, prev = [], " "
    for k, ch in enumerate(head):
        if ch != " " and prev == " ":
            starts.append(k)
        prev = ch
    return starts


def test_large_numbers_keep_columns_aligned():
    text = tables.render(["name", "count", "value", "note"],
                         [["a", 1_000_000_000_000, 1e9, "x"], ["bb", 7, -1.5e-7, "y"], ["c", None, float("nan"), "z"]])
    lines = text.splitlines()
    assert set(lines[1]) == {"-"} and len(lines) == 5
    widths = {len(ln) for ln in lines[2:]}
    assert len(widths) == 1  # every row as wide: numbers right-aligned to one edge
    note = _columns(text)[-1]
    assert [ln[note] for ln in lines[2:]] == ["x", "y", "z"]
    assert "1000000000000" in lines[2] and "1e+09" in lines[2] and "-1.5e-07" in lines[3]
    assert lines[4].split()[1:3] == ["-", "-"]


def test_cells_are_literal_and_never_wrapped():
    note = "[bold]RuntimeError[/bold]: " + "device fell over " * 20
    text = tables.render(["target", "result"], [["crash", note]])
    assert note.rstrip() in text and len(text.splitlines()) == 3


def test_row_length_is_checked():
    with pytest.raises(ValueError, match="expected 2 cells"):
        tables.render(["a", "b"], [[1]])


def test_deploy_summary_with_huge_values():
    s = {"network": "n", "target": "reference", "n_steps": 10, "dt": 0.001, "build_s": 0.1, "run_s": 2.0,
         "probes": {"out": {"shape": [10, 3], "min": -2.5e9, "max": 1e12, "mean_abs": 3.0},
                    "spk": {"shape": [10, 400], "min": 0.0, "max": 1000.0, "mean_abs": 1.0, "spikes": 123456789}},
         "metrics": {"out_accuracy": 0.9}, "hardware_note": None}
    text = summary_table(s)
    lines = text.splitlines()
    assert lines[0].startswith("n on reference: 10 steps of 1 ms")
    out, spk = (ln for ln in lines if ln.startswith(("out ", "spk ")))
    assert len(out) <= len(spk) and "-2.5e+09" in out and "1e+12" in out and "10x3" in out
    assert spk.endswith("123456789 spikes")
    assert "out_accuracy: 0.9" in lines


def _report():
    tol = Tolerance(0.02, 0.08)
    return ParityReport(
        results=[ProbeResult("digits", "emu", "output", 158.0, 44.0, tol, False),
                 ProbeResult("digits", "ocl", "output", 1e-8, 5e-9, tol, True),
                 ProbeResult("digits", "emu", "output:decisions", 0.1, 0.1, Tolerance(0.1, 0.1), True,
                             "9/10 decisions agree")],
        skipped=[("digits", "gpu", "not today")])


def test_parity_decisions_have_their_own_columns():
    text = _report().to_table()
    errors, decisions, skipped = text.split("\n\n")
    assert "rmse" in errors.splitlines()[0] and "decisions" not in errors
    head = decisions.splitlines()[0].split()
    assert head == ["network", "target", "decisions", "of", "agree", "need", "result"]
    assert "rmse" not in decisions and "max" not in decisions
    row = decisions.splitlines()[2].split()
    assert row == ["digits", "emu", "output", "9/10", "90%", "pass"]
    assert "skipped: not today" in skipped
    assert "FAIL" in errors and "1e-08" in errors


def test_parity_table_says_fail_only_for_failures():
    report = _report()
    report.results = [r for r in report.results if r.passed]
    assert "FAIL" not in report.to_table()


def _hardware(ops):
    core = {"core": 0, "chip": 0, "contents": "hidden[0:128]", "compartments": 128, "compartments_limit": 1024,
            "input_axons": 4096, "input_axons_limit": 4096, "output_axons": 0, "output_axons_limit": 4096,
            "synapse_memory_bytes": 26112.0, "synapse_memory_limit_bytes": 131072, "spikes": 45662,
            "synaptic_ops": ops}
    return {"chip": "loihi-v1 (spec 1.0)", "n_chips": 1, "n_cores": 2, "n_steps": 100, "dt": 0.001,
            "board_chips": None, "cores": [core, dict(core, core=1, contents="out[0:10]", synaptic_ops=5)],
            "total_spikes": 45662, "total_synaptic_ops": ops, "spikes_per_step": 456.6,
            "synaptic_ops_per_step": ops / 100, "total_synaptic_updates": 0, "learning_saturations": 0,
            "energy_estimate_j": 2.2e-4, "energy_estimate_per_step_j": 1.6e-8, "time_estimate_per_step_s": 2e-6,
            "estimate_note": "ESTIMATE from published figures", "synapse_groups": []}


def test_hardware_table_holds_billions_of_synaptic_ops():
    text = tables.hardware_table(_hardware(12_345_678_901_234))
    lines = text.splitlines()
    assert lines[0] == "Hardware report: loihi-v1 (spec 1.0), 1 chip(s), 2 core(s), 100 steps of 1 ms"
    rows = lines[3:5]
    assert len({len(r) - len(r.rstrip().split()[-1]) for r in rows}) == 1  # contents start in one column
    assert "12345678901234" in rows[0] and "128/1024" in rows[0] and "25.5/128" in rows[0]
    assert "used: 2 core(s) on 1 chip(s) (board sized to the network), 256 compartments" in lines
    assert any(ln.startswith("ESTIMATE energy: 220.000 uJ total") for ln in lines)


def test_hardware_table_matches_the_emulators_report():
    from nhw.hw_emulator.report import CoreReport, HardwareReport

    d = _hardware(10)
    rep = HardwareReport(**{k: v for k, v in d.items() if k != "cores"},
                         cores=[CoreReport(**c) for c in d["cores"]])
    assert tables.hardware_table(rep) == tables.hardware_table(rep.as_dict())
    for line in rep.to_table().splitlines():
        if line.startswith(("used:", "spikes:", "synaptic ops:", "ESTIMATE", "(")):
            assert line in tables.hardware_table(rep)


def test_group_name_is_the_connection_pre_post():
    from nhw.toolchain.tables import group_name

    conn = "<Connection from <Node 'input'> to <Neurons of <Ensemble 'conv1'>>>"
    assert group_name(f"{conn}[{conn}.input->conv1] (shared)") == "input->conv1"
    assert group_name(f"{conn}[conv1->conv2]") == "conv1->conv2"
    assert group_name("plain") == "plain"

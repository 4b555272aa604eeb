"""Plain-text tables for the toolchain's reports, laid out by ``rich``.

Columns size to their widest cell, so large numbers never push a row out of line,
and nothing is wrapped: every row stays on one line for ``grep``.  Text is rendered
to a string without colour or markup (a ``[`` in a note is printed as is), so the
same table goes to a terminal, a pipe and a ``.txt`` file.

>>> print(render(["probe", "max"], [["a", 1e9], ["bb", 0.5]]))
probe     max
-------------
a       1e+09
bb        0.5
"""

from __future__ import annotations

import io
import math
import re
from numbers import Integral, Real
from typing import Any, Iterable, Mapping, Sequence

#: Header rule of ASCII dashes only (rich's Box layout: top, head, head row, mid,
#: row, foot row, foot, bottom), so tables survive any terminal encoding and grep.
_RULE = "    \n    \n -- \n    \n    \n    \n    \n    \n"

#: A console wider than any table, so that rich never wraps a cell.
_UNBOUNDED = 100_000


def number(value: Any, digits: int = 4) -> str:
    """One cell's text: ``-`` for ``None``/NaN, integers in full, reals to ``digits`` significant digits."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, Integral):
        return str(int(value))
    if isinstance(value, Real):
        v = float(value)
        if math.isnan(v):
            return "-"
        return f"{v:.{digits}g}"
    return str(value)


def _numeric(cells: Sequence[Any]) -> bool:
    given = [c for c in cells if c is not None and not (isinstance(c, str) and c in ("", "-"))]
    return bool(given) and all(isinstance(c, Real) and not isinstance(c, bool) for c in given)


def render(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None,
           digits: int = 4, align: Mapping[str, str] | None = None) -> str:
    """A table as text: one header row, a dashed rule, one line per row.

    Parameters
    ----------
    columns
        Header of each column.
    rows
        Cell values, one sequence per row (as long as ``columns``).  Numbers are
        formatted by :func:`number` and right-aligned when a column holds only numbers.
    title
        A line printed above the table.
    digits
        Significant digits of real numbers.
    align
        ``"left"``/``"right"``/``"center"`` per column header, overriding the default.
    """
    from rich import box
    from rich.console import Console
    from rich.table import Table

    rows = [list(r) for r in rows]
    for r in rows:
        if len(r) != len(columns):
            raise ValueError(f"table row {r!r}: expected {len(columns)} cells ({', '.join(columns)}), got {len(r)}")
    table = Table(box=box.Box(_RULE, ascii=True), show_edge=False, pad_edge=False, highlight=False)
    for k, name in enumerate(columns):
        justify = (align or {}).get(name) or ("right" if _numeric([r[k] for r in rows]) else "left")
        table.add_column(name, justify=justify, no_wrap=True)
    for r in rows:
        table.add_row(*(number(c, digits) for c in r))
    buf = io.StringIO()
    console = Console(file=buf, width=_UNBOUNDED, color_system=None, force_terminal=False, markup=False,
                      emoji=False, highlight=False, soft_wrap=False, legacy_windows=False)
    console.print(table)
    lines = [ln.rstrip() for ln in buf.getvalue().splitlines()]
    text = "\n".join(ln for ln in lines if ln.strip())
    return f"{title}\n{text}" if title else text


# ---------------------------------------------------------------- deploy summary


def deploy_summary(s: Mapping[str, Any]) -> str:
    """A deploy run's summary (``summary.json``): a header line, one row per probe, the metrics."""
    head = (f"{s['network']} on {s['target']}: {s['n_steps']} steps of {s['dt'] * 1000:g} ms; "
            f"build {s['build_s']:.2f} s, run {s['run_s']:.2f} s")
    if s.get("neurons"):
        head += f"; {s['neurons']}"
    rows = []
    for name, p in s["probes"].items():
        note = f"{p['spikes']} spikes" if "spikes" in p else ""
        rows.append([name, "x".join(str(n) for n in p["shape"]), p["min"], p["max"], p["mean_abs"], note])
    lines = [head, render(["probe", "shape", "min", "max", "mean|x|", "note"], rows)]
    lines += [f"{name}: {value:.4g}" for name, value in s.get("metrics", {}).items()]
    if s.get("hardware_note"):
        lines.append(s["hardware_note"])
    return "\n".join(lines)


# ---------------------------------------------------------------- parity

_AGREE = re.compile(r"(\d+)/(\d+) decisions agree")


def _verdict(r) -> str:
    return ("pass" if r.passed else "FAIL") + (f": {r.note}" if r.note else "")


def decision_counts(r) -> str:
    """A decision row's ``agreeing/presented`` items (its note), else the agreeing percentage."""
    m = _AGREE.search(r.note or "")
    return f"{m.group(1)}/{m.group(2)}" if m else f"{100 * (1 - r.rmse):.1f}%"


def parity_summary(results: Sequence[Any]) -> str:
    """One line counting probe rows and decision rows apart.

    A decision row (probe ``"<probe>:decisions"``) is a target's classifier decisions,
    not a probe, so it is counted on its own: ``"2 probes within tolerance, 0 out of
    tolerance; decisions: 1 target agrees enough, 1 does not"``.
    """
    probes = [r for r in results if not r.probe.endswith(":decisions")]
    decided = [r for r in results if r.probe.endswith(":decisions")]
    bad = sum(not r.passed for r in probes)
    line = f"{len(probes) - bad} probes within tolerance, {bad} out of tolerance"
    if decided:
        no = sum(not r.passed for r in decided)
        yes = len(decided) - no
        line += (f"; decisions: {yes} target{'' if yes == 1 else 's'} agree{'s' if yes == 1 else ''} enough, "
                 f"{no} do{'es' if no == 1 else ''} not")
    return line


def parity_tables(results: Sequence[Any], skipped: Sequence[tuple[str, str, str]]) -> str:
    """Parity results as text: probe errors, then classifier decisions, then skipped pairs.

    Decision rows (probe ``"<probe>:decisions"``) hold a fraction of items, not an
    error in the probe's units, so they get their own table with ``agree`` (items
    classified as on ``reference``) and ``need`` (the least fraction that passes).
    """
    errors = [r for r in results if not r.probe.endswith(":decisions")]
    decided = [r for r in results if r.probe.endswith(":decisions")]
    parts = []
    if errors or not decided:
        parts.append(render(
            ["network", "target", "probe", "max|err|", "rmse", "tol rmse", "tol max", "result"],
            [[r.network, r.target, r.probe, r.max_abs, r.rmse, r.tolerance.rmse, r.tolerance.max_abs, _verdict(r)]
             for r in errors]))
    if decided:
        rows = []
        for r in decided:
            agree = decision_counts(r)
            note = _AGREE.sub("", r.note or "").strip(" ;,")
            rows.append([r.network, r.target, r.probe.rsplit(":", 1)[0], agree,
                         f"{100 * (1 - r.tolerance.rmse):g}%", ("pass" if r.passed else "FAIL") + (f": {note}" if note else "")])
        parts.append(render(["network", "target", "decisions of", "agree", "need", "result"], rows))
    if skipped:
        parts.append(render(["network", "target", "skipped"], [[n, t, f"skipped: {why}"] for n, t, why in skipped]))
    return "\n\n".join(parts)


# ---------------------------------------------------------------- hardware report


def _kib(nbytes: float) -> str:
    return f"{nbytes / 1024:.1f}"


def group_name(label: str) -> str:
    """A chip synapse group's connection as ``pre->post`` (its label ends ``[...pre->post]``,
    then `` (shared)`` for shared weight lists)."""
    base = label.removesuffix(" (shared)")
    inner = base[base.rfind("[") + 1:].rstrip("]") if base.endswith("]") else base
    return inner.rsplit(".", 1)[-1] if "->" in inner else inner


def hardware_table(report: Any) -> str:
    """A chip hardware report as text: one row per core, then totals and the labelled estimates.

    Parameters
    ----------
    report
        A :class:`~nhw.hw_emulator.report.HardwareReport` or its :meth:`as_dict` form
        (what ``hardware_report.json`` holds).
    """
    d = report.as_dict() if hasattr(report, "as_dict") else dict(report)
    cores = d.get("cores", [])
    head = (f"Hardware report: {d['chip']}, {d['n_chips']} chip(s), {d['n_cores']} core(s), "
            f"{d['n_steps']} steps of {d['dt'] * 1e3:g} ms")
    rows = [[c["core"], c["chip"], f"{c['compartments']}/{c['compartments_limit']}",
             f"{c['input_axons']}/{c['input_axons_limit']}", f"{c['output_axons']}/{c['output_axons_limit']}",
             f"{_kib(c['synapse_memory_bytes'])}/{c['synapse_memory_limit_bytes'] / 1024:.0f}",
             c["spikes"], c["synaptic_ops"], c["contents"]] for c in cores]
    cols = ["core", "chip", "compartments", "axons in", "axons out", "synapse KiB", "spikes", "syn ops", "contents"]
    # "used/limit" cells line up on the right like the numbers they are
    table = render(cols, rows, align={c: "right" for c in cols[2:6]})
    board = "board sized to the network" if d.get("board_chips") is None else f"board of {d['board_chips']} chip(s)"
    comps = sum(c["compartments"] for c in cores)
    lines = [head, table,
             f"used: {d['n_cores']} core(s) on {d['n_chips']} chip(s) ({board}), {comps} compartments",
             f"spikes: {d['total_spikes']} total, {d['spikes_per_step']:.1f} per step",
             f"synaptic ops: {d['total_synaptic_ops']} total, {d['synaptic_ops_per_step']:.1f} per step"]
    for g in d.get("synapse_groups") or []:
        if g["format"] == "shared":
            lines.append(f"shared synapses {group_name(g['label'])}: {_kib(g['synapse_memory_bytes'])} KiB "
                         f"({g['weight_lists']} weight lists, {g['stored']} entries for {g['synapses']} synapses) "
                         f"vs {_kib(g['dense_equivalent_bytes'])} KiB as discrete synapses")
    # the learning and estimate lines as the report's own table words them
    from nhw.hw_emulator.report import estimate_lines, learning_lines

    lines += learning_lines(d) + estimate_lines(d)
    return "\n".join(lines)


__all__ = ["deploy_summary", "hardware_table", "number", "parity_tables", "render"]

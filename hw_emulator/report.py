"""Hardware report of a run: resources per core, activity, and an energy/time *estimate*.

The estimate multiplies event counts by the published pre-silicon per-event figures
of :class:`~nhw.hw_emulator.chip.EnergyModel`; it is labelled as an estimate everywhere
it appears.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from .allocate import Placement
from .blocks import InputAxons
from .emulator import Emulator
from .report_layout import ReportLayout, report_layout, synapse_group_memory

# synapse_group_memory lives with the layout; importable from here as before
__all__ = ["CoreReport", "HardwareReport", "build_report", "combine_reports", "estimate_lines", "learning_lines",
           "synapse_group_memory"]


@dataclass
class CoreReport:
    """Resources and activity of one core."""

    core: int
    chip: int
    contents: str
    compartments: int
    compartments_limit: int
    input_axons: int
    input_axons_limit: int
    output_axons: int
    output_axons_limit: int
    synapse_memory_bytes: float
    synapse_memory_limit_bytes: int
    spikes: int = 0
    synaptic_ops: int = 0
    active_updates: int = 0
    inactive_updates: int = 0
    #: learning-engine weight updates (one per synapse of a learning group per epoch)
    synaptic_updates: int = 0
    #: estimated busy time of the core over the whole run (s), from the per-event figures
    time_estimate_s: float = 0.0


@dataclass
class HardwareReport:
    """What a run used and did on the chip; see :func:`build_report`."""

    chip: str
    n_chips: int
    n_cores: int
    n_steps: int
    dt: float
    #: chips on the board: a fixed ``n_chips``, or ``None`` when sized to the network
    board_chips: int | None = None
    cores: list = field(default_factory=list)
    total_spikes: int = 0
    total_synaptic_ops: int = 0
    spikes_per_step: float = 0.0
    synaptic_ops_per_step: float = 0.0
    total_synaptic_updates: int = 0
    learning_saturations: int = 0
    #: steps in which a PES error reached the chip's error range (clipped), all groups
    learning_error_clipped_steps: int = 0
    #: per learning group: ``label``, ``error_steps``, ``error_clipped_steps``,
    #: ``error_range`` and ``error_peak`` (largest |error| seen, nengo units; ``None``
    #: when the path that sent it did not record it), ``saturations``
    learning: list = field(default_factory=list)
    energy_estimate_j: float = 0.0
    energy_estimate_per_step_j: float = 0.0
    time_estimate_per_step_s: float = 0.0
    estimate_note: str = ""
    quantization: dict = field(default_factory=dict)
    #: synapse memory per synapse group (:func:`synapse_group_memory`)
    synapse_groups: list = field(default_factory=list)

    def as_dict(self) -> dict:
        """Plain-data form (what :meth:`to_json` writes)."""
        d = asdict(self)
        d["quantization"] = {k: (v.as_dict() if hasattr(v, "as_dict") else v) for k, v in self.quantization.items()}
        return d

    @classmethod
    def combined(cls, reports: list["HardwareReport"]) -> "HardwareReport":
        """:func:`combine_reports` (for callers holding reports, not this module)."""
        return combine_reports(reports)

    def to_json(self, **kw) -> str:
        """JSON text of :meth:`as_dict`."""
        return json.dumps(self.as_dict(), **({"indent": 2} | kw))

    def to_table(self) -> str:
        """A readable multi-line table."""
        lines = [
            f"Hardware report: {self.chip}, {self.n_chips} chip(s), {self.n_cores} core(s), "
            f"{self.n_steps} steps of {self.dt * 1e3:g} ms",
            f"{'core':>5} {'chip':>4} {'compartments':>14} {'axons in':>12} {'axons out':>12} "
            f"{'synapse memory':>22} {'spikes':>9} {'syn ops':>11}  contents",
        ]
        for c in self.cores:
            mem = f"{c.synapse_memory_bytes / 1024:.1f}/{c.synapse_memory_limit_bytes / 1024:.0f} KiB"
            lines.append(
                f"{c.core:>5} {c.chip:>4} {c.compartments:>6}/{c.compartments_limit:<7} "
                f"{c.input_axons:>5}/{c.input_axons_limit:<6} {c.output_axons:>5}/{c.output_axons_limit:<6} "
                f"{mem:>22} {c.spikes:>9} {c.synaptic_ops:>11}  {c.contents}"
            )
        lines += [
            self.summary(),
            f"spikes: {self.total_spikes} total, {self.spikes_per_step:.1f} per step",
            f"synaptic ops: {self.total_synaptic_ops} total, {self.synaptic_ops_per_step:.1f} per step",
        ]
        for g in self.synapse_groups:
            if g["format"] == "shared":
                lines.append(
                    f"shared synapses {g['label']}: {g['synapse_memory_bytes'] / 1024:.1f} KiB "
                    f"({g['weight_lists']} weight lists, {g['stored']} entries for {g['synapses']} synapses) "
                    f"vs {g['dense_equivalent_bytes'] / 1024:.1f} KiB as discrete synapses")
        lines += learning_lines(self.as_dict()) + estimate_lines(self.as_dict())
        return "\n".join(lines)

    def summary(self) -> str:
        """One line: cores and chips used, and how the board was sized."""
        board = ("board sized to the network" if self.board_chips is None
                 else f"board of {self.board_chips} chip(s)")
        comps = sum(c.compartments for c in self.cores)
        return f"used: {self.n_cores} core(s) on {self.n_chips} chip(s) ({board}), {comps} compartments"

    def __str__(self) -> str:
        return self.to_table()


def learning_lines(d: dict) -> list:
    """Report lines on learning (from :meth:`HardwareReport.as_dict`): updates, saturations,
    and per learned connection that clipped, its clipped errors and saturated weights."""
    lines = []
    if d.get("total_synaptic_updates"):
        lines.append(f"learning: {d['total_synaptic_updates']} synaptic weight updates, "
                     f"{d.get('learning_saturations', 0)} saturated at the weight limit, PES error clipped to the "
                     f"chip's range in {d.get('learning_error_clipped_steps', 0)} step(s)")
    for g in d.get("learning") or []:
        if g["error_clipped_steps"] or g["saturations"]:
            peak = "n/a" if g["error_peak"] is None else f"{g['error_peak']:.3g}"
            lines.append(
                f"CLIPPED learning {g['label']}: PES error clipped in {g['error_clipped_steps']} of "
                f"{g['error_steps']} steps (largest |error| {peak}, chip range +-{g['error_range']:.3g}); "
                f"learned weights saturated {g['saturations']} time(s)")
    return lines


def estimate_lines(d: dict) -> list:
    """The energy/time estimate lines of a report (from :meth:`HardwareReport.as_dict`)."""
    energy = (f"ESTIMATE energy: {d['energy_estimate_j'] * 1e6:.3f} uJ total, "
              f"{d['energy_estimate_per_step_j'] * 1e9:.3f} nJ per step (dynamic only, no tile hops)")
    time = (f"ESTIMATE chip time per step: {d['time_estimate_per_step_s'] * 1e6:.3f} us (busiest core's mean "
            "per step: a lower bound on the mean over steps of each step's slowest core)")
    return [energy, time, f"({d.get('estimate_note', '')})"]


def build_report(placement: Placement, emulator: Emulator, quantization: dict | None = None,
                 dt: float = 0.001, layout: ReportLayout | None = None) -> HardwareReport:
    """Summarise resources from ``placement`` and activity counters from ``emulator``.

    Parameters
    ----------
    placement
        Result of :func:`~nhw.hw_emulator.allocate.allocate`.
    emulator
        The emulator whose counters (spikes, inputs, active compartments) to read.
    quantization
        Per-block quantisation reports to include.
    dt
        Time step (s), for the report header.
    layout
        :func:`~nhw.hw_emulator.report_layout.report_layout` of ``placement``, when the
        caller keeps it for several reports (it is computed here otherwise).

    Raises
    ------
    ValueError
        ``layout`` was computed for another placement.
    """
    if layout is None:
        layout = report_layout(placement)
    elif layout.placement is not placement:
        raise ValueError(f"build_report: the layout describes placement {id(layout.placement):#x}; "
                         f"expected the one given, {id(placement):#x}")
    en = placement.board.chip.energy
    n_cores = layout.n_cores
    spikes = np.zeros(n_cores, np.int64)
    synops = np.zeros(n_cores, np.int64)
    synupd = np.zeros(n_cores, np.int64)
    active = np.zeros(n_cores, np.int64)
    comps = layout.compartments
    for b, cores in layout.block_cores:
        sl = emulator.slice_of(b)
        spikes += np.bincount(cores, emulator.spike_count[sl], minlength=n_cores).astype(np.int64)
        active += np.bincount(cores, emulator.active_count[sl], minlength=n_cores).astype(np.int64)
    for g in layout.groups:
        if isinstance(g.source, InputAxons):
            counts = emulator.input_count[emulator.input_slice(g.source)]
        else:
            counts = emulator.spike_count[emulator.slice_of(g.source)]
        synops += np.bincount(g.cores, counts[g.rows] * g.mult, minlength=n_cores).astype(np.int64)
        if g.per_core is not None:
            # the learning engine visits every synapse of the group once per epoch
            synupd += emulator.learned[g.rule][1].epochs * g.per_core
    steps = max(emulator.n_steps, 1)
    inactive = comps * emulator.n_steps - active
    core_ns = (synops * en.synop_ns + active * en.compartment_active_ns
               + inactive * en.compartment_inactive_ns + spikes * en.spike_in_tile_ns
               + synupd * en.synupdate_ns) / steps
    core_reports = [
        CoreReport(*c, int(spikes[i]), int(synops[i]), int(active[i]), int(inactive[i]), int(synupd[i]),
                   float(core_ns[i] * steps * 1e-9))
        for i, c in enumerate(layout.cores)
    ]
    energy_pj = (synops.sum() * en.synop_pj + active.sum() * en.compartment_active_pj
                 + inactive.sum() * en.compartment_inactive_pj + spikes.sum() * en.spike_in_tile_pj
                 + synupd.sum() * en.synupdate_pj)
    return HardwareReport(
        chip=f"{placement.board.chip.name} (spec {placement.board.chip.version})",
        n_chips=placement.n_chips,
        n_cores=n_cores,
        n_steps=emulator.n_steps,
        dt=dt,
        board_chips=placement.board.n_chips,
        cores=core_reports,
        total_spikes=int(spikes.sum()),
        total_synaptic_ops=int(synops.sum()),
        spikes_per_step=float(spikes.sum() / steps),
        synaptic_ops_per_step=float(synops.sum() / steps),
        total_synaptic_updates=int(synupd.sum()),
        learning_saturations=sum(lw.saturations for _, lw in emulator.learned.values()),
        learning_error_clipped_steps=sum(lw.error_clipped_steps for _, lw in emulator.learned.values()),
        learning=[_learning_entry(lw) for _, lw in emulator.learned.values()],
        energy_estimate_j=float(energy_pj * 1e-12),
        energy_estimate_per_step_j=float(energy_pj * 1e-12 / steps),
        time_estimate_per_step_s=float(core_ns.max(initial=0.0) * 1e-9),
        estimate_note=(
            "ESTIMATE from published per-event figures, " + en.source
            + "; cores assumed to run in parallel; chip time per step = max over cores of the core's "
            "busy time per step averaged over the run (per-step maxima are not recorded); "
            "every spike is counted once at the within-tile figure: spikes crossing cores/tiles "
            "(tile hops, 3.0/4.0 pJ and 4.1/6.5 ns per east-west/north-south hop) and between chips "
            "are not modelled; static power and host I/O excluded"
        ),
        quantization=dict(quantization or {}),
        synapse_groups=[dict(g) for g in layout.synapse_groups],
    )


def _learning_entry(lw) -> dict:
    """One learning group's clipping counters, for :attr:`HardwareReport.learning`."""
    scale = float(np.max(lw.rule.error_scale))
    return {
        "label": lw.rule.label,
        "error_steps": int(lw.error_steps),
        "error_clipped_steps": int(lw.error_clipped_steps),
        "error_range": scale * lw.spec.error_max,
        "error_peak": None if lw.error_peak is None else float(lw.error_peak) * scale,
        "saturations": int(lw.saturations),
    }


#: CoreReport fields that count activity (summed when runs are combined)
_ACTIVITY = ("spikes", "synaptic_ops", "active_updates", "inactive_updates", "synaptic_updates", "time_estimate_s")


def combine_reports(reports: list[HardwareReport]) -> HardwareReport:
    """One report for several runs of the same placed network (e.g. one per fed item,
    each from a reset state): activity summed, per-step figures re-derived.

    Raises
    ------
    ValueError
        No reports, or reports of differently placed networks.
    """
    if not reports:
        raise ValueError("combine_reports: expected at least one report, got none")
    first = reports[0]
    layout = [(c.core, c.chip, c.compartments) for c in first.cores]
    for r in reports[1:]:
        if [(c.core, c.chip, c.compartments) for c in r.cores] != layout:
            raise ValueError("combine_reports: the reports describe differently placed networks")
    steps = sum(r.n_steps for r in reports)
    per = max(steps, 1)
    cores = [replace(c, **{f: type(getattr(c, f))(sum(getattr(r.cores[i], f) for r in reports)) for f in _ACTIVITY})
             for i, c in enumerate(first.cores)]
    spikes = sum(c.spikes for c in cores)
    synops = sum(c.synaptic_ops for c in cores)
    energy = sum(r.energy_estimate_j for r in reports)
    return replace(
        first, n_steps=steps, cores=cores, total_spikes=spikes, total_synaptic_ops=synops,
        spikes_per_step=spikes / per, synaptic_ops_per_step=synops / per,
        total_synaptic_updates=sum(r.total_synaptic_updates for r in reports),
        learning_saturations=sum(r.learning_saturations for r in reports),
        learning_error_clipped_steps=sum(r.learning_error_clipped_steps for r in reports),
        learning=_combine_learning([r.learning for r in reports]),
        energy_estimate_j=energy, energy_estimate_per_step_j=energy / per,
        time_estimate_per_step_s=max((c.time_estimate_s for c in cores), default=0.0) / per,
    )


def _combine_learning(runs: list) -> list:
    """Per-group learning counters of several runs: counts summed, the largest peak."""
    if not runs or not runs[0]:
        return []
    out = []
    for i, g in enumerate(runs[0]):
        peaks = [r[i]["error_peak"] for r in runs if i < len(r) and r[i]["error_peak"] is not None]
        out.append(dict(g, **{k: sum(r[i][k] for r in runs if i < len(r))
                              for k in ("error_steps", "error_clipped_steps", "saturations")},
                        error_peak=max(peaks) if peaks else None))
    return out

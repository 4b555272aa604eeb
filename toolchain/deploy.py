"""Deploy an experiment config on a target: build, run, record, plot, report.

>>> cfg = load_config("configs/quickstart.yaml")                  # doctest: +SKIP
>>> result = deploy(cfg, target="reference", out="runs/q")        # doctest: +SKIP
>>> print(result.to_table())                                      # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nhw.toolchain import tables
from nhw.toolchain.config.schema import ExperimentConfig
from nhw.toolchain.experiment import (
    Simulated,
    build_network,
    feed_inputs,
    select_probes,
    simulate,
    spiking_probes,
)


@dataclass
class DeployResult:
    """What :func:`deploy` produced."""

    config: ExperimentConfig
    run: Simulated
    n_steps: int
    spiking: list[str]
    fed: dict[str, np.ndarray] = field(default_factory=dict)
    out: Path | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    #: the scored probe's per-item decisions: probe, labels, predictions, steps_per_item
    classification: dict[str, Any] | None = None
    #: which neuron models the TF simulator computed (a network trained for a chip runs its neurons)
    neurons: str | None = None

    def summary(self) -> dict[str, Any]:
        """Plain-data summary (also stored in the run's manifest)."""
        r = self.run
        return {
            "network": self.config.network.name or self.config.network.factory,
            "target": r.target,
            "n_steps": self.n_steps,
            "dt": self.config.deploy.dt,
            "build_s": round(r.build_s, 4),
            "run_s": round(r.run_s, 4),
            "spiking_probes": self.spiking,
            **({"neurons": self.neurons} if self.neurons else {}),
            "hardware_report": r.hardware_report is not None,
            "hardware_note": r.hardware_note,
            "probes": {n: probe_stats(v, n in self.spiking) for n, v in r.data.items()},
            "metrics": self.metrics,
            **({"classification": self.classification} if self.classification else {}),
        }

    def to_table(self) -> str:
        """Human-readable summary."""
        return summary_table(self.summary())


def probe_stats(y: np.ndarray, spiking: bool = False) -> dict[str, Any]:
    """Shape and value range of one probe (spike counts for spiking probes)."""
    y = np.asarray(y)
    finite = y[np.isfinite(y)] if y.size else y
    stats = {"shape": list(y.shape),
             "min": float(finite.min()) if finite.size else None,
             "max": float(finite.max()) if finite.size else None,
             "mean_abs": float(np.abs(finite).mean()) if finite.size else None}
    if spiking:
        stats["spikes"] = int(np.count_nonzero(y))
    return stats


def summary_table(s: dict[str, Any]) -> str:
    """Render :meth:`DeployResult.summary` as text (see :func:`nhw.toolchain.tables.deploy_summary`)."""
    from nhw.toolchain.tables import deploy_summary

    return deploy_summary(s)


def classify(output: np.ndarray, labels: np.ndarray, steps_per_item: float, name: str = "output") -> dict[str, float]:
    """Accuracy of ``argmax(output)`` over the last 20% of each presentation vs ``labels``.

    The end of each presentation is scored because synapses need time to settle on
    the new input.
    """
    scored = score(output, labels, steps_per_item, name)
    return scored[0] if scored else {}


def score(output: np.ndarray, labels: np.ndarray, steps_per_item: float,
          name: str = "output") -> tuple[dict[str, float], dict[str, Any]] | None:
    """:func:`classify`'s metrics and the per-item record behind them (None: not a classifier run).

    The record holds ``probe``, ``labels``, ``predictions`` and ``steps_per_item``.
    """
    per = int(round(steps_per_item))
    labels = np.asarray(labels).reshape(-1)
    if per < 1 or not np.issubdtype(labels.dtype, np.integer) or len(output) < per * len(labels):
        return None
    preds = decisions(output, len(labels), steps_per_item)
    metrics = {f"{name}_accuracy": float(np.mean(preds == labels)), "n_scored": len(labels)}
    record = {"probe": name, "labels": [int(v) for v in labels], "predictions": [int(v) for v in preds],
              # an integer when it is one: summary.json reads 100, not 100.0
              "steps_per_item": _number(steps_per_item)}
    return metrics, record


def _number(x: float) -> int | float:
    """``x`` as an int when it is one, to 9 decimals (0.1 / 0.001 is 100.00000000000001)."""
    x = round(float(x), 9)
    return int(x) if x.is_integer() else x


def decisions(output: np.ndarray, n_items: int, steps_per_item: float) -> np.ndarray:
    """Per presented item, ``argmax`` of ``output`` averaged over the last 20% of its presentation."""
    per = int(round(steps_per_item))
    start = per - max(1, per // 5)
    return np.array([int(np.argmax(output[i * per + start:(i + 1) * per].mean(axis=0))) for i in range(n_items)])


def deploy(cfg: ExperimentConfig, target: str | None = None, out: str | Path | None = None,
           force: bool = False) -> DeployResult:
    """Build the config's network on a target, run it, and (with ``out``) write a run.

    Parameters
    ----------
    cfg
        A validated config; ``deploy`` says how long to run, what to record and feed.
    target
        Overrides ``cfg.deploy.target``.
    out
        Run directory to write: ``probes.npz`` (probe data and ``t``), ``outputs.png``,
        ``spikes.png`` (spiking probes), ``hardware_report.{json,txt}`` (when the target
        offers one), ``summary.json`` and ``manifest.json``.  ``None`` writes nothing.
    force
        Replace an existing ``out``.
    """
    from nhw.toolchain.artifacts import RunWriter, check_destination

    target = target or cfg.deploy.target
    if out is not None:
        check_destination(out, force)  # fail before the (possibly long) run
    built = build_network(cfg)
    fed = feed_inputs(cfg, built)
    names = cfg.deploy.probes
    if names is not None and cfg.deploy.classify is not None and cfg.deploy.classify not in names:
        names = [*names, cfg.deploy.classify]  # the scored probe is recorded even if not listed
    probes = select_probes(cfg, built, names, "deploy.probes")
    n_steps = cfg.deploy.n_steps or (int(fed["n_steps"]) if fed else built.n_steps)
    sim = simulate(target, built, probes, n_steps, dt=cfg.deploy.dt, seed=cfg.seed,
                   options=cfg.deploy.options.get(target))
    result = DeployResult(cfg, sim, n_steps, spiking_probes(probes), fed)
    if target == "tensorflow" and cfg.frozen is not None:
        chip = cfg.train.target if cfg.train is not None else None
        result.neurons = (f"{chip} neuron models" + (", quantised weights" if cfg.train.quantize else "")
                          if chip else "nengo neuron models")
    if cfg.deploy.classify is not None and fed:
        scored = score(sim.data[cfg.deploy.classify], fed["y"], cfg.deploy.presentation_time / cfg.deploy.dt,
                       cfg.deploy.classify)
        if scored:
            result.metrics, result.classification = scored
    if out is None:
        return result
    with RunWriter(out, "deploy", force=force, config=cfg) as w:
        write_deploy_files(w, result)
        w.summary = result.summary()
    result.out = Path(out)
    return result


def write_deploy_files(w, result: DeployResult) -> None:
    """Write a deploy result's data, plots and report into run writer ``w``."""
    r = result.run
    w.write_npz("probes.npz", {**r.data, "t": r.t})
    if result.fed:
        w.write_npz("inputs.npz", {k: v for k, v in result.fed.items() if k != "n_steps"})
    if r.hardware_report is not None:
        w.write_text("hardware_report.json", r.hardware_report.to_json())
        w.write_text("hardware_report.txt", tables.hardware_table(r.hardware_report) + "\n")
    w.write_json("summary.json", result.summary())
    if result.config.deploy.plots:
        render_plots(w.folder, r.t, r.data, result.spiking, result.config.deploy.max_raster_neurons,
                     f"{result.summary()['network']} on {r.target}", classification=result.classification)


def render_plots(folder: Path, t: np.ndarray, data: dict[str, np.ndarray], spiking: list[str],
                 max_neurons: int = 50, title: str = "", classification: dict[str, Any] | None = None) -> list[Path]:
    """The run's pictures in ``folder``.

    ``outputs.png`` (non-spiking probes), ``spikes.png`` (spiking probes) and, with a
    ``classification`` record (``probe``, ``labels``, ``predictions``,
    ``steps_per_item``: what ``summary.json`` holds under ``classification``),
    ``classifier.png`` (the scored probe's output per item) and ``confusion.png``.
    """
    from nhw.toolchain import plots

    out = []
    decoded = {k: v for k, v in data.items() if k not in spiking}
    if decoded:
        out.append(plots.plot_outputs(t, decoded, folder / "outputs.png", title))
    if spiking:
        out.append(plots.plot_rasters(t, {k: data[k] for k in spiking}, folder / "spikes.png", max_neurons, title))
    if classification:
        c = classification
        out.append(plots.plot_classifier(t, data[c["probe"]], c["labels"], c["predictions"], c["steps_per_item"],
                                         folder / "classifier.png", f"{title}: {c['probe']}"))
        out.append(plots.plot_confusion(c["labels"], c["predictions"], folder / "confusion.png",
                                        f"{title}: {c['probe']}"))
    return out

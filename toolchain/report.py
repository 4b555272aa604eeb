"""Re-render a saved run: its tables from the manifest and JSON, its plots from the npz.

>>> rendered = render_run("runs/quickstart-deploy-...", out="runs/q-report")  # doctest: +SKIP
>>> print(rendered.text)                                                      # doctest: +SKIP
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from nhw.errors import ArtifactError, NhwError
from nhw.toolchain.artifacts import MANIFEST, Run, RunWriter, load_run


@dataclass
class Rendered:
    """The text of a re-rendered run and the plot files written (if any)."""

    run: Run
    text: str
    files: list[Path] = field(default_factory=list)

    def as_dict(self) -> dict:
        """Machine-readable form (``--json``)."""
        m = self.run.manifest
        return {"path": str(self.run.path), "kind": self.run.kind, "config_hash": m.get("config_hash"),
                "seed": m.get("seed"), "versions": m.get("versions"), "summary": self.run.summary,
                "files": [str(f) for f in self.files]}


def _header(run: Run) -> str:
    m = run.manifest
    return (f"{run.path}: {run.kind} run, created {m.get('created', '?')}, nhw {(m.get('versions') or {}).get('nhw', '?')}, "
            f"seed {m.get('seed')}, config {str(m.get('config_hash'))[:12]} ({m.get('config_source')})")


def _deploy(run: Run, folder: Path | None) -> tuple[str, list[Path]]:
    from nhw.toolchain.deploy import render_plots, summary_table
    from nhw.toolchain.tables import hardware_table

    s = run.summary
    text = summary_table(s)
    if "hardware_report.json" in run.files:
        hw = run.json("hardware_report.json")
        text += "\n\n" + hardware_table(hw)
        loss = quantization_loss_table(hw)
        if loss:
            text += "\n\n" + loss
    elif "hardware_report.txt" in run.files:
        text += "\n\n" + (run.path / "hardware_report.txt").read_text(encoding="utf-8").rstrip()
    files: list[Path] = []
    if folder is not None:
        data = run.npz("probes.npz")
        t = data.pop("t")
        max_neurons = (run.manifest.get("config") or {}).get("deploy", {}).get("max_raster_neurons", 50)
        files = render_plots(folder, t, data, s.get("spiking_probes", []), max_neurons,
                             f"{s.get('network')} on {s.get('target')}", classification=s.get("classification"))
    return text, files


def _parity(run: Run, folder: Path | None) -> tuple[str, list[Path]]:
    from nhw.toolchain import plots
    from nhw.toolchain.parity_config import report_from_json
    from nhw.toolchain.tables import parity_summary

    report = report_from_json((run.path / "parity.json").read_text(encoding="utf-8"))
    text = report.to_table() + "\n" + parity_summary(report.results)
    files: list[Path] = []
    if folder is not None and "probes_reference.npz" in run.files:
        ref = run.npz("probes_reference.npz")
        t = ref.pop("t")
        others = {}
        for target in run.summary.get("targets", []):
            d = run.npz(f"probes_{target}.npz")
            d.pop("t", None)
            others[target] = d
        files = [plots.plot_overlay(t, ref, others, report.results, folder / "overlay.png",
                                    f"{run.summary.get('network')}: targets vs reference")]
    return text, files


def _train(run: Run, folder: Path | None) -> tuple[str, list[Path]]:
    from nhw.toolchain.plots import plot_training, training_loss_weights
    from nhw.toolchain.train import train_table

    history = run.json("history.json")
    train = (run.manifest.get("config") or {}).get("train")
    weights = training_loss_weights(train) if train else None
    files = [plot_training(history, folder / "training.png", str(run.summary.get("network")), weights,
                           test=run.summary.get("metrics"))] if folder else []
    text = train_table(run.summary, history)
    trained = trained_quantization_table(run.summary.get("quantization"))
    return (text + "\n\n" + trained if trained else text), files


def quantization_loss_table(report: dict) -> str:
    """The quantisation loss per layer of a chip hardware report ("" when it has none).

    One row per synapse group (a connection into one compartment block): the group's
    weight exponent, the weights clipped to the mantissa range or rounded to zero,
    the mantissa bits left unused by the largest weight, and the relative error of the
    programmed weights vs the float weights the target was given (the trained ones for
    a trained run): ``max |w_chip - w| / max |w|``. Then one row per block for its
    biases (values clipped to the bias register's range).
    """
    from nhw.toolchain.tables import group_name, render

    quant = report.get("quantization") or {}
    rows = []
    for block, q in quant.items():
        for label, g in (q.get("synapse_groups") or {}).items():
            rows.append([block, group_name(label), g.get("exponent"), g.get("n_clipped"), g.get("n_zeroed"),
                         g.get("bits_lost"), g.get("max_rel_error")])
    if not rows:
        return ""
    text = render(["block", "weights (connection)", "exponent", "clipped", "zeroed", "bits lost", "max rel error"],
                  rows, title="Quantisation loss per layer (programmed vs given float weights)")
    biases = [f"{b}: {q.get('bias_clipped', 0)} clipped, exponents {q.get('bias_exponents')}"
              for b, q in quant.items()]
    return text + "\nbiases: " + "; ".join(biases)


def trained_quantization_table(quant: dict | None) -> str:
    """A quantisation-aware training run's cost per quantised parameter ("" when it has none).

    ``quant`` is the train summary's ``quantization`` entry (what
    :meth:`~nhw.backends.tensorflow.builders.chip_quantize.ChipQuantizer.report` returns):
    the chip's values of the trained parameters vs their float values.
    """
    if not quant or not quant.get("quantized"):
        return ""
    from nhw.toolchain.tables import render

    # "fixed": configured trainable=False, quantised all the same (the chip rounds every value)
    rows = [[name, q.get("kind"), "yes" if q.get("trainable", True) else "fixed",
             q.get("max_abs_error"), q.get("max_rel_error"), q.get("n_zeroed")]
            for name, q in quant["quantized"].items()]
    text = render(["parameter", "kind", "trained", "max abs error", "max rel error", "zeroed"], rows,
                  title="Quantisation to the chip's formats (chip values vs trained float values)")
    skipped = quant.get("skipped") or {}
    if skipped:
        text += "\nnot quantised: " + "; ".join(f"{k} ({v})" for k, v in skipped.items())
    return text


def _other(run: Run, folder: Path | None) -> tuple[str, list[Path]]:
    return json.dumps(run.summary, indent=2), []


#: How each kind of run is rendered.
RENDERERS: dict[str, Callable[[Run, Path | None], tuple[str, list[Path]]]] = {
    "deploy": _deploy,
    "parity": _parity,
    "train": _train,
}


def _checked(render: Callable[[Run, Path | None], tuple[str, list[Path]]]):
    """``render`` with a missing summary key or run file reported as one line naming the run."""

    def wrapper(run: Run, folder: Path | None) -> tuple[str, list[Path]]:
        try:
            return render(run, folder)
        except NhwError:
            raise
        except KeyError as exc:
            raise ArtifactError(f"{run.path / MANIFEST}: incomplete {run.kind} run: summary has no key "
                                f"{exc.args[0]!r}") from None
        except FileNotFoundError as exc:
            raise ArtifactError(f"{run.path}: incomplete {run.kind} run: {Path(exc.filename).name} is missing") from None
        except (TypeError, ValueError, AttributeError, OSError) as exc:
            raise ArtifactError(f"{run.path}: cannot render this {run.kind} run: {type(exc).__name__}: {exc}") from None

    return wrapper


def render_run(path: str | Path, out: str | Path | None = None, force: bool = False) -> Rendered:
    """Verify a run directory and re-render it.

    Parameters
    ----------
    path
        A run directory written by ``nhw deploy`` or ``nhw parity``.
    out
        Where to write re-rendered plots (a new run directory of kind ``report``);
        ``None`` renders text only.  The run itself is never modified, so its
        checksums stay valid.
    force
        Replace an existing ``out``.
    """
    run = load_run(path)
    render = _checked(RENDERERS.get(run.kind, _other))
    if out is None:
        text, files = render(run, None)
        return Rendered(run, _header(run) + "\n" + text, files)
    src, dst = Path(path).resolve(), Path(out).resolve()
    if dst == src or src in dst.parents or dst in src.parents:
        # --force would replace the run being rendered (and its probes) by its report
        raise ArtifactError(f"--out {out}: is the run {path} itself or overlaps it; expected a separate "
                            "folder for the report (the run is never modified)")
    with RunWriter(out, "report", force=force) as w:
        text, files = render(run, w.folder)
        w.summary = {"source": str(run.path), "source_kind": run.kind, "source_manifest": run.manifest}
    files = [Path(out) / f.name for f in files]
    return Rendered(run, _header(run) + "\n" + text, files)

"""PNG pictures of runs: decoded outputs, spike rasters, classifier decisions, a confusion
matrix, parity overlays and training curves.

Figures are drawn on :class:`matplotlib.figure.Figure` with its own Agg canvas, never
through ``pyplot``: plotting works without a display and leaves the caller's
matplotlib backend (and pyplot's figure list) as it was.  matplotlib is imported
only when a picture is drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

#: At most this many dimensions of a probe are drawn (the rest would be unreadable).
MAX_LINES = 10

#: Right/wrong colours of classifier decisions.
RIGHT, WRONG = "#1a7f37", "#cf222e"


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)  # attaches itself: savefig renders with Agg whatever the caller's backend
    return fig


def save_figure(fig, path: str | Path, dpi: int = 90) -> Path:
    """Write ``fig`` to ``path`` atomically and return where it went.

    A path without a suffix gets ``.png`` (matplotlib would add it anyway, and the
    caller should report the file that exists); missing parent folders are created.

    Parameters
    ----------
    fig
        A matplotlib figure (pyplot's or :class:`matplotlib.figure.Figure`).
    path
        Destination; its suffix picks the format.
    dpi
        Resolution of raster formats.

    Returns
    -------
    Path
        The file written.
    """
    import io

    from nhw.backends.atomic import write_bytes

    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(".png")
    buf = io.BytesIO()
    fig.savefig(buf, dpi=dpi, format=path.suffix[1:])
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(path, buf.getvalue())
    return path




def _column(n: int, title: str, width: float = 9.0, per: float = 2.2):
    """A figure with ``n`` panels stacked over one shared time axis (each its own y range)."""
    fig = _figure(width, per * max(n, 1) + 0.6)
    axes = fig.subplots(max(n, 1), 1, squeeze=False, sharex=True)[:, 0]
    if title:
        fig.suptitle(title)
    return fig, axes


def _2d(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=float)
    return y.reshape(len(y), -1)


def _first(n: int, of: int, what: str) -> str:
    """``"first 50 of 128 neurons"``, ``"all 3 neurons"``, ``"1 neuron"`` (``what`` is a plural)."""
    if of == 1:
        return f"1 {what[:-1]}"
    return f"all {of} {what}" if n >= of else f"first {n} of {of} {what}"


# ---------------------------------------------------------------- deploy


def plot_outputs(t: np.ndarray, data: Mapping[str, np.ndarray], path: str | Path, title: str = "") -> Path:
    """One panel per probe, its first :data:`MAX_LINES` dimensions over time, each panel its own y range."""
    fig, axes = _column(len(data), title)
    for ax, (name, y) in zip(axes, data.items()):
        y = _2d(y)
        shown = min(y.shape[1], MAX_LINES)
        ax.plot(t[: len(y)], y[:, :shown], lw=1, label=[f"[{d}]" for d in range(shown)])
        if 1 < shown:
            ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.0, 1.0), title="dim",
                      title_fontsize="x-small")
        ax.set_ylabel(name)
        ax.set_title(f"{name}: {_first(shown, y.shape[1], 'dimensions')}", fontsize="small", loc="left")
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("time (s)")
    return save_figure(fig, path)


#: A raster shows at most this many spikes per neuron on average; a longer run is cut
#: to its first steps, so that single spikes stay visible (a 13 s run of 50 neurons
#: at 100 Hz drew a solid black block).
RASTER_SPIKES_PER_NEURON = 40


def _raster_steps(s: np.ndarray) -> int:
    """How many leading steps of ``s`` (steps x neurons, nonzero = spike) a raster draws."""
    per_neuron = np.cumsum(np.count_nonzero(s, axis=1)) / max(s.shape[1], 1)
    over = np.nonzero(per_neuron > RASTER_SPIKES_PER_NEURON)[0]
    return len(s) if len(over) == 0 else max(int(over[0]), 1)


def plot_rasters(t: np.ndarray, spikes: Mapping[str, np.ndarray], path: str | Path,
                 max_neurons: int = 50, title: str = "") -> Path:
    """One spike raster per probe.

    Each panel draws the probe's first ``max_neurons`` neurons over the run's first
    steps, at most :data:`RASTER_SPIKES_PER_NEURON` spikes per neuron on average; the
    panel title says how many neurons and how much of the run are shown.
    """
    fig, axes = _column(len(spikes), title)
    panels = {name: _2d(s) for name, s in spikes.items()}
    # one window for every panel (they share the time axis): the densest panel's
    n_steps = min((_raster_steps(s[:, :max_neurons]) for s in panels.values()), default=len(t))
    window = "" if n_steps >= len(t) else f", first {t[n_steps - 1]:.3g} s of {t[-1]:.3g} s"
    for ax, (name, s) in zip(axes, panels.items()):
        total = s.shape[1]
        s = s[:n_steps, :max_neurons]
        steps, neurons = np.nonzero(s)
        ax.scatter(t[steps], neurons, marker="|", s=12, c="k", linewidths=0.6)
        ax.set_ylabel("neuron")
        ax.set_ylim(-0.5, max(s.shape[1], 1) - 0.5)
        ax.set_title(f"{name}: {_first(s.shape[1], total, 'neurons')}{window}, "
                     f"{int(np.count_nonzero(s))} spikes shown", fontsize="small", loc="left")
    if window:
        axes[-1].set_xlim(2 * t[0] - t[1], t[n_steps - 1])
    axes[-1].set_xlabel("time (s)")
    return save_figure(fig, path)


def _item_moving_mean(y: np.ndarray, per: int, window: int) -> np.ndarray:
    """Causal mean over the last ``window`` steps, restarted at every presentation.

    At the last step of an item it equals the value :func:`nhw.toolchain.deploy.decisions`
    takes the argmax of, so the drawn lines end where the decision is read.
    """
    out = np.empty_like(y, dtype=float)
    for i in range(len(y) // per):
        item = np.asarray(y[i * per:(i + 1) * per], dtype=float)
        c = np.cumsum(item, axis=0)
        lag = np.zeros_like(c)
        lag[window:] = c[:-window]
        count = np.minimum(np.arange(1, per + 1), window)[:, None]
        out[i * per:(i + 1) * per] = (c - lag) / count
    return out


def plot_classifier(t: np.ndarray, output: np.ndarray, labels: Sequence[int], predictions: Sequence[int],
                    steps_per_item: float, path: str | Path, title: str = "", max_items: int = 20) -> Path:
    """A classifier's scored output over its first ``max_items`` presented items.

    One line and legend entry per class (the mean over the scored window's length, restarted
    at each item, so a spiking output reads as the rate the decision uses; the per-step
    values faint behind it when they differ), a dotted line at each presentation boundary,
    the scored window (the last 20% of each presentation, see
    :func:`nhw.toolchain.deploy.decisions`) shaded, and per item ``label->decision``
    in green (right) or red (wrong).

    Parameters
    ----------
    t
        Time of each step (s).
    output
        The scored probe's data, ``(steps, classes)``.
    labels, predictions
        Per presented item, the true class and the decision.
    steps_per_item
        Steps per presentation.
    max_items
        Items drawn (the title says how many of how many).
    """
    y = _2d(output)
    labels, predictions = np.asarray(labels).reshape(-1), np.asarray(predictions).reshape(-1)
    per = int(round(steps_per_item))
    n = min(len(labels), max_items, len(y) // max(per, 1))
    steps = n * per
    fig = _figure(max(9.0, 0.55 * n + 3), 4.2)
    ax = fig.subplots()
    tt = t[:steps]
    classes = y.shape[1]
    cmap = "tab10" if classes <= 10 else "tab20"
    import matplotlib

    colours = matplotlib.colormaps[cmap]
    window = max(1, per // 5)
    smooth = _item_moving_mean(y[:steps], per, window)
    raw_faint = not np.allclose(smooth, y[:steps])
    for c in range(classes):
        colour = colours(c % colours.N)
        if raw_faint:  # spiking outputs: the per-step values are read through their mean
            ax.plot(tt, y[:steps, c], lw=0.5, color=colour, alpha=0.2)
        ax.plot(tt, smooth[:, c], lw=1.3, color=colour, label=str(c))
    dt = float(t[1] - t[0]) if len(t) > 1 else 1.0
    start = per - window
    for i in range(n):
        t0 = float(t[0]) - dt + i * per * dt  # t[k] is the end of step k
        ax.axvspan(t0 + start * dt, t0 + per * dt, color="0.92", zorder=0)
        if i:
            ax.axvline(t0, color="0.5", lw=0.8, ls=":")
        ok = labels[i] == predictions[i]
        ax.text(t0 + per * dt / 2, 1.01, f"{labels[i]}\u2192{predictions[i]}", transform=ax.get_xaxis_transform(),
                ha="center", va="bottom", fontsize=8, color=RIGHT if ok else WRONG, fontweight="bold")
    right = int(np.sum(labels[:n] == predictions[:n]))
    ax.set_xlim(float(t[0]) - dt, float(t[0]) - dt + steps * dt)
    ax.set_xlabel("time (s); label\u2192decision above each item, scored window shaded")
    ax.set_ylabel(f"output, mean of the last {window} steps" + (" (per step: faint)" if raw_faint else ""))
    ax.legend(title="class", loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small",
              ncol=1 if classes <= 12 else 2)
    heading = f"{_first(n, len(labels), 'items')}: {right}/{n} right"
    fig.suptitle(f"{title}\n{heading}" if title else heading)
    return save_figure(fig, path)


def plot_confusion(labels: Sequence[int], predictions: Sequence[int], path: str | Path, title: str = "") -> Path:
    """Confusion matrix (rows: label, columns: decision) with counts in the cells, a colourbar
    and the accuracy in the title."""
    labels, predictions = np.asarray(labels).reshape(-1), np.asarray(predictions).reshape(-1)
    classes = np.union1d(labels, predictions)
    index = {c: k for k, c in enumerate(classes)}
    m = np.zeros((len(classes), len(classes)), dtype=int)
    for a, b in zip(labels, predictions):
        m[index[a], index[b]] += 1
    size = max(4.0, 0.45 * len(classes) + 2.5)
    fig = _figure(size + 1.0, size)
    ax = fig.subplots()
    im = ax.imshow(m, cmap="Blues", vmin=0)
    fig.colorbar(im, ax=ax, label="items", shrink=0.85)
    ax.set_xticks(range(len(classes)), [str(c) for c in classes])
    ax.set_yticks(range(len(classes)), [str(c) for c in classes])
    ax.set_xlabel("decision")
    ax.set_ylabel("label")
    top = m.max() if m.size else 0
    for i in range(len(classes)):
        for j in range(len(classes)):
            if m[i, j]:
                ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if m[i, j] > 0.6 * top else "black")
    acc = float(np.mean(labels == predictions)) if len(labels) else float("nan")
    heading = f"accuracy {acc:.1%} ({int(np.sum(labels == predictions))}/{len(labels)})"
    ax.set_title(f"{title}\n{heading}" if title else heading)
    return save_figure(fig, path)


# ---------------------------------------------------------------- parity


def _dimension_errors(ref: np.ndarray, got: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    err = got - ref
    return np.sqrt(np.mean(err**2, axis=0)), np.max(np.abs(err), axis=0)


DECISIONS = ":decisions"  # suffix of a parity decision row's probe name


def _round_robin(panels: list[tuple[str, str, int, Any]]) -> list[tuple[str, str, int, Any]]:
    """``panels`` reordered target by target in turn, so capping them keeps every target."""
    by_target: dict[str, list] = {}
    for item in panels:
        by_target.setdefault(item[0], []).append(item)
    queues = list(by_target.values())
    return [q[k] for k in range(max(map(len, queues), default=0)) for q in queues if k < len(q)]


def _compared(reference: Mapping[str, np.ndarray], targets: Mapping[str, Mapping[str, np.ndarray]],
              results: list[Any]) -> tuple[list[tuple[str, str, int, Any]], list[tuple[str, str, int, Any]], set]:
    """Every compared panel, those whose own error is out of tolerance, and the (target, probe)
    pairs whose decision row failed."""
    decided = {(r.target, r.probe[: -len(DECISIONS)]) for r in results if r.probe.endswith(DECISIONS) and not r.passed}
    found, out = [], []
    for r in results:
        if r.probe.endswith(DECISIONS) or r.probe not in reference or r.probe not in targets.get(r.target, {}):
            continue
        ref, got = _2d(reference[r.probe]), _2d(targets[r.target][r.probe])
        if ref.shape != got.shape:
            continue
        rmse, worst = _dimension_errors(ref, got)
        for d in range(ref.shape[1]):
            item = (r.target, r.probe, d, r.tolerance)
            found.append(item)
            if not (rmse[d] <= r.tolerance.rmse and worst[d] <= r.tolerance.max_abs):
                out.append(item)
    return found, out, decided


def overlay_panels(reference: Mapping[str, np.ndarray], targets: Mapping[str, Mapping[str, np.ndarray]],
                   results: Iterable[Any]) -> tuple[list[tuple[str, str, int, Any]], bool]:
    """Which (target, probe, dimension, tolerance) :func:`plot_overlay` draws, and whether they fail.

    A dimension fails when its own rmse or max error exceeds its probe's tolerance, or
    when its target's decisions on that probe failed (a ``"<probe>:decisions"`` row);
    when any fails only the failing ones are returned, otherwise every compared
    dimension. Panels alternate between targets, so a capped plot shows each target.
    Targets without data are left out.
    """
    results = list(results)
    found, out, decided = _compared(reference, targets, results)
    failing = [p for p in found if p in out or (p[0], p[1]) in decided]
    return (_round_robin(failing), True) if failing else (_round_robin(found), False)


def _overlay_heading(results: list[Any], reference: Mapping[str, np.ndarray],
                     targets: Mapping[str, Mapping[str, np.ndarray]], n_shown: int, n_panels: int,
                     failing: bool) -> str:
    """The overlay's subtitle: what failed (dimensions, decisions, runs without data), then what is shown."""
    from nhw.toolchain.tables import decision_counts

    found, out, _ = _compared(reference, targets, results)
    drawn = {(p[0], p[1]) for p in found}
    parts = [f"{len(out)} probe dimension(s) out of tolerance"] if out else []
    for r in results:
        if r.passed:
            continue
        if r.probe.endswith(DECISIONS):
            parts.append(f"{r.target} decisions of {r.probe[: -len(DECISIONS)]}: {decision_counts(r)} agree, "
                         f"need {100 * (1 - r.tolerance.rmse):g}%")
        elif (r.target, r.probe) not in drawn:
            parts.append(f"{r.target} {r.probe}: failed with nothing to plot")
    counted = f"{n_shown} of {n_panels} shown" if n_shown < n_panels else f"{n_shown} shown"
    if failing:
        return "; ".join(parts) + f", {counted}"
    if parts:  # failed rows with no panel of their own: say so, never "every ... within tolerance"
        return "; ".join(parts) + (f"\nno probe dimension out of tolerance; {counted}" if n_panels else "")
    if n_panels:
        return f"every probe dimension within tolerance; {n_shown} of {n_panels} shown"
    return "nothing to compare (no target produced comparable data)"


def plot_overlay(t: np.ndarray, reference: Mapping[str, np.ndarray],
                 targets: Mapping[str, Mapping[str, np.ndarray]], results: Iterable[Any], path: str | Path,
                 title: str = "", max_panels: int = 8) -> Path:
    """Parity: per probe dimension, the target over ``reference`` and its error in the tolerance band.

    Each panel is one (target, probe, dimension): reference (dashed black) and the
    target above, the error ``target - reference`` below with ``±max_abs`` shaded.
    Only failing dimensions get panels when any fails (see :func:`overlay_panels`);
    at most ``max_panels``, and the title says how many of how many are shown.

    Parameters
    ----------
    t
        Time of each step (s).
    reference
        Probe data on ``reference``.
    targets
        Per target, its probe data.
    results
        The parity results (:class:`~nhw.toolchain.parity.ProbeResult`, e.g. a
        ``ParityReport.results``): their tolerances and targets.
    """
    results = list(results)
    panels, failing = overlay_panels(reference, targets, results)
    shown = panels[:max_panels]
    cols = 1 if len(shown) <= 3 else 2
    rows = max(1, -(-len(shown) // cols))
    fig = _figure(7.5 * cols, 3.3 * rows + 0.8)
    heading = _overlay_heading(results, reference, targets, len(shown), len(panels), failing)
    fig.suptitle(f"{title}\n{heading}" if title else heading)
    if not shown:
        fig.subplots().set_axis_off()
        return save_figure(fig, path)
    outer = fig.add_gridspec(rows, cols)
    colours = {name: f"C{k}" for k, name in enumerate(targets)}
    for k, (target, probe, d, tol) in enumerate(shown):
        inner = outer[k // cols, k % cols].subgridspec(2, 1, height_ratios=[2, 1], hspace=0.05)
        top = fig.add_subplot(inner[0])
        low = fig.add_subplot(inner[1], sharex=top)
        ref, got = _2d(reference[probe])[:, d], _2d(targets[target][probe])[:, d]
        tt = t[: len(ref)]
        top.plot(tt, ref, "k--", lw=1.2, label="reference")
        top.plot(tt, got, color=colours[target], lw=1, alpha=0.85, label=target)
        top.legend(fontsize="x-small", loc="best", framealpha=0.9)
        top.set_title(f"{target} / {probe}[{d}]", fontsize="small", loc="left")
        top.tick_params(labelbottom=False)
        err = got - ref
        low.axhspan(-tol.max_abs, tol.max_abs, color="tab:green", alpha=0.15, lw=0, label=f"\u00b1max_abs {tol.max_abs:g}")
        low.plot(tt, err, color=WRONG if np.max(np.abs(err), initial=0) > tol.max_abs else colours[target], lw=0.8,
                 label=f"error (rmse {np.sqrt(np.mean(err**2)) if err.size else 0:.3g}, tol {tol.rmse:g})")
        low.axhline(0, color="0.4", lw=0.5)
        span = max(float(np.max(np.abs(err), initial=0)), tol.max_abs) * 1.15 or 1.0
        low.set_ylim(-span, span)
        low.legend(fontsize="x-small", loc="best", ncol=2, framealpha=0.9)
        low.set_ylabel("error", fontsize="small")
        if k // cols == rows - 1 or k + cols >= len(shown):
            low.set_xlabel("time (s)")
    return save_figure(fig, path)


# ---------------------------------------------------------------- training


def _fitted_weights(history: Mapping[str, Sequence[float]], parts: list[str]) -> np.ndarray | None:
    """Loss weights recovered from ``loss = sum(w_k * part_k)`` over the epochs (None: not exact)."""
    total = np.asarray(history.get("loss", []), dtype=float)
    if not parts or len(total) <= len(parts):
        return None  # as many epochs as parts fit any total exactly: no evidence of the weights
    a = np.stack([np.asarray(history[p], dtype=float) for p in parts], axis=1)
    if np.linalg.matrix_rank(a) < len(parts):
        return None
    w, *_ = np.linalg.lstsq(a, total, rcond=None)
    fit = a @ w
    if np.any(w < -1e-9) or np.max(np.abs(fit - total)) > 1e-4 * max(np.max(np.abs(total)), 1e-12):
        return None  # another term (e.g. weight decay) is in the total: the parts cannot be weighted
    return w


def training_loss_weights(train: Mapping[str, Any]) -> dict[str, float]:
    """Per output, the weight of its loss in the total, from a config's ``train`` section (plain data).

    Every ``train.loss`` output weighs 1, the firing-rate penalty's probe its ``weight``
    (how ``nhw train`` compiles the model).
    """
    weights = {name: 1.0 for name in (train.get("loss") or {})}
    fr = (train.get("regularization") or {}).get("firing_rate")
    if fr:
        weights[fr["probe"]] = float(fr.get("weight", 1e-3))
    return weights


#: History keys that are settings per epoch, not metrics: key -> axis label. They get
#: an axis of their own (a learning rate of 0.001 on an accuracy axis is a flat line at 0).
SCHEDULE_KEYS = {"learning_rate": "learning rate", "lr": "learning rate"}


def plot_training(history: Mapping[str, Sequence[float]], path: str | Path, title: str,
                  loss_weights: Mapping[str, float] | None = None,
                  test: Mapping[str, float] | None = None) -> Path:
    """``training.png``: the total and per-output weighted losses, and the metrics, per epoch.

    Training curves are solid, ``val_`` curves dashed in the same colour; epochs are
    integers from 1.  Per-output losses (``<output>_loss``) are drawn times their
    weight in the total, so they add up to it; without ``loss_weights`` the weights
    are recovered from the history when the total is exactly their weighted sum
    (the legend says so), and otherwise only the total is drawn (the title says why).
    Schedules (:data:`SCHEDULE_KEYS`, the learning rate) get a right-hand axis of
    their own on the metrics panel.

    Parameters
    ----------
    history
        Per key, one value per epoch (``history.json``).
    loss_weights
        Per output name, its loss weight (see :func:`training_loss_weights`).
    test
        The scores after training (``summary.json``'s ``metrics``, ``test_<name>``
        keys); each metric that is not a loss is marked after the last epoch, with
        its value in the legend.
    """
    from matplotlib.ticker import MaxNLocator

    train_keys = [k for k in history if not k.startswith("val_") and len(history[k])]
    parts = [k for k in train_keys if k.endswith("_loss") and k != "loss"]
    metrics = [k for k in train_keys if "loss" not in k and k not in SCHEDULE_KEYS]
    schedules = [k for k in train_keys if k in SCHEDULE_KEYS]
    scores = {k: float(v) for k, v in (test or {}).items() if "loss" not in k and np.isscalar(v)}
    note = ""
    if loss_weights is not None:
        missing = [p for p in parts if p[: -len("_loss")] not in loss_weights]
        if missing:
            raise ValueError(f"plot_training: loss_weights {dict(loss_weights)} has no weight for "
                             f"{', '.join(missing)}; expected one per output loss in the history")
        weights, how = [float(loss_weights[p[: -len("_loss")]]) for p in parts], ""
    else:
        fitted = _fitted_weights(history, parts)
        if fitted is None and parts:
            weights, how = None, ""
            note = "per-output losses not drawn: their weights are unknown"
        else:
            weights, how = (list(fitted) if fitted is not None else []), " (weight from the total)"
    second = bool(metrics or schedules or scores)
    fig = _figure(11.0 if second else 6.5, 4.0)
    axes = fig.subplots(1, 2 if second else 1, squeeze=False)[0]
    ax = axes[0]
    curves = [("loss", 1.0, "total loss")]
    if weights is not None:
        total = np.asarray(history.get("loss", []), dtype=float)
        curves += [(p, w, f"{p[: -len('_loss')]} loss \u00d7{w:.3g}{how}") for p, w in zip(parts, weights)
                   # a single output weighing 1 is the total itself: one line, not two on top of each other
                   if not (len(parts) == 1 and w == 1.0 and np.allclose(history[p], total))]
    drawn = []
    for k, (key, w, label) in enumerate(curves):
        if key not in history:
            continue
        for prefix, style in (("", "-"), ("val_", "--")):
            v = history.get(prefix + key)
            if v:
                v = w * np.asarray(v, dtype=float)
                ax.plot(np.arange(1, len(v) + 1), v, style, marker="o", ms=3, color=f"C{k}",
                        label=("val " if prefix else "") + label)
                drawn.append(v)
    values = np.concatenate(drawn) if drawn else np.array([])
    if values.size and np.all(values > 0) and values.max() / values.min() > 20:
        ax.set_yscale("log")
    ax.set_ylabel("loss")
    ax.set_title("losses (weighted as in the total)", fontsize="small")
    if second:
        _training_metrics(axes[1], history, metrics, schedules, scores)
    for a in axes:
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
        a.set_xlabel("epoch")
        a.grid(alpha=0.3)
    _legend(ax)
    fig.suptitle(f"{title}: training" + (f"\n{note}" if note else ""))
    return save_figure(fig, path)


def _training_metrics(ax, history: Mapping[str, Sequence[float]], metrics: list[str], schedules: list[str],
                      scores: Mapping[str, float]) -> None:
    """The metrics panel of :func:`plot_training`: curves, test scores, schedules on a right axis."""
    for k, key in enumerate(metrics):
        for prefix, style in (("", "-"), ("val_", "--")):
            v = history.get(prefix + key)
            if v:
                ax.plot(np.arange(1, len(v) + 1), v, style, marker="o", ms=3, color=f"C{k}",
                        label=("val " if prefix else "") + key)
    last = max((len(history[k]) for k in history), default=0)
    for k, (name, value) in enumerate(scores.items(), start=len(metrics)):
        ax.plot([last], [value], "*", ms=12, color=f"C{k}", label=f"{name.replace('_', ' ', 1)} {value:.4f}")
    ax.set_title("metrics" + (" (\u2605 after training, on the test set)" if scores else ""), fontsize="small")
    if not schedules:
        _legend(ax)
        return
    right = ax.twinx()
    for key in schedules:
        v = np.asarray(history[key], dtype=float)
        right.plot(np.arange(1, len(v) + 1), v, ":", color="0.4", label=SCHEDULE_KEYS[key])
    right.set_ylabel(SCHEDULE_KEYS[schedules[0]], color="0.4")
    right.tick_params(axis="y", colors="0.4")
    handles = [h for a in (ax, right) for h in a.get_legend_handles_labels()[0]]
    ax.legend(handles, [h.get_label() for h in handles], fontsize="x-small")


def _legend(ax) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="x-small")


__all__ = [
    "MAX_LINES",
    "SCHEDULE_KEYS",
    "overlay_panels",
    "plot_classifier",
    "plot_confusion",
    "plot_outputs",
    "plot_overlay",
    "plot_rasters",
    "plot_training",
    "save_figure",
    "training_loss_weights",
]

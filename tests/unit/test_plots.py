"""The toolchain's pictures: what each panel says, and that plotting leaves matplotlib's backend alone."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nhw.toolchain import plots
from nhw.toolchain.parity import ProbeResult
from nhw.toolchain.parity_networks import Tolerance

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def figures(monkeypatch):
    """Every figure the plots module saves, in order (drawn, so text and limits are final)."""
    saved = []
    save = plots.save_figure

    def keep(fig, path, dpi=90):
        saved.append(fig)
        return save(fig, path, dpi)

    monkeypatch.setattr(plots, "save_figure", keep)
    return saved


def _texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_plotting_keeps_the_callers_backend(tmp_path):
    code = f"""
import sys, numpy as np, matplotlib
matplotlib.use("svg")
from nhw.toolchain import plots
from nhw.toolchain.parity import ProbeResult
from nhw.toolchain.parity_networks import Tolerance
t = np.arange(1, 101) * 1e-3
y = np.sin(t[:, None] * [1, 2])
out = {str(tmp_path)!r}
plots.plot_outputs(t, {{"y": y}}, out + "/o.png")
plots.plot_rasters(t, {{"s": (y > 0.05).astype(float)}}, out + "/r.png")
plots.plot_classifier(t, y, [0, 1], [0, 0], 50, out + "/c.png")
plots.plot_confusion([0, 1], [0, 0], out + "/m.png")
plots.plot_overlay(t, {{"y": y}}, {{"x": {{"y": y + 0.1}}}},
                   [ProbeResult("n", "x", "y", 0.1, 0.1, Tolerance(0.01, 0.05), False)], out + "/v.png")
plots.plot_training({{"loss": [2.0, 1.0], "a_loss": [2.0, 1.0]}}, out + "/t.png", "t")
print(matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["svg", "False"]
    assert len(list(tmp_path.glob("*.png"))) == 6


def test_rasters_say_how_many_neurons(tmp_path, figures):
    s = np.zeros((20, 128))
    s[::3, ::2] = 1
    plots.plot_rasters(np.arange(20) * 1e-3, {"hidden": s, "few": s[:, :3]}, tmp_path / "s.png", max_neurons=50)
    titles = [ax.get_title(loc="left") for ax in figures[0].axes]
    assert titles[0].startswith("hidden: first 50 of 128 neurons")
    assert titles[1].startswith("few: all 3 neurons")


def test_outputs_panels_keep_their_own_y_range(tmp_path, figures):
    t = np.arange(100) * 1e-3
    plots.plot_outputs(t, {"big": 1e6 * np.sin(t), "small": np.cos(t)[:, None] * np.ones(16)}, tmp_path / "o.png")
    big, small = figures[0].axes
    assert not big.get_shared_y_axes().joined(big, small)
    assert small.get_ylim()[1] < 10 and big.get_ylim()[1] > 1e5
    assert "first 10 of 16 dimensions" in small.get_title(loc="left")


def test_classifier_shows_classes_boundaries_and_decisions(tmp_path, figures):
    per, n_items, classes = 10, 30, 4
    labels = np.arange(n_items) % classes
    preds = labels.copy()
    preds[[1, 5]] = 0  # two wrong decisions among the first items
    y = np.zeros((per * n_items, classes))
    for i, c in enumerate(preds):
        y[i * per:(i + 1) * per, c] = 1
    t = (np.arange(len(y)) + 1) * 1e-3
    plots.plot_classifier(t, y, labels, preds, per, tmp_path / "c.png", "digits", max_items=20)
    fig = figures[0]
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["0", "1", "2", "3"]
    marks = [t for t in ax.texts]
    assert len(marks) == 20 and marks[1].get_text() == "1\u21920"
    assert marks[1].get_color() == plots.WRONG and marks[0].get_color() == plots.RIGHT
    boundaries = [line for line in ax.lines if line.get_linestyle() == ":"]
    assert len(boundaries) == 19  # between the 20 items shown
    assert "first 20 of 30 items: 18/20 right" in fig._suptitle.get_text()


def test_classifier_lines_end_at_the_scored_mean_of_a_spiking_output(tmp_path, figures):
    from nhw.toolchain.deploy import decisions

    rng = np.random.default_rng(0)
    per, n_items, classes = 50, 6, 3
    y = (rng.random((per * n_items, classes)) < [0.1, 0.3, 0.2]) / 1e-3  # spikes of height 1/dt
    t = (np.arange(len(y)) + 1) * 1e-3
    preds = decisions(y, n_items, per)
    plots.plot_classifier(t, y, preds, preds, per, tmp_path / "c.png")
    ax = figures[0].axes[0]
    solid = [line for line in ax.lines if line.get_label() in {"0", "1", "2"}]
    faint = [line for line in ax.lines if line.get_alpha() == 0.2]
    assert len(solid) == classes and len(faint) == classes  # raw spikes drawn faintly behind
    ends = np.array([[line.get_ydata()[(i + 1) * per - 1] for line in solid] for i in range(n_items)])
    window = [y[i * per + per - per // 5:(i + 1) * per].mean(axis=0) for i in range(n_items)]
    assert np.allclose(ends, window)
    assert np.array_equal(np.argmax(ends, axis=1), preds)
    assert "mean of the last 10 steps" in ax.get_ylabel()


def test_confusion_has_counts_colourbar_and_accuracy(tmp_path, figures):
    labels = [0, 0, 1, 1, 2, 2, 2]
    preds = [0, 1, 1, 1, 2, 2, 0]
    plots.plot_confusion(labels, preds, tmp_path / "m.png", "clf")
    fig = figures[0]
    assert len(fig.axes) == 2  # the matrix and its colourbar
    cells = sorted(int(t) for t in _texts(fig))
    assert sum(cells) == len(labels) and cells == [1, 1, 1, 2, 2]
    assert "accuracy 71.4% (5/7)" in fig.axes[0].get_title()


def _result(probe, target="emu", rmse=0.01, max_abs=0.05, passed=True):
    return ProbeResult("net", target, probe, 0.0, 0.0, Tolerance(rmse, max_abs), passed)


def test_overlay_draws_only_failing_dimensions_with_their_band(tmp_path, figures):
    t = np.arange(1, 201) * 1e-3
    ref = np.sin(t[:, None] * np.arange(1, 17))
    got = ref.copy()
    got[:, 3] += 0.2
    got[:, 11] += 0.1 * np.sin(50 * t)
    results = [_result("x", passed=False), _result("x:decisions")]
    panels, failing = plots.overlay_panels({"x": ref}, {"emu": {"x": got}}, results)
    assert failing and [(p, d) for _, p, d, _ in panels] == [("x", 3), ("x", 11)]
    plots.plot_overlay(t, {"x": ref}, {"emu": {"x": got}}, results, tmp_path / "v.png", "net")
    fig = figures[0]
    assert len(fig.axes) == 4  # two panels of signal + error
    assert "2 probe dimension(s) out of tolerance, 2 shown" in fig._suptitle.get_text()
    error = fig.axes[1]
    assert len(error.patches) == 1
    band = error.patches[0]
    ys = band.get_patch_transform().transform(band.get_path().vertices)[:, 1]
    assert np.allclose([ys.min(), ys.max()], [-0.05, 0.05])
    trace = error.lines[0].get_ydata()
    assert np.allclose(trace, got[:, 3] - ref[:, 3])


def test_overlay_when_all_pass_is_capped_and_says_so(tmp_path, figures):
    t = np.arange(1, 101) * 1e-3
    ref = np.cos(t[:, None] * np.arange(16))
    plots.plot_overlay(t, {"x": ref}, {"emu": {"x": ref + 1e-4}}, [_result("x")], tmp_path / "v.png", max_panels=4)
    fig = figures[0]
    assert len(fig.axes) == 8
    assert "every probe dimension within tolerance; 4 of 16 shown" in fig._suptitle.get_text()


def test_training_weights_losses_and_uses_integer_epochs(tmp_path, figures):
    h = {"loss": [26.7, 9.9, 8.0], "hidden_loss": [7261.0, 7235.0, 7230.0], "logits_loss": [19.4, 2.7, 0.8],
         "logits_accuracy": [0.5, 0.8, 0.9], "val_loss": [20.0, 10.0, 9.0], "val_logits_accuracy": [0.6, 0.7, 0.8]}
    plots.plot_training(h, tmp_path / "t.png", "digits", {"hidden": 1e-3, "logits": 1.0})
    loss_ax, metric_ax = figures[0].axes
    lines = {ln.get_label(): ln for ln in loss_ax.lines}
    assert set(lines) == {"total loss", "val total loss", "hidden loss \u00d70.001", "logits loss \u00d71"}
    assert np.allclose(lines["hidden loss \u00d70.001"].get_ydata(), [7.261, 7.235, 7.23])
    assert lines["val total loss"].get_linestyle() == "--"
    assert {ln.get_label() for ln in metric_ax.lines} == {"logits_accuracy", "val logits_accuracy"}
    ticks = [tk for tk in loss_ax.get_xticks() if 1 <= tk <= 3]
    assert ticks and all(float(tk).is_integer() for tk in ticks)


def test_training_without_weights_recovers_exact_ones_or_says_why(tmp_path, figures):
    h = {"loss": [26.7, 9.9, 8.0], "hidden_loss": [7300.0, 7200.0, 7100.0], "logits_loss": [19.4, 2.7, 0.9]}
    plots.plot_training(h, tmp_path / "t.png", "d")
    labels = {ln.get_label() for ln in figures[0].axes[0].lines}
    assert "hidden loss \u00d70.001 (weight from the total)" in labels
    h["loss"] = [30.0, 9.0, 8.0]  # not a weighted sum of the parts (e.g. weight decay in the total)
    plots.plot_training(h, tmp_path / "t2.png", "d")
    assert {ln.get_label() for ln in figures[1].axes[0].lines} == {"total loss"}
    assert "weights are unknown" in figures[1]._suptitle.get_text()
    with pytest.raises(ValueError, match="no weight for hidden_loss"):
        plots.plot_training(h, tmp_path / "t3.png", "d", {"logits": 1.0})


def test_training_loss_weights_from_a_config():
    train = {"loss": {"logits": "sparse_categorical_crossentropy"},
             "regularization": {"firing_rate": {"probe": "hidden", "target": 100.0, "weight": 1e-3}}}
    assert plots.training_loss_weights(train) == {"logits": 1.0, "hidden": 1e-3}


def test_deploy_render_plots_writes_classifier_pictures(tmp_path):
    from nhw.toolchain.deploy import render_plots

    t = (np.arange(60) + 1) * 1e-3
    out = np.zeros((60, 3))
    out[:, 0] = 1
    c = {"probe": "out", "labels": [0, 1, 2], "predictions": [0, 0, 0], "steps_per_item": 20.0}
    files = render_plots(tmp_path, t, {"out": out}, [], title="net", classification=json.loads(json.dumps(c)))
    assert [f.name for f in files] == ["outputs.png", "classifier.png", "confusion.png"]
    assert all(f.stat().st_size > 5000 for f in files)
    assert [f.name for f in render_plots(tmp_path, t, {"out": out}, [])] == ["outputs.png"]

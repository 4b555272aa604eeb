"""``nhw train``: train an experiment config in the TensorFlow simulator.

>>> cfg = load_config("configs/digits.yaml")                  # doctest: +SKIP
>>> result = train(cfg, out="runs/digits-train")              # doctest: +SKIP

The run directory (written atomically) holds ``frozen.npz`` (trained values by
object name, applied without TensorFlow by ``nhw deploy RUN`` / ``nhw parity
RUN`` on any target), ``params.npz`` (the simulator's parameter file for
``Simulator.load_params``), ``history.json``, ``training.png`` and the manifest
(resolved config, its hash, seed, package versions, metrics, checksums).

Every epoch is checkpointed next to the destination (``<out>.checkpoint/``:
parameters, optimizer state, history, config hash); ``resume=True`` continues
an interrupted run from its last complete epoch. The checkpoint is removed
once the run is written.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nhw.toolchain.config import ExperimentConfig
from nhw.errors import ConfigError, ToolchainError

#: config loss name -> whether its targets are class labels
LABEL_LOSSES = {"mse": False, "mae": False, "sparse_categorical_crossentropy": True, "categorical_crossentropy": True}


@dataclass
class TrainResult:
    """What ``train`` produced."""

    config: ExperimentConfig
    history: dict[str, list[float]]
    metrics: dict[str, float]
    frozen: dict[str, np.ndarray]
    out: Path | None = None
    epochs_run: int = 0
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary (written to ``summary.json`` and the manifest)."""
        return {
            "network": self.config.label,
            "epochs": self.config.train.epochs,
            "epochs_run_now": self.epochs_run,
            "seconds": round(self.seconds, 2),
            "metrics": self.metrics,
            "final": {k: v[-1] for k, v in self.history.items() if v},
        }

    def to_table(self) -> str:
        """A short human-readable summary."""
        return train_table(self.summary(), self.history)


def train_table(summary: dict[str, Any], history: dict[str, list[float]]) -> str:
    """The text ``nhw train`` prints (and ``nhw report`` re-renders) for a train run."""
    lines = [f"trained {summary.get('network')}: {summary.get('epochs')} epochs "
             f"({summary.get('epochs_run_now')} run now, {summary.get('seconds', 0):.1f} s)"]
    for k, v in history.items():
        if v:
            lines.append(f"  {k:<28} {v[0]:.5g} -> {v[-1]:.5g}")
    for k, v in (summary.get("metrics") or {}).items():
        lines.append(f"  {k:<28} {v:.5g}")
    return "\n".join(lines)


def _targets(cfg: ExperimentConfig, built, ds, n_steps: int) -> tuple[dict, dict, dict, dict]:
    """Training and test ``(x, y)`` dicts keyed by input/probe name, ``(N, n_steps, size)``."""
    tr = cfg.train
    feed = cfg.deploy.feed or (next(iter(built.inputs)) if len(built.inputs) == 1 else None)
    if feed is None or feed not in built.inputs:
        raise ConfigError(f"{cfg.source}: train: set deploy.feed to the input node that takes the data "
                          f"(inputs: {', '.join(built.inputs) or 'none'})")
    node = built.inputs[feed]
    if ds.n_features != node.size_out:
        raise ConfigError(f"{cfg.source}: train: input node {feed!r} takes {node.size_out} values but dataset "
                          f"{ds.name!r} has {ds.n_features} features")

    def steps(a):
        a = np.asarray(a, dtype=np.float32)
        return np.repeat(a[:, None], n_steps, axis=1) if a.ndim == 2 else a

    xs = {"train": steps(ds.x_train), "test": steps(ds.x_test)}
    labels = {"train": np.asarray(ds.y_train), "test": np.asarray(ds.y_test)}
    ys: dict = {"train": {}, "test": {}}
    for probe, loss in tr.loss.items():
        if probe not in built.probes:
            raise ConfigError(f"{cfg.source}: train.loss: unknown probe {probe!r}; probes: {', '.join(built.probes)}")
        size = int(np.prod(built.probes[probe].size_in))
        for split in ("train", "test"):
            if LABEL_LOSSES[loss]:
                lab = labels[split]
                if loss == "categorical_crossentropy" and lab.ndim == 1:
                    lab = np.eye(size, dtype=np.float32)[lab.astype(int)]
                lab = lab.reshape(len(lab), 1, -1).astype(np.float32)
                ys[split][probe] = np.repeat(lab, n_steps, axis=1)
            else:
                # regression: the probe reproduces the labels if they fit, else the input (autoencoder)
                lab = labels[split]
                y = lab if lab.ndim >= 2 and lab.shape[-1] == size else xs[split]
                if y.shape[-1] != size:
                    raise ConfigError(f"{cfg.source}: train.loss.{probe}: probe has {size} values but neither "
                                      f"the labels nor the inputs of {ds.name!r} match")
                ys[split][probe] = steps(y)
    fr = tr.regularization.firing_rate
    if fr is not None:
        if fr.probe not in built.probes:
            raise ConfigError(f"{cfg.source}: train.regularization.firing_rate.probe: unknown probe {fr.probe!r}; "
                              f"probes: {', '.join(built.probes)}")
        size = int(np.prod(built.probes[fr.probe].size_in))
        for split in ("train", "test"):
            ys[split][fr.probe] = np.zeros((len(xs[split]), n_steps, size), np.float32)
    return {feed: xs["train"]}, ys["train"], {feed: xs["test"]}, ys["test"]


def _trim(d: dict, n: int) -> dict:
    return {k: v[:n] for k, v in d.items()}


class _Checkpoint:
    """Per-epoch checkpoint folder ``<out>.checkpoint`` (written atomically per file)."""

    def __init__(self, out: Path, config_hash: str) -> None:
        self.dir = out.with_name(out.name + ".checkpoint")
        self.config_hash = config_hash

    def load(self, sim) -> tuple[int, dict]:
        """Restore the last epoch; returns ``(epochs done, history)``."""
        state_file = self.dir / "state.json"
        if not state_file.exists():
            raise ToolchainError(f"--resume: no checkpoint at {self.dir} (nothing to resume)")
        state = json.loads(state_file.read_text())
        if state.get("config_hash") != self.config_hash:
            raise ToolchainError(f"--resume: the checkpoint at {self.dir} was made with a different config "
                                 f"({state.get('config_hash', '?')[:12]} vs {self.config_hash[:12]}); "
                                 "start over without --resume (and --force)")
        from nhw.backends.tensorflow import keras_helpers

        folder = self.dir / state["folder"]
        sim.load_params(folder / "params.npz")
        with np.load(folder / "optimizer.npz", allow_pickle=False) as f:
            values = [f[f"v{i}"] for i in range(len(f.files))]
        try:
            keras_helpers.set_optimizer_state(sim, values)
        except ValueError as exc:
            raise ToolchainError(f"--resume: optimizer state in {self.dir} does not match: {exc}") from None
        return int(state["epochs_done"]), state["history"]

    def save(self, sim, epochs_done: int, history: dict) -> None:
        import io

        from nhw.backends.tensorflow import keras_helpers

        from nhw.backends.atomic import write_bytes, write_text

        # each epoch in its own folder; state.json (replaced atomically) points at
        # the newest complete one, so a kill at any moment leaves a consistent checkpoint
        name = f"epoch-{epochs_done:04d}"
        folder = self.dir / name
        folder.mkdir(parents=True, exist_ok=True)
        sim.save_params(folder / "params.npz")
        buf = io.BytesIO()
        np.savez(buf, **{f"v{i}": v for i, v in enumerate(keras_helpers.optimizer_state(sim))})
        write_bytes(folder / "optimizer.npz", buf.getvalue())
        write_text(self.dir / "state.json", json.dumps(
            {"config_hash": self.config_hash, "epochs_done": epochs_done, "folder": name, "history": history},
            indent=2))
        for old in self.dir.glob("epoch-*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _spiking_accuracy(sim, built, cfg, x_test: dict, y_test: np.ndarray, probe: str) -> float:
    """Test accuracy with spikes: each sample presented for ``deploy.presentation_time``."""
    steps = max(1, int(round(cfg.deploy.presentation_time / cfg.deploy.dt)))
    (feed, x), = x_test.items()
    x = np.repeat(x[:, :1], steps, axis=1)
    n = len(x) - len(x) % sim.minibatch_size
    out = sim.predict({built.inputs[feed]: x[:n]})[built.probes[probe]]
    tail = max(1, steps // 5)
    pred = out[:, -tail:].mean(axis=1).argmax(axis=-1)
    return float(np.mean(pred == np.asarray(y_test)[:n].reshape(-1)))


def train(cfg: ExperimentConfig, out: str | Path | None = None, *, resume: bool = False, force: bool = False,
          verbose: int = 1, callbacks: list | None = None) -> TrainResult:
    """Train ``cfg``'s network on its data; with ``out`` write a run directory.

    Parameters
    ----------
    cfg
        A config with ``train`` and ``data`` sections.
    out
        Run directory to write (``None``: nothing written, no checkpoints).
    resume
        Continue from ``<out>.checkpoint`` (same config required).
    force
        Replace an existing ``out``.
    verbose
        Keras progress output (0 silent, 1 bars, 2 one line per epoch).
    callbacks
        Extra Keras callbacks (run after the per-epoch checkpoint).
    """
    from nhw.backends.tensorflow import Simulator, configure_settings, keras_helpers, losses

    from nhw.toolchain.artifacts import RunWriter, check_destination
    from nhw.toolchain.experiment import build_network, load_data

    tr = cfg.train
    if tr is None:
        raise ConfigError(f"{cfg.source}: has no 'train' section")
    if not tr.loss:
        raise ConfigError(f"{cfg.source}: train.loss: name at least one output probe and its loss")
    if out is not None:
        out = Path(out)
        check_destination(out, force)
    ds = load_data(cfg)
    if ds is None:
        raise ConfigError(f"{cfg.source}: train: training needs a 'data' section")
    built = build_network(cfg)
    with built.network:
        configure_settings(training_mode=tr.mode)
    x_tr, y_tr, x_te, y_te = _targets(cfg, built, ds, tr.n_steps)
    mb = tr.minibatch_size
    n_tr = len(next(iter(x_tr.values()))) // mb * mb
    n_te = len(next(iter(x_te.values()))) // mb * mb
    if n_tr == 0:
        raise ConfigError(f"{cfg.source}: train.minibatch_size {mb} is larger than the training set")
    x_tr, y_tr, x_te, y_te = (_trim(d, n) for d, n in ((x_tr, n_tr), (y_tr, n_tr), (x_te, n_te), (y_te, n_te)))

    keras_helpers.set_seed(cfg.seed_for("train") if tr.seed is None else tr.seed)
    t0 = time.perf_counter()
    sim = Simulator(built.network, minibatch_size=mb, seed=cfg.seed, progress_bar=verbose > 0)
    try:
        loss = {built.probes[p]: keras_helpers.make_loss(name) for p, name in tr.loss.items()}
        weights = {built.probes[p]: 1.0 for p in tr.loss}
        fr = tr.regularization.firing_rate
        if fr is not None:
            loss[built.probes[fr.probe]] = losses.Regularize(target=fr.target, mean=True)
            weights[built.probes[fr.probe]] = fr.weight
        sim.keras_model.weight_decay = tr.regularization.l2
        opt = keras_helpers.make_optimizer(tr.optimizer.name, tr.optimizer.learning_rate)
        metrics = {built.probes[p]: ["accuracy"] for p, name in tr.loss.items() if LABEL_LOSSES[name]
                   and name == "sparse_categorical_crossentropy"}
        sim.compile(optimizer=opt, loss=loss, loss_weights=weights, metrics=metrics or None)

        ckpt = _Checkpoint(out, cfg.config_hash()) if out is not None else None
        done, history = 0, {}
        if resume:
            if ckpt is None:
                raise ToolchainError("--resume needs an output directory")
            done, history = ckpt.load(sim)
        elif ckpt is not None:
            ckpt.remove()

        def save(epoch: int, logs: dict) -> None:
            for k, v in logs.items():
                history.setdefault(k, []).append(float(v))
            if ckpt is not None:
                ckpt.save(sim, epoch + 1, history)

        # Keras' validation/evaluate run inference: spikes for n_steps steps, which
        # for one-step samples says nothing about a spiking network (it is scored
        # with spikes over deploy.presentation_time below instead)
        spiking = any(getattr(e.neuron_type, "spiking", False) for e in built.network.all_ensembles)
        inference_ok = not (spiking and tr.n_steps == 1)
        if done < tr.epochs:
            validation = (x_te, y_te) if n_te and inference_ok else None
            sim.fit({built.inputs[k]: v for k, v in x_tr.items()}, {built.probes[k]: v for k, v in y_tr.items()},
                    epochs=tr.epochs, initial_epoch=done, verbose=verbose, callbacks=[keras_helpers.epoch_callback(save), *(callbacks or [])],
                    validation_data=None if validation is None else (
                        {built.inputs[k]: v for k, v in x_te.items()}, {built.probes[k]: v for k, v in y_te.items()}))
        metrics_out: dict = {}
        if n_te and inference_ok:
            ev = sim.evaluate({built.inputs[k]: v for k, v in x_te.items()},
                              {built.probes[k]: v for k, v in y_te.items()}, verbose=0)
            metrics_out.update({f"test_{k}": float(v) for k, v in ev.items()})
        if n_te:
            classified = any(LABEL_LOSSES[name] for name in tr.loss.values()) and np.asarray(ds.y_test).ndim == 1
            probe = cfg.deploy.classify or next((p for p, n in tr.loss.items() if LABEL_LOSSES[n]), None)
            if classified and probe in built.probes:
                metrics_out[f"test_{probe}_accuracy"] = _spiking_accuracy(
                    sim, built, cfg, x_te, np.asarray(ds.y_test)[:n_te], probe)
        frozen = sim.frozen_arrays()
        result = TrainResult(cfg, history, metrics_out, frozen, epochs_run=tr.epochs - done,
                             seconds=time.perf_counter() - t0)
        if out is not None:
            with RunWriter(out, "train", force=force or resume, config=cfg) as w:
                w.write_npz("frozen.npz", frozen)
                sim.save_params(w.path("params.npz"))
                w.write_json("history.json", history)
                w.write_json("summary.json", result.summary())
                plot_history(history, w.path("training.png"), cfg.label)
                w.summary = result.summary()
            ckpt.remove()
            result.out = out
        return result
    finally:
        sim.close()


def plot_history(history: dict, path: Path, title: str) -> Path:
    """``training.png``: every loss curve over the epochs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in history if "loss" in k]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for k in keys:
        ax.plot(np.arange(1, len(history[k]) + 1), history[k], marker="o", label=k)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_yscale("log" if all(v > 0 for k in keys for v in history[k]) else "linear")
    ax.set_title(f"{title}: training")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

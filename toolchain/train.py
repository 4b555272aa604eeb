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
import math
import shlex
import shutil
import time
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nhw.toolchain import plots
from nhw.toolchain import train_callbacks as tcb
from nhw.toolchain.config import ExperimentConfig
from nhw.errors import ArtifactError, ConfigError, DataError, NhwError, ToolchainError

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
            "epochs_done": len(next(iter(self.history.values()), [])),
            "epochs_run_now": self.epochs_run,
            **({"stopped_early": self.extra["stopped_early"]} if "stopped_early" in self.extra else {}),
            "seconds": round(self.seconds, 2),
            "metrics": self.metrics,
            "final": {k: v[-1] for k, v in self.history.items() if v},
            **({"quantization": self.extra["quantization"]} if "quantization" in self.extra else {}),
        }

    def to_table(self) -> str:
        """A short human-readable summary."""
        return train_table(self.summary(), self.history)


def train_table(summary: dict[str, Any], history: dict[str, list[float]]) -> str:
    """The text ``nhw train`` prints (and ``nhw report`` re-renders) for a train run."""
    done, planned = summary.get("epochs_done", summary.get("epochs")), summary.get("epochs")
    lines = [f"trained {summary.get('network')}: {done} of {planned} epochs "
             f"({summary.get('epochs_run_now')} run now, {summary.get('seconds', 0):.1f} s)"]
    if summary.get("stopped_early"):
        lines.append(f"  {summary['stopped_early']}")
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
    """Per-epoch checkpoint folder ``<out>.checkpoint`` (written atomically per file).

    ``state.json`` records the config (resolved, and its hash), the epochs done, the
    history and the folder of the newest complete epoch.  The order in which an epoch
    presents the samples is drawn from ``(seed, epoch)`` (:func:`epoch_order`), so the
    data order's random state is part of what the checkpoint fixes: a resumed run
    reproduces the uninterrupted one.
    """

    def __init__(self, out: Path, config_hash: str, config: dict | None = None) -> None:
        self.dir = out.with_name(out.name + ".checkpoint")
        self.config_hash = config_hash
        self.config = config

    def exists(self) -> bool:
        """Whether an interrupted run left a checkpoint here."""
        return (self.dir / "state.json").is_file()

    def state(self) -> dict:
        """``state.json``, checked against this config (no TensorFlow needed: fails fast)."""
        state_file = self.dir / "state.json"
        if not state_file.exists():
            raise ToolchainError(f"--resume: no checkpoint at {self.dir} (nothing to resume)")
        try:
            state = json.loads(state_file.read_text(encoding="utf-8"))
            if not isinstance(state, dict):
                raise ValueError(f"expected a JSON object, got {type(state).__name__}")
            for key in ("config_hash", "epochs_done", "folder", "history"):
                if key not in state:
                    raise ValueError(f"key {key!r} is missing")
        except (ValueError, UnicodeDecodeError, OSError) as exc:
            raise ArtifactError(f"{state_file}: unreadable checkpoint state: {exc}; start over with --force") from None
        if state.get("config_hash") != self.config_hash:
            changed = _changed_keys(state.get("config"), self.config)
            what = (f"changed: {', '.join(changed[:5])}{', ...' if len(changed) > 5 else ''}" if changed else
                    f"config hash {str(state.get('config_hash'))[:12]} vs {self.config_hash[:12]}")
            raise ToolchainError(f"--resume: the checkpoint at {self.dir} was made with a different config "
                                 f"({what}); undo the change, or start over with --force instead of --resume")
        return state

    def load(self, sim) -> tuple[int, dict]:
        """Restore the last epoch; returns ``(epochs done, history)``."""
        from nhw.backends.tensorflow.api import keras_helpers
        from nhw.toolchain.data import check_npz_magic

        state = self.state()
        folder = self.dir / str(state["folder"])
        for name in ("params.npz", "optimizer.npz"):
            try:
                check_npz_magic(folder / name, "checkpoint file")
            except DataError as exc:
                raise ArtifactError(f"--resume: incomplete or corrupt checkpoint: {exc}; "
                                    "start over with --force") from None
        try:
            sim.load_params(folder / "params.npz")
            with np.load(folder / "optimizer.npz", allow_pickle=False) as f:
                values = [f[f"v{i}"] for i in range(len(f.files))]
        except NhwError as exc:
            raise ArtifactError(f"--resume: checkpoint {folder}: {exc}; start over with --force") from None
        except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile, zlib.error) as exc:
            raise ArtifactError(f"--resume: checkpoint {folder} is truncated or corrupt "
                                f"({type(exc).__name__}: {exc}); start over with --force") from None
        try:
            keras_helpers.set_optimizer_state(sim, values)
        except ValueError as exc:
            raise ToolchainError(f"--resume: optimizer state in {self.dir} does not match: {exc}") from None
        return int(state["epochs_done"]), state["history"]

    def save(self, sim, epochs_done: int, history: dict, keep: int | None = None) -> None:
        """Checkpoint epoch ``epochs_done``; the folder of epoch ``keep`` (early stopping's best) is kept too."""
        import io

        from nhw.backends.tensorflow.api import keras_helpers

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
            {"config_hash": self.config_hash, "config": self.config, "epochs_done": epochs_done,
             "folder": name, "history": history, "data_order": "epoch_order(seed, epoch)"}, indent=2))
        kept = {name, f"epoch-{keep:04d}" if keep else name}
        for old in self.dir.glob("epoch-*"):
            if old.name not in kept:
                shutil.rmtree(old, ignore_errors=True)

    def load_epoch(self, sim, epoch: int) -> None:
        """Load the trained values checkpointed after ``epoch`` epochs (kept by :meth:`save`)."""
        folder = self.dir / f"epoch-{epoch:04d}"
        try:
            sim.load_params(folder / "params.npz")
        except (NhwError, OSError, ValueError) as exc:
            raise ArtifactError(f"checkpoint {folder}: cannot restore the best epoch's values: {exc}") from None

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _changed_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two resolved configs."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for k in sorted(set(old) | set(new), key=str):
            out += _changed_keys(old.get(k), new.get(k), f"{prefix}.{k}" if prefix else str(k))
        return out
    if old is None and new is not None and prefix == "":
        return []  # a checkpoint that predates recording its config
    return [] if old == new else [f"{prefix} ({old!r} -> {new!r})"]


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order in which epoch ``epoch`` presents ``n`` samples.

    Drawn from ``(seed, epoch)`` alone, not from a generator that advances through
    the run, so an epoch run after ``--resume`` sees the same order as it would have
    in the uninterrupted run.
    """
    return np.random.RandomState([int(seed) & 0xFFFFFFFF, int(epoch)]).permutation(n)


def _spiking_accuracy(sim, built, cfg, x_test: dict, y_test: np.ndarray, probe: str) -> float:
    """Test accuracy with spikes: each sample presented for ``deploy.presentation_time``."""
    steps = max(1, int(round(cfg.deploy.presentation_time / cfg.deploy.dt)))
    (feed, x), = x_test.items()
    x = np.repeat(x[:, :1], steps, axis=1)
    n = len(x)
    # every item is scored: the last minibatch is filled up with repeats of the first
    # items (each sample of a minibatch runs independently), whose outputs are dropped
    pad = -n % sim.minibatch_size
    x = np.concatenate([x, np.resize(x, (pad,) + x.shape[1:])]) if pad else x
    out = sim.predict({built.inputs[feed]: x})[built.probes[probe]][:n]
    tail = max(1, steps // 5)
    pred = out[:, -tail:].mean(axis=1).argmax(axis=-1)
    return float(np.mean(pred == np.asarray(y_test)[:n].reshape(-1)))


def resume_command(cfg: ExperimentConfig, out: str | Path) -> str:
    """The command that continues ``cfg``'s interrupted training in ``out``.

    Parameters
    ----------
    cfg
        The config being trained; its :attr:`~ExperimentConfig.overrides` are repeated
        as ``--set`` options, so the resumed run's config is the interrupted one's.
    out
        The run directory.

    Returns
    -------
    str
        ``nhw train CONFIG [--set KEY=VALUE ...] --out OUT --resume``, shell-quoted.
    """
    sets = [a for o in cfg.overrides for a in ("--set", o)]
    return shlex.join(["nhw", "train", cfg.source, *sets, "--out", str(out), "--resume"])


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
    from nhw.toolchain.artifacts import RunWriter, check_destination

    # every check that needs neither TensorFlow nor the network comes first: a wrong
    # config or destination fails in a fraction of a second, not after the import
    tr = cfg.train
    if tr is None:
        raise ConfigError(f"{cfg.source}: train: section is missing; expected a 'train' section with at least "
                          "'loss' (see configs/digits.yaml)")
    if not tr.loss:
        raise ConfigError(f"{cfg.source}: train.loss: name at least one output probe and its loss")
    if cfg.data is None:
        raise ConfigError(f"{cfg.source}: train: training needs a 'data' section")
    from nhw.backends.tensorflow.distribute import is_chief, tf_config

    cluster = tf_config()  # one worker of a multi-worker job (TF_CONFIG set)
    chief = is_chief(cluster)
    if cluster is not None:
        _check_distributable(cfg, cluster)
    ckpt = None
    if out is not None and not chief:
        # the other workers compute what the chief does and write nothing; on --resume
        # they read the chief's checkpoint (a folder every worker must see)
        out = Path(out)
        ckpt = _Checkpoint(out, cfg.config_hash(), cfg.resolved()) if resume else None
        if resume:
            ckpt.state()
    elif out is not None:
        out = Path(out)
        ckpt = _Checkpoint(out, cfg.config_hash(), cfg.resolved())
        if resume:
            ckpt.state()  # a missing checkpoint or a changed config fails here, before any work
            check_destination(out, True)
        else:
            if ckpt.exists() and not force:
                raise ArtifactError(f"{out}: an interrupted training run left a checkpoint at {ckpt.dir}; "
                                    "continue it with --resume, or start over with --force (deletes it)")
            check_destination(out, force)
    elif resume:
        raise ToolchainError("--resume needs an output directory")

    from nhw.backends.tensorflow import Simulator, configure_settings, losses
    from nhw.backends.tensorflow.api import keras_helpers

    from nhw.toolchain.experiment import build_network, load_data
    from nhw.toolchain.experiment.network import target_options

    ds = load_data(cfg)
    built = build_network(cfg)
    with built.network:
        sg = tr.surrogate
        configure_settings(training_mode=tr.mode, **({} if sg is None else
                                                     {"surrogate": sg.name, "surrogate_slope": sg.slope}),
                           target=tr.target, target_options=target_options(cfg),
                           zero_gradient_check=tr.zero_gradient_check)
    x_tr, y_tr, x_te, y_te = _targets(cfg, built, ds, tr.n_steps)
    mb = tr.minibatch_size
    x_tr, y_tr, x_val, y_val, n_val = tcb.validation_split(x_tr, y_tr, tr.validation_split, mb)
    # the simulator runs whole minibatches: an epoch takes n_tr of the n_all training
    # items, a different remainder left out each epoch (epoch_order draws from all of them)
    n_all = len(next(iter(x_tr.values())))
    n_tr = n_all // mb * mb
    n_te = len(next(iter(x_te.values())))  # every test item is scored (padded to a whole minibatch)
    n_te_batches = n_te // mb * mb  # the test losses of sim.evaluate cover these
    if n_tr == 0:
        raise ConfigError(f"{cfg.source}: train.minibatch_size {mb} is larger than the training set")

    seed = cfg.seed_for("train") if tr.seed is None else tr.seed
    keras_helpers.set_seed(seed)
    t0 = time.perf_counter()
    # nengo-style "Build finished in 0:00:00" lines say nothing here; epochs are reported below
    strategy = _strategy(cluster)
    with strategy.scope():  # a multi-worker job mirrors every variable across the workers
        sim = Simulator(built.network, minibatch_size=mb, seed=cfg.seed, progress_bar=False)
    done = 0
    try:
        refresh, quantizer = [], None
        if tr.quantize:
            quantizer, cb = _quantize(sim, cfg)
            refresh = [cb]
        loss = {built.probes[p]: keras_helpers.make_loss(name) for p, name in tr.loss.items()}
        weights = {built.probes[p]: 1.0 for p in tr.loss}
        fr = tr.regularization.firing_rate
        if fr is not None:
            loss[built.probes[fr.probe]] = losses.Regularize(target=fr.target, mean=True)
            weights[built.probes[fr.probe]] = fr.weight
        sim.keras_model.weight_decay = tr.regularization.l2
        with strategy.scope():  # a Keras optimizer belongs to the strategy it was made under
            opt = keras_helpers.make_optimizer(tr.optimizer.name, tr.optimizer.learning_rate)
        metrics = {built.probes[p]: ["accuracy"] for p, name in tr.loss.items() if LABEL_LOSSES[name]
                   and name == "sparse_categorical_crossentropy"}
        with strategy.scope():  # the optimizer's variables too
            sim.compile(optimizer=opt, loss=loss, loss_weights=weights, metrics=metrics or None)

        history: dict = {}
        if resume:
            done, history = ckpt.load(sim)
            if quantizer is not None:
                quantizer.refresh()  # the chip factors of the restored values
        elif ckpt is not None and chief:
            ckpt.remove()  # only reached with --force (checked above)
        if not chief:
            ckpt, verbose = None, 0  # from here on: nothing written, nothing printed

        def check_finite(epoch: int, logs: dict) -> None:
            bad = {k: v for k, v in logs.items() if not math.isfinite(float(v))}
            if bad:
                # a NaN loss poisons every later epoch; stop before it reaches the checkpoint
                raise ToolchainError(f"{cfg.source}: train: epoch {epoch + 1}: {', '.join(sorted(bad))} is "
                                     f"{next(iter(bad.values()))}; expected finite losses (lower "
                                     f"train.optimizer.learning_rate, or check the data)")

        # Keras' validation/evaluate run inference: spikes for n_steps steps, which
        # for one-step samples says nothing about a spiking network (it is scored
        # with spikes over deploy.presentation_time instead)
        spiking = any(getattr(e.neuron_type, "spiking", False) for e in built.network.all_ensembles)
        inference_ok = not (spiking and tr.n_steps == 1)
        classified = any(LABEL_LOSSES[name] for name in tr.loss.values()) and np.asarray(ds.y_test).ndim == 1
        scored = cfg.deploy.classify or next((p for p, n in tr.loss.items() if LABEL_LOSSES[n]), None)
        scored = scored if classified and scored in built.probes else None
        validation = None
        if n_val and inference_ok:
            validation = ({built.inputs[k]: v for k, v in x_val.items()},
                          {built.probes[k]: v for k, v in y_val.items()})
        cbs = tr.callbacks
        stopper = tcb.EarlyStopping(cbs.early_stopping, cfg.source) if cbs.early_stopping else None
        restore = stopper is not None and cbs.early_stopping.restore_best_weights
        extra_callbacks = [tcb.tensorboard_callback(cbs.tensorboard)] if cbs.tensorboard and chief else []
        steps = n_tr // mb
        # one fit call per epoch, each with its own order drawn from (seed, epoch): the
        # order does not depend on how many epochs this process has run (see epoch_order)
        state = {"best_weights": None, "t0": 0.0, "lr": tr.optimizer.learning_rate}

        def end_epoch(epoch: int, logs: dict) -> None:
            # runs as the fit's epoch-end callback: recorded and checkpointed before any
            # user callback (which may interrupt the run) sees the epoch
            logs = {k: float(np.asarray(v)) for k, v in logs.items()}
            if n_val and scored is not None and not inference_ok:
                labels = next(y_val[p] for p, n in tr.loss.items() if LABEL_LOSSES[n])
                logs[f"val_{scored}_accuracy"] = _spiking_accuracy(sim, built, cfg, x_val, labels, scored)
            logs["learning_rate"] = state["lr"]
            check_finite(epoch, logs)
            if verbose > 0:
                tcb.report_epoch(epoch, tr.epochs, logs, time.perf_counter() - state["t0"], tcb.is_terminal())
            for k, v in logs.items():
                history.setdefault(k, []).append(v)
            best = stopper.best_epoch(history) if restore else None
            if best == epoch:
                state["best_weights"] = sim.keras_model.get_weights()
            if ckpt is not None:
                ckpt.save(sim, epoch + 1, history, keep=None if best is None else best + 1)
                if cbs.csv_log:
                    from nhw.backends.atomic import write_text

                    write_text(ckpt.dir / "history.csv", tcb.history_csv(history))

        for epoch in range(done, tr.epochs):
            if stopper is not None and stopper.should_stop(history):
                break  # stopped in an earlier epoch (also after --resume)
            state["lr"] = tcb.learning_rate(cbs.lr_schedule, tr.optimizer.learning_rate, epoch, tr.epochs)
            sim.keras_model.optimizer.learning_rate.assign(state["lr"])
            order = epoch_order(seed, epoch, n_all)[:n_tr]
            state["t0"] = time.perf_counter()
            progress = [tcb.live_bar(epoch, tr.epochs, steps)] if verbose > 0 and tcb.is_terminal() else []
            with warnings.catch_warnings():
                warnings.filterwarnings("error", message="Gradients do not exist", category=UserWarning)
                try:
                    sim.fit({built.inputs[k]: v[order] for k, v in x_tr.items()},
                            {built.probes[k]: v[order] for k, v in y_tr.items()},
                            epochs=epoch + 1, initial_epoch=epoch, verbose=0, shuffle=False,
                            callbacks=[*refresh, *progress, keras_helpers.epoch_callback(end_epoch),
                                       *extra_callbacks, *(callbacks or [])],
                            validation_data=validation)
                except UserWarning as exc:
                    raise ToolchainError(
                        f"{cfg.source}: train: no gradient reaches some trained variables "
                        f"({_variables_named(str(exc))}): the loss does not depend on them within "
                        f"train.n_steps={tr.n_steps} step(s); use synapse=None on the connections "
                        "(network.params.synapse: null in the zoo) or more train.n_steps") from None
        best_weights = state["best_weights"]
        stopped = stopper is not None and stopper.should_stop(history)
        if restore and history:
            best = stopper.best_epoch(history)
            last = len(next(iter(history.values()))) - 1
            if best is not None and best != last:
                if best_weights is not None:
                    sim.keras_model.set_weights(best_weights)
                elif ckpt is not None:
                    ckpt.load_epoch(sim, best + 1)  # the best epoch ran before --resume
        metrics_out: dict = {}
        if n_te_batches and inference_ok:
            ev = sim.evaluate({built.inputs[k]: v for k, v in _trim(x_te, n_te_batches).items()},
                              {built.probes[k]: v for k, v in _trim(y_te, n_te_batches).items()}, verbose=0)
            metrics_out.update({f"test_{k}": float(v) for k, v in ev.items()})
        if n_te and scored is not None:
            metrics_out[f"test_{scored}_accuracy"] = _spiking_accuracy(
                sim, built, cfg, x_te, np.asarray(ds.y_test)[:n_te], scored)
            metrics_out["n_scored"] = n_te
        frozen = sim.frozen_arrays()
        if stopped:
            es = cbs.early_stopping
            best_i = stopper.best_epoch(history)
            note = (f"stopped early: {es.monitor} did not improve for {es.patience} epoch(s) after epoch "
                    f"{best_i + 1}" + ("; the weights of that epoch were restored" if restore else ""))
        result = TrainResult(cfg, history, metrics_out, frozen, epochs_run=len(next(iter(history.values()), [])) - done,
                             seconds=time.perf_counter() - t0)
        if quantizer is not None:
            result.extra["quantization"] = quantizer.report()
        if stopped:
            result.extra["stopped_early"] = note
        if out is not None and chief:
            with RunWriter(out, "train", force=force or resume, config=cfg) as w:
                w.write_npz("frozen.npz", frozen)
                sim.save_params(w.path("params.npz"))
                w.write_json("history.json", history)
                if tr.callbacks.csv_log:
                    w.write_text("history.csv", tcb.history_csv(history))
                w.write_json("summary.json", result.summary())
                plots.plot_training(history, w.path("training.png"), cfg.label,
                                    plots.training_loss_weights(tr.model_dump()), test=metrics_out)
                w.summary = result.summary()
            ckpt.remove()
            result.out = out
        return result
    except KeyboardInterrupt as exc:
        if ckpt is not None and ckpt.exists():
            exc.add_note(f"nhw train: interrupted; the checkpoint {ckpt.dir} keeps every finished epoch: "
                         f"continue with `{resume_command(cfg, out)}`")
        raise
    finally:
        sim.close()


def _strategy(cluster: dict | None):
    """The ``tf.distribute`` strategy of this process: multi-worker under ``TF_CONFIG``, else the default."""
    from nhw.backends.tensorflow._tf import tf

    if cluster is None:
        return tf.distribute.get_strategy()
    # RING: collectives over gRPC, which every host has (NCCL only joins GPUs)
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.RING)
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


def _check_distributable(cfg: ExperimentConfig, cluster: dict) -> None:
    """Refuse, before any work, what a multi-worker run (``TF_CONFIG``) cannot do."""
    nodes = cluster.get("cluster", {})
    check_workers(cfg, len(nodes.get("worker", [])) + len(nodes.get("chief", [])))


def check_workers(cfg: ExperimentConfig, workers: int) -> None:
    """Raise :class:`ConfigError` unless ``cfg`` can train on ``workers`` workers (one replica each).

    ``train.minibatch_size`` is the global batch: it must split evenly over the workers.
    """
    if cfg.train is None:
        raise ConfigError(f"{cfg.source}: train: section is missing; expected a 'train' section")
    mb = cfg.train.minibatch_size
    if workers > 1 and mb % workers:
        raise ConfigError(f"{cfg.source}: train.minibatch_size {mb} is the global batch of {workers} workers "
                          f"and must be a multiple of {workers}; expected e.g. "
                          f"{mb // workers * workers or workers}")


def _quantize(sim, cfg: ExperimentConfig) -> tuple[Any, Any]:
    """Train ``sim`` with ``train.target``'s quantised weights and biases: ``(quantizer, per-epoch refresh callback)``.

    The target's mapping options come from ``deploy.options[target]`` (its Simulator
    keyword arguments), so training quantises as that deployment will.
    """
    from nhw.backends.tensorflow.builders import chip_quantize
    from nhw.backends.tensorflow.builders.chip_options import map_options
    from nhw.toolchain.experiment.network import target_options

    q = chip_quantize.quantize_for_chip(sim, map_options(target_options(cfg), "deploy.options"))
    return q, chip_quantize.refresh_callback(q)


def _variables_named(message: str) -> str:
    """The variable names in Keras' "Gradients do not exist for variables [...]" warning."""
    start, end = message.find("["), message.find("]")
    return message[start + 1:end] if 0 <= start < end else message.split(" when ")[0]

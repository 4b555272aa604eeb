"""Experiment configs: YAML files validated into typed models.

A config has five sections, ``network``, ``data``, ``train``, ``deploy`` and
``parity``, plus a top-level ``seed`` that every section uses unless it pins its own.
Unknown keys are errors with a suggestion; every error reads
``FILE: dotted.path: message``.  Precedence: defaults < YAML < ``--set a.b=v`` <
explicit command-line flags (which the CLI passes as the last overrides).

This module holds the models and their error messages; reading files and applying
overrides is :mod:`.loader`, checks against registries are :mod:`.checks`.
"""

from __future__ import annotations

import hashlib
import json
import types
import typing
from pathlib import Path
from typing import Any, Iterable, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from nhw.names import suggest

#: Version of the config schema (``version:`` in a file); bumped on breaking changes.
SCHEMA_VERSION = 1

#: An experiment name: it becomes part of run folder names (``runs/<name>-deploy-...``),
#: so it may not hold path separators or start with a dot (``../../x`` would escape ``runs/``).
NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._-]*$"


class Section(BaseModel):
    """Base of every config section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        # pydantic reads true as 1 where a number is expected: `n_steps: true` would run 1 step
        field = cls.model_fields.get(info.field_name or "")
        if isinstance(value, bool) and field is not None and wants_number(field.annotation):
            raise ValueError("expected a number, not a boolean")
        return value


def wants_number(annotation: Any) -> bool:
    """Whether a field of this type takes an int or float but never a bool."""
    found: set[str] = set()

    def walk(ann: Any) -> None:
        origin = typing.get_origin(ann)
        if ann is bool or ann is Any:
            found.add("bool")
        elif ann in (int, float):
            found.add("number")
        elif origin is typing.Annotated:
            walk(typing.get_args(ann)[0])
        elif origin in (Union, types.UnionType):
            for a in typing.get_args(ann):
                walk(a)
        elif origin is Literal:
            if any(isinstance(a, bool) for a in typing.get_args(ann)):
                found.add("bool")

    walk(annotation)
    return "number" in found and "bool" not in found


#: Seeds feed numpy's generators, which take integers in [0, 2**32 - 1].
MAX_SEED = 2**32 - 1


# --- network ---------------------------------------------------------------------------
class NetworkSection(Section):
    """Which network to build: a model-zoo name, or a user factory."""

    name: str | None = Field(None, description="model-zoo network (see `nhw networks`)")
    factory: str | None = Field(
        None, description="user factory 'module:function' (runs your code) returning a nengo.Network")
    params: dict[str, Any] = Field(default_factory=dict, description="factory parameters")

    @model_validator(mode="after")
    def _one_source(self) -> "NetworkSection":
        if (self.name is None) == (self.factory is None):
            raise ValueError("give exactly one of 'name' (model zoo) or 'factory' (module:function)")
        return self


# --- data ------------------------------------------------------------------------------
class DataSection(Section):
    """A built-in dataset or an ``.npz`` file (x_train, y_train, x_test, y_test)."""

    name: str | None = Field(None, description="built-in dataset: digits, sine, sin_x2")
    path: str | None = Field(None, description=".npz file, relative to the config file (Keras mnist.npz layout)")
    test_fraction: float = Field(0.25, gt=0, lt=1, description="held-out share (built-in sets)")
    n_steps: PositiveInt | None = Field(None, description="time steps per sample (built-in sets)")
    flatten: bool = Field(True, description="flatten images to vectors (.npz)")
    scale: bool = Field(True, description="scale integer pixels to [0, 1] (.npz)")
    seed: int | None = Field(None, ge=0, le=MAX_SEED, description="shuffle seed (default: the top-level seed)")

    @model_validator(mode="after")
    def _one_source(self) -> "DataSection":
        if (self.name is None) == (self.path is None):
            raise ValueError("give exactly one of 'name' (built-in dataset) or 'path' (.npz file)")
        return self


# --- train (validated now; run by `nhw train` once training exists) --------------------
class OptimizerSection(Section):
    """The optimizer."""

    name: Literal["adam", "rmsprop", "sgd"] = Field("adam", description="Keras optimizer")
    learning_rate: PositiveFloat = Field(1e-3, description="step size")


class FiringRateSection(Section):
    """Penalise hidden firing rates away from ``target`` (Hz)."""

    probe: str = Field(description="neuron probe whose rates are penalised")
    target: PositiveFloat = Field(100.0, description="target firing rate (Hz)")
    weight: NonNegativeFloat = Field(1e-3, description="weight of the penalty in the loss")


class RegularizationSection(Section):
    """Regularisation terms added to the loss."""

    l2: NonNegativeFloat = Field(0.0, description="L2 penalty on trainable weights")
    firing_rate: FiringRateSection | None = Field(None, description="firing-rate penalty (optional)")


class SurrogateSection(Section):
    """Surrogate gradient of spiking-aware training."""

    name: Literal["fast_sigmoid", "arctan", "rate"] = Field(
        "fast_sigmoid", description="fast_sigmoid (SuperSpike), arctan, or rate (the rate model's derivative)")
    slope: PositiveFloat | None = Field(
        None, allow_inf_nan=False, description="surrogate slope (default: 10 fast_sigmoid, 2 arctan; rate takes none)")


class EarlyStoppingSection(Section):
    """Stop when a monitored value has not improved for ``patience`` epochs."""

    monitor: str = Field("val_loss", description="history key, e.g. val_loss, loss, val_output_accuracy")
    patience: PositiveInt = Field(3, description="epochs without improvement before stopping")
    min_delta: NonNegativeFloat = Field(0.0, description="smallest change that counts as an improvement")
    mode: Literal["auto", "min", "max"] = Field("auto", description="auto: max for accuracies, else min")
    restore_best_weights: bool = Field(True, description="end with the weights of the best epoch")


class LRScheduleSection(Section):
    """The learning rate per epoch (a function of the epoch, so resumed runs follow it exactly)."""

    name: Literal["exponential", "step", "cosine"] = Field(
        description="exponential: lr * factor**epoch; step: lr * factor**(epoch // every); "
                    "cosine: from lr down to min_lr over the epochs")
    factor: PositiveFloat = Field(0.5, lt=1, description="decay factor (exponential, step)")
    every: PositiveInt = Field(1, description="epochs between drops (step)")
    min_lr: NonNegativeFloat = Field(0.0, description="floor of the cosine schedule")


class CallbacksSection(Section):
    """Standard training callbacks."""

    early_stopping: EarlyStoppingSection | None = Field(None, description="stop when a value stops improving")
    lr_schedule: LRScheduleSection | None = Field(None, description="learning rate per epoch")
    tensorboard: str | None = Field(None, description="TensorBoard log folder (relative to the config file); "
                                                      "needs the tensorboard package (nhw[tensorboard])")
    csv_log: bool = Field(True, description="history.csv in the run, written live in the checkpoint folder")


class TrainSection(Section):
    """Training in the TensorFlow simulator."""

    optimizer: OptimizerSection = Field(default_factory=OptimizerSection, description="optimizer and learning rate")
    loss: dict[str, Literal["mse", "mae", "sparse_categorical_crossentropy", "categorical_crossentropy"]] = Field(
        default_factory=dict, description="loss per output probe")
    epochs: PositiveInt = Field(1, description="passes over the training set (checkpointed each)")
    minibatch_size: PositiveInt = Field(32, description="samples per gradient step")
    n_steps: PositiveInt = Field(1, description="time steps each sample is presented for")
    mode: Literal["rate", "spiking_aware"] = Field(
        "rate", description="train spiking neurons through their rate models, or spiking-aware")
    surrogate: SurrogateSection | None = Field(
        None, description="surrogate gradient for mode spiking_aware (default: fast_sigmoid, slope 10)")
    target: Literal["loihi-emu"] | None = Field(
        None, description="train LIF / spiking ReLU neurons as this target's neuron models (chip-aware training)")
    quantize: bool = Field(
        False, description="with target: train with the target's quantised weights and biases "
                           "(straight-through gradients; deploy.options of that target set its mapping)")
    regularization: RegularizationSection = Field(default_factory=RegularizationSection,
                                                  description="L2 and firing-rate penalties")
    validation_split: float = Field(
        0.0, ge=0, lt=1, description="share of the training data held out to validate each epoch (never the test set)")
    callbacks: CallbacksSection = Field(default_factory=CallbacksSection,
                                        description="early stopping, learning-rate schedule, TensorBoard, CSV log")
    seed: int | None = Field(None, ge=0, le=MAX_SEED, description="default: the top-level seed")
    zero_gradient_check: bool = Field(
        True, description="stop with an error when training cannot move the loss (every gradient zero, "
                          "or the same loss after every batch of an epoch); false trains anyway")

    @model_validator(mode="after")
    def _quantize_needs_target(self) -> "TrainSection":
        if self.quantize and self.target is None:
            raise ValueError("quantize: true needs a target whose formats to train for; expected target: loihi-emu")
        return self

    @model_validator(mode="after")
    def _validation_to_monitor(self) -> "TrainSection":
        es = self.callbacks.early_stopping
        if es is not None and es.monitor.startswith("val_") and self.validation_split == 0:
            # there would be nothing to monitor: the run would never stop early, silently
            raise ValueError(f"callbacks.early_stopping.monitor {es.monitor!r} needs validation data; expected "
                             "validation_split > 0 (e.g. 0.1), or a training value such as monitor: loss")
        return self


# --- deploy ----------------------------------------------------------------------------
class DeploySection(Section):
    """Running the network on a target."""

    target: str = Field("reference", description="target name (see `nhw targets`)")
    options: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="per-target Simulator keyword arguments, by target name")
    n_steps: PositiveInt | None = Field(None, description="steps to run (default: the network's own)")
    dt: PositiveFloat = Field(0.001, allow_inf_nan=False, description="time step (s)")
    probes: list[str] | None = Field(None, description="probes to record (default: all)")
    feed: str | None = Field(None, description="input node fed with test samples of `data`")
    presentation_time: PositiveFloat = Field(0.03, allow_inf_nan=False, description="seconds per fed sample")
    n_items: PositiveInt | None = Field(None, description="test samples to feed (default: the whole test set)")
    classify: str | None = Field(
        None, description="probe scored against the fed labels: argmax over the last 20% of each presentation")
    reset_per_item: bool = Field(
        False, description="start every fed sample from the initial state (the simulator is reset between "
        "samples, as NengoDL's per-sample predict and the NIR peers do); default: one continuous run")
    plots: bool = Field(True, description="write outputs.png and spikes.png")
    max_raster_neurons: PositiveInt = Field(50, description="neurons shown per spike raster")

    @model_validator(mode="after")
    def _presentation_covers_a_step(self) -> "DeploySection":
        # a sample shown for less than one step is never seen: the run would be silently empty
        if self.presentation_time < self.dt:
            raise ValueError(f"presentation_time {self.presentation_time!r} s is shorter than one time step "
                             f"(dt {self.dt!r} s); expected presentation_time >= dt")
        if self.reset_per_item and self.feed is None:
            raise ValueError("reset_per_item: true resets between fed samples; expected deploy.feed naming the "
                             "input to feed, got none")
        return self


# --- parity ----------------------------------------------------------------------------
class ToleranceSection(Section):
    """Allowed deviation of a probe from ``reference``."""

    rmse: NonNegativeFloat = Field(description="bound on the root-mean-square error")
    max_abs: NonNegativeFloat = Field(description="bound on the largest absolute error")


class ParitySection(Section):
    """Comparing targets against ``reference``.

    Tolerance of a probe on a target, first match wins: the config's own
    ``per_target[target][probe]``, the config's ``tolerances[probe]``, the zoo
    network's declared tolerance for that target, the zoo network's default, then
    ``default``.  What a config says explicitly always beats the zoo's defaults (a
    ``tolerances`` value equal to the zoo network's own default restates it and
    overrides nothing).
    """

    targets: list[str] | None = Field(None, description="default: every available target")
    n_steps: PositiveInt | None = Field(None, description="default: deploy.n_steps or the network's own")
    probes: list[str] | None = Field(None, description="probes to compare (default: all)")
    default: ToleranceSection = Field(default_factory=lambda: ToleranceSection(rmse=0.05, max_abs=0.2),
                                      description="tolerance of probes nothing else covers")
    tolerances: dict[str, ToleranceSection] = Field(default_factory=dict, description="per probe")
    per_target: dict[str, dict[str, ToleranceSection]] = Field(
        default_factory=dict, description="target -> probe -> tolerance")
    unsupported: dict[str, str] = Field(default_factory=dict, description="target -> reason it is skipped")
    decisions: float | None = Field(
        None, ge=0, le=1,
        description="classifiers: least fraction of fed items whose decision (argmax of deploy.classify, "
                    "scored as deploy does) must equal reference's")


# --- the whole experiment --------------------------------------------------------------
class ExperimentConfig(Section):
    """An experiment: network, data, training, deployment and parity."""

    version: Literal[1] = Field(SCHEMA_VERSION, description="config schema version")
    # the pattern keeps run folders (runs/<name>-...) inside runs/; see NAME_PATTERN
    name: str | None = Field(None, pattern=NAME_PATTERN, description="experiment name (default: the file name)")
    description: str = Field("", description="free text")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="seed of every random choice, unless a section pins its own")
    network: NetworkSection = Field(description="the network to build")
    data: DataSection | None = Field(None, description="dataset for training and for feeding inputs")
    train: TrainSection | None = Field(None, description="training in the TensorFlow simulator (used by `nhw train`)")
    deploy: DeploySection = Field(default_factory=DeploySection, description="running on a target")
    parity: ParitySection = Field(default_factory=ParitySection, description="comparing targets with reference")

    _source: str = PrivateAttr("<dict>")
    _frozen: str | None = PrivateAttr(None)
    _overrides: tuple[str, ...] = PrivateAttr(())

    @property
    def source(self) -> str:
        """The file this config was read from (``"<dict>"`` when built in Python)."""
        return self._source

    @property
    def overrides(self) -> tuple[str, ...]:
        """The ``KEY=VALUE`` overrides (``--set``) applied to :attr:`source`, in order."""
        return self._overrides

    @property
    def frozen(self) -> str | None:
        """Trained values (a ``frozen.npz`` of an ``nhw train`` run) applied to the built network."""
        return self._frozen

    def use_frozen(self, path: str | Path | None) -> "ExperimentConfig":
        """Apply the trained values in ``path`` whenever this config's network is built."""
        self._frozen = None if path is None else str(path)
        return self

    @property
    def label(self) -> str:
        """``name``, else the file's stem, else the network name."""
        if self.name:
            return self.name
        if self._source != "<dict>":
            return Path(self._source).stem
        return self.network.name or "experiment"

    def resolved(self) -> dict[str, Any]:
        """Every value, defaults included, as plain JSON data."""
        return self.model_dump(mode="json")

    def config_hash(self) -> str:
        """sha256 of the resolved config as canonical JSON."""
        blob = json.dumps(self.resolved(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def seed_for(self, section: str) -> int:
        """The seed ``section`` uses: its own if pinned, else the top-level one."""
        own = getattr(getattr(self, section, None), "seed", None)
        return self.seed if own is None else int(own)


def format_validation_error(exc: ValidationError, source: str, model: type[BaseModel],
                            prefix: tuple = ()) -> str:
    """``FILE: dotted.path: message`` for the :func:`primary_error` (and how many more)."""
    errors = exc.errors(include_url=False)
    err = primary_error(exc, model)
    loc = tuple(prefix) + tuple(err["loc"])
    msg = _message(err, model, tuple(err["loc"]))
    more = f" ({len(errors) - 1} more error{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return f"{source}: {dotted(loc) or '(top level)'}: {msg}{more}"


def primary_error(exc: ValidationError, model: type[BaseModel]) -> dict:
    """The error to report first: an unknown key that is a near miss of an allowed one.

    A misspelled key (``netwrk:``) also leaves the key it meant missing; the
    misspelling, with its suggestion, is the cause, so it is reported first. Otherwise
    pydantic's first error.
    """
    errors = exc.errors(include_url=False)
    return next((e for e in errors if _is_near_miss(e, model)), errors[0])


def _is_near_miss(err: dict, model: type[BaseModel]) -> bool:
    """Whether ``err`` is an unknown key that :func:`nhw.names.suggest` can correct."""
    if err["type"] != "extra_forbidden":
        return False
    loc = tuple(err["loc"])
    return bool(suggest(loc[-1], list(_model_at(model, loc[:-1]) or ())))


def dotted(loc: Iterable) -> str:
    """``("deploy", "probes", 0)`` -> ``"deploy.probes[0]"``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _message(err: dict, model: type[BaseModel], loc: tuple) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = list(_model_at(model, loc[:-1]) or ())
        return f"unknown key{suggest(loc[-1], allowed) or ';'} allowed: {', '.join(allowed)}"
    if kind == "missing":
        return "required key is missing"
    if kind == "string_pattern_mismatch" and tuple(loc) == ("name",):
        return (f"expected letters, digits, '.', '_' or '-' (no path separators, no leading dot: "
                f"the name becomes a run folder); got {err.get('input')!r}")
    msg = err["msg"].removeprefix("Value error, ")
    value = err.get("input")
    if isinstance(value, (str, int, float, bool)) or value is None:
        msg += f" (got {value!r})"
    return msg


def _model_at(model: type[BaseModel], loc: tuple) -> dict | None:
    """The fields of the model reached by following ``loc`` from ``model``."""
    ann: Any = model
    for part in loc:
        ann = _unwrap(ann)
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            if part not in ann.model_fields:
                return None
            ann = ann.model_fields[part].annotation
        elif typing.get_origin(ann) in (dict, list):
            ann = typing.get_args(ann)[-1]
        else:
            return None
    ann = _unwrap(ann)
    return ann.model_fields if isinstance(ann, type) and issubclass(ann, BaseModel) else None


def _unwrap(ann: Any) -> Any:
    """``X | None`` -> ``X``."""
    if typing.get_origin(ann) in (Union, types.UnionType):
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        return args[0] if len(args) == 1 else ann
    return ann


def json_schema() -> dict[str, Any]:
    """The JSON Schema of :class:`ExperimentConfig` (for editors)."""
    schema = ExperimentConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "nhw experiment config"
    return schema


__all__ = [
    "DataSection", "DeploySection", "ExperimentConfig", "NetworkSection",
    "ParitySection", "SCHEMA_VERSION", "TrainSection", "dotted",
    "format_validation_error", "json_schema", "primary_error",
]

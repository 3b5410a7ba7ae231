"""Typed configuration: the single source of every default.

A YAML file holds only what differs from the defaults here; ``--set section.key=value``
overrides go through the same validation. Unknown keys are errors that list the valid
ones. Names of Keras objects (activations, initializers, optimizers, ...) are checked
against static lists so that validating a config never imports TensorFlow; a test keeps
those lists in step with the installed Keras.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args

import yaml
from pydantic import (BaseModel, ConfigDict, Discriminator, Field, PrivateAttr, Tag,
                      ValidationError, field_serializer, field_validator, model_validator)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from seqclf.errors import SeqclfError, did_you_mean, must_be
from seqclf.models import registry
from seqclf.sections import (ACTIVATIONS, CELLS, CONSTRAINTS, INITIALIZERS,  # noqa: F401
                             RECURRENT_LAYER_ARGS, BoolOrAuto, FamilyConfig, Section, fraction,
                             invalid, is_int)

OPTIMIZERS = (
    "adadelta", "adafactor", "adagrad", "adam", "adamax", "adamw", "ftrl", "lion", "nadam",
    "rmsprop", "sgd",
)

MANAGED_KEYS = {
    "return_sequences": "seqclf sets it so that every layer but the last of a stack "
                        "returns sequences",
    "return_state": "seqclf builds classifiers, which never return states",
}



class EarlyStoppingConfig(Section):
    """``keras.callbacks.EarlyStopping`` arguments."""

    monitor: Literal["loss", "accuracy", "val_loss", "val_accuracy"] = "val_loss"
    patience: int = Field(10, ge=0)
    min_delta: float = Field(0.0, ge=0.0)
    restore_best_weights: bool = True


class ReduceLROnPlateauConfig(Section):
    """``keras.callbacks.ReduceLROnPlateau`` arguments: multiply the learning rate by
    ``factor`` after ``patience`` epochs without improvement, down to ``min_lr``."""

    monitor: Literal["loss", "accuracy", "val_loss", "val_accuracy"] = "val_loss"
    factor: float = Field(0.5, gt=0.0, lt=1.0)
    patience: int = Field(5, ge=0)
    min_delta: float = Field(0.0001, ge=0.0)
    cooldown: int = Field(0, ge=0)
    min_lr: float = Field(0.0001, ge=0.0)


DATA_PATH = ("a file (relative paths: to the config file; .csv, .csv.gz/.bz2/.xz/.zst, "
             ".parquet or .npz, by the name), a glob or a list of files (the shards of one "
             "dataset)")


class DataConfig(Section):
    """Where the sequences come from and how they are turned into arrays."""

    train: Union[str, list[str]] = Field(description=f"the training data: {DATA_PATH}")
    test: Union[str, list[str], None] = Field(
        None, description="the test data, as train; null: split off the training data by "
                          "test_split")
    format: Literal["wide", "long"] = Field(
        "wide", description="wide (a row per sequence) or long (a row per step)")
    label_column: str = Field("label", description="the column of the labels")
    classes: list[Union[int, str]] | None = Field(
        None, description="a fixed label list: the output layer covers every one, seen in "
                          "training or not")
    id_column: str = Field(
        "id", description="the sequence id column (wide: optional; long: required)")
    step_column: str | None = Field(
        "step", description="long layout: the column that orders each sequence's rows (null: file"
                            " order)")
    step_gaps: Literal["error", "allow"] = Field(
        "error", description="error or allow missing integer steps within a sequence")
    feature_columns: list[str] | None = Field(
        None, description="the feature columns (null: every other column)")
    max_length: int | None = Field(
        None, ge=1, description="pad or truncate to this many steps (null: the longest training "
                                "sequence)")
    padding: Literal["post", "pre"] = Field(
        "post", description="where padded steps go: post or pre")
    truncating: Literal["post", "pre"] = Field(
        "post", description="which end longer sequences lose: post or pre")
    scaling: Literal["none", "standard", "minmax", "per_sequence"] = Field(
        "none", description="none, standard, minmax (fitted on training data) or per_sequence "
                            "(z-normalise each sequence and channel)")
    missing_values: Literal["error", "zero", "ffill"] = Field(
        "error", description="empty cells inside a sequence: error, zero or ffill")
    test_split: float = Field(
        0.2, gt=0.0, lt=1.0, description="share of the training file held out for testing when "
                                         "test is null")
    stratify: bool = Field(True, description="split by label (test and validation splits)")
    # Streaming (seqclf.data.stream, seqclf.streaming): the files are read in chunks of
    # rows cut at sequence boundaries, every epoch, and never held whole in memory.
    streaming: BoolOrAuto = Field(
        "auto", description="read the data as a stream of chunks instead of into memory: true, "
                            "false or auto (stream when it would not fit in memory_budget)")
    memory_budget: float = Field(
        0.5, gt=0.0, le=1.0, description="streaming auto: the share of the available memory "
                                         "the data may take in memory (estimated at 24 bytes "
                                         "per feature cell)")
    shuffle_buffer: int = Field(
        10000, ge=1, description="streaming: sequences held in the shuffle buffer "
                                 "(training.shuffle); memory grows with it, not the data")

    @field_validator("train", "test")
    @classmethod
    def _data_path(cls, value: str | list[str] | None) -> str | list[str] | None:
        paths = value if isinstance(value, list) else [] if value is None else [value]
        if (isinstance(value, list) and not value) or any(not p.strip() for p in paths) \
                or len(set(paths)) < len(paths):
            raise PydanticCustomError("constraint", "a path, a glob or a non-empty list of "
                                      "distinct paths")
        return value

    @field_validator("classes")
    @classmethod
    def _distinct_classes(cls, value: list[Any] | None) -> list[Any] | None:
        if value is not None and (len(value) < 2 or len({str(v) for v in value}) < len(value)):
            raise PydanticCustomError("constraint", "null or a list of at least 2 distinct labels")
        return value

    @field_validator("feature_columns")
    @classmethod
    def _nonempty_features(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and (not value or len(set(value)) < len(value)):
            raise PydanticCustomError("constraint",
                                      "a non-empty list of column names (each once) or null")
        return value

    @model_validator(mode="after")
    def _distinct_roles(self) -> "DataConfig":
        roles = [("label_column", self.label_column), ("id_column", self.id_column)]
        if self.format == "long":
            roles.append(("step_column", self.step_column))
        for n, (key, name) in enumerate(roles):
            for other, other_name in roles[:n]:
                if name is not None and name == other_name:
                    raise invalid(key, f"a different column than data.{other}", name)
        if self.feature_columns:
            for key, name in roles[:2]:  # the step may be a feature too
                if name in self.feature_columns:
                    raise invalid("feature_columns", f"columns other than data.{key} "
                                   f"({name!r})", self.feature_columns)
        return self


def _family_of(value: Any) -> Any:
    """The discriminator of the model section: its ``family`` (default: recurrent)."""
    if isinstance(value, dict):
        return value.get("family", registry.DEFAULT)
    return getattr(value, "family", None)


def _model_union() -> Any:
    """The model section's type: each registered family's Config, told apart by family."""
    members = [Annotated[module.Config, Tag(name)]
               for name, module in registry.families().items()]
    return Annotated[Union[tuple(members)], Discriminator(_family_of)]


ModelConfig = _model_union()


def _default_model() -> Any:
    """The model section's field: the default family with its defaults."""
    return Field(default_factory=lambda: registry.get(registry.DEFAULT).Config())


def _rebuild_model_section() -> None:
    """A family registered after import (a plugin, a test's example) joins the schema."""
    global ModelConfig
    ModelConfig = _model_union()
    Config.__pydantic_fields__["model"] = FieldInfo.from_annotated_attribute(
        ModelConfig, _default_model())
    Config.model_rebuild(force=True)


class OptimizerConfig(Section):
    """A Keras optimizer by name; any other key is passed to its constructor."""

    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False)

    name: Literal[OPTIMIZERS] = Field("adam", description="a keras.optimizers class, by "
                                      "its lower-case name")
    learning_rate: float = Field(0.001, gt=0.0, description="the optimizer's learning rate")

    def kwargs(self) -> dict[str, Any]:
        """Constructor arguments besides the name (checked against Keras when built)."""
        return {"learning_rate": self.learning_rate, **(self.model_extra or {})}




class ThresholdTarget(Section):
    """A binary decision threshold by its target on the validation data: ``precision:
    q`` (the lowest threshold reaching precision q: the most recall at it) or ``recall:
    q`` (the highest threshold reaching recall q: the most precision at it)."""

    precision: float | None = Field(None, gt=0.0, le=1.0, description="the precision to reach")
    recall: float | None = Field(None, gt=0.0, le=1.0, description="the recall to reach")

    @model_validator(mode="after")
    def _one_target(self) -> "ThresholdTarget":
        if (self.precision is None) == (self.recall is None):
            raise PydanticCustomError("constraint", "a mapping with exactly one of precision "
                                      "or recall")
        return self

    def rule(self) -> dict[str, float]:
        """``{"precision": q}`` or ``{"recall": q}``."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class TrainingConfig(Section):
    """How the model is fitted."""

    epochs: int = Field(
        20, ge=1, description="passes over the training data (an upper bound with early stopping)")
    batch_size: int = Field(32, ge=1, description="sequences per gradient step")
    seed: int = Field(0, ge=0, description="seeds splits, weights and shuffling")
    repeats: int = Field(
        1, ge=1, description="train with seeds seed, seed+1, ... and summarise them")
    validation_split: float = fraction("share of the training data held out for validation")
    early_stopping: EarlyStoppingConfig | None = Field(
        None, description="keras.callbacks.EarlyStopping: monitor, patience, min_delta, "
                          "restore_best_weights")
    reduce_lr_on_plateau: ReduceLROnPlateauConfig | None = Field(
        None, description="keras.callbacks.ReduceLROnPlateau: monitor, factor, patience, "
                          "min_delta, cooldown, min_lr")
    # A mapping {label: weight} weighs each training sequence of that label (labels
    # match as text; labels left out weigh 1). Closed-form minirocket passes the weights
    # to its ridge/logistic fit as sample weights.
    class_weight: Union[Literal["none", "balanced"], dict[str, float]] = Field(
        "none", description="none, balanced (weights inverse to class frequency) or a "
                            "mapping {label: weight} (labels left out weigh 1)")
    loss: Literal["crossentropy", "focal"] = Field(
        "crossentropy", description="crossentropy, or focal (keras.losses."
                                    "CategoricalFocalCrossentropy: down-weights easy examples)")
    focal_gamma: float = Field(
        2.0, ge=0.0, description="the focal loss's gamma (0: crossentropy x its alpha, 0.25)")
    sampling: Literal["none", "oversample"] = Field(
        "none", description="none, or oversample (every class drawn as often as the largest, "
                            "with replacement: balanced batches)")
    # Temperature scaling (Guo et al., 2017): one number multiplying the logits, fitted
    # on the validation split after training and folded into the last Dense layer, so
    # the saved model (predict, the estimator, export) gives calibrated probabilities.
    calibration: Literal["none", "temperature"] = Field(
        "none", description="none, or temperature (temperature scaling fitted on the "
                            "validation split after training; needs a validation_split)")
    threshold: Union[float, Literal["f1"], ThresholdTarget] = Field(
        0.5, description="two classes: the second class is predicted where its probability "
                         "is at least this: a number, f1 (the best F1 on validation), "
                         "{precision: q} or {recall: q} (chosen on validation)")
    # Window slicing (Le Guennec et al., 2016): in training, every batch sees each numeric
    # sequence cut to a random window of this share of its real steps (evaluation and
    # prediction see whole sequences). Small sets of long series are overfitted within a
    # few epochs; random windows show the model the pattern at new positions and widths
    # every epoch. 1.0: off.
    random_crop: float = Field(
        1.0, gt=0.0, le=1.0, description="train on random windows of this share of each sequence "
                                         "(1.0: off)")
    shuffle: bool = Field(True, description="shuffle the training data every epoch")
    # auto: on TensorFlow only. Keras writes the logs through tf.summary on every backend,
    # so on JAX or torch they cost importing TensorFlow (7-10 s of every run).
    tensorboard: BoolOrAuto = Field(
        "auto", description="write TensorBoard logs into the run: true, false or auto "
                            "(on the TensorFlow backend)")
    backend: Literal["auto", "tensorflow", "jax", "torch"] = Field(
        "auto", description="the Keras backend: auto, tensorflow, jax or torch")
    device: Literal["auto", "cpu", "gpu"] = Field("auto", description="auto, cpu or gpu")
    # multi_worker: tf.distribute.MultiWorkerMirroredStrategy over the TF_CONFIG cluster.
    distribute: Literal["none", "mirrored", "multi_worker"] = Field(
        "none", description="none, mirrored (local GPUs) or multi_worker (TF_CONFIG cluster)")
    require_cudnn: bool = Field(
        False, description="fail before training if the cuDNN kernel would not run")
    mixed_precision: bool = Field(False, description="float16 compute on a GPU")
    # The auto rules of the next three keys are seqclf.compute's (the compute plan).
    # jit_compile: true compiles with XLA on TensorFlow even under deterministic ops.
    jit_compile: BoolOrAuto = Field(
        "auto", description="XLA: true, false or auto (see docs/results/performance.md)")
    # Batches per compiled call: fewer Python round trips per epoch, the same arithmetic.
    # Callbacks and the live progress bar see a batch end every this many batches; epoch
    # ends are unchanged.
    steps_per_execution: Union[int, Literal["auto"]] = Field(
        "auto", description="batches per compiled call: an integer or auto")
    # Each training batch split into parts trained side by side, one core each, their
    # gradients averaged into the batch's (seqclf.split_step): the same update up to
    # rounding, so a run differs from one trained in whole batches in the last digits.
    batch_parts: Union[int, Literal["auto"]] = Field(
        "auto", description="parts each training batch is split into, trained side by "
                            "side: auto (2 on TensorFlow with XLA on a CPU of 2 or more cores"
                            ") or an integer")
    # Threads TensorFlow gives one operation (its intra-op parallelism). null:
    # TensorFlow's default (one thread per core) everywhere.
    intra_op_threads: Union[int, Literal["auto"], None] = Field(
        "auto", description="TensorFlow's threads per operation: auto (1 on a CPU-only machine of"
                            " at most 2 cores, unless batches train in parts), an integer, or "
                            "null (TensorFlow's default)")

    @field_validator("class_weight", mode="before")
    @classmethod
    def _check_class_weight(cls, value: Any) -> Any:
        wanted = "one of: 'none', 'balanced', or a non-empty mapping {label: weight > 0}"
        if not isinstance(value, Mapping):
            if value not in ("none", "balanced"):
                raise PydanticCustomError("constraint", wanted)
            return value
        ok = value and all(isinstance(w, (int, float)) and not isinstance(w, bool) and w > 0
                           and w != float("inf") for w in value.values())
        if not ok or any(isinstance(k, (bool, float)) or k is None for k in value):
            raise PydanticCustomError("constraint", wanted)
        return {str(k): float(w) for k, w in value.items()}

    @field_validator("threshold", mode="before")
    @classmethod
    def _check_threshold(cls, value: Any) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not 0 < value < 1:
                raise PydanticCustomError("constraint", "a number between 0 and 1 (exclusive), "
                                          "'f1', {precision: q} or {recall: q}")
            return float(value)
        if isinstance(value, Mapping):
            q = next(iter(value.values()), None)
            if not (len(value) == 1 and set(value) <= {"precision", "recall"}
                    and isinstance(q, (int, float)) and not isinstance(q, bool) and 0 < q <= 1):
                raise PydanticCustomError("constraint", "{precision: q} or {recall: q} with "
                                          "one q in (0, 1]")
            return ThresholdTarget(**{k: float(v) for k, v in value.items()})
        if not (value == "f1" or isinstance(value, ThresholdTarget)):
            raise PydanticCustomError("constraint", "a number between 0 and 1 (exclusive), "
                                      "'f1', {precision: q} or {recall: q}")
        return value

    @field_serializer("threshold")
    def _threshold_as_written(self, value: Any) -> Any:
        return value.rule() if isinstance(value, ThresholdTarget) else value

    def threshold_rule(self) -> Any:
        """The threshold as ``probability.choose_threshold`` takes it."""
        t = self.threshold
        return t.rule() if isinstance(t, ThresholdTarget) else t

    def chooses_threshold(self) -> bool:
        """Whether the threshold is chosen on validation data (f1 or a target)."""
        return not isinstance(self.threshold, float)

    def imbalance(self) -> dict[str, Any]:
        """What the run did about class imbalance (the manifest records it)."""
        return {"class_weight": self.class_weight, "loss": self.loss,
                **({"focal_gamma": self.focal_gamma} if self.loss == "focal" else {}),
                "sampling": self.sampling}

    @field_validator("intra_op_threads", mode="before")
    @classmethod
    def _check_intra_op_threads(cls, value: Any) -> Any:
        if not (value is None or is_int(value) or value == "auto"):
            raise PydanticCustomError("constraint", "an integer >= 1, 'auto' or null")
        return value

    @field_validator("steps_per_execution", "batch_parts", mode="before")
    @classmethod
    def _check_steps_per_execution(cls, value: Any) -> Any:
        if not (is_int(value) or value == "auto"):
            raise PydanticCustomError("constraint", "an integer >= 1 or 'auto'")
        return value

    @model_validator(mode="after")
    def _check_decisions(self) -> "TrainingConfig":
        if self.validation_split == 0:
            if self.calibration != "none":
                raise invalid("calibration", "'none' when training.validation_split is 0 (it "
                               "is fitted on the validation split: set one)", self.calibration)
            if self.chooses_threshold():
                raise invalid("threshold", "a number when training.validation_split is 0 "
                               "(f1 and targets are chosen on the validation split: set one)",
                               self.threshold_rule())
        if self.loss == "focal" and self.distribute == "multi_worker":
            raise invalid("loss", "'crossentropy' when training.distribute is 'multi_worker' "
                           "(seqclf's multi-worker loop computes crossentropy)", self.loss)
        if self.sampling != "none" and self.class_weight != "none":
            raise invalid("sampling", "'none' when training.class_weight is set (oversampling "
                           "already balances the classes)", self.sampling)
        return self

    @model_validator(mode="after")
    def _check_steps_per_execution_fits(self) -> "TrainingConfig":
        why = single_step_only(self.backend, self.distribute)
        if why and is_int(self.steps_per_execution, 2):
            raise invalid("steps_per_execution", f"1 or 'auto' {why}", self.steps_per_execution)
        if is_int(self.batch_parts, 2) and (self.backend in ("jax", "torch")
                                            or self.distribute != "none"
                                            or self.jit_compile is not True):
            raise invalid("batch_parts", "1 or 'auto' unless training.jit_compile is true on "
                           "the TensorFlow backend without training.distribute (each part is "
                           "an XLA program)", self.batch_parts)
        if is_int(self.intra_op_threads) and self.backend in ("jax", "torch"):
            raise invalid("intra_op_threads", f"'auto' or null when training.backend is "
                           f"{self.backend!r} (a TensorFlow setting)", self.intra_op_threads)
        if self.distribute == "multi_worker" and self.repeats > 1:
            # TensorFlow sets up a process's cluster once; a group of runs would need one
            # chief-only group directory too. Repeats are separate commands instead.
            raise invalid("repeats", "1 when training.distribute is 'multi_worker' (run "
                           "each seed as its own command)", self.repeats)
        return self


def single_step_only(backend: str, distribute: str) -> str | None:
    """Why Keras can run only one batch per call here (None: it can run several)."""
    if backend == "torch":
        return "with training.backend 'torch' (Keras's torch trainer runs one batch per call)"
    if distribute == "mirrored":
        return ("when training.distribute is 'mirrored' (Keras's multi-step loop fails on a "
                "distributed iterator)")
    if distribute == "multi_worker":
        return ("when training.distribute is 'multi_worker' (seqclf's multi-worker loop "
                "runs one batch per step)")
    return None


# Training keys that only gradient descent uses: a family fitted in closed form refuses them.
CLOSED_FORM_UNUSED = ("loss", "sampling", "early_stopping", "reduce_lr_on_plateau",
                      "random_crop")


def _plain(value: Any) -> Any:
    return value.model_dump() if isinstance(value, BaseModel) else value


class Config(Section):
    """A whole seqclf config: data, model, optimizer and training sections."""

    name: str | None = None
    data: DataConfig
    model: ModelConfig = _default_model()
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    _source: str = PrivateAttr("config")

    @property
    def source(self) -> str:
        """Where the config came from (a file path), for error messages."""
        return self._source

    @model_validator(mode="after")
    def _check_cross_section(self) -> "Config":
        if self.training.distribute == "multi_worker" and self.model.is_stateful():
            # A stateful model has a fixed batch dimension, the global batch; each replica
            # gets its share of it.
            raise invalid("model.stateful", "false when training.distribute is "
                           "'multi_worker'", True)
        for key in ("early_stopping", "reduce_lr_on_plateau"):
            callback = getattr(self.training, key)
            if (callback is not None and callback.monitor.startswith("val_")
                    and self.training.validation_split == 0):
                raise invalid(f"training.{key}.monitor", "'loss' or 'accuracy' when "
                               "training.validation_split is 0 (or set a validation_split)",
                               callback.monitor)
        if registry.hook(self.model.family, "fit") is not None:
            # fitted in closed form (minirocket): no loss over batches, no epochs to watch
            for key in CLOSED_FORM_UNUSED:
                value, default = getattr(self.training, key), TrainingConfig.model_fields[key].default
                if value != default:
                    wanted = "null" if default is None else repr(default)
                    raise invalid(f"training.{key}", f"{wanted} for model.family "
                                  f"{self.model.family!r} (it is fitted in closed form, not "
                                  "by gradient descent over epochs)", _plain(value))
        if self.model.token_input() is not None and self.training.random_crop < 1.0:
            raise invalid("training.random_crop", "1.0 (off) when model.embedding is set "
                           "(it crops numeric series only)", self.training.random_crop)
        if self.model.token_input() is not None and self.data.scaling != "none":
            raise invalid("data.scaling", "'none' when model.embedding is set (token ids "
                           "are not scaled)", self.data.scaling)
        return self

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as plain data (every default filled), ready for YAML."""
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        """The resolved config as YAML text."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


registry.on_change(_rebuild_model_section)

PATH_KEYS = (("data", "train"), ("data", "test"))
# data.train of a config fitted on data in memory (the estimator): no file, never resolved
IN_MEMORY = "(in memory: the data given to SequenceClassifier.fit)"


class _StrictLoader(yaml.SafeLoader):
    """Safe YAML loading with two fixes for configs: ``1e-3`` is a number (YAML 1.2, as
    users expect; PyYAML's 1.1 rules need a dot), and a key given twice is an error
    rather than the last one silently winning."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                mark = key_node.start_mark
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in one mapping", mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def load_config(path: str | os.PathLike, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read, merge and validate a config file with ``--set`` overrides (``build_config``).

    Args:
        path: The YAML file.
        overrides: ``section.key=value`` strings; values are parsed as YAML.

    Returns:
        The validated config, with ``name`` defaulting to the file's stem.

    Raises:
        SeqclfError: On any problem, with a one-line message naming the file and key (or
            the ``--set`` item).
    """
    parsed: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for item in overrides:
        key, value = parse_override(item)
        parsed[key] = value
        origins[key] = f"--set {item}"
    return build_config(Path(path), parsed, origins=origins)


def build_config(base: Any, overrides: Mapping[str, Any] | None = None, *,
                 where: str | None = None, origins: Mapping[str, str] | None = None,
                 relative_to: str | os.PathLike | None = None,
                 name: str | None = None) -> Config:
    """The one way a config is made from a base and overrides, validated once: by
    ``seqclf train`` / ``check`` (a file and ``--set``), ``seqclf sweep`` (the base config
    and each variant's keys) and the estimator (a file, mapping or Config and its
    ``section__key`` parameters).

    The path rule: a relative data path is taken relative to where it was written: the
    folder of the YAML file it is in, else ``relative_to`` (the current directory unless
    given; an experiment file's folder for the keys that file sets).

    Args:
        base: A YAML file (``name`` defaults to its stem), a mapping of sections, a
            ``Config``, or None (every default).
        overrides: ``section.key`` -> value, set on the base in order.
        where: What messages name: default the base's file (or source), else "config".
        origins: ``section.key`` -> what messages name for a problem with that override
            (e.g. "--set model.units=0"); default ``where``.
        relative_to: The folder for relative paths not written in a file.
        name: The config's name, replacing the base's.

    Raises:
        SeqclfError: One line naming the file or override and the key.
    """
    origins = dict(origins or {})
    folder = Path(relative_to) if relative_to is not None else Path.cwd()
    if isinstance(base, Config):
        raw, where = base.to_dict(), where or base.source
    elif isinstance(base, (str, os.PathLike)):
        path = Path(base)
        raw = read_yaml_mapping(path)
        resolve_paths(raw, path.parent)
        raw.setdefault("name", path.stem)
        where = where or str(path)
    elif isinstance(base, Mapping):
        raw = copy.deepcopy(dict(base))
        resolve_paths(raw, folder)
    elif base is None:
        raw = {}
    else:
        raise must_be(where or "config", "config", "a YAML file path, a mapping of config "
                      "sections, a seqclf Config or None", base)
    where = where or "config"
    for key, value in (overrides or {}).items():
        set_path(raw, key, copy.deepcopy(value), where=origins.get(key, where))
        if tuple(key.split(".")) in PATH_KEYS:
            resolve_paths(raw, folder, only=key)
    if name is not None:
        raw["name"] = name
    return validate_config(raw, where=where, origins=origins)


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """Parse a YAML file that must hold a mapping (an empty file is an empty mapping)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SeqclfError(f"{path}: file not found. Check the path.") from None
    except IsADirectoryError:
        raise SeqclfError(f"{path}: is a directory, not a YAML file.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SeqclfError(f"{path}: cannot be read ({exc}).") from None
    try:
        raw = yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SeqclfError(f"{where}: invalid YAML: {problem}. Fix the syntax there.") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise must_be(path, "the config", "a mapping of sections (data, model, optimizer, "
                      "training)", type(raw).__name__)
    return raw


def parse_override(item: str) -> tuple[str, Any]:
    """Split ``key.path=value`` and parse the value as YAML (``64`` is an int, ``[1, 2]`` a list)."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise must_be("--set", "the override", "of the form section.key=value", item)
    try:
        value = yaml.load(text, Loader=_StrictLoader) if text.strip() else None
    except yaml.YAMLError:
        value = text
    return key, value


def validate_config(raw: dict[str, Any], where: str = "config",
                    origins: Mapping[str, str] | None = None) -> Config:
    """Validate a config mapping, turning the first problem into a one-line SeqclfError
    (naming ``where``, or the origin of the override the problem is in)."""
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        raise one_line(exc, Config, where, origins) from None
    config._source = where
    return config


def resolve_paths(raw: dict[str, Any], base: Path, only: str | None = None) -> None:
    """Make the relative data paths of a raw config mapping absolute, against ``base``
    (``only``: just that ``data.<key>``)."""
    data = raw.get("data")
    if not isinstance(data, dict):
        return
    for section, key in PATH_KEYS:
        if only is not None and only != f"{section}.{key}":
            continue
        value = data.get(key)
        if isinstance(value, str) and value and value != IN_MEMORY:
            data[key] = _resolve(value, base)
        elif isinstance(value, list):  # shards: each entry against the same folder
            data[key] = [_resolve(v, base) if isinstance(v, str) and v else v for v in value]


def _resolve(value: str, base: Path) -> str:
    """One data path (or glob) made absolute against ``base``."""
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())


def set_path(raw: dict[str, Any], key: str, value: Any, where: str) -> None:
    """Set ``section.key`` in a raw config mapping, creating sections as needed."""
    node = raw
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise must_be(where, ".".join(parts[: i + 1]), "a section to set keys in",
                          child)
        node = child
    node[parts[-1]] = value


# --- turning pydantic errors into one line -------------------------------------------

_TYPE_WORDS = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "float_type": "a number", "float_parsing": "a number", "bool_type": "true or false",
    "bool_parsing": "true or false", "string_type": "a string", "list_type": "a list",
    "model_type": "a mapping", "dict_type": "a mapping", "model_attributes_type": "a mapping",
    "finite_number": "a finite number",
}
_RANGE_WORDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<",
                "less_than_equal": "<="}


def section_class(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = section_class(arg)
        if found is not None:
            return found
    return None


def _field_path(root: type[BaseModel], loc: tuple[Any, ...], etype: str
                ) -> tuple[list[str], type[BaseModel] | None, str | None]:
    """Map a pydantic error location under ``root`` to key parts, skipping union-member
    tags; the keys of a mapping field (an experiment's ``grid``) are parts too.

    Returns the key parts, the section class that holds the last key, and the last key.
    """
    parts: list[str] = []
    cls: type[BaseModel] | None = root
    owner, field = None, None
    mapping = False  # the previous part is a mapping field: this item is one of its keys
    for n, item in enumerate(loc):
        if isinstance(item, int):
            if parts:
                parts[-1] += f"[{item}]"
        elif mapping:
            parts.append(str(item))
            mapping = False
        elif root is Config and parts == ["model"] and n == 1 and item in registry.families():
            cls = registry.get(item).Config  # the family's schema (a union-member tag)
        elif cls is not None and item in _keys(cls):
            parts.append(item)
            owner, field = cls, _keys(cls)[item]
            annotation = cls.model_fields[field].annotation
            mapping = _is_mapping(annotation)
            cls = section_class(annotation)
        elif etype == "extra_forbidden" and n == len(loc) - 1:
            parts.append(item)
            owner, field = cls, item
        # anything else is a union-member tag such as 'bool' or "literal['auto']"
    return parts, owner, field


def _is_mapping(annotation: Any) -> bool:
    """Whether a field holds a mapping (dict[str, ...], possibly Optional)."""
    from typing import get_origin

    if get_origin(annotation) is dict:
        return True
    return any(_is_mapping(a) for a in get_args(annotation) if a is not type(None))


def _keys(cls: type[BaseModel]) -> dict[str, str]:
    """A section's keys as written (a field's alias, else its name) -> field names."""
    return {f.alias or n: n for n, f in cls.model_fields.items()}


def _range_text(owner: type[BaseModel] | None, field: str | None) -> str | None:
    if owner is None or field is None or field not in owner.model_fields:
        return None
    bounds = []
    for meta in owner.model_fields[field].metadata:
        for attr, sym in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
            value = getattr(meta, attr, None)
            if value is not None:
                bounds.append(f"{sym} {value:g}" if isinstance(value, float) else f"{sym} {value}")
    return " and ".join(bounds) or None


def one_line(exc: ValidationError, root: type[BaseModel], where: str,
             origins: Mapping[str, str] | None = None) -> SeqclfError:
    """The first problem pydantic found validating a ``root`` (a seqclf config, an
    experiment file) as one line: ``<where>: <key> must be <constraint>. Got <value>
    instead.``, an unknown key with the valid ones, or a missing key. ``origins`` maps
    override keys to what to name instead of ``where`` for a problem under them."""
    err = exc.errors()[0]
    etype, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    parts, owner, field = _field_path(root, err["loc"], etype)
    key = ".".join(parts)
    if etype == "constraint_at":
        sub = ctx["key"]
        key = sub if "." in sub else ".".join([*parts, sub])
        value = ctx["value"]
    for okey, origin in (origins or {}).items():
        if key == okey or key.startswith(okey + ".") or okey.startswith(key + "."):
            where = origin
    if etype == "extra_forbidden":
        section = ".".join(parts[:-1])
        name = parts[-1]
        valid = sorted(_keys(owner)) if owner is not None else []
        if name in MANAGED_KEYS:
            return SeqclfError(f"{where}: {key} cannot be set: {MANAGED_KEYS[name]}.")
        family = ""
        if owner is not None and issubclass(owner, FamilyConfig):
            family = f" for model.family {err['loc'][1]!r}"
        return SeqclfError(
            f"{where}: {key} is not a valid key{family}{did_you_mean(name, valid)}. "
            f"Valid keys under {section or 'the top level'}{family and ' for that family'}: "
            f"{', '.join(valid)}.")
    if etype == "union_tag_invalid" and parts == ["model"]:
        names = list(registry.families())
        tag = ctx.get("tag")
        return must_be(where, "model.family", "one of: " + ", ".join(map(repr, names))
                       + (did_you_mean(tag, names) if isinstance(tag, str) else ""), tag)
    if etype == "missing":
        return SeqclfError(f"{where}: {key} must be given. Got nothing instead.")
    if etype in ("constraint", "constraint_at"):
        constraint = ctx.get("constraint", err["msg"])
    elif etype == "literal_error":
        constraint = "one of: " + ctx["expected"].replace(" or ", ", ")
        choices = [c.strip(" '") for c in ctx["expected"].replace(" or ", ", ").split(",")]
        if isinstance(value, str):
            constraint += did_you_mean(value, choices)
    elif etype in _RANGE_WORDS:
        constraint = _range_text(owner, field) or f"{_RANGE_WORDS[etype]} {ctx.get('limit_value')}"
    elif etype in _TYPE_WORDS:
        constraint = _TYPE_WORDS[etype]
        extra = _range_text(owner, field)
        if extra:
            constraint += f" {extra}"
    else:
        constraint = err["msg"].lower()
    return must_be(where, key, constraint, value)


__all__ = ["Config", "DataConfig", "ModelConfig", "OptimizerConfig", "TrainingConfig",
           "build_config", "load_config", "one_line", "validate_config"]

"""Training a model from a config, and checking a config without training.

``train()`` is the whole pipeline: read data, split, fit preprocessing on training data
only, build the model, fit it, score it on the test set, and write the run directory.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from seqclf import runs
from seqclf.config import Config
from seqclf.data import Preprocessor, SequenceSet, file_sha256, load_splits, split
from seqclf.errors import SeqclfError
from seqclf.evaluate import Evaluation, score
from seqclf.progress import Progress


@dataclass
class Prepared:
    """The data of a run, read, split and turned into arrays, and the config it is
    trained with (``model.family: auto`` resolved from the training data)."""

    config: Config
    train: SequenceSet
    val: SequenceSet | None
    test: SequenceSet
    prep: Preprocessor
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    x_test: np.ndarray | None  # None (and test None) when fitting on given data alone
    test_truncated: int = 0
    warnings: list[str] = field(default_factory=list)
    chosen: list[str] = field(default_factory=list)  # why auto chose the family


def prepare(cfg: Config) -> Prepared:
    """Read the config's data, split off test and validation sets, and make arrays."""
    train_set, test_set = load_splits(cfg)
    return prepare_sets(cfg, train_set, test_set)


def prepare_sets(cfg: Config, train_set: SequenceSet,
                 test_set: SequenceSet | None = None) -> Prepared:
    """Split the validation set off ``train_set``, fit the preprocessing on the rest alone,
    and make arrays (of ``test_set`` too, when given)."""
    cfg, chosen = resolve_family(cfg, train_set)
    val_set = None
    if cfg.training.validation_split > 0:
        train_set, val_set = split(train_set, cfg.training.validation_split, cfg.training.seed,
                                   cfg.data.stratify, "training.validation_split")
    prep = Preprocessor.fit(train_set, cfg)
    x_train, _ = prep.transform(train_set)
    x_val = y_val = None
    if val_set is not None:
        x_val, _ = prep.transform(val_set)
        y_val = prep.encode_labels(val_set.labels)
    x_test, truncated = prep.transform(test_set) if test_set is not None else (None, 0)
    warnings = []
    if cfg.data.max_length is not None:
        cut = sum(len(s) > prep.max_length for s in train_set.sequences)
        if cut:
            warnings.append(f"{train_set.source}: {cut} training sequences are longer than "
                            f"data.max_length ({prep.max_length}) and were truncated.")
    return Prepared(cfg, train_set, val_set, test_set, prep, x_train,
                    prep.encode_labels(train_set.labels), x_val, y_val, x_test, truncated,
                    warnings, chosen)


def resolve_family(cfg: Config, train_set: SequenceSet) -> tuple[Config, list[str]]:
    """``cfg`` with ``model.family: auto`` replaced by the family ``seqclf.models.auto``
    recommends for ``train_set``, and the reasons (any other config: as it is, no
    reasons). The resolved config is what the run records, so its ``config.yaml`` says
    what ``auto`` chose."""
    from seqclf.config import validate_config
    from seqclf.models import auto

    if cfg.model.family != "auto":
        return cfg, []
    choice = auto.recommend(auto.DataProfile.of(train_set.sequences, train_set.labels))
    raw = cfg.to_dict()
    raw["model"] = {"masking": cfg.model.masking, **choice.model}
    raw["training"].update(choice.training)
    raw["data"].update(choice.data)
    return validate_config(raw, where=cfg.source), [f"model.family auto: {reason}"
                                                    for reason in choice.reasons]


@dataclass
class CheckResult:
    """What ``seqclf check`` reports."""

    config: Config
    data: dict[str, dict[str, Any]]
    model_summary: str
    parameters: int
    cudnn: str


def check(cfg: Config) -> CheckResult:
    """Validate a config against its data and build (not train) the model."""
    from seqclf.backend import keras
    from seqclf.model import build_model

    d = prepare(cfg)
    cfg = d.config
    hardware = setup_hardware(cfg)
    keras().utils.set_random_seed(cfg.training.seed)
    model = build_model(cfg, d.prep)
    lines: list[str] = []
    model.summary(print_fn=lambda line, **_: lines.append(line))
    sets = {"train": d.train, "validation": d.val, "test": d.test}
    return CheckResult(cfg, {k: v.summary() for k, v in sets.items() if v is not None},
                       "\n".join(lines), int(model.count_params()), hardware.cudnn)


@dataclass
class TrainResult:
    """The outcome of ``train()``.

    Attributes:
        run_dir: Where the run was written.
        evaluation: Scores on the test set.
        epochs_run: Epochs actually trained (fewer than asked with early stopping).
        seconds: Wall time of the whole run.
        fit_seconds: Wall time of ``model.fit`` alone.
        sizes: Sequences in train / validation / test.
        warnings: Things the user should know about the data.
        seed: The run's training.seed.
    """

    run_dir: Path
    evaluation: Evaluation
    epochs_run: int
    seconds: float
    fit_seconds: float
    sizes: dict[str, int]
    warnings: list[str]
    seed: int | None = None


def train(cfg: Config, output_dir: str | Path = "runs", progress: Progress | None = None,
          run_name: str | None = None) -> TrainResult:
    """Train the model a config describes and save everything into a new run directory.

    Args:
        cfg: A validated config (``training.repeats`` is handled by ``train_repeats``).
        output_dir: Parent of the run directory.
        progress: Receives per-epoch (and, on a terminal, per-batch) updates; None: silent.
        run_name: Exact run directory name; default ``<config name>-<timestamp>``.
    """
    from seqclf import distributed

    started = time.time()
    d = prepare(cfg)
    cfg = d.config
    hardware = setup_hardware(cfg)
    # Multi-worker: only the chief writes the run; the other workers' copies are deleted.
    with distributed.output_dir(cfg.training.distribute, output_dir, cfg.source) as output_dir:
        run_dir = runs.create_run_dir(output_dir, run_name or cfg.name or "run",
                                      stamp=run_name is None)
        runs.write_text(run_dir / runs.CONFIG, cfg.to_yaml())
        runs.write_text(run_dir / runs.PREPROCESSING, d.prep.to_json())
        result = _fit(cfg, d, hardware, run_dir, progress, started)
    result.warnings += distributed.worker_notes(cfg.training.distribute, cfg.source)
    return result


def resume(run_dir: str | Path, progress: Progress | None = None) -> TrainResult:
    """Continue an interrupted run from its last epoch checkpoint.

    The run ends with the same number of epochs as an uninterrupted one; early stopping
    and the learning-rate schedule carry on counting from the checkpoint.

    Raises:
        SeqclfError: The directory is not an unfinished run, or its data changed since.
    """
    from seqclf.config import read_yaml_mapping, validate_config

    started = time.time()
    run_dir = Path(run_dir)
    if not (run_dir / runs.INCOMPLETE).exists():
        if (run_dir / runs.MANIFEST).exists():
            raise SeqclfError(f"{run_dir}: this run is already complete; nothing to resume.")
        raise SeqclfError(f"{run_dir}: is not an unfinished seqclf run (no {runs.INCOMPLETE} "
                          "marker). Pass the run directory of an interrupted `seqclf train`.")
    if not (run_dir / runs.PREPROCESSING).exists():
        raise SeqclfError(f"{run_dir}: was interrupted before training started; start a new run.")
    cfg = validate_config(read_yaml_mapping(run_dir / runs.CONFIG), where=str(run_dir / runs.CONFIG))
    if cfg.training.distribute == "multi_worker":  # before waiting for a cluster to form
        raise SeqclfError(f"{run_dir}: a training.distribute 'multi_worker' run cannot be "
                          "resumed (every worker would need the chief's checkpoint). Start "
                          "a new run.")
    d = prepare(cfg)
    if d.prep.to_json() != (run_dir / runs.PREPROCESSING).read_text(encoding="utf-8"):
        raise SeqclfError(f"{run_dir}: the training data changed since this run started "
                          "(labels, length or scaling differ). Start a new run.")
    return _fit(cfg, d, setup_hardware(cfg), run_dir, progress, started)


@dataclass
class Hardware:
    """Where a run trains: device, precision, and whether cuDNN kernels will run."""

    device: str
    cudnn: str
    mixed_precision: bool
    intra_op_threads: int | None  # TensorFlow's threads per op; None: its default
    tensorboard: bool
    strategy: Any
    warnings: list[str]


def setup_hardware(cfg: Config) -> Hardware:
    """Apply training.device / mixed_precision / intra_op_threads and check
    training.require_cudnn.

    Raises:
        SeqclfError: require_cudnn is set and cuDNN would not be used (before any training).
    """
    from seqclf.backend import configure, devices, keras, threads_per_op
    from seqclf.distributed import distribution
    from seqclf.model import cudnn_line, cudnn_reasons

    t = cfg.training
    warnings = configure(t.backend, t.device, t.mixed_precision, cfg.source,
                         t.intra_op_threads)
    # Created before any other TensorFlow op: collective ops are set up at start-up.
    strategy = distribution(t.distribute, cfg.source)
    gpus = devices() if t.device != "cpu" else []
    backend = keras().backend.backend()
    line = cudnn_line(cfg, len(gpus), backend)
    if t.require_cudnn and line != "cuDNN kernel: yes":
        why = "; ".join(cudnn_reasons(cfg, backend)) if gpus else "there is no GPU"
        raise SeqclfError(f"{cfg.source}: training.require_cudnn is true but the cuDNN kernel "
                          f"would not be used: {why}.")
    tensorboard = t.tensorboard and _tensorboard_available()
    if t.tensorboard and not tensorboard:
        warnings.append("TensorBoard logs need the tensorflow and tensorboard packages "
                        "(Keras writes them with tf.summary); this run writes none.")
    return Hardware("GPU" if gpus else "CPU", line, t.mixed_precision and bool(gpus),
                    threads_per_op(), tensorboard, strategy, warnings)


def compute_line(model: Any, hardware: Hardware) -> str:
    """The speed choices a run trains with, for the user (the manifest records them too):
    e.g. ``compute: tensorflow on CPU, XLA, 32 batches per call, 1 thread per op``."""
    from seqclf.backend import keras

    parts = [f"{keras().backend.backend()} on {hardware.device}",
             "XLA" if model.jit_compile is True else "no XLA"]
    if model.steps_per_execution > 1:
        parts.append(f"{model.steps_per_execution} batches per call")
    if hardware.intra_op_threads:
        parts.append(f"{hardware.intra_op_threads} thread"
                     f"{'s' if hardware.intra_op_threads > 1 else ''} per op")
    return "compute: " + ", ".join(parts)


def _fit(cfg: Config, d: Prepared, hardware: Hardware, run_dir: Path,
         progress: Progress | None, started: float) -> TrainResult:
    """Fit (or continue fitting) in ``run_dir``, score on the test set, write everything."""
    from seqclf.backend import environment, keras
    from seqclf.distributed import workers
    from seqclf.model import predict_proba

    k = keras()
    if progress is not None:
        for line in d.chosen:
            progress.note(line)
        progress.note(hardware.cudnn)
    t = cfg.training
    callbacks = [_history_recorder(k, run_dir / runs.HISTORY)]
    if hardware.tensorboard:
        callbacks.append(k.callbacks.TensorBoard(log_dir=str(run_dir / runs.TENSORBOARD)))
    model, fit_seconds, closed_form = fit_model(cfg, d, hardware, callbacks, progress,
                                                checkpoint=run_dir / runs.BACKUP)
    if closed_form:  # no epochs went through the callbacks: record the fit's own
        _write_history(run_dir / runs.HISTORY, _history_rows(closed_form))
    shutil.rmtree(run_dir / runs.BACKUP, ignore_errors=True)

    predict_start = time.time()
    proba = predict_proba(model, d.x_test, cfg)
    predict_seconds = time.time() - predict_start
    evaluation = score(d.test.labels, proba, d.prep, d.test.source, d.test_truncated)
    history = _read_history(run_dir / runs.HISTORY)
    epochs_run = len(history.get("loss", []))
    _write_results(run_dir, model, evaluation, history)
    sizes = {"train": len(d.train), "validation": len(d.val) if d.val else 0, "test": len(d.test)}
    metrics = {
        "test": evaluation.to_dict(), "epochs_run": epochs_run, "fit_seconds": fit_seconds,
        "predict_seconds": predict_seconds,
        "seconds_per_epoch": (float(np.mean(history["epoch_seconds"]))
                              if history.get("epoch_seconds") else 0.0),
        "parameters": model.count_params(),
        "final": {key: values[-1] for key, values in history.items()}, "sizes": sizes,
    }
    runs.write_json(run_dir / runs.METRICS, metrics)
    seconds = time.time() - started
    data_files = {p: file_sha256(p) for p in (cfg.data.train, cfg.data.test) if p}
    runs.finish(run_dir, {
        "name": cfg.name, "seed": t.seed, "command": sys.argv, "data_sha256": data_files,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "seconds": seconds, **environment(), "device": hardware.device, "cudnn": hardware.cudnn,
        "mixed_precision": hardware.mixed_precision, "jit_compile": bool(model.jit_compile),
        "steps_per_execution": model.steps_per_execution,
        "intra_op_threads": hardware.intra_op_threads, "distribute": t.distribute,
        "replicas": hardware.strategy.num_replicas_in_sync if hardware.strategy else 1,
        "workers": workers(hardware.strategy),
    })
    warnings = d.warnings + hardware.warnings + evaluation.warnings()
    return TrainResult(run_dir, evaluation, epochs_run, seconds, fit_seconds, sizes, warnings,
                       t.seed)


def fit_model(cfg: Config, d: Prepared, hardware: Hardware, callbacks: Any = (),
              progress: Progress | None = None, checkpoint: Path | None = None
              ) -> tuple[Any, float, dict[str, list[float]] | None]:
    """Build the model and fit it on prepared arrays: the one training step that
    ``train()`` and ``SequenceClassifier.fit`` share (seed, class weights, stateful batch
    padding, validation data, early stopping, learning-rate schedule). A family with a
    ``fit`` hook (a closed-form fit, e.g. minirocket's) is fitted by it instead of
    ``model.fit``, and the callbacks are not called.

    Args:
        cfg: The validated config.
        d: The arrays, from ``prepare`` or ``prepare_sets``.
        hardware: From ``setup_hardware`` (the distribution strategy, if any).
        callbacks: Extra Keras callbacks, run before early stopping and progress
            (``train()`` passes its run-directory ones: history, TensorBoard).
        progress: Receives per-epoch updates; None: silent.
        checkpoint: A folder for the end-of-epoch checkpoint (model with optimizer state,
            and the epoch count); when it already holds one, training continues from it.

    Returns:
        (the fitted Keras model, seconds spent fitting, the closed-form fit's history
        columns or None when the fit went through ``model.fit`` and its callbacks).
    """
    from seqclf import distributed
    from seqclf.backend import keras, set_seed
    from seqclf.model import build_model, fixed_batch_padding, member_config
    from seqclf.models import registry

    k = keras()
    set_seed(cfg.training.seed)
    if registry.hook(cfg.model.family, "combine") is not None:
        # an ensemble: each member fitted as a config of its own, then combined
        fit_start = time.time()
        models = []
        for section, seed in cfg.model.member_sections(cfg.training.seed):
            if progress is not None:
                progress.note(f"member {len(models) + 1}: {section['family']}, seed {seed}")
            models.append(fit_model(member_config(cfg, section, seed), d, hardware,
                                    progress=progress)[0])
        model = registry.get(cfg.model.family).combine(k, models)
        return model, time.time() - fit_start, {}
    closed_form = registry.hook(cfg.model.family, "fit")
    if closed_form is not None:
        model = build_model(cfg, d.prep)
        if progress is not None:
            progress.note(compute_line(model, hardware))
            progress.note(f"fitting model.family {cfg.model.family!r} in closed form")
        fit_start = time.time()
        history = closed_form(model, d.x_train, d.y_train, d.x_val, d.y_val, cfg)
        return model, time.time() - fit_start, history
    initial_epoch, saved_state = 0, {}
    with hardware.strategy.scope() if hardware.strategy else contextlib.nullcontext():
        restored = _load_checkpoint(k, checkpoint) if checkpoint is not None else None
        if restored is not None:
            model, initial_epoch, saved_state = restored
        else:
            model = build_model(cfg, d.prep)
    t = cfg.training
    stateful = cfg.model.is_stateful()
    x, y, w = _weighted(d.x_train, d.y_train, t.class_weight, len(d.prep.classes),
                        fixed_batch_padding(len(d.x_train), t.batch_size, stateful))
    validation = None
    if d.x_val is not None:
        validation = _weighted(d.x_val, d.y_val, "none", len(d.prep.classes),
                               fixed_batch_padding(len(d.x_val), t.batch_size, stateful))
    callbacks = list(callbacks)
    if t.early_stopping is not None:
        es = t.early_stopping
        callbacks.append(k.callbacks.EarlyStopping(
            monitor=es.monitor, patience=es.patience, min_delta=es.min_delta,
            restore_best_weights=es.restore_best_weights))
    if t.reduce_lr_on_plateau is not None:  # first: it logs the rate history.csv records
        callbacks.insert(0, k.callbacks.ReduceLROnPlateau(**t.reduce_lr_on_plateau.model_dump()))
    if checkpoint is not None:
        callbacks.append(_checkpointer(k, checkpoint, callbacks, saved_state))
    if progress is not None:
        progress.note(compute_line(model, hardware))
        progress.train_begin(t.epochs, math.ceil(len(x) / t.batch_size), initial_epoch)
        callbacks.append(_progress_callback(k, progress))
    fit_start = time.time()
    # Keras's fit cannot run under the multi-worker strategy (see seqclf.distributed).
    if distributed.is_multi_worker(hardware.strategy):
        model = distributed.fit(model, hardware.strategy, x, y, w, validation, t.epochs,
                                initial_epoch, t.batch_size, t.shuffle, t.seed, callbacks,
                                rebuild=lambda: build_model(cfg, d.prep))
    else:
        model.fit(x, y, sample_weight=w, validation_data=validation, epochs=t.epochs,
                  initial_epoch=initial_epoch, batch_size=t.batch_size, shuffle=t.shuffle,
                  callbacks=callbacks, verbose=0)
    fit_seconds = time.time() - fit_start
    if progress is not None:
        progress.train_end()
    return model, fit_seconds, None


CHECKPOINT_MODEL = "model.keras"
CHECKPOINT_STATE = "state.json"


# Saving the whole model takes 30-50 ms on 2 CPU cores: after every sub-second epoch that
# is a tenth of the training time (benchmarks/performance.py). So a checkpoint is written
# after the first epoch and then at the first epoch end CHECKPOINT_SECONDS after the last
# one: an interrupted run repeats at most that much training (plus an epoch) on resume.
CHECKPOINT_SECONDS = 10.0


CHECKPOINT_BEST_WEIGHTS = "best_weights.npz"
# What early stopping and the plateau schedule count across epochs: a resumed run carries
# on counting (patience, best value, best weights) instead of starting afresh.
RESUMABLE = {"EarlyStopping": ("wait", "best", "best_epoch"),
             "ReduceLROnPlateau": ("wait", "best", "cooldown_counter")}


def _checkpointer(k: Any, folder: Path, callbacks: list[Any], saved: dict[str, Any]) -> Any:
    """Saves the whole model (weights and optimizer state), the epoch count and the
    counters of ``callbacks`` (see RESUMABLE) at epoch ends (see CHECKPOINT_SECONDS),
    atomically, state file last: it never names an epoch or weights not saved. Restores
    the counters from ``saved`` (a loaded state file) when training begins.

    It must come after ``callbacks`` in the list given to fit: their ``on_train_begin``
    resets the counters that it then restores, and their ``on_epoch_end`` updates them
    before it saves.
    """
    tracked = [c for c in callbacks if type(c).__name__ in RESUMABLE]

    class Checkpoint(k.callbacks.Callback):
        written: float | None = None

        def on_train_begin(self, logs: Any = None) -> None:
            for cb in tracked:
                name = type(cb).__name__
                for attr, value in saved.get("callbacks", {}).get(name, {}).items():
                    setattr(cb, attr, value)
                if name == "EarlyStopping" and saved.get("best_weights"):
                    with np.load(folder / CHECKPOINT_BEST_WEIGHTS) as data:
                        cb.best_weights = [data[f"arr_{i}"] for i in range(len(data.files))]

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if self.written is not None and time.monotonic() - self.written < CHECKPOINT_SECONDS:
                return
            folder.mkdir(exist_ok=True)
            runs.save_model(folder / CHECKPOINT_MODEL, self.model)
            state: dict[str, Any] = {"epoch": epoch + 1, "callbacks": {}, "best_weights": False}
            for cb in tracked:
                name = type(cb).__name__
                state["callbacks"][name] = {a: _plain(getattr(cb, a)) for a in RESUMABLE[name]}
                if getattr(cb, "best_weights", None) is not None:
                    runs.write_arrays(folder / CHECKPOINT_BEST_WEIGHTS, cb.best_weights)
                    state["best_weights"] = True
            runs.write_json(folder / CHECKPOINT_STATE, state)
            self.written = time.monotonic()

    return Checkpoint()


def _plain(value: Any) -> Any:
    """A callback counter as JSON: numpy scalars become Python numbers."""
    return value.item() if isinstance(value, np.generic) else value


def _load_checkpoint(k: Any, folder: Path) -> tuple[Any, int, dict[str, Any]] | None:
    """The model, epoch count and saved state of an interrupted fit, or None when there
    is none."""
    import json

    state, model = folder / CHECKPOINT_STATE, folder / CHECKPOINT_MODEL
    if not (state.exists() and model.exists()):
        return None
    try:
        saved = json.loads(state.read_text(encoding="utf-8"))
        return k.saving.load_model(model, safe_mode=True), int(saved["epoch"]), saved
    except Exception as exc:  # a checkpoint cut short by the interruption itself
        raise SeqclfError(f"{folder}: the checkpoint cannot be read ({type(exc).__name__}). "
                          "Start a new run.") from None


def _tensorboard_available() -> bool:
    """Keras writes TensorBoard logs through tf.summary, whatever the backend."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("tensorflow", "tensorboard"))


def _read_history(path: Path) -> dict[str, list[float]]:
    import pandas as pd

    if not path.exists():
        return {}
    frame = pd.read_csv(path)
    return {c: frame[c].tolist() for c in frame.columns if c != "epoch"}


def _weighted(x: np.ndarray, y: np.ndarray, class_weight: str, n_classes: int, pad: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Arrays plus per-sample weights: balanced class weights, zero for batch padding."""
    weights = None
    if class_weight == "balanced":
        counts = np.bincount(y, minlength=n_classes).astype(np.float64)
        per_class = np.where(counts > 0, len(y) / (n_classes * np.maximum(counts, 1)), 0.0)
        weights = per_class[y]
    if pad:
        weights = np.ones(len(y)) if weights is None else weights
        x = np.concatenate([x, np.repeat(x[-1:], pad, axis=0)])
        y = np.concatenate([y, np.repeat(y[-1:], pad)])
        weights = np.concatenate([weights, np.zeros(pad)])
    return x, y, weights


def _history_recorder(k: Any, path: Path) -> Any:
    """Times each epoch (``epoch_seconds`` in the logs) and rewrites history.csv after it.

    Rows already in the file (from an interrupted fit being resumed) are kept up to the
    epoch training restarts from.
    """
    import pandas as pd

    rows: list[dict[str, Any]] = pd.read_csv(path).to_dict("records") if path.exists() else []
    clock = {}

    def epoch_end(epoch: int, logs: dict[str, Any]) -> None:
        logs["epoch_seconds"] = time.perf_counter() - clock["t"]
        rows[:] = [r for r in rows if r["epoch"] <= epoch]
        rows.append({"epoch": epoch + 1, **{key: float(v) for key, v in logs.items()}})
        _write_history(path, rows)

    return k.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs=None: clock.__setitem__("t", time.perf_counter()),
        on_epoch_end=epoch_end)


def _history_rows(columns: dict[str, list[float]]) -> list[dict[str, Any]]:
    """history.csv rows (one per epoch) from history columns."""
    n = max((len(v) for v in columns.values()), default=0)
    return [{"epoch": i + 1, **{key: float(v[i]) for key, v in columns.items()}}
            for i in range(n)]


def _write_history(path: Path, rows: list[dict[str, Any]]) -> None:
    import pandas as pd

    runs.write_text(path, pd.DataFrame(rows).to_csv(index=False))


def _progress_callback(k: Any, progress: Progress) -> Any:
    hooks = dict(on_epoch_begin=lambda epoch, logs=None: progress.epoch_begin(epoch),
                 on_epoch_end=lambda epoch, logs=None: progress.epoch_end(epoch, logs or {}))
    if progress.live:
        # Batch hooks make Keras sync every step, so only a live bar pays for them.
        hooks["on_train_batch_end"] = lambda batch, logs=None: progress.batch_end(batch, logs or {})
    return k.callbacks.LambdaCallback(**hooks)


def _write_results(run_dir: Path, model: Any, ev: Evaluation, history: dict[str, list]) -> None:
    from seqclf import report

    runs.save_model(run_dir / runs.MODEL, model)
    runs.write_text(run_dir / runs.REPORT, report.evaluation_text(ev))
    title = f"test accuracy {ev.accuracy:.3f} (baseline {ev.baseline:.3f})"
    runs.save_figure(run_dir / runs.CONFUSION_PLOT, report.confusion_figure(ev.confusion, ev.labels, title))
    runs.save_figure(run_dir / runs.CURVES_PLOT, report.curves_figure(history, ev.baseline))


@dataclass
class RepeatResult:
    """The outcome of ``train_repeats()``: one run per seed and their spread.

    Attributes:
        group_dir: Directory holding ``seed-<n>/`` run directories and the summary.
        results: One TrainResult per seed, in seed order.
        summary: Accuracy mean, sample std, min, max; seeds; baseline; seconds.
    """

    group_dir: Path
    results: list[TrainResult]
    summary: dict[str, Any]


def train_repeats(cfg: Config, output_dir: str | Path = "runs",
                  progress: Progress | None = None, announce=None) -> RepeatResult:
    """Train ``training.repeats`` runs with seeds seed, seed+1, ... and summarise them.

    One 200-epoch run is a single draw; repeats show how much of a difference between
    configs is noise. Each run is an ordinary run directory under the group directory.

    Args:
        cfg: A validated config.
        output_dir: Parent of the group directory ``<config name>-<timestamp>``.
        progress: As for ``train``.
        announce: Called with (index, count, seed) before each run, for the CLI.
    """
    n = cfg.training.repeats
    group = runs.create_run_dir(output_dir, cfg.name or "run")
    runs.write_text(group / runs.CONFIG, cfg.to_yaml())
    results = []
    for i in range(n):
        seed = cfg.training.seed + i
        one = cfg.model_copy(deep=True)
        one.training.seed, one.training.repeats = seed, 1
        one._source = cfg.source
        if announce is not None:
            announce(i, n, seed)
        results.append(train(one, group, progress, run_name=f"seed-{seed}"))
    summary = summarize(cfg.name, results)
    runs.write_text(group / runs.SUMMARY_MD, summary_markdown(summary))
    runs.finish(group, summary, name=runs.SUMMARY)
    return RepeatResult(group, results, summary)


def summarize(name: str | None, results: list[TrainResult]) -> dict[str, Any]:
    """Accuracy over repeated runs: mean, sample standard deviation, min, max."""
    acc = np.array([r.evaluation.accuracy for r in results])
    f1 = np.array([r.evaluation.macro_f1 for r in results])
    return {
        "name": name, "repeats": len(results),
        "seeds": [r.seed for r in results],
        "accuracy": {"mean": float(acc.mean()), "std": float(acc.std(ddof=1)) if len(acc) > 1
                     else 0.0, "min": float(acc.min()), "max": float(acc.max()),
                     "values": acc.tolist()},
        "macro_f1_mean": float(f1.mean()),
        "baseline": results[0].evaluation.baseline,
        "epochs_run": [r.epochs_run for r in results],
        "seconds": [r.seconds for r in results],
        "runs": [str(r.run_dir) for r in results],
    }


def summary_markdown(summary: dict[str, Any]) -> str:
    """A short markdown report of repeated runs."""
    acc = summary["accuracy"]
    rows = "\n".join(f"| {seed} | {value:.4f} | {run} |" for seed, value, run in
                      zip(summary["seeds"], acc["values"], summary["runs"]))
    return (f"# {summary['name']}: {summary['repeats']} seeds\n\n"
            f"test accuracy {acc['mean']:.4f} ± {acc['std']:.4f} (sample std), "
            f"min {acc['min']:.4f}, max {acc['max']:.4f}; majority-class baseline "
            f"{summary['baseline']:.4f}\n\n| seed | accuracy | run |\n|---|---|---|\n{rows}\n")

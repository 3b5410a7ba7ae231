"""Training a model from a config into a run directory, and checking a config without
training.

``train()`` is the whole run: the data made ready (``seqclf.prepare``), the compute set
up (``seqclf.compute``), the model fitted (``seqclf.fitting``), scored on the test set,
and every file of the run directory written; ``resume()`` continues an interrupted one.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from seqclf import compute, report, runs
from seqclf.callbacks import history_recorder, history_rows, read_history, write_history
from seqclf.compute import Hardware
from seqclf.config import Config
from seqclf.data import digests
from seqclf.errors import SeqclfError
from seqclf.evaluate import Evaluation, known_targets, majority_baseline, score
from seqclf.fitting import fit_model
from seqclf.prepare import Prepared, prepare
from seqclf.progress import Progress
from seqclf.summary import RunScore


@dataclass
class CheckResult:
    """What ``seqclf check`` reports."""

    config: Config
    data: dict[str, dict[str, Any]]
    model_summary: str
    parameters: int
    compute: str
    cudnn: str


def check(cfg: Config) -> CheckResult:
    """Validate a config against its data and build (not train) the model."""
    from seqclf.backend import keras
    from seqclf.model import build_model

    d = prepare(cfg)
    cfg = d.config
    check_threshold(cfg, d.prep)
    hardware = compute.setup(cfg, d.work())
    keras().utils.set_random_seed(cfg.training.seed)
    model = build_model(cfg, d.prep, hardware.plan.work)
    lines: list[str] = []
    model.summary(print_fn=lambda line, **_: lines.append(line))
    sets = {"train": d.train, "validation": d.val, "test": d.test}
    return CheckResult(cfg, {k: v.summary() for k, v in sets.items() if v is not None},
                       "\n".join(lines), int(model.count_params()),
                       hardware.plan.resolved(model).line(), hardware.cudnn)


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

    def score(self) -> RunScore:
        """The figures a summary over seeds pools."""
        e = self.evaluation
        return RunScore(self.run_dir, self.seed, e.accuracy, e.macro_f1, e.baseline,
                        self.epochs_run, self.seconds)


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
    phases: dict[str, float] = {}
    with _timed(phases, "read"):
        d = prepare(cfg)
    cfg = d.config
    check_threshold(cfg, d.prep)
    with _timed(phases, "framework"):
        hardware = compute.setup(cfg, d.work())
    # Multi-worker: only the chief writes the run; the other workers' copies are deleted.
    with distributed.output_dir(cfg.training.distribute, output_dir, cfg.source) as output_dir:
        run_dir = runs.create_run_dir(output_dir, run_name or cfg.name or "run",
                                      stamp=run_name is None)
        runs.write_text(run_dir / runs.CONFIG, cfg.to_yaml())
        runs.write_text(run_dir / runs.PREPROCESSING, d.prep.to_json())
        result = _fit(cfg, d, hardware, run_dir, progress, started, phases)
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
    phases: dict[str, float] = {}
    with _timed(phases, "read"):
        d = prepare(cfg)
    if d.prep.to_json() != (run_dir / runs.PREPROCESSING).read_text(encoding="utf-8"):
        raise SeqclfError(f"{run_dir}: the training data changed since this run started "
                          "(labels, length or scaling differ). Start a new run.")
    with _timed(phases, "framework"):
        hardware = compute.setup(cfg, d.work())
    return _fit(cfg, d, hardware, run_dir, progress, started, phases)


@contextmanager
def _timed(phases: dict[str, float], name: str) -> Iterator[None]:
    """Add the seconds the block takes to ``phases[name]`` (the manifest's ``phases``)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        phases[name] = round(phases.get(name, 0.0) + time.perf_counter() - start, 3)


def _fit(cfg: Config, d: Prepared, hardware: Hardware, run_dir: Path,
         progress: Progress | None, started: float, phases: dict[str, float]) -> TrainResult:
    """Fit (or continue fitting) in ``run_dir``, score on the test set, write everything.

    ``phases``: seconds so far by phase; the manifest records them with this part's
    (build and fit, predict, score, save: model, reports and plots)."""
    from seqclf.backend import environment, keras, make_prediction_step
    from seqclf.distributed import workers
    from seqclf.streaming import test_proba

    k = keras()
    if progress is not None:
        for line in d.chosen:
            progress.note(line)
        progress.note(hardware.cudnn)
    t = cfg.training
    callbacks = [history_recorder(k, run_dir / runs.HISTORY)]
    if hardware.tensorboard:
        callbacks.append(k.callbacks.TensorBoard(log_dir=str(run_dir / runs.TENSORBOARD)))
    decided: dict[str, Any] = {}
    with _timed(phases, "build_and_fit"):
        model, fit_seconds, closed_form = fit_model(cfg, d, hardware, callbacks, progress,
                                                    checkpoint=run_dir / runs.BACKUP,
                                                    record=decided)
    plan = hardware.plan.resolved(model)
    compute.remember_compiled(plan, cfg, d.prep)
    if closed_form:  # no epochs went through the callbacks: record the fit's own
        write_history(run_dir / runs.HISTORY, history_rows(closed_form))
    shutil.rmtree(run_dir / runs.BACKUP, ignore_errors=True)
    if plan.backend == "tensorflow" and plan.jit_compile is True:
        make_prediction_step(model)  # without XLA (made while training, past one epoch)

    history = read_history(run_dir / runs.HISTORY)
    epochs_run = len(history.get("loss", []))
    with runs.Figures() as figures:  # each drawn in a forked copy as soon as its data exists
        figures.save(run_dir / runs.CURVES_PLOT, partial(
            report.curves_figure, history, majority_baseline(d.test.labels, d.prep)))
        predict_start = time.time()
        with _timed(phases, "predict"):
            proba = test_proba(model, d, cfg)  # streamed data: chunk by chunk
            predict_seconds = time.time() - predict_start
            decision = choose_decision(model, cfg, d)
        if decision is not None:
            runs.write_json(run_dir / runs.DECISION, decision)
            if progress is not None:
                progress.note(f"decision threshold: {decision['threshold']:.4f} on p("
                              f"{decision['positive_class']}) ({decision['rule']})")
        with _timed(phases, "score"):
            evaluation = score(d.test.labels, proba, d.prep, d.test.source, d.test_truncated,
                               decision)
            evaluation.calibration = _test_calibration(decided.get("calibration"), evaluation, d,
                                                       proba)
        with _timed(phases, "save"):
            _write_results(run_dir, model, evaluation, d, proba, figures)
    sizes = {"train": len(d.train), "validation": len(d.val) if d.val else 0, "test": len(d.test)}
    metrics = {
        "test": evaluation.to_dict(), "epochs_run": epochs_run, "fit_seconds": fit_seconds,
        "predict_seconds": predict_seconds,
        "seconds_per_epoch": (float(np.mean(history["epoch_seconds"]))
                              if history.get("epoch_seconds") else 0.0),
        "parameters": model.count_params(),
        "final": {key: [v for v in values if v == v][-1]  # NaN: a member stopped earlier
                  for key, values in history.items() if any(v == v for v in values)},
        "sizes": sizes,
    }
    runs.write_json(run_dir / runs.METRICS, metrics)
    seconds = time.time() - started
    data_files = digests(cfg.data.train, cfg.data.test)  # one per file (shards: each)
    runs.finish(run_dir, {
        "name": cfg.name, "seed": t.seed, "command": sys.argv, "data_sha256": data_files,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "seconds": seconds, **environment(),
        "compute": {**plan.to_dict(), "cudnn": hardware.cudnn,
                    "last_batch_padding": decided.get("last_batch_padding", 0)},
        "phases": {**phases, "fit": round(fit_seconds, 3)},
        "mixed_precision": hardware.mixed_precision, "distribute": t.distribute,
        "replicas": hardware.strategy.num_replicas_in_sync if hardware.strategy else 1,
        "workers": workers(hardware.strategy),
        "imbalance": decided.get("imbalance"), "calibration": decided.get("calibration"),
        "threshold": decision,
    })
    warnings = d.warnings + hardware.warnings + evaluation.warnings()
    return TrainResult(run_dir, evaluation, epochs_run, seconds, fit_seconds, sizes, warnings,
                       t.seed)


def check_threshold(cfg: Config, prep: Any) -> None:
    """A threshold other than 0.5 needs two classes.

    Raises:
        SeqclfError: ``training.threshold`` is set for a problem of more classes.
    """
    t = cfg.training
    if len(prep.classes) != 2 and (t.chooses_threshold() or t.threshold != 0.5):
        raise SeqclfError(f"{cfg.source}: training.threshold must be 0.5 for "
                          f"{len(prep.classes)} classes (a threshold decides between two; "
                          f"more classes take the most probable). Got {t.threshold_rule()!r} "
                          "instead.")


def choose_decision(model: Any, cfg: Config, d: Prepared) -> dict[str, Any] | None:
    """The run's binary decision threshold (``training.threshold``), chosen on the
    validation split (after calibration) for f1 and targets; None at 0.5 (the most
    probable class decides)."""
    from seqclf.model import predict_proba
    from seqclf.probability import choose_threshold

    t = cfg.training
    if not t.chooses_threshold() and t.threshold == 0.5:
        return None
    record: dict[str, Any] = {"positive_class": d.prep.classes[1],
                              "negative_class": d.prep.classes[0]}
    if d.x_val is not None and len(d.x_val):
        p = predict_proba(model, d.x_val, cfg)[:, 1]
        chosen = choose_threshold((d.y_val == 1).astype(np.int64), p, t.threshold_rule())
        record.update(threshold=chosen.pop("threshold"), rule=chosen.pop("rule"),
                      met=chosen.pop("met"), validation={"n": int(len(p)), **chosen})
    else:  # a number, no validation data to report it on
        record.update(threshold=float(t.threshold), rule=t.threshold_rule(), met=True)
    return record


def _test_calibration(calibration: dict[str, Any] | None, ev: Evaluation, d: Prepared,
                      proba: np.ndarray) -> dict[str, Any] | None:
    """The calibration record with the test set's ECE before and after (one temperature:
    the uncalibrated probabilities are the calibrated ones at 1/temperature)."""
    from seqclf.probability import apply_temperature, expected_calibration_error, reliability

    if calibration is None or not isinstance(calibration["temperature"], float):
        return calibration
    if not ev.probability_n:
        return calibration
    known, y = known_targets(d.test.labels, d.prep.classes)
    before = apply_temperature(proba[known], 1.0 / calibration["temperature"])
    return {**calibration, "test": {"ece_before": expected_calibration_error(y, before),
                                    "ece_after": ev.ece,
                                    "reliability_before": reliability(y, before)}}


def _write_results(run_dir: Path, model: Any, ev: Evaluation, d: Prepared, proba: np.ndarray,
                   figures: runs.Figures) -> None:
    """The test set's figures (forked first: drawn while the model is saved), the model,
    the report; returns when every figure is saved."""
    title = f"test accuracy {ev.accuracy:.3f} (baseline {ev.baseline:.3f})"
    figures.save(run_dir / runs.CONFUSION_PLOT,
                 partial(report.confusion_figure, ev.confusion, ev.labels, title))
    if ev.probability_n:
        before = None
        if ev.calibration and ev.calibration.get("test"):
            before = ev.calibration["test"]["reliability_before"]
        ece = "-" if ev.ece is None else f"{ev.ece:.3f}"
        figures.save(run_dir / runs.RELIABILITY_PLOT, partial(
            report.reliability_figure, ev.reliability, f"reliability on the test set (ECE {ece})",
            before))
    figures.save(run_dir / runs.PR_PLOT, partial(_pr_figure, ev, d, proba))
    runs.save_model(run_dir / runs.MODEL, model)
    runs.write_text(run_dir / runs.REPORT, report.evaluation_text(ev))
    figures.finish()


def _pr_figure(ev: Evaluation, d: Prepared, proba: np.ndarray) -> Any:
    """precision_recall.png: the test set's curves, with the chosen threshold's point;
    None when there are no curves to draw."""
    from seqclf.probability import pr_curves, threshold_scores

    classes = [str(c) for c in d.prep.classes]
    known, y = known_targets(d.test.labels, classes)
    curves = pr_curves(y, proba[known], classes)
    if not curves:
        return None
    point = None
    if ev.decision is not None and len(classes) == 2:
        s = threshold_scores((y == 1).astype(np.int64), proba[known][:, 1], ev.decision["threshold"])
        point = (s["recall"], s["precision"], f"threshold {ev.decision['threshold']:.3f}")
    kind = "" if len(classes) == 2 else " (one-vs-rest)"
    return report.precision_recall_figure(curves, f"precision-recall on the test set{kind}", point)

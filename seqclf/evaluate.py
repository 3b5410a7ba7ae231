"""Scoring predictions, and running a saved model on new data (evaluate and predict)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from seqclf import probability
from seqclf.data import Preprocessor, SequenceSet, read_sequences
from seqclf.errors import SeqclfError, must_be
from seqclf.runs import Run, open_run


@dataclass
class Evaluation:
    """Scores of a model on one labelled data set.

    Attributes:
        source: The data file.
        n: Number of sequences.
        correct: Number predicted right.
        accuracy: correct / n.
        macro_f1: F1 averaged over classes, unweighted.
        baseline: Accuracy of always predicting the most frequent training label.
        majority_class: That label.
        labels: Row/column labels of the report and confusion matrix: the training classes
            that occur in the data or the predictions, then labels training never saw.
        confusion: Confusion matrix, rows true, columns predicted.
        report: scikit-learn's classification report as a dict.
        report_text: The same as text.
        unseen: Labels training never saw, with their counts (they always count as wrong).
        truncated: Sequences longer than the training padding length, cut to fit.
        log_loss: Mean negative log probability of the true class (lower is better).
        brier: scikit-learn's Brier score: mean squared distance between the probability
            vector and the one-hot truth (binary: of the positive class; lower is better).
        roc_auc: Area under the ROC curve (binary: of the second class; more classes:
            one-vs-rest, macro); None when undefined (one class in the data).
        pr_auc: Average precision, the area under the precision-recall curve, likewise.
        ece: Expected calibration error: mean |accuracy - confidence| over 15 confidence
            bins, weighted by their size (0: the probabilities mean what they say).
        auc_classes_left_out: Classes left out of the AUC macro averages (absent from the
            data, or every sequence's class).
        probability_n: Sequences the probability metrics are over (those whose label
            training knows).
        reliability: The ECE's bins (for the reliability diagram).
        decision: How labels were chosen: None for the most probable class, else the
            binary threshold record (``positive_class``, ``threshold``, ...).
        calibration: The temperature scaling fitted after training, if any, with the
            validation ECE before and after.
    """

    source: str
    n: int
    correct: int
    accuracy: float
    macro_f1: float
    baseline: float
    majority_class: Any
    labels: list[str]
    confusion: list[list[int]]
    report: dict[str, Any]
    report_text: str
    unseen: dict[str, int] = field(default_factory=dict)
    truncated: int = 0
    log_loss: float | None = None
    brier: float | None = None
    roc_auc: float | None = None
    pr_auc: float | None = None
    ece: float | None = None
    auc_classes_left_out: list[str] = field(default_factory=list)
    probability_n: int = 0
    reliability: list[dict[str, Any]] = field(default_factory=list)
    decision: dict[str, Any] | None = None
    calibration: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def warnings(self) -> list[str]:
        """Sentences a user must see next to the scores."""
        out = []
        if self.unseen:
            listed = ", ".join(f"{k!r} ({v})" for k, v in self.unseen.items())
            out.append(f"{self.source}: {sum(self.unseen.values())} sequences have labels "
                       f"training never saw: {listed}. The model cannot predict them; they "
                       "count as wrong.")
        if self.truncated:
            out.append(f"{self.source}: {self.truncated} sequences were longer than the "
                       "training padding length and were truncated.")
        return out


def majority_baseline(labels: list[Any], prep: Preprocessor) -> float:
    """The accuracy of always predicting the most frequent training label on ``labels``."""
    majority = str(prep.majority_class)
    return sum(str(v) == majority for v in labels) / len(labels)


def score(labels: list[Any], proba: np.ndarray, prep: Preprocessor, source: str,
          truncated: int = 0, decision: dict[str, Any] | None = None) -> Evaluation:
    """Score class probabilities against raw labels.

    Args:
        decision: A binary threshold record (``threshold``; see ``runs.Run.decision``);
            None: each sequence's label is its most probable class.
    """
    classes = [str(c) for c in prep.classes]
    y_true = np.array([str(v) for v in labels], dtype=object)
    threshold = None if decision is None else decision["threshold"]
    y_pred = np.array(classes, dtype=object)[probability.decide(proba, threshold)]
    unseen_labels = sorted(set(y_true) - set(classes))
    # Classes that neither occur nor are predicted here would only add zeros to the
    # macro average; report (and average over) the ones that do, in class order.
    present = set(y_true) | set(y_pred)
    names = [c for c in classes + unseen_labels if c in present]
    correct = int((y_true == y_pred).sum())
    confusion, report, report_text, macro_f1 = _class_report(y_true, y_pred, names)
    return Evaluation(
        source=source, n=len(y_true), correct=correct, accuracy=correct / len(y_true),
        macro_f1=macro_f1, baseline=majority_baseline(labels, prep),
        majority_class=prep.majority_class, labels=names, confusion=confusion,
        report=report, report_text=report_text,
        unseen={k: int((y_true == k).sum()) for k in unseen_labels},
        truncated=truncated, decision=decision, **_probability_scores(y_true, proba, classes))


def _class_report(y_true: np.ndarray, y_pred: np.ndarray, names: list[str]
                  ) -> tuple[list[list[int]], dict[str, Any], str, float]:
    """The confusion matrix over ``names`` (which hold every label of both), scikit-learn's
    ``classification_report`` with ``zero_division=0`` as a dict and as its 3-digit text,
    and the macro F1: scikit-learn's figures, from one count of (true, predicted) pairs
    (its input checks took 0.15 s of a 46-class test set's score)."""
    index = {name: i for i, name in enumerate(names)}
    k = len(names)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, ([index[v] for v in y_true], [index[v] for v in y_pred]), 1)
    hits = np.diag(confusion).astype(np.float64)
    predicted, support = confusion.sum(axis=0), confusion.sum(axis=1)

    def ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # 0 where b is 0
        return np.divide(a, b, out=np.zeros(k), where=b > 0)

    # each figure over its own 1-D array, as scikit-learn averages: the same sums, bit for bit
    metrics = [ratio(hits, predicted), ratio(hits, support), ratio(2 * hits, predicted + support)]
    n = int(support.sum())
    accuracy = hits.sum() / n
    averages = {"macro avg": [np.average(m) for m in metrics],
                "weighted avg": [np.average(m, weights=support) for m in metrics]}
    headers = ["precision", "recall", "f1-score", "support"]
    rows = list(zip(names, *metrics, support))
    report: dict[str, Any] = {name: dict(zip(headers, map(float, values)))
                              for name, *values in rows}
    report["accuracy"] = float(accuracy)
    report.update({name: dict(zip(headers, map(float, (*values, n))))
                   for name, values in averages.items()})
    width = max(max(len(name) for name in names), len("weighted avg"), 3)
    line = "{:>{w}s} " + " {:>9.3f}" * 3 + " {:>9}\n"
    text = "{:>{w}s} ".format("", w=width) + "".join(f" {h:>9}" for h in headers) + "\n\n"
    text += "".join(line.format(*row, w=width) for row in rows) + "\n"
    text += "{:>{w}s} ".format("accuracy", w=width) + " " * 20 + f" {accuracy:>9.3f} {n:>9}\n"
    text += "".join(line.format(name, *values, n, w=width) for name, values in averages.items())
    return confusion.tolist(), report, text, float(averages["macro avg"][2])


def _probability_scores(y_true: np.ndarray, proba: np.ndarray, classes: list[str]
                        ) -> dict[str, Any]:
    """The probability metrics over the sequences whose label training knows (a label
    it never saw has no probability column)."""
    known, y = known_targets(y_true, classes)
    if not known.any():
        return {}
    q = probability.quality(y, proba[known])
    q["auc_classes_left_out"] = [classes[c] for c in q["auc_classes_left_out"]]
    return {**q, "probability_n": int(known.sum()),
            "reliability": probability.reliability(y, proba[known])}


def known_targets(labels: Any, classes: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Which of ``labels`` training knows (a bool mask; labels and classes compared as
    strings) and those labels' class indices: the rows that have a probability column."""
    index = {str(c): i for i, c in enumerate(classes)}
    names = [str(v) for v in labels]
    known = np.array([v in index for v in names], dtype=bool)
    return known, np.array([index[v] for v in names if v in index], dtype=np.int64)


def infer(run: Run, dataset: SequenceSet, model: Any = None) -> tuple[np.ndarray, int]:
    """Class probabilities of a run's model on a data set, with the run's preprocessing.

    Returns:
        (probabilities of shape (n, n_classes), number of truncated sequences).
    """
    from seqclf.model import predict_proba

    x, truncated = run.preprocessor.transform(dataset)
    model = model if model is not None else run.load_model()
    proba = predict_proba(model, x, run.config)
    return proba, truncated


def read_data(run: Run, data: str | Path | None, require_labels: bool) -> SequenceSet:
    """A CSV in the run's layout, or (``data`` None) the test set the run was scored on."""
    cfg = run.config.data
    if data is None:
        from seqclf.data import load_splits

        _check_own_data(run)
        return load_splits(run.config)[1]
    return read_sequences(data, cfg, require_labels=require_labels,
                          missing_values=cfg.missing_values)


def _check_own_data(run: Run) -> None:
    """The run's own test set must still be the one it was scored on."""
    from seqclf.data import changed

    cfg = run.config.data
    if "saved_by" in run.manifest:  # SequenceClassifier.save: fitted on in-memory data
        raise SeqclfError(f"{run.path}: was saved from Python ({run.manifest['saved_by']}) "
                          "and has no test data of its own. Pass --data with a CSV.")
    path = changed(run.manifest.get("data_sha256", {}), cfg.train, cfg.test)
    if path is not None:
        raise SeqclfError(f"{path}: changed since {run.path} was trained, so its test "
                          "set is not the one the run was scored on. Pass --data to "
                          "score on a file as it is now.")


def data_chunks(run: Run, data: str | Path | None, require_labels: bool
                ) -> tuple[str, Iterator[SequenceSet], bool]:
    """What ``read_data`` reads, as (its name for messages, its sequences, whether
    streamed): in one set, or chunk by chunk when ``data.streaming`` streams it
    (``seqclf.data.stream``)."""
    from seqclf.data.sources import describe
    from seqclf.data.stream import dataset_chunks, decide

    cfg = run.config.data
    if data is None:
        _check_own_data(run)
    target = cfg if data is None else cfg.model_copy(update={"train": str(data), "test": None})
    if not decide(target).stream:
        dataset = read_data(run, data, require_labels)
        return dataset.source, iter([dataset]), False
    if data is None:
        from seqclf.streaming import read_parts

        test = read_parts(run.config)[1]
        return test.source, test.chunks(cfg, True, cfg.missing_values), True
    return describe(str(data)), (chunk for _, chunk in dataset_chunks(
        str(data), cfg, require_labels, cfg.missing_values)), True


def evaluate(run_dir: str | Path, data: str | Path | None = None) -> Evaluation:
    """Score a saved run on its config's test data, or on any CSV in the same layout.

    Args:
        run_dir: A finished run directory.
        data: A CSV to score on; default: the test set the run was scored on.
    """
    run = open_run(run_dir)
    from seqclf.streaming import predicted

    source, chunks, streamed = data_chunks(run, data, require_labels=True)
    labels: list[Any] = []
    probas, truncated = [], 0
    for _, block_labels, proba, cut in predicted(run.load_model(), run.config,
                                                 run.preprocessor, chunks, streamed):
        labels += block_labels
        probas.append(proba)
        truncated += cut
    ev = score(labels, np.concatenate(probas), run.preprocessor, source, truncated,
               run.decision)
    calibration = run.manifest.get("calibration")
    ev.calibration = ({k: v for k, v in calibration.items() if k != "test"}
                      if isinstance(calibration, dict) else None)
    return ev


def decision_for(run: Run, threshold: float | None) -> dict[str, Any] | None:
    """How ``run`` labels sequences: its saved threshold, or ``threshold`` instead.

    Raises:
        SeqclfError: ``threshold`` outside (0, 1), or given for a run of more classes.
    """
    if threshold is None:
        return run.decision
    classes = run.preprocessor.classes
    if len(classes) != 2:
        raise must_be("seqclf predict", "--threshold", f"left out for a run of {len(classes)} "
                      "classes (a threshold decides between two)", threshold)
    if not 0 < threshold < 1:
        raise must_be("seqclf predict", "--threshold", "between 0 and 1 (exclusive)", threshold)
    return {"positive_class": classes[1], "negative_class": classes[0],
            "threshold": float(threshold), "rule": "--threshold"}


def predict(run_dir: str | Path, data: str | Path, threshold: float | None = None
            ) -> tuple[Any, int]:
    """Predict every sequence of a CSV (labels are not needed).

    Args:
        threshold: Two classes: predict the second where its probability is at least
            this, instead of the run's own decision (its ``training.threshold``, else
            the most probable class).

    Returns:
        (a DataFrame with columns id, predicted, and prob_<class> per class; the number
        of sequences truncated to the training padding length).
    """
    import pandas as pd

    frames, truncated = [], 0
    for frame, cut in predict_chunks(run_dir, data, threshold):
        frames.append(frame)
        truncated += cut
    return pd.concat(frames, ignore_index=True), truncated


def predict_chunks(run_dir: str | Path, data: str | Path, threshold: float | None = None
                   ) -> Iterator[tuple[Any, int]]:
    """``predict``'s frame in pieces: one, or one per chunk when ``data.streaming``
    streams the data (each with its count of truncated sequences)."""
    import pandas as pd

    from seqclf.streaming import predicted

    run = open_run(run_dir)
    decision = decision_for(run, threshold)
    _, chunks, streamed = data_chunks(run, data, require_labels=False)
    classes = run.preprocessor.classes
    for ids, _, proba, truncated in predicted(run.load_model(), run.config, run.preprocessor,
                                              chunks, streamed):
        chosen = probability.decide(proba, None if decision is None else decision["threshold"])
        frame = pd.DataFrame({"id": ids, "predicted": [classes[i] for i in chosen]})
        for j, c in enumerate(classes):
            frame[f"prob_{c}"] = proba[:, j]
        yield frame, truncated


def predict_to(run_dir: str | Path, data: str | Path, output: str | Path,
               threshold: float | None = None) -> tuple[int, int]:
    """``predict`` written to ``output`` as the predictions come (through
    ``seqclf.outputs``): Parquet when its name ends in .parquet or .pq, else CSV (``-``:
    standard output). Memory holds one chunk's predictions, not all of them.

    Returns:
        (sequences predicted, sequences truncated).
    """
    from seqclf.outputs import check_writable, write_with, writing

    check_writable(output)  # before the model runs
    pieces = predict_chunks(run_dir, data, threshold)
    n = truncated = 0
    if str(output).lower().endswith((".parquet", ".pq")):
        import pyarrow as pa
        import pyarrow.parquet as pq

        def save(tmp: str) -> None:
            nonlocal n, truncated
            writer = None
            try:
                for frame, cut in pieces:
                    table = pa.Table.from_pandas(frame, preserve_index=False)
                    if writer is None:
                        writer = pq.ParquetWriter(tmp, table.schema)
                    writer.write_table(table.cast(writer.schema))
                    n, truncated = n + len(frame), truncated + cut
            finally:
                if writer is not None:
                    writer.close()

        write_with(output, save, suffix=".parquet")
        return n, truncated
    with writing(output) as write:
        for frame, cut in pieces:
            write(frame.to_csv(index=False, header=n == 0).encode("utf-8"))
            n, truncated = n + len(frame), truncated + cut
    return n, truncated

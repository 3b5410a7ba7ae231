"""Reading class probabilities: how good they are (log loss, Brier score, ROC-AUC,
PR-AUC, expected calibration error, the reliability bins) and the decision rule that
turns them into labels (argmax, or a threshold on the positive class of a binary
problem, and how one is chosen on validation data).

Everything takes class indices and a probability matrix (rows: sequences, columns: the
run's classes in order); scikit-learn computes every metric it has.

Classes that do not occur in the scored data: ROC-AUC and PR-AUC are one-vs-rest per
class, macro-averaged over the classes that occur in the data and that not every
sequence has (a class's curve needs positives and negatives); the others are left out
of the average and listed (``auc_classes_left_out``). Log loss and Brier score are over
all the run's classes (a probability given to an absent class is simply wrong).
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Equal-width confidence bins of the expected calibration error and reliability diagram.
ECE_BINS = 15
# Log loss clips probabilities to [EPS, 1 - EPS] (a zero for the true class is finite).
EPS = 1e-15


def quality(y: np.ndarray, proba: np.ndarray) -> dict[str, Any]:
    """Probability metrics of class indices ``y`` under ``proba``.

    Returns:
        ``log_loss``, ``brier`` (scikit-learn's multiclass Brier score; for two classes
        the usual binary one), ``roc_auc`` and ``pr_auc`` (binary: of the second class;
        else one-vs-rest macro; None when no class has both positives and negatives),
        ``auc_classes_left_out`` (class indices), ``ece`` (top-label, ECE_BINS bins).
    """
    from sklearn.metrics import brier_score_loss, log_loss

    y = np.asarray(y, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    proba = proba / proba.sum(axis=1, keepdims=True)  # a float32 softmax sums to 1 +- 1e-7
    n_classes = proba.shape[1]
    labels = list(range(n_classes))
    roc, pr, left_out = auc_scores(y, proba)
    return {
        "log_loss": float(log_loss(y, np.clip(proba, EPS, 1 - EPS), labels=labels)),
        "brier": float(brier_score_loss(y, proba, labels=labels)),
        "roc_auc": roc, "pr_auc": pr, "auc_classes_left_out": left_out,
        "ece": expected_calibration_error(y, proba),
    }


def auc_scores(y: np.ndarray, proba: np.ndarray) -> tuple[float | None, float | None, list[int]]:
    """(ROC-AUC, PR-AUC (average precision), classes left out of the macro average).

    Two classes: the curves of the second class's probability. More: one-vs-rest per
    class, unweighted mean over the classes with positives and negatives in ``y``.
    scikit-learn's values (``roc_auc_score``, ``average_precision_score``), computed here
    in NumPy: its input checks cost about 4 ms a call, 0.2 s of a 46-class test set.
    """
    n_classes = proba.shape[1]
    if n_classes == 2:
        if len(np.unique(y)) < 2:
            return None, None, [int(c) for c in range(2) if not np.any(y == c)]
        positive = y == 1
        return _roc_auc(positive, proba[:, 1]), _average_precision(positive, proba[:, 1]), []
    roc, pr, left_out = [], [], []
    for c in range(n_classes):
        positive = y == c
        if positive.all() or not positive.any():
            left_out.append(c)
            continue
        roc.append(_roc_auc(positive, proba[:, c]))
        pr.append(_average_precision(positive, proba[:, c]))
    if not roc:
        return None, None, left_out
    return float(np.mean(roc)), float(np.mean(pr)), left_out


def _roc_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """The area under the ROC curve: the chance that a positive scores above a negative,
    ties counting half (Mann-Whitney's U over the product of the counts)."""
    from scipy.stats import rankdata

    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    ranks = rankdata(score)  # ties: their average rank
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _average_precision(positive: np.ndarray, score: np.ndarray) -> float:
    """Average precision: the precision at each distinct score, from the highest down,
    weighted by the recall it adds (scikit-learn's step-wise sum, no interpolation)."""
    order = np.argsort(-score, kind="mergesort")
    score, hits = score[order], positive[order]
    last = np.r_[np.flatnonzero(np.diff(score)), len(score) - 1]  # each tie group's end
    true = np.cumsum(hits)[last]
    precision = true / (last + 1)
    recall = true / true[-1]
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def reliability(y: np.ndarray, proba: np.ndarray, bins: int = ECE_BINS) -> list[dict[str, Any]]:
    """The top-label reliability bins: per equal-width bin of the highest probability
    (confidence), how many sequences, their mean confidence and their accuracy."""
    y = np.asarray(y, dtype=np.int64)
    confidence = proba.max(axis=1)
    correct = np.argmax(proba, axis=1) == y
    # bin i holds confidences in (i/bins, (i+1)/bins]; a confidence of 0 goes to bin 0
    index = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    out = []
    for i in range(bins):
        inside = index == i
        n = int(inside.sum())
        out.append({"low": i / bins, "high": (i + 1) / bins, "n": n,
                    "confidence": float(confidence[inside].mean()) if n else None,
                    "accuracy": float(correct[inside].mean()) if n else None})
    return out


def expected_calibration_error(y: np.ndarray, proba: np.ndarray, bins: int = ECE_BINS) -> float:
    """Top-label ECE: the mean over sequences of |accuracy - confidence| of their bin
    (Guo et al., 2017). 0 is perfectly calibrated."""
    total = len(y)
    return float(sum(b["n"] / total * abs(b["accuracy"] - b["confidence"])
                     for b in reliability(y, proba, bins) if b["n"]))


def pr_curves(y: np.ndarray, proba: np.ndarray, classes: list[str]
              ) -> dict[str, tuple[np.ndarray, np.ndarray, float]]:
    """Precision-recall curves (precision, recall, average precision): the second
    class's for two classes, else one-vs-rest per class that occurs in ``y`` (and not on
    every sequence), the class with the most sequences first (ties in class order)."""
    from sklearn.metrics import precision_recall_curve

    y = np.asarray(y, dtype=np.int64)
    support = np.bincount(y, minlength=proba.shape[1])
    wanted = [1] if proba.shape[1] == 2 else np.argsort(-support, kind="stable")
    out = {}
    for c in wanted:
        positive = y == c
        if positive.any() and not positive.all():
            precision, recall, _ = precision_recall_curve(positive, proba[:, c])
            out[str(classes[c])] = (precision, recall,
                                    _average_precision(positive, proba[:, c]))
    return out


# --- the decision rule ----------------------------------------------------------------


def decide(proba: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Class indices: the most probable class, or (``threshold`` set, two classes) the
    second class where its probability is at least ``threshold``, else the first."""
    proba = np.asarray(proba)
    if threshold is None:
        return np.argmax(proba, axis=1)
    return (proba[:, 1] >= threshold).astype(np.int64)


def choose_threshold(y: np.ndarray, p: np.ndarray, rule: Any) -> dict[str, Any]:
    """The threshold on the positive class's probability ``p`` that ``rule`` asks for,
    on labelled data ``y`` (1: positive), with the precision and recall it reaches there.

    Args:
        rule: A number (used as it is), ``"f1"`` (the highest F1), or ``{"precision":
            q}`` (the lowest threshold whose precision is at least q: the most recall at
            that precision) or ``{"recall": q}`` (the highest threshold whose recall is
            at least q: the most precision at that recall).

    Returns:
        ``threshold``, ``rule``, ``precision``, ``recall``, ``f1``, ``met`` (False when
        no threshold reaches a precision target: the highest-precision one is used).
    """
    from sklearn.metrics import precision_recall_curve

    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=np.float64)
    met = True
    if isinstance(rule, (int, float)) and not isinstance(rule, bool):
        threshold = float(rule)
    else:
        precision, recall, thresholds = precision_recall_curve(y, p)
        precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
        if rule == "f1":
            f1 = np.where(precision + recall > 0,
                          2 * precision * recall / np.maximum(precision + recall, 1e-300), 0)
            threshold = float(thresholds[int(np.argmax(f1))])
        elif "precision" in rule:
            ok = np.flatnonzero(precision >= rule["precision"])
            met = bool(len(ok))
            threshold = float(thresholds[ok[0]] if met else thresholds[np.argmax(precision)])
        else:
            ok = np.flatnonzero(recall >= rule["recall"])
            threshold = float(thresholds[ok[-1]])  # recall 1 at the lowest threshold
    return {"threshold": threshold, "rule": rule, **threshold_scores(y, p, threshold),
            "met": met}


def threshold_scores(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    """Precision, recall and F1 of deciding positive where ``p >= threshold``."""
    from sklearn.metrics import f1_score, precision_score, recall_score

    predicted = (np.asarray(p) >= threshold).astype(np.int64)
    return {name: float(fn(y, predicted, zero_division=0))
            for name, fn in (("precision", precision_score), ("recall", recall_score),
                             ("f1", f1_score))}


def apply_temperature(proba: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log(proba) x temperature)``: the probabilities a model whose logits
    were multiplied by ``temperature`` gives (1/temperature undoes a fitted one)."""
    from scipy.special import softmax

    return softmax(np.log(np.clip(proba, EPS, 1.0)) * temperature, axis=1)

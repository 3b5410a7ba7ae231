"""Probability quality (log loss, Brier, ROC-AUC, PR-AUC, ECE) against scikit-learn on
fixed predictions, the reliability bins by hand, and the binary decision threshold."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (average_precision_score, brier_score_loss, log_loss,
                             precision_score, recall_score, roc_auc_score)

from seqclf import probability
from seqclf.data import Preprocessor
from seqclf.evaluate import score


def _proba(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    logits = rng.normal(0, 2, (n, k))
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _prep(classes: list[str]) -> Preprocessor:
    return Preprocessor(classes=classes, majority_class=classes[0], max_length=4,
                        feature_names=["x"], padding="post",
                        truncating="post", pad_value=-1.0, scaling="none", center=[0.0],
                        scale=[1.0])


def test_binary_metrics_equal_scikit_learn():
    rng = np.random.default_rng(0)
    proba = _proba(rng, 60, 2)
    y = (rng.random(60) < proba[:, 1]).astype(int)
    q = probability.quality(y, proba)
    assert q["log_loss"] == pytest.approx(log_loss(y, proba))
    assert q["brier"] == pytest.approx(brier_score_loss(y, proba[:, 1]))
    assert q["roc_auc"] == pytest.approx(roc_auc_score(y, proba[:, 1]))
    assert q["pr_auc"] == pytest.approx(average_precision_score(y, proba[:, 1]))
    assert q["auc_classes_left_out"] == []


def test_multiclass_metrics_equal_scikit_learn():
    rng = np.random.default_rng(1)
    proba = _proba(rng, 90, 4)
    y = np.array([rng.choice(4, p=p) for p in proba])
    q = probability.quality(y, proba)
    assert q["log_loss"] == pytest.approx(log_loss(y, proba))
    assert q["brier"] == pytest.approx(brier_score_loss(y, proba, labels=[0, 1, 2, 3]))
    assert q["roc_auc"] == pytest.approx(roc_auc_score(y, proba, multi_class="ovr",
                                                       average="macro"))
    onehot = np.eye(4)[y]
    assert q["pr_auc"] == pytest.approx(average_precision_score(onehot, proba,
                                                                average="macro"))


def test_a_class_absent_from_the_data_is_left_out_of_the_auc_averages():
    rng = np.random.default_rng(2)
    proba = _proba(rng, 50, 3)
    y = np.where(rng.random(50) < 0.5, 0, 2)  # class 1 never occurs
    q = probability.quality(y, proba)
    assert q["auc_classes_left_out"] == [1]
    expected = np.mean([roc_auc_score(y == c, proba[:, c]) for c in (0, 2)])
    assert q["roc_auc"] == pytest.approx(expected)
    assert q["pr_auc"] == pytest.approx(
        np.mean([average_precision_score(y == c, proba[:, c]) for c in (0, 2)]))
    # log loss and Brier still count every class (the absent class's probability is wrong)
    assert q["log_loss"] == pytest.approx(log_loss(y, proba, labels=[0, 1, 2]))
    # one class only: no curve at all
    one = probability.quality(np.zeros(10, dtype=int), _proba(rng, 10, 2))
    assert one["roc_auc"] is None and one["pr_auc"] is None


def test_ece_and_reliability_bins_by_hand():
    # confidences 0.95 (4 sequences, 2 right) and 0.55 (2 sequences, both right)
    proba = np.array([[0.95, 0.05]] * 4 + [[0.45, 0.55]] * 2)
    y = np.array([0, 0, 1, 1, 1, 1])
    bins = probability.reliability(y, proba)
    used = [b for b in bins if b["n"]]
    assert [(b["n"], b["accuracy"]) for b in used] == [(2, 1.0), (4, 0.5)]
    assert used[0]["confidence"] == pytest.approx(0.55)
    expected = 2 / 6 * abs(1.0 - 0.55) + 4 / 6 * abs(0.5 - 0.95)
    assert probability.expected_calibration_error(y, proba) == pytest.approx(expected)
    # perfectly calibrated in every bin: 0
    assert probability.expected_calibration_error(
        np.array([0, 1]), np.array([[0.5, 0.5], [0.5, 0.5]])) == pytest.approx(0.0)


def test_score_reports_the_metrics_over_known_labels_only():
    rng = np.random.default_rng(3)
    proba = _proba(rng, 30, 3)
    classes = ["a", "b", "c"]
    y = rng.integers(0, 3, 30)
    labels = [classes[i] for i in y] + ["new"]
    ev = score(labels, np.vstack([proba, [[0.2, 0.3, 0.5]]]), _prep(classes), "x.csv")
    assert ev.probability_n == 30 and ev.n == 31
    assert ev.log_loss == pytest.approx(log_loss(y, proba, labels=[0, 1, 2]))
    assert ev.ece == pytest.approx(probability.expected_calibration_error(y, proba))
    assert sum(b["n"] for b in ev.reliability) == 30
    assert "ece" in ev.to_dict() and "roc_auc" in ev.to_dict()


def test_threshold_rules_meet_their_targets():
    rng = np.random.default_rng(4)
    y = (rng.random(400) < 0.3).astype(int)
    p = np.clip(0.3 + 0.35 * (y - 0.3) + rng.normal(0, 0.2, 400), 0, 1)
    for target in (0.7, 0.8, 0.9):
        chosen = probability.choose_threshold(y, p, {"precision": target})
        predicted = (p >= chosen["threshold"]).astype(int)
        assert precision_score(y, predicted) >= target
        assert chosen["precision"] == pytest.approx(precision_score(y, predicted))
        assert chosen["met"]
        # the lowest such threshold: one step lower misses the target (or it is the lowest)
        lower = p[p < chosen["threshold"]]
        if len(lower):
            assert precision_score(y, (p >= lower.max()).astype(int)) < target
        chosen = probability.choose_threshold(y, p, {"recall": target})
        predicted = (p >= chosen["threshold"]).astype(int)
        assert recall_score(y, predicted) >= target
        higher = p[p > chosen["threshold"]]
        assert recall_score(y, (p >= higher.min()).astype(int)) < target
    f1 = probability.choose_threshold(y, p, "f1")
    best = max(probability.threshold_scores(y, p, t)["f1"] for t in np.unique(p))
    assert f1["f1"] == pytest.approx(best)
    assert probability.choose_threshold(y, p, 0.25)["threshold"] == 0.25


def test_an_unreachable_precision_is_reported_as_not_met():
    y = np.array([0, 1, 0, 1])
    p = np.array([0.9, 0.8, 0.7, 0.6])  # the most confident is wrong: precision <= 2/3
    chosen = probability.choose_threshold(y, p, {"precision": 0.99})
    assert not chosen["met"]


def test_decide():
    proba = np.array([[0.7, 0.3], [0.4, 0.6], [0.2, 0.8]])
    assert probability.decide(proba).tolist() == [0, 1, 1]
    assert probability.decide(proba, 0.7).tolist() == [0, 0, 1]
    assert probability.decide(proba, 0.25).tolist() == [1, 1, 1]


def test_apply_temperature_inverts():
    rng = np.random.default_rng(5)
    proba = _proba(rng, 5, 3)
    sharper = probability.apply_temperature(proba, 2.0)
    assert np.allclose(probability.apply_temperature(sharper, 0.5), proba)
    assert (sharper.max(axis=1) >= proba.max(axis=1)).all()


@pytest.mark.parametrize("seed", range(6))
def test_auc_scores_are_scikit_learns(seed):
    """The NumPy ROC-AUC and average precision against scikit-learn's, ties included
    (scores rounded to a few values) and not."""
    from seqclf.probability import _average_precision, _roc_auc

    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 300))
    positive = rng.random(n) < rng.uniform(0.05, 0.9)
    positive[:2] = [True, False]
    score = rng.random(n) + positive * rng.uniform(0, 1)
    if seed % 2:
        score = np.round(score * 4) / 4  # many ties
    assert _roc_auc(positive, score) == pytest.approx(roc_auc_score(positive, score), abs=1e-12)
    assert _average_precision(positive, score) == pytest.approx(
        average_precision_score(positive, score), abs=1e-12)


def test_precision_recall_figure_names_the_largest_classes_with_their_average_precision():
    from seqclf.report import PR_NAMED_CURVES, precision_recall_figure

    rng = np.random.default_rng(3)
    k = PR_NAMED_CURVES + 5
    y = rng.integers(0, k, 400)
    proba = _proba(rng, 400, k)
    classes = [f"c{i}" for i in range(k)]
    curves = probability.pr_curves(y, proba, classes)
    largest_first = np.argsort(-np.bincount(y, minlength=k), kind="stable")
    assert list(curves) == [classes[i] for i in largest_first]
    figure = precision_recall_figure(curves, "title")
    entries = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    expected = [f"c{i} (AP {average_precision_score(y == i, proba[:, i]):.2f})"
                for i in largest_first[:PR_NAMED_CURVES]]
    assert entries == expected + ["5 smaller classes"]
    binary = precision_recall_figure(probability.pr_curves(y % 2, proba[:, :2], ["a", "b"]), "t")
    assert [t.get_text() for t in binary.axes[0].get_legend().get_texts()] == [
        f"b (AP {average_precision_score(y % 2, proba[:, 1]):.2f})"]


@pytest.mark.parametrize("k, unseen", [(2, 0), (5, 0), (7, 2)])
def test_score_reports_what_scikit_learn_reports(k, unseen):
    from sklearn.metrics import classification_report, confusion_matrix, f1_score

    rng = np.random.default_rng(k)
    classes = [f"class {i}" for i in range(k)]
    labels = [str(v) for v in rng.choice(classes[:-1] + [f"new {i}" for i in range(unseen)], 90)]
    proba = _proba(rng, 90, k)
    proba[:, 0] /= 10  # never predicted
    proba /= proba.sum(axis=1, keepdims=True)
    ev = score(labels, proba, _prep(classes), "test.csv")
    y_pred = [classes[i] for i in proba.argmax(axis=1)]
    args = dict(labels=ev.labels, zero_division=0)
    assert ev.report == classification_report(labels, y_pred, output_dict=True, **args)
    assert ev.report_text == classification_report(labels, y_pred, digits=3, **args)
    assert ev.confusion == confusion_matrix(labels, y_pred, labels=ev.labels).tolist()
    assert ev.macro_f1 == f1_score(labels, y_pred, average="macro", **args)

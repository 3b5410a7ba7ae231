"""The figures' layout: every text inside the figure, subplots clear of each other."""

import itertools

import numpy as np
import pytest

from seqclf import probability, report


def _bins_and_curves(k: int, names: list[str]) -> tuple[list[dict], dict]:
    rng = np.random.default_rng(k)
    y = rng.integers(0, k, 300)
    proba = rng.random((300, k)) ** 3
    proba /= proba.sum(axis=1, keepdims=True)
    return probability.reliability(y, proba), probability.pr_curves(y, proba, names)


LONG = [f"walking upstairs, trial {i}" for i in range(12)]
FIGURES = {
    "curves": lambda: report.curves_figure(
        {"loss": [2.3, 1.1, 0.7], "val_loss": [2.4, 1.5, 1.2], "accuracy": [0.5, 0.7, 0.9],
         "val_accuracy": [0.4, 0.6, 0.7]}, 0.3),
    "curves, tiny and huge values": lambda: report.curves_figure(
        {"loss": [1e-5, 3e-5, 2e-5], "accuracy": [12345.0, 23456.0, 34567.0]}, None),
    "ensemble curves": lambda: report.curves_figure(
        {f"member_{i}_loss": [1.0, 0.5] for i in range(1, 6)}, 0.5),
    "confusion, 46 classes": lambda: report.confusion_figure(
        np.eye(46, dtype=int).tolist(), [str(i) for i in range(46)], "test accuracy 1.000"),
    "confusion, long names": lambda: report.confusion_figure(
        (np.eye(12, dtype=int) * 30 + 1).tolist(), LONG, "test accuracy 0.900 (baseline 0.100)"),
    "reliability": lambda: report.reliability_figure(
        *_bins_and_curves(3, ["a", "b", "c"])[:1], "reliability (ECE 0.100)",
        _bins_and_curves(4, list("abcd"))[0]),
    "precision-recall, many classes": lambda: report.precision_recall_figure(
        _bins_and_curves(15, LONG + ["x", "y", "z"])[1], "precision-recall (one-vs-rest)"),
    "precision-recall, binary": lambda: report.precision_recall_figure(
        _bins_and_curves(2, ["no", "yes"])[1], "precision-recall", (0.5, 0.5, "threshold 0.5")),
    "comparison": lambda: report.comparison_figure(
        ["lstm", "a variant with a rather long name, units=128"], [[0.8, 0.82], [0.7]],
        [0.5, 0.5], "test accuracy by variant"),
}


@pytest.mark.parametrize("name", FIGURES)
def test_figure_texts_fit_inside_it_and_subplots_keep_clear(name):
    import matplotlib.pyplot as plt

    figure = FIGURES[name]()
    try:
        figure.canvas.draw()
        renderer = figure.canvas.get_renderer()
        boxes = [ax.get_tightbbox(renderer) for ax in figure.axes]
        width, height = figure.bbox.width, figure.bbox.height
        for ax, box in zip(figure.axes, boxes):
            assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= width and box.y1 <= height, (
                f"{ax.get_title() or ax.get_ylabel()!r}: {box} outside {width}x{height}")
        for (a, box_a), (b, box_b) in itertools.combinations(zip(figure.axes, boxes), 2):
            assert not box_a.overlaps(box_b)
            # and no text of one is drawn over the plot of the other
            assert not box_a.overlaps(b.bbox) and not box_b.overlaps(a.bbox)
    finally:
        plt.close(figure)


def test_text_size_measures_the_widest_and_tallest():
    wide, tall = report._text_size(["a", "a much wider text", "gy"], 10)
    assert wide == pytest.approx(report._text_size(["a much wider text"], 10)[0])
    assert 0 < tall < 0.3 and wide > 5 * tall
    assert report._text_size(["same text"], 20)[0] == pytest.approx(
        2 * report._text_size(["same text"], 10)[0], rel=0.05)
    assert report._text_size([], 10) == (0.0, 0.0)

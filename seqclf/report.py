"""Human-facing renderings of results: text summaries and matplotlib plots."""

from __future__ import annotations

from typing import Any

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers and CI
    import matplotlib.pyplot as plt

    return plt


def confusion_figure(matrix: list[list[int]], labels: list[str], title: str) -> Any:
    """A confusion-matrix heat map (rows: true label, columns: predicted)."""
    plt = _pyplot()
    n = len(labels)
    size = min(4 + 0.35 * n, 22)
    fig, ax = plt.subplots(figsize=(size, size))
    data = np.asarray(matrix)
    ax.imshow(data, cmap="Blues")
    ax.set_xticks(range(n), labels, rotation=90, fontsize=8 if n > 15 else 10)
    ax.set_yticks(range(n), labels, fontsize=8 if n > 15 else 10)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    ax.set_title(title)
    if n <= 30:
        limit = data.max() / 2 if data.size else 0
        for i in range(n):
            for j in range(n):
                if data[i, j]:
                    ax.text(j, i, str(data[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if data[i, j] > limit else "black")
    fig.tight_layout()
    return fig


def curves_figure(history: dict[str, list[float]], baseline: float | None) -> Any:
    """Loss and accuracy per epoch, training and (when present) validation."""
    plt = _pyplot()
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(11, 4))
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    for ax, metric in ((loss_ax, "loss"), (acc_ax, "accuracy")):
        for prefix, style in (("", "-"), ("val_", "--")):
            values = history.get(prefix + metric)
            if values:
                ax.plot(epochs, values, style, label=(prefix or "train_") + metric)
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
    if baseline is not None:
        acc_ax.axhline(baseline, color="grey", linestyle=":", label="majority-class baseline (test)")
    loss_ax.legend()
    acc_ax.legend()
    fig.tight_layout()
    return fig


def evaluation_text(ev: Any) -> str:
    """A plain-text evaluation summary: headline numbers, per-class report, confusion."""
    lines = [
        f"data: {ev.source} ({ev.n} sequences)",
        f"accuracy: {ev.accuracy:.4f} ({ev.correct}/{ev.n})",
        f"macro-F1: {ev.macro_f1:.4f}",
        f"majority-class baseline: {ev.baseline:.4f} (always predicting "
        f"{ev.majority_class!r}, the most frequent training label)",
        "",
        ev.report_text.rstrip(),
        "",
        "confusion matrix (rows: true, columns: predicted):",
        confusion_text(ev.confusion, ev.labels),
    ]
    return "\n".join(lines) + "\n"


def confusion_text(matrix: list[list[int]], labels: list[str]) -> str:
    """The confusion matrix as an aligned text table."""
    width = max([len(str(label)) for label in labels] + [len(str(np.max(matrix)))] + [4])
    head = " " * width + " " + " ".join(f"{label:>{width}}" for label in labels)
    rows = [f"{label:>{width}} " + " ".join(f"{v:>{width}}" for v in row)
            for label, row in zip(labels, matrix)]
    return "\n".join([head, *rows])

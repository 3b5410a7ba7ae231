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


def comparison_figure(names: list[str], accuracies: list[list[float]], baselines: list[float],
                      title: str) -> Any:
    """Test accuracy per variant, best (first) on top: each seed as a dot, the mean with
    ± one sample std, and the majority-class baseline."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.4 * len(names)))
    y = np.arange(len(names))[::-1]
    for pos, values in zip(y, accuracies):
        ax.scatter(values, [pos] * len(values), s=14, color="tab:blue", alpha=0.5, zorder=2)
        std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        ax.errorbar(np.mean(values), pos, xerr=std, fmt="D", color="tab:blue", capsize=4,
                    zorder=3)
    ax.scatter(baselines, y, marker="|", s=300, color="grey")
    ax.set_yticks(y, names, fontsize=8 if len(names) > 12 else 10)
    ax.set_xlabel("test accuracy (dots: seeds; diamond: mean ± sample std; grey bar: "
                  "majority-class baseline)")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
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

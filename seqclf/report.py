"""Human-facing renderings of results: text summaries and matplotlib plots."""

from __future__ import annotations

from typing import Any

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers and CI
    import matplotlib.pyplot as plt

    return plt


# The figures are laid out from the sizes of the texts around their axes (tick labels,
# axis labels, title, a legend beside the plot), each measured once: tight_layout measures
# every artist of the figure, as drawing it does again, which took 40 % of a run's
# plotting time. PAD: inches around the content and between subplots (tight_layout's
# default, 1.08 x the 10-point font).
PAD = 0.15
_POINT = 1 / 72  # inches


def _text_size(texts: list[str], size: Any) -> tuple[float, float]:
    """The widest and the tallest of ``texts`` at font ``size`` (points or a name like
    ``"large"``), in inches; (0, 0) for none."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import text_to_path

    prop = FontProperties(size=size)
    sizes = [text_to_path.get_text_width_height_descent(t, prop, ismath=False)[:2]
             for t in texts if t]
    return (max((w for w, _ in sizes), default=0.0) * _POINT,
            max((h for _, h in sizes), default=0.0) * _POINT)


def _tick_labels(axis: Any) -> tuple[float, float, str]:
    """The width and height (inches) that the labels at ``axis``'s major ticks take, and
    its offset text ("1e-5", drawn at the end of the axis; often empty): its locator and
    formatter run now, the labels' font size and rotation read from its first tick."""
    low, high = sorted(axis.get_view_interval())
    slack = (high - low) * 1e-9
    locs = [x for x in axis.get_major_locator()() if low - slack <= x <= high + slack]
    formatter = axis.get_major_formatter()
    texts = formatter.format_ticks(locs)
    ticks = axis.get_major_ticks(len(locs))
    size = ticks[0].label1.get_fontsize() if ticks else "medium"
    width, height = _text_size(texts, size)
    if ticks and ticks[0].label1.get_rotation() == 90:
        width, height = height, width
    return width, height, formatter.get_offset()


def _margins(ax: Any) -> tuple[float, float, float]:
    """Inches that ``ax``'s texts take beside it: left (y tick labels, y label), below (x
    tick labels, shown only on a subplot's bottom row, and the x label) and above (title,
    the y axis's offset text)."""
    import matplotlib as mpl

    def label(text: str) -> float:
        return (_text_size([text], mpl.rcParams["axes.labelsize"])[1]
                + mpl.rcParams["axes.labelpad"] * _POINT) if text else 0.0

    tick = (mpl.rcParams["xtick.major.size"] + mpl.rcParams["xtick.major.pad"]) * _POINT
    y_width, _, y_offset = _tick_labels(ax.yaxis)
    left = y_width + tick + label(ax.get_ylabel())
    below = label(ax.get_xlabel())
    if ax.xaxis.get_tick_params()["labelbottom"]:  # False: shared with the row below
        below += _tick_labels(ax.xaxis)[1] + tick
    above = max(_text_size([ax.get_title()], mpl.rcParams["axes.titlesize"])[1]
                + mpl.rcParams["axes.titlepad"] * _POINT,
                _text_size([y_offset], "medium")[1] + tick)
    return left, below, above


def _place(fig: Any, left: float, bottom: float, top: float, right: float = 0.0,
           between: float = 0.0) -> None:
    """Place ``fig``'s grid of subplots (one row or one column) with these margins, in
    inches, beyond PAD; ``between``: the space between neighbours, beyond PAD."""
    width, height = fig.get_size_inches()
    spec = fig.axes[0].get_subplotspec().get_gridspec()
    rows, cols = spec.get_geometry()
    inner_w = width - left - right - 2 * PAD
    inner_h = height - bottom - top - 2 * PAD
    gap = between + PAD
    fig.subplots_adjust(left=(left + PAD) / width, right=1 - (right + PAD) / width,
                        bottom=(bottom + PAD) / height, top=1 - (top + PAD) / height,
                        wspace=gap / ((inner_w - (cols - 1) * gap) / cols),
                        hspace=gap / ((inner_h - (rows - 1) * gap) / rows))


def confusion_figure(matrix: list[list[int]], labels: list[str], title: str) -> Any:
    """A confusion-matrix heat map (rows: true label, columns: predicted)."""
    plt = _pyplot()
    n = len(labels)
    # Capped: rendering and compressing the PNG grow with its area (a 20-inch figure of 46
    # classes took a second); 12 inches still give 46 classes readable 8-point ticks.
    size = min(4 + 0.35 * n, 12)
    fig, ax = plt.subplots(figsize=(size, size))
    data = np.asarray(matrix)
    ax.imshow(data, cmap="Blues", interpolation="nearest")
    ticks_size = 8 if n > 15 else 10
    ax.set_xticks(range(n), labels, rotation=90, fontsize=ticks_size)
    ax.set_yticks(range(n), labels, fontsize=ticks_size)
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
    _place(fig, *_margins(ax))
    return fig


def curves_figure(history: dict[str, list[float]], baseline: float | None) -> Any:
    """Loss and accuracy per epoch, training and (when present) validation; an
    ensemble's history has them per member (``member_1_loss``, ...)."""
    plt = _pyplot()
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric in ((loss_ax, "loss"), (acc_ax, "accuracy")):
        for key, values in history.items():
            if key != metric and not key.endswith("_" + metric):
                continue
            values = np.asarray(values, dtype=float)
            values = values[~np.isnan(values)]  # a member that stopped early
            if len(values):
                ax.plot(np.arange(1, len(values) + 1), values,
                        "--" if "val_" in key else "-",
                        label=key if key != metric else "train_" + metric)
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
    if baseline is not None:
        acc_ax.axhline(baseline, color="grey", linestyle=":", label="majority-class baseline (test)")
    loss_ax.legend()
    acc_ax.legend()
    (left, below, above), (acc_left, acc_below, acc_above) = _margins(loss_ax), _margins(acc_ax)
    _place(fig, left, max(below, acc_below), max(above, acc_above), between=acc_left)
    return fig


def comparison_figure(names: list[str], accuracies: list[list[float]], baselines: list[float],
                      title: str) -> Any:
    """Test accuracy per variant, best (first) on top: each seed as a dot, the mean with
    ± one sample std, and the majority-class baseline."""
    plt = _pyplot()
    names_size = 8 if len(names) > 12 else 10
    # wide enough for the x label (6.4 inches) beside the longest name
    width = max(8.0, _text_size(names, names_size)[0] + 7.2)
    fig, ax = plt.subplots(figsize=(width, 1.2 + 0.4 * len(names)))
    y = np.arange(len(names))[::-1]
    for pos, values in zip(y, accuracies):
        ax.scatter(values, [pos] * len(values), s=14, color="tab:blue", alpha=0.5, zorder=2)
        std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        ax.errorbar(np.mean(values), pos, xerr=std, fmt="D", color="tab:blue", capsize=4,
                    zorder=3)
    ax.scatter(baselines, y, marker="|", s=300, color="grey")
    ax.set_yticks(y, names, fontsize=names_size)
    ax.set_xlabel("test accuracy (dots: seeds; diamond: mean ± sample std; grey bar: "
                  "majority-class baseline)")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    _place(fig, *_margins(ax))
    return fig


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def probability_lines(ev: Any) -> list[str]:
    """The probability-quality lines of a report: what each number says, in brief."""
    if not ev.probability_n:
        return []
    binary = len(ev.labels) <= 2 and not ev.auc_classes_left_out
    kind = "" if binary else " (one-vs-rest, macro)"
    lines = [f"probability quality over {ev.probability_n} sequences:",
             f"  log loss: {_number(ev.log_loss)} (mean -log p(true class); lower is better)",
             f"  Brier score: {_number(ev.brier)} (mean squared error of the probabilities; "
             "lower is better)",
             f"  ROC-AUC{kind}: {_number(ev.roc_auc)} (ranking: 0.5 is chance, 1 perfect)",
             f"  PR-AUC{kind}: {_number(ev.pr_auc)} (average precision; the positive "
             "share is chance)",
             f"  ECE: {_number(ev.ece)} (expected calibration error, 15 bins: 0 means a "
             "probability p is right p of the time)"]
    if ev.auc_classes_left_out:
        lines.append("  AUCs leave out classes absent from the data (or on every sequence): "
                     + ", ".join(map(str, ev.auc_classes_left_out)))
    c = ev.calibration
    if c:
        lines.append(f"calibration: temperature scaling, logits x {c['temperature']:.4g} "
                     f"(fitted on {c['validation_n']} validation sequences); validation ECE "
                     f"{c['validation']['ece_before']:.4f} -> {c['validation']['ece_after']:.4f}"
                     + (f", test ECE {c['test']['ece_before']:.4f} -> "
                        f"{c['test']['ece_after']:.4f}" if c.get("test") else ""))
    d = ev.decision
    if d:
        where = (f"chosen on validation by rule {d['rule']}: precision "
                 f"{d['validation']['precision']:.4f}, recall {d['validation']['recall']:.4f}"
                 if d.get("validation") else f"rule {d['rule']}")
        lines.append(f"decision: {d['positive_class']!r} where its probability >= "
                     f"{d['threshold']:.4f} ({where})")
    return lines


def evaluation_text(ev: Any) -> str:
    """A plain-text evaluation summary: headline numbers, probability quality, per-class
    report, confusion."""
    lines = [
        f"data: {ev.source} ({ev.n} sequences)",
        f"accuracy: {ev.accuracy:.4f} ({ev.correct}/{ev.n})",
        f"macro-F1: {ev.macro_f1:.4f}",
        f"majority-class baseline: {ev.baseline:.4f} (always predicting "
        f"{ev.majority_class!r}, the most frequent training label)",
        *probability_lines(ev),
        "",
        ev.report_text.rstrip(),
        "",
        "confusion matrix (rows: true, columns: predicted):",
        confusion_text(ev.confusion, ev.labels),
    ]
    return "\n".join(lines) + "\n"


def reliability_figure(bins: list[dict[str, Any]], title: str,
                       before: list[dict[str, Any]] | None = None) -> Any:
    """The reliability diagram: accuracy against mean confidence per confidence bin
    (dots sized by how many sequences; the diagonal is perfect calibration), with the
    share of sequences per bin below; ``before``: the bins before calibration, dashed."""
    plt = _pyplot()
    fig, (ax, hist) = plt.subplots(2, 1, figsize=(5.5, 6.5), sharex=True,
                                   gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], ":", color="grey", label="perfectly calibrated")
    for series, style, name in ((before, "--", "before calibration"), (bins, "-o", "model")):
        used = [b for b in series or [] if b["n"]]
        if used:
            ax.plot([b["confidence"] for b in used], [b["accuracy"] for b in used], style,
                    label=name, markersize=4)
    ax.set_ylabel("accuracy in the bin")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    total = sum(b["n"] for b in bins) or 1
    hist.bar([(b["low"] + b["high"]) / 2 for b in bins], [b["n"] / total for b in bins],
             width=bins[0]["high"] - bins[0]["low"] if bins else 0.05, color="tab:blue",
             alpha=0.6)
    hist.set_xlabel("confidence (highest class probability)")
    hist.set_ylabel("share")
    (left, below, above), (hist_left, hist_below, hist_above) = _margins(ax), _margins(hist)
    _place(fig, max(left, hist_left), hist_below, above, between=below + hist_above)
    return fig


# precision_recall_figure: at most this many curves in colour, each named in the legend;
# the rest (the smaller classes) thin and grey under one entry, so that the legend fits
# beside the plot and no two named classes share a colour (the default cycle has ten).
PR_NAMED_CURVES = 10


def precision_recall_figure(curves: dict[str, tuple[Any, Any, float]], title: str,
                            point: tuple[float, float, str] | None = None) -> Any:
    """Precision against recall, one curve per name (binary: the positive class; more:
    one-vs-rest per class, largest class first), each (precision, recall, average
    precision) and named with its average precision; ``point``: (recall, precision,
    label) of the chosen threshold."""
    plt = _pyplot()
    many = len(curves) > 1
    fig, ax = plt.subplots(figsize=(7.5 if many else 5.5, 4.5))
    items = list(curves.items())
    for name, (precision, recall, ap) in items[:PR_NAMED_CURVES]:
        ax.step(recall, precision, where="post", label=f"{name} (AP {ap:.2f})")
    for i, (precision, recall, _) in enumerate(c for _, c in items[PR_NAMED_CURVES:]):
        ax.step(recall, precision, where="post", color="lightgrey", linewidth=0.8, zorder=1,
                label=None if i else f"{len(items) - PR_NAMED_CURVES} smaller classes")
    if point is not None:
        ax.scatter([point[0]], [point[1]], color="black", zorder=3, label=point[2])
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    beside = 0.0
    if many:
        legend = ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
        beside = legend.get_window_extent(fig.canvas.get_renderer()).width / fig.dpi
    else:
        ax.legend()
    left, below, above = _margins(ax)
    # the legend starts 1 % of the plot's width to its right (1 % of the figure's: more)
    _place(fig, left, below, above, right=beside + 0.01 * fig.get_size_inches()[0])
    return fig


def confusion_text(matrix: list[list[int]], labels: list[str]) -> str:
    """The confusion matrix as an aligned text table."""
    width = max([len(str(label)) for label in labels] + [len(str(np.max(matrix)))] + [4])
    head = " " * width + " " + " ".join(f"{label:>{width}}" for label in labels)
    rows = [f"{label:>{width}} " + " ".join(f"{v:>{width}}" for v in row)
            for label, row in zip(labels, matrix)]
    return "\n".join([head, *rows])


def attribution_figure(ids: list[str], attributions: np.ndarray, real: np.ndarray,
                       channels: list[str], method: str) -> Any:
    """``seqclf explain``'s heat maps, one per sequence: channels x steps, red for evidence
    for the predicted class, blue against; padded steps grey. Laid out by tight_layout:
    a command run on a few sequences, not a step of every training run."""
    plt = _pyplot()
    n = max(1, len(ids))
    fig, axes = plt.subplots(n, 1, figsize=(9, 0.6 + 0.35 * len(channels) * n + 0.5 * n),
                             squeeze=False)
    for ax, seq_id, attr, mask in zip(axes[:, 0], ids, attributions, real):
        limit = float(np.abs(attr).max()) or 1.0
        shown = np.ma.masked_array(attr.T, mask=np.repeat(~mask[None], attr.shape[1], 0))
        cmap = plt.get_cmap("RdBu_r").with_extremes(bad="#d9d9d9")
        image = ax.imshow(shown, aspect="auto", cmap=cmap, vmin=-limit, vmax=limit,
                          interpolation="nearest")
        ax.set_yticks(range(len(channels)), channels)
        ax.set_title(f"{seq_id}", fontsize=9, loc="left")
        fig.colorbar(image, ax=ax, pad=0.01)
    axes[-1, 0].set_xlabel("step (grey: padding)")
    fig.suptitle(f"attributions to the predicted class ({method.replace('_', ' ')})",
                 fontsize=10)
    fig.tight_layout()
    return fig


def importance_figure(importance: list[dict[str, Any]]) -> Any:
    """``seqclf explain``'s permutation importance per channel: mean accuracy drop, one
    standard deviation."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 0.8 + 0.35 * len(importance)))
    names = [r["channel"] for r in importance][::-1]
    ax.barh(names, [r["accuracy_drop"] for r in importance][::-1],
            xerr=[r["std"] for r in importance][::-1], color="#4c72b0")
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("accuracy drop when the channel is shuffled")
    ax.set_title("permutation importance", fontsize=10)
    fig.tight_layout()
    return fig

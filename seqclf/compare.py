"""Comparing runs: one row per config, its seeds pooled, as text, CSV, markdown, JSON or a plot.

Any directory can be given: a run, a group of repeated runs, an experiment, or a folder
of those (``runs/``). Finished runs are found below it; runs whose configs differ only in
``training.seed`` form one row (accuracy mean ± sample std over the seeds, from
``seqclf.summary.summarize``). The columns show the config keys that differ between rows.
Rows are sorted by validation accuracy when every row has one (so picking the best does
not tune on the test set), else by test accuracy; the best is marked.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seqclf import outputs, runs
from seqclf.errors import SeqclfError, must_be
from seqclf.sections import CELL_ARG_DEFAULTS, CELL_ONLY_ARGS
from seqclf.summary import RunScore, summarize

FORMATS = ("table", "csv", "markdown", "json")
IGNORED = ("name", "training.seed", "training.repeats")
# The probability metrics of metrics.json's test scores: (key, column heading), each the
# mean over a row's runs (absent: runs trained before seqclf computed them).
PROBABILITY = (("log_loss", "log loss"), ("brier", "Brier"), ("roc_auc", "ROC-AUC"),
               ("pr_auc", "PR-AUC"), ("ece", "ECE"))
REPORT = {"markdown": "compare.md", "csv": "compare.csv", "json": "compare.json"}
PLOT = "compare.png"


def flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config sections as one mapping of dotted keys (``model.units``)."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


@dataclass
class Row:
    """One config and its finished runs."""

    name: str
    config: dict[str, Any]  # flattened resolved config, without IGNORED keys
    summary: dict[str, Any]  # seqclf.summary.summarize over the runs
    parameters: int
    val_accuracy: float | None  # mean last-epoch validation accuracy, if every run has one
    settings: dict[str, Any] = field(default_factory=dict)  # the varied keys' values
    best: bool = False
    probability: dict[str, float | None] = field(default_factory=dict)  # PROBABILITY means

    def record(self) -> dict[str, Any]:
        """The row as plain data (JSON and CSV)."""
        s = self.summary
        return {"name": self.name, **self.settings, "runs": s["repeats"],
                "accuracy_mean": s["accuracy"]["mean"], "accuracy_std": s["accuracy"]["std"],
                "accuracy_values": s["accuracy"]["values"], "macro_f1": s["macro_f1_mean"],
                "val_accuracy": self.val_accuracy, "baseline": s["baseline"],
                **{key: self.probability.get(key) for key, _ in PROBABILITY},
                "parameters": self.parameters,
                "epochs": sum(s["epochs_run"]) / len(s["epochs_run"]),
                "seconds": sum(s["seconds"]) / len(s["seconds"]), "best": self.best}


@dataclass
class Comparison:
    """Rows sorted best first, the keys that vary between them, and unfinished runs."""

    rows: list[Row]
    keys: list[str]
    sorted_by: str
    unfinished: list[Path]

    def warnings(self) -> list[str]:
        if not self.unfinished:
            return []
        listed = ", ".join(map(str, self.unfinished[:3]))
        listed += ", ..." if len(self.unfinished) > 3 else ""
        return [f"{len(self.unfinished)} unfinished runs left out: {listed}"]


def _marked(path: Path) -> bool:
    return (path / runs.MANIFEST).exists() or (path / runs.INCOMPLETE).exists()


def find_runs(path: Path) -> tuple[list[Path], list[Path]]:
    """Finished and unfinished run directories at or below ``path``."""
    if (path / runs.MANIFEST).exists() and not (path / runs.INCOMPLETE).exists():
        return [path], []
    kids = sorted(p for p in path.iterdir() if p.is_dir())
    if (path / runs.INCOMPLETE).exists() and not any(map(_marked, kids)):
        return [], [path]
    done: list[Path] = []
    undone: list[Path] = []
    for kid in kids:
        a, b = find_runs(kid)
        done += a
        undone += b
    return done, undone


def _load(path: Path) -> tuple[RunScore, dict[str, Any], dict[str, Any]]:
    """A finished run as (its scores, resolved config, metrics)."""
    run = runs.open_run(path)
    try:
        m = json.loads((path / runs.METRICS).read_text(encoding="utf-8"))
        test = m["test"]
        result = RunScore(path, run.config.training.seed, float(test["accuracy"]),
                          float(test["macro_f1"]), float(test["baseline"]),
                          int(m["epochs_run"]), float(run.manifest["seconds"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SeqclfError(f"{path}: {runs.METRICS} is missing or damaged ({exc}). Train the "
                          "run again.") from None
    return result, run.config.to_dict(), m


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    """Flattened, without seed/name, and with cell-dependent defaults as null (they follow
    from model.cell and would otherwise show up as differences of their own)."""
    flat = {k: v for k, v in flatten(config).items() if k not in IGNORED}
    for key, default in CELL_ARG_DEFAULTS.items():
        if flat.get(f"model.{key}") in (None, default) and key in CELL_ONLY_ARGS:
            flat[f"model.{key}"] = None
    return flat


def _probability_means(metrics: list[dict[str, Any]]) -> dict[str, float | None]:
    """Each PROBABILITY metric's mean over runs; None when a run lacks it (or it was
    undefined there, like an AUC on one class)."""
    out: dict[str, float | None] = {}
    for key, _ in PROBABILITY:
        values = [m.get("test", {}).get(key) for m in metrics]
        out[key] = (None if any(not isinstance(v, (int, float)) for v in values)
                    else float(sum(values) / len(values)))
    return out


def _label(path: Path, top: Path) -> str:
    """A row's name: the path below the directory given, or its own name."""
    return path.name if top.is_relative_to(path) else path.relative_to(top).as_posix()


@dataclass
class _Found:
    top: Path  # the directory given, for naming
    result: RunScore
    config: dict[str, Any]  # _comparable(resolved config)
    metrics: dict[str, Any]
    config_name: str


def collect(dirs: list[str | Path]) -> Comparison:
    """Find the finished runs in ``dirs`` and pool them into rows, best first.

    Raises:
        SeqclfError: A directory does not exist, a run is damaged, or nothing finished.
    """
    groups: dict[str, list[_Found]] = {}
    unfinished: list[Path] = []
    for top in map(Path, dirs):
        if not top.is_dir():
            raise SeqclfError(f"{top}: directory not found. Pass run, group or experiment "
                              "directories.")
        done, undone = find_runs(top)
        unfinished += undone
        for path in done:
            result, config, metrics = _load(path)
            flat = _comparable(config)
            groups.setdefault(json.dumps(flat, sort_keys=True), []).append(
                _Found(top, result, flat, metrics, str(config.get("name") or path.name)))
    if not groups:
        raise SeqclfError(f"{', '.join(map(str, dirs))}: no finished runs to compare"
                          + (f" ({len(unfinished)} unfinished)." if unfinished else "."))
    rows = []
    for found in groups.values():
        first, paths = found[0], [f.result.run_dir for f in found]
        if all(p.name.startswith("seed-") for p in paths):  # <variant>/seed-<n>
            paths = [p.parent for p in paths]
        labels = {_label(p, f.top) for p, f in zip(paths, found)}
        names = {p.name for p in paths}
        name = (labels.pop() if len(labels) == 1 else names.pop() if len(names) == 1
                else first.config_name)
        vals = [f.metrics.get("final", {}).get("val_accuracy") for f in found]
        rows.append(Row(name, first.config, summarize(name, [f.result for f in found]),
                        int(first.metrics["parameters"]),
                        None if None in vals else sum(vals) / len(vals),
                        probability=_probability_means([f.metrics for f in found])))
    if len({r.name for r in rows}) < len(rows):  # e.g. the same variant in two experiments
        for row, found in zip(rows, groups.values()):
            row.name = f"{found[0].top.name}/{row.name}"
    keys = list(dict.fromkeys(k for r in rows for k in r.config))
    keys = [k for k in keys if len({json.dumps(r.config.get(k)) for r in rows}) > 1]
    for row in rows:
        row.settings = {k: row.config.get(k) for k in keys}
    by_val = all(r.val_accuracy is not None for r in rows)
    rows.sort(key=lambda r: (-(r.val_accuracy if by_val else r.summary["accuracy"]["mean"]),
                             -r.summary["macro_f1_mean"], r.name))
    rows[0].best = True
    return Comparison(rows, keys, "validation accuracy" if by_val else "test accuracy",
                      unfinished)


# --- rendering -----------------------------------------------------------------------


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _cells(c: Comparison) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the human-readable table (text and markdown)."""
    with_val = any(r.val_accuracy is not None for r in c.rows)
    shown = [(key, name) for key, name in PROBABILITY
             if any(r.probability.get(key) is not None for r in c.rows)]
    header = ["variant", *c.keys, *(["val accuracy"] if with_val else []), "test accuracy",
              "macro-F1", *(name for _, name in shown), "baseline", "params", "epochs",
              "seconds", "runs"]
    body = []
    for row in c.rows:
        rec = row.record()
        acc = f"{rec['accuracy_mean']:.4f}" + (f" ± {rec['accuracy_std']:.4f}"
                                               if rec["runs"] > 1 else "")
        val = [] if not with_val else [
            "-" if row.val_accuracy is None else f"{row.val_accuracy:.4f}"]
        probs = ["-" if rec[key] is None else f"{rec[key]:.4f}" for key, _ in shown]
        body.append([row.name, *(_value(row.settings[k]) for k in c.keys), *val, acc,
                     f"{rec['macro_f1']:.4f}", *probs, f"{rec['baseline']:.4f}",
                     str(rec["parameters"]),
                     f"{rec['epochs']:g}", f"{rec['seconds']:.1f}", str(rec["runs"])])
    return header, body


def _legend(c: Comparison, mark: str) -> str:
    return (f"{mark}: best by {c.sorted_by}; accuracy is the mean ± sample std over seeds; "
            "probability metrics (log loss, Brier, ROC-AUC, PR-AUC, ECE) are means over "
            "seeds; seconds are per run.")


def render(c: Comparison, fmt: str = "table") -> str:
    """The comparison as ``table`` (aligned text), ``csv``, ``markdown`` or ``json``."""
    check_format(fmt)
    if fmt == "json":
        return json.dumps({"sorted_by": c.sorted_by, "varied": c.keys,
                           "rows": [r.record() for r in c.rows],
                           "unfinished": [str(p) for p in c.unfinished]}, indent=2) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        records = [r.record() for r in c.rows]
        writer = csv.DictWriter(out, fieldnames=list(records[0]), lineterminator="\n")
        writer.writeheader()
        for rec in records:
            writer.writerow({k: "" if v is None else v if isinstance(v, (str, int, float))
                             else json.dumps(v) for k, v in rec.items()})
        return out.getvalue()
    header, body = _cells(c)
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row, cells in zip(c.rows, body):
            if row.best:
                cells = [f"**{cells[0]}**", *cells[1:]]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + f"\n\n{_legend(c, 'bold')}\n"
    table = [["", *header]] + [["*" if r.best else "", *cells] for r, cells in zip(c.rows, body)]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table]
    return "\n".join(lines) + f"\n{_legend(c, '*')}\n"


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise must_be("--format", "", "one of: " + ", ".join(FORMATS), fmt)


def figure(c: Comparison, title: str) -> Any:
    """Test accuracy per row: each seed, the mean and ± one sample std, beside the baseline."""
    from seqclf.report import comparison_figure

    return comparison_figure([r.name for r in c.rows],
                             [r.summary["accuracy"]["values"] for r in c.rows],
                             [r.summary["baseline"] for r in c.rows], title)


def write_report(directory: Path, c: Comparison) -> None:
    """compare.md, compare.csv, compare.json and compare.png into ``directory``."""
    for fmt, name in REPORT.items():
        runs.write_text(directory / name, render(c, fmt))
    runs.save_figure(directory / PLOT, figure(c, directory.name))


def compare(dirs: list[str | Path], fmt: str = "table", plot: str | Path | None = None
            ) -> tuple[str, Comparison]:
    """``seqclf compare``: the rendered comparison of ``dirs``, and a plot if asked for."""
    check_format(fmt)
    if plot is not None:
        if outputs.is_stdout(plot):
            raise must_be("seqclf compare", "--plot", "a file (standard output holds the "
                          "table)", str(plot))
        outputs.check_writable(plot)
    c = collect(dirs)
    if plot is not None:
        runs.save_figure(Path(plot), figure(c, ", ".join(Path(d).name for d in dirs)))
    return render(c, fmt), c

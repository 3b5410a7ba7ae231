"""seqclf compare: finding runs, pooling seeds, the varied keys, every output format."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from seqclf.cli import app
from seqclf.compare import collect, compare, render
from seqclf.errors import SeqclfError

# variant -> (model.units, [(seed, test accuracy, validation accuracy)])
VARIANTS = {"small": (8, [(0, 0.5, 0.6), (1, 0.7, 0.5)]),
            "large": (16, [(0, 0.9, 0.8), (1, 0.8, 0.9)])}


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def copy_run(template: Path, dest: Path, units: int, seed: int, acc: float, val: float) -> Path:
    """A copy of a finished run with another units/seed in its config and other scores."""
    shutil.copytree(template, dest, ignore=shutil.ignore_patterns("tensorboard", "backup"))
    config = yaml.safe_load((dest / "config.yaml").read_text())
    config["model"]["units"], config["training"]["seed"] = units, seed
    (dest / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    metrics = json.loads((dest / "metrics.json").read_text())
    metrics["test"]["accuracy"] = metrics["test"]["macro_f1"] = acc
    metrics["final"]["val_accuracy"] = val
    metrics["parameters"] = units * 100
    (dest / "metrics.json").write_text(json.dumps(metrics))
    return dest


@pytest.fixture
def experiment_dir(long_run, tmp_path) -> Path:
    """runs/exp/<variant>/seed-<n>: copies of one trained run with known scores."""
    for name, (units, seeds) in VARIANTS.items():
        for seed, acc, val in seeds:
            copy_run(long_run.run_dir, tmp_path / "runs" / "exp" / name / f"seed-{seed}",
                     units, seed, acc, val)
    return tmp_path / "runs" / "exp"


def test_rows_pool_seeds_show_varied_keys_and_sort_by_validation(experiment_dir):
    c = collect([experiment_dir])
    assert [r.name for r in c.rows] == ["large", "small"]
    assert c.keys == ["model.units"] and c.sorted_by == "validation accuracy"
    large, small = (r.record() for r in c.rows)
    assert large["model.units"] == 16 and large["runs"] == 2 and large["best"]
    assert large["accuracy_mean"] == pytest.approx(0.85)
    assert large["accuracy_std"] == pytest.approx(0.1 / 2 ** 0.5)
    assert large["val_accuracy"] == pytest.approx(0.85)
    assert small["accuracy_mean"] == pytest.approx(0.6) and not small["best"]
    assert large["parameters"] == 1600 and large["baseline"] == small["baseline"]


def test_test_accuracy_sorts_when_a_row_has_no_validation(experiment_dir):
    for seed in (0, 1):  # small: better on test, worse on validation
        path = experiment_dir / "small" / f"seed-{seed}" / "metrics.json"
        metrics = json.loads(path.read_text())
        metrics["test"]["accuracy"] = 0.95
        if seed == 0:
            del metrics["final"]["val_accuracy"]
        path.write_text(json.dumps(metrics))
    c = collect([experiment_dir])
    assert c.sorted_by == "test accuracy"
    assert [r.name for r in c.rows] == ["small", "large"]
    assert c.rows[0].val_accuracy is None and c.rows[1].val_accuracy == pytest.approx(0.85)


def test_table_format(experiment_dir):
    text = render(collect([experiment_dir]), "table")
    lines = text.splitlines()
    assert lines[0].split() == ["variant", "model.units", "val", "accuracy", "test", "accuracy",
                                "macro-F1", "log", "loss", "Brier", "ROC-AUC", "PR-AUC", "ECE",
                                "baseline", "params", "epochs", "seconds", "runs"]
    assert lines[1].split()[:6] == ["*", "large", "16", "0.8500", "0.8500", "±"]
    assert lines[2].split()[:5] == ["small", "8", "0.5500", "0.6000", "±"]
    assert lines[3].startswith("*: best by validation accuracy")


def test_markdown_format(experiment_dir):
    lines = render(collect([experiment_dir]), "markdown").splitlines()
    assert lines[0].startswith("| variant | model.units | val accuracy | test accuracy |")
    assert lines[1] == "|" + "---|" * 15
    assert lines[2].startswith("| **large** | 16 | 0.8500 | 0.8500 ± 0.0707 |")
    assert lines[3].startswith("| small | 8 |")
    assert lines[-1].startswith("bold: best by validation accuracy")


def test_probability_columns_are_means_over_seeds(experiment_dir):
    values = {}
    for seed, (loss, ece) in enumerate(((0.4, 0.1), (0.6, 0.2))):
        path = experiment_dir / "small" / f"seed-{seed}" / "metrics.json"
        metrics = json.loads(path.read_text())
        metrics["test"].update(log_loss=loss, ece=ece)
        if seed == 1:
            del metrics["test"]["brier"]  # a run scored before seqclf had the Brier score
        path.write_text(json.dumps(metrics))
        values[seed] = metrics["test"]
    small = next(r for r in collect([experiment_dir]).rows if r.name == "small").record()
    assert small["log_loss"] == pytest.approx(0.5) and small["ece"] == pytest.approx(0.15)
    assert small["brier"] is None
    assert small["roc_auc"] == pytest.approx((values[0]["roc_auc"] + values[1]["roc_auc"]) / 2)
    table = [[cell.strip() for cell in line.split("|")]
             for line in render(collect([experiment_dir]), "markdown").splitlines()[:4]]
    row = next(r for r in table if len(r) > 1 and r[1] == "small")
    assert row[table[0].index("Brier")] == "-"
    assert row[table[0].index("log loss")] == "0.5000"


def test_csv_format(experiment_dir):
    rows = list(csv.DictReader(io.StringIO(render(collect([experiment_dir]), "csv"))))
    assert [r["name"] for r in rows] == ["large", "small"]
    assert rows[0]["model.units"] == "16" and rows[0]["best"] == "True"
    assert float(rows[1]["accuracy_mean"]) == pytest.approx(0.6)
    assert json.loads(rows[1]["accuracy_values"]) == [0.5, 0.7]


def test_json_format(experiment_dir):
    data = json.loads(render(collect([experiment_dir]), "json"))
    assert data["sorted_by"] == "validation accuracy" and data["varied"] == ["model.units"]
    assert [(r["name"], r["best"]) for r in data["rows"]] == [("large", True), ("small", False)]
    assert data["rows"][1]["accuracy_values"] == [0.5, 0.7]
    assert data["unfinished"] == []


def test_single_runs_groups_and_folders_are_named_by_where_they_are(experiment_dir):
    one = collect([experiment_dir / "small" / "seed-1"])
    assert [r.name for r in one.rows] == ["small"] and one.keys == []
    assert [r.name for r in collect([experiment_dir / "large"]).rows] == ["large"]
    # A folder of experiments: names say which experiment, and repeats stay apart.
    shutil.copytree(experiment_dir, experiment_dir.parent / "other")
    other = experiment_dir.parent / "other"
    for seed_dir in (other / "large").iterdir():
        config = yaml.safe_load((seed_dir / "config.yaml").read_text())
        config["training"]["epochs"] += 1
        (seed_dir / "config.yaml").write_text(yaml.safe_dump(config))
    c = collect([experiment_dir.parent])
    assert sorted(r.name for r in c.rows) == ["exp/large", "other/large", "small"]
    assert c.keys == ["model.units", "training.epochs"]
    assert next(r for r in c.rows if r.name == "small").summary["repeats"] == 4


def test_unfinished_runs_are_left_out_with_a_warning(experiment_dir, tmp_path):
    (experiment_dir / "small" / "seed-1" / "INCOMPLETE").write_text("killed\n")
    plot = tmp_path / "plot.png"
    result = invoke("compare", experiment_dir, "--plot", plot)
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        f"warning: 1 unfinished runs left out: {experiment_dir / 'small' / 'seed-1'}"]
    assert result.stdout.splitlines()[2].split()[:2] == ["small", "8"]
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_compare_command_formats(experiment_dir):
    for fmt, start in (("table", "   variant"), ("markdown", "| variant"), ("csv", "name,"),
                       ("json", "{")):
        result = invoke("compare", experiment_dir, "--format", fmt)
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith(start), fmt


@pytest.mark.parametrize("args, message", [
    (["{tmp}/nope"], "error: {tmp}/nope: directory not found. Pass run, group or experiment "
                     "directories."),
    (["{tmp}/empty"], "error: {tmp}/empty: no finished runs to compare."),
    (["{tmp}/empty", "--format", "xml"], "error: --format: must be one of: table, csv, markdown, "
                                         "json. Got 'xml' instead."),
])
def test_compare_errors_are_one_line(tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    result = invoke("compare", *[a.format(tmp=tmp_path) for a in args])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [message.format(tmp=tmp_path)]


def test_compare_returns_text_and_writes_the_plot(experiment_dir, tmp_path):
    text, c = compare([experiment_dir], "json", tmp_path / "p.png")
    assert json.loads(text)["rows"][0]["name"] == "large"
    assert (tmp_path / "p.png").is_file()
    with pytest.raises(SeqclfError, match="metrics.json is missing or damaged"):
        (experiment_dir / "large" / "seed-0" / "metrics.json").write_text("{}")
        collect([experiment_dir])

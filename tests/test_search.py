"""Optuna search (seqclf sweep with a search: section): shared study, budget, resume."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from conftest import ROOT, write_config
from seqclf.cli import app
from seqclf.errors import SeqclfError
from seqclf.experiment import load_experiment
from seqclf.sweep import run

optuna = pytest.importorskip("optuna")
from optuna.storages.journal import JournalFileBackend  # noqa: E402

TINY = {"model.units": 4, "training.epochs": 1, "training.batch_size": 256,
        "training.tensorboard": False, "training.validation_split": 0.2}


def search_file(tmp_path, n_trials: int, storage: str | None = None):
    search = {"n_trials": n_trials, "space": {
        "model.units": {"int": [2, 6]}, "model.cell": {"choice": ["lstm", "gru"]},
        "optimizer.learning_rate": {"float": [0.001, 0.01], "log": True}}}
    if storage:
        search["storage"] = storage
    return write_config(tmp_path / "exp.yaml", {
        "base": str(ROOT / "configs" / "quickstart.yaml"), "set": TINY, "search": search})


def load_study(path):
    return optuna.load_study(study_name="exp", storage=optuna.storages.JournalStorage(
        JournalFileBackend(str(path))))


def test_dry_run_describes_the_search(tmp_path):
    path = search_file(tmp_path, 5)
    result = CliRunner().invoke(app, ["sweep", str(path), "--dry-run", "--output-dir",
                                      str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == ("experiment exp: Optuna search (tpe), 5 trials in all, maximising "
                        "validation accuracy (mean over the runs of each trial; seeds 0)")
    assert lines[1] == f"  storage: {tmp_path / 'out' / 'exp' / 'optuna.journal'}"
    assert "  optimizer.learning_rate: float [0.001, 0.01] (log scale)" in lines
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_two_workers_share_one_study(tmp_path):
    path = search_file(tmp_path, 2, storage="study.journal")
    env = {k: v for k, v in os.environ.items() if k != "SEQCLF_DEBUG"}
    cmd = [sys.executable, "-m", "seqclf", "sweep", str(path), "--output-dir", str(tmp_path)]
    workers = [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [w.communicate(timeout=300) for w in workers]
    for worker, (out, err) in zip(workers, outputs):
        assert worker.returncode == 0, err
    study = load_study(tmp_path / "study.journal")
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 2  # the budget is for the study, not per worker
    assert len({t.user_attrs["worker"] for t in complete}) == 2
    for t in complete:
        run_dir = tmp_path / "exp" / f"trial-{t.number:04d}" / "seed-0"
        assert (run_dir / "manifest.json").is_file() and not (run_dir / "INCOMPLETE").exists()
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert t.value == metrics["final"]["val_accuracy"]
        assert t.user_attrs["objective"] == "validation accuracy"
    report = json.loads((tmp_path / "exp" / "compare.json").read_text())
    assert sorted(r["name"] for r in report["rows"]) == sorted(
        f"trial-{t.number:04d}" for t in complete)
    assert report["sorted_by"] == "validation accuracy"
    printed = outputs[0][0] + outputs[1][0]
    assert sum(line.startswith("trial-") for line in printed.splitlines()) == 2


@pytest.mark.slow
def test_rerun_fails_trials_of_dead_workers_and_finishes_the_budget(tmp_path):
    path = search_file(tmp_path, 1)
    journal = tmp_path / "out" / "exp" / "optuna.journal"
    journal.parent.mkdir(parents=True)
    study = optuna.create_study(study_name="exp", direction="maximize",
                                storage=optuna.storages.JournalStorage(
                                    JournalFileBackend(str(journal))))
    gone = subprocess.Popen(["true"])
    gone.wait()
    study.ask().set_user_attr("worker", f"{socket.gethostname()}:{gone.pid}")
    leftover = journal.parent / "trial-0000" / "seed-0"
    leftover.mkdir(parents=True)
    (leftover / "INCOMPLETE").write_text("killed\n")

    lines: list[str] = []
    result = run(load_experiment(path), tmp_path / "out", announce=lines.append)
    assert lines[0] == "trial-0000: its worker is gone; marked failed"
    assert lines[1].startswith("trial-0001: model.units=")
    assert not leftover.parent.exists()
    states = [t.state for t in load_study(journal).trials]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.COMPLETE]
    assert result.summary.startswith("best trial-0001: validation accuracy ")
    assert [r.name for r in result.comparison.rows] == ["trial-0001"]

    lines.clear()
    run(load_experiment(path), tmp_path / "out", announce=lines.append)
    assert lines == ["study exp already has 1 complete trials; nothing to do"]


def test_missing_optuna_is_a_clear_error(monkeypatch):
    from seqclf import search

    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(SeqclfError, match=r"needs Optuna, which is not installed\. Install it "
                                          r"with pip install 'seqclf\[search\]'"):
        search._optuna()

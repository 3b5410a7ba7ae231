"""Repeated runs over seeds (training.repeats / --repeat)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seqclf.config import load_config
from seqclf.errors import SeqclfError
from seqclf.runs import open_run
from seqclf.repeats import train_repeats

ROOT = Path(__file__).resolve().parent.parent
TINY = ["model.units=4", "training.epochs=1", "training.batch_size=128"]


@pytest.mark.slow
def test_repeats_train_one_run_per_seed_and_summarise(tmp_path):
    cfg = load_config(ROOT / "configs" / "quickstart.yaml",
                      TINY + ["training.repeats=2", "training.seed=7"])
    result = train_repeats(cfg, tmp_path)
    assert [p.name for p in sorted(result.group_dir.iterdir()) if p.is_dir()] == ["seed-7", "seed-8"]
    summary = json.loads((result.group_dir / "summary.json").read_text())
    values = [r.evaluation.accuracy for r in result.results]
    assert summary["seeds"] == [7, 8]
    assert summary["accuracy"]["values"] == values
    assert summary["accuracy"]["min"] == min(values) and summary["accuracy"]["max"] == max(values)
    assert summary["accuracy"]["mean"] == pytest.approx(sum(values) / 2)
    assert summary["accuracy"]["std"] == pytest.approx(abs(values[0] - values[1]) / 2 ** 0.5)
    assert not (result.group_dir / "INCOMPLETE").exists()
    # each seed's directory is an ordinary, complete run with its own seed recorded
    run = open_run(result.group_dir / "seed-8")
    assert run.config.training.seed == 8 and run.config.training.repeats == 1
    with pytest.raises(SeqclfError, match="is a group of repeated runs; pass one of its seed-N"):
        open_run(result.group_dir)

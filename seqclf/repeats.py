"""``training.repeats``: the same config trained with seeds seed, seed+1, ... into one
group directory, and the spread of their scores."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqclf import runs
from seqclf.config import Config
from seqclf.progress import Progress
from seqclf.summary import summarize, summary_markdown
from seqclf.train import TrainResult, train


@dataclass
class RepeatResult:
    """The outcome of ``train_repeats()``: one run per seed and their spread.

    Attributes:
        group_dir: Directory holding ``seed-<n>/`` run directories and the summary.
        results: One TrainResult per seed, in seed order.
        summary: Accuracy mean, sample std, min, max; seeds; baseline; seconds.
    """

    group_dir: Path
    results: list[TrainResult]
    summary: dict[str, Any]


def train_repeats(cfg: Config, output_dir: str | Path = "runs",
                  progress: Progress | None = None, announce=None) -> RepeatResult:
    """Train ``training.repeats`` runs with seeds seed, seed+1, ... and summarise them.

    One 200-epoch run is a single draw; repeats show how much of a difference between
    configs is noise. Each run is an ordinary run directory under the group directory.

    Args:
        cfg: A validated config.
        output_dir: Parent of the group directory ``<config name>-<timestamp>``.
        progress: As for ``train``.
        announce: Called with (index, count, seed) before each run, for the CLI.
    """
    n = cfg.training.repeats
    group = runs.create_run_dir(output_dir, cfg.name or "run")
    runs.write_text(group / runs.CONFIG, cfg.to_yaml())
    results = []
    for i in range(n):
        seed = cfg.training.seed + i
        one = cfg.model_copy(deep=True)
        one.training.seed, one.training.repeats = seed, 1
        one._source = cfg.source
        if announce is not None:
            announce(i, n, seed)
        results.append(train(one, group, progress, run_name=f"seed-{seed}"))
    summary = summarize(cfg.name, [r.score() for r in results])
    runs.write_text(group / runs.SUMMARY_MD, summary_markdown(summary))
    runs.finish(group, summary, name=runs.SUMMARY)
    return RepeatResult(group, results, summary)

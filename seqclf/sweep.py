"""``seqclf sweep``: an experiment file's grid/variants (``seqclf.experiment``) or its
Optuna search (``seqclf.search``), whichever the file holds."""

from __future__ import annotations

from pathlib import Path

from seqclf import experiment, search
from seqclf.experiment import Announce, Plan, SweepResult


def describe(plan: Plan, output_dir: str | Path = "runs") -> str:
    """What ``--dry-run`` prints: the variants (or the search) and what is done."""
    if plan.spec.search is not None:
        return search.describe(plan, plan.directory(output_dir))
    return experiment.dry_run(plan, output_dir)


def run(plan: Plan, output_dir: str | Path = "runs", jobs: int = 1,
        announce: Announce = None) -> SweepResult:
    """Train what the experiment file asks for and compare the runs (see
    ``experiment.run`` and ``search.search``)."""
    if plan.spec.search is not None:
        return search.search(plan, output_dir, jobs, announce)
    return experiment.run(plan, output_dir, jobs, announce)

"""Pooling runs of one config over seeds: accuracy mean, spread and the markdown summary
(``seqclf train`` with ``training.repeats``, ``seqclf compare``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class RunScore:
    """What a summary needs of one finished run."""

    run_dir: Path
    seed: int | None
    accuracy: float
    macro_f1: float
    baseline: float
    epochs_run: int
    seconds: float


def summarize(name: str | None, results: list[RunScore]) -> dict[str, Any]:
    """Accuracy over repeated runs: mean, sample standard deviation, min, max."""
    acc = np.array([r.accuracy for r in results])
    f1 = np.array([r.macro_f1 for r in results])
    return {
        "name": name, "repeats": len(results),
        "seeds": [r.seed for r in results],
        "accuracy": {"mean": float(acc.mean()), "std": float(acc.std(ddof=1)) if len(acc) > 1
                     else 0.0, "min": float(acc.min()), "max": float(acc.max()),
                     "values": acc.tolist()},
        "macro_f1_mean": float(f1.mean()),
        "baseline": results[0].baseline,
        "epochs_run": [r.epochs_run for r in results],
        "seconds": [r.seconds for r in results],
        "runs": [str(r.run_dir) for r in results],
    }


def summary_markdown(summary: dict[str, Any]) -> str:
    """A short markdown report of repeated runs."""
    acc = summary["accuracy"]
    rows = "\n".join(f"| {seed} | {value:.4f} | {run} |" for seed, value, run in
                      zip(summary["seeds"], acc["values"], summary["runs"]))
    return (f"# {summary['name']}: {summary['repeats']} seeds\n\n"
            f"test accuracy {acc['mean']:.4f} ± {acc['std']:.4f} (sample std), "
            f"min {acc['min']:.4f}, max {acc['max']:.4f}; majority-class baseline "
            f"{summary['baseline']:.4f}\n\n| seed | accuracy | run |\n|---|---|---|\n{rows}\n")

"""Hyperparameter search with Optuna over the same config keys as a grid.

```yaml
base: ../quickstart.yaml
set: {training.validation_split: 0.2}
search:
  n_trials: 20                 # for the whole study, however many workers share it
  storage: null                # default <experiment dir>/optuna.journal; or a file, or
                               # an RDB URL such as sqlite:///study.db
  space:
    model.units: {int: [16, 128], log: true}
    optimizer.learning_rate: {float: [0.0001, 0.01], log: true}
    model.cell: {choice: [lstm, gru]}
```

Each trial trains every seed as an ordinary run directory
``<experiment dir>/trial-<number>/seed-<n>/``. The objective is the validation accuracy of
the last epoch when ``training.validation_split`` > 0 (so the test set is not tuned on),
else the test accuracy; averaged over the seeds. Workers share trials through Optuna's
own storage: every ``seqclf sweep`` started with the same experiment file and storage
(on one machine, or several sharing a file system or a database) pulls the next trial,
until the study has ``n_trials`` complete trials.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any

from seqclf import runs
from seqclf.errors import SeqclfError
from seqclf.experiment import (Announce, Plan, SweepResult, in_processes,
                               prepare_directory, train_one, with_seed)

JOURNAL = "optuna.journal"


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise SeqclfError("search: needs Optuna, which is not installed. Install it with "
                          "pip install 'seqclf[search]'.") from None
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # seqclf reports trials itself
    return optuna


def objective_name(cfg: Any) -> str:
    return "validation accuracy" if cfg.training.validation_split > 0 else "test accuracy"


def storage_text(plan: Plan, exp_dir: Path) -> str:
    """The storage's URL, or the journal file's path (relative ones: to the experiment file)."""
    storage = plan.spec.search.storage
    if storage is None:
        return str(exp_dir / JOURNAL)
    return storage if "://" in storage else str(plan.path.parent / storage)


def describe(plan: Plan, exp_dir: Path) -> str:
    """The dry run of a search: budget, space, objective, storage and run directories."""
    search = plan.spec.search
    base = plan.config({}, plan.name)
    lines = [f"experiment {plan.name}: Optuna search ({search.sampler}), {search.n_trials} "
             f"trials in all, maximising {objective_name(base)} (mean over the runs of each "
             f"trial; seeds {', '.join(map(str, plan.seeds(base)))})",
             f"  storage: {storage_text(plan, exp_dir)}",
             f"  runs: {exp_dir}/trial-<number>/seed-<n>"]
    for key, param in plan.spec.search.space.items():
        kind = ("choice" if param.choice is not None else
                "int" if param.int_range is not None else "float")
        lines.append(f"  {key}: {kind} {json.dumps(param.values())}"
                     + (" (log scale)" if param.log else ""))
    return "\n".join(lines)


def search(plan: Plan, output_dir: str | Path = "runs", jobs: int = 1,
           announce: Announce = None) -> SweepResult:
    """Run trials until the study has ``n_trials`` complete ones, then compare them.

    With ``jobs`` > 1, that many worker processes share the study (as separate
    ``seqclf sweep`` commands would). Trials left running by a worker on this machine
    that no longer exists (killed) are marked failed and their directories removed, so
    re-running finishes an interrupted search.
    """
    from seqclf import compare

    optuna = _optuna()
    exp_dir = prepare_directory(plan, output_dir)
    if jobs == 1:
        work(plan, exp_dir, announce)
    else:
        for _ in in_processes([(work, (plan, exp_dir, announce), None)] * jobs, jobs):
            pass
    study, _ = _study(optuna, plan, exp_dir)
    best = study.best_trial
    comparison = compare.collect([exp_dir])
    compare.write_report(exp_dir, comparison)
    complete = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
    return SweepResult(exp_dir, comparison, (
        f"best trial-{best.number:04d}: {best.user_attrs.get('objective', 'objective')} "
        f"{best.value:.4f} with {_params_text(best.params)}; the study has {complete} "
        "complete trials"))


def _study(optuna: Any, plan: Plan, exp_dir: Path) -> tuple[Any, Any]:
    text = storage_text(plan, exp_dir)
    if "://" in text:
        storage = optuna.storages.RDBStorage(text)
    else:
        from optuna.storages.journal import JournalFileBackend

        storage = optuna.storages.JournalStorage(JournalFileBackend(text))
    sampler = (optuna.samplers.RandomSampler() if plan.spec.search.sampler == "random"
               else optuna.samplers.TPESampler())
    study = optuna.create_study(study_name=plan.name, storage=storage, sampler=sampler,
                                direction="maximize", load_if_exists=True)
    return study, storage


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in params.items())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def work(plan: Plan, exp_dir: Path, announce: Announce = None) -> None:
    """One worker: pull trials from the shared study until it has ``n_trials`` complete."""
    optuna = _optuna()
    say = announce or (lambda line: None)
    states = optuna.trial.TrialState
    study, storage = _study(optuna, plan, exp_dir)
    host = socket.gethostname()
    # Leftovers of interrupted trials: failed ones, and those still marked running whose
    # worker (on this machine) is gone. Their run directories are unfinished: removed.
    for t in study.get_trials(deepcopy=False, states=(states.RUNNING, states.FAIL)):
        if t.state == states.RUNNING:
            owner, _, pid = str(t.user_attrs.get("worker", "")).rpartition(":")
            if owner != host or not pid.isdigit() or _alive(int(pid)):
                continue
            trial_id = storage.get_trial_id_from_study_id_trial_number(
                storage.get_study_id_from_name(plan.name), t.number)
            storage.set_trial_state_values(trial_id, states.FAIL)
            say(f"trial-{t.number:04d}: its worker is gone; marked failed")
        shutil.rmtree(exp_dir / f"trial-{t.number:04d}", ignore_errors=True)
    n = plan.spec.search.n_trials
    remaining = n - len(study.get_trials(deepcopy=False, states=(states.COMPLETE,)))
    if remaining <= 0:
        say(f"study {plan.name} already has {n} complete trials; nothing to do")
        return

    def objective(trial: Any) -> float:
        # Workers racing for the last trials: a trial numbered past the budget is surplus.
        earlier = study.get_trials(deepcopy=False, states=(states.COMPLETE, states.RUNNING))
        if sum(t.number < trial.number for t in earlier) >= n:
            study.stop()
            raise optuna.TrialPruned("the study's trial budget is used up")
        started = time.time()
        trial.set_user_attr("worker", f"{host}:{os.getpid()}")
        settings = {}
        for key, p in plan.spec.search.space.items():
            if p.choice is not None:
                settings[key] = trial.suggest_categorical(key, p.choice)
            elif p.int_range is not None:
                settings[key] = trial.suggest_int(key, *p.int_range, log=p.log)
            else:
                settings[key] = trial.suggest_float(key, *p.float_range, log=p.log)
        name = f"trial-{trial.number:04d}"
        cfg = plan.config(settings, name)
        metric = objective_name(cfg)
        trial.set_user_attr("objective", metric)
        values = []
        for seed in plan.seeds(cfg):
            result = train_one(with_seed(cfg, seed), exp_dir / name, seed)
            if metric == "test accuracy":
                values.append(result.evaluation.accuracy)
            else:
                metrics = json.loads((result.run_dir / runs.METRICS).read_text(encoding="utf-8"))
                values.append(metrics["final"]["val_accuracy"])
        value = sum(values) / len(values)
        say(f"{name}: {_params_text(settings)} -> {metric} {value:.4f} "
            f"({time.time() - started:.1f} s)")
        return value

    study.optimize(objective, n_trials=remaining,
                   callbacks=[optuna.study.MaxTrialsCallback(n, states=(states.COMPLETE,))])

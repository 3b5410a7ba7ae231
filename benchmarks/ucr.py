"""Real time series: seqclf's time-series configs and ``model.family: auto`` on the
public UCR development problems, beside MiniROCKET, ROCKET, 1-NN and the majority class.

    python benchmarks/ucr.py                              # every config, 3 seeds
    python benchmarks/ucr.py --configs auto minirocket    # a few configs
    python benchmarks/ucr.py --quick                      # smoke test (2 problems, 1 seed)
    python benchmarks/ucr.py --limit inception_time:ArrowHead,Coffee:0   # fewer runs of one

``--limit CONFIG:PROBLEMS:SEEDS`` runs a config on those problems and seeds only (a
network that takes half an hour per run on a CPU); the report says what ran.
``--synthetic`` names the synthetic problems of ``benchmarks/timeseries.py`` to run beside
the UCR ones (default: all three; ``--synthetic`` alone: none).

Each run is what a user types, as a subprocess, one after the other on the same machine:

* ``auto``: ``seqclf init train.csv --test test.csv --output auto.yaml``, then
  ``seqclf train auto.yaml --set training.seed=S``;
* a shipped config (``configs/timeseries/<name>.yaml``): ``seqclf train CONFIG --set
  data.train=... data.test=... data.format=... data.max_length=null
  training.seed=S`` (the data keys the problem needs, everything else the config's).

The problems (``--data``, default ``../shared/data/ucr-dev``, official train/test
splits as CSV; see its README) are never used to choose settings: they measure. Per run
the table takes test accuracy, the fit and predict seconds the run recorded
(``metrics.json``: ``model.fit`` or the closed-form fit; scoring the test set), the
whole command's wall time (TensorFlow's import included) and the parameters. The
baselines (aeon 1.6.0's MiniRocketClassifier and RocketClassifier, 1-NN Euclidean, the
majority class) come from the data folder's ``baselines.csv``, computed from the same
files on this kind of machine.

Beside them, in a table of their own, the synthetic problems of
``benchmarks/timeseries.py`` (long series, 500-1500 steps, one or three channels, the
same generator settings and seeds), written with ``seqclf data synthetic`` into the work
folder and run the same way; their baselines are that benchmark's scikit-learn ones
(1-NN on the raw series, logistic regression on summary features), computed here, and
the majority class. Writes ``docs/results/ucr.md`` and ``docs/results/ucr.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import timeseries  # noqa: E402
from common import machine  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "ucr-dev"
PROBLEMS = ("ArrowHead", "Coffee", "PigCVP", "PLAID")
SYNTHETIC = tuple(timeseries.PROBLEMS)
SYNTHETIC_BASELINES = (*timeseries.BASELINES, "majority_class")
CONFIGS = ("auto", "minirocket", "minirocket_ensemble", "inception_time", "lstm_fcn",
           "conv_lstm")
BASELINES = ("minirocket", "rocket", "1nn_euclidean", "majority_class")


def _commit() -> str:
    """The checkout's commit; SEQCLF_COMMIT where the tree travels without git (a device
    machine: benchmarks/device_ucr.sh)."""
    if os.environ.get("SEQCLF_COMMIT"):
        return os.environ["SEQCLF_COMMIT"]
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=ROOT, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


COMMIT = _commit()


def seqclf(*args: str) -> list[str]:
    return [sys.executable, "-m", "seqclf", *args]


def layout(folder: Path) -> dict[str, str]:
    """The data keys a problem's CSV needs: wide (label first) or long (id, step, c0)."""
    header = (folder / "train.csv").open(encoding="utf-8").readline().strip().split(",")
    if "step" in header:
        return {"format": "long"}
    return {"format": "wide"}


def minirocket_layer(run_dir: Path) -> dict[str, Any]:
    """The config of a run's saved minirocket layer: the view (``normalise``) and the
    ``pooling`` its fit kept."""
    with zipfile.ZipFile(run_dir / "model.keras") as saved:
        layers = json.loads(saved.read("config.json"))["config"]["layers"]
    return next(layer["config"] for layer in layers
                if layer["config"].get("name") == "minirocket")


def run_one(config: str, problem: Path, seed: int, work: Path, data: Path,
            extra: list[str] | None = None) -> dict[str, Any]:
    """Train one config on one problem with one seed, as a user would; the numbers
    (commands shortened: ``data`` is the UCR folder). ``extra``: KEY=VALUE overrides
    given to every ``seqclf train`` (``--set``)."""
    extra = extra or []
    more = [a for s in extra for a in ("--set", s)]
    out = work / "runs" / f"{problem.name}-{config}-{seed}"
    commands = []
    if config == "auto":
        cfg_path = work / f"{problem.name}-auto.yaml"
        if not cfg_path.exists():
            commands.append(seqclf("init", str(problem / "train.csv"), "--test",
                                   str(problem / "test.csv"), "--output", str(cfg_path)))
        commands.append(seqclf("train", str(cfg_path), "--set", f"training.seed={seed}", *more,
                               "--output-dir", str(out), "--quiet"))
    else:
        sets = [f"data.train={problem / 'train.csv'}", f"data.test={problem / 'test.csv'}",
                *(f"data.{k}={v}" for k, v in layout(problem).items()),
                "data.max_length=null", f"training.seed={seed}"]
        commands.append(seqclf("train", str(ROOT / "configs" / "timeseries" / f"{config}.yaml"),
                               *[a for s in sets for a in ("--set", s)], *more,
                               "--output-dir", str(out), "--quiet"))
    started = time.perf_counter()
    for command in commands:
        done = subprocess.run(command, capture_output=True, text=True, cwd=work)
        if done.returncode == 2:  # a one-line user error: the config refuses this data
            return {"config": config, "problem": problem.name, "seed": seed,
                    "refused": done.stderr.strip().splitlines()[-1], "commit": COMMIT,
                    "measured": time.strftime("%Y-%m-%d %H:%M"),
                    "commands": [_short(shlex.join(c[3:]), work, data) for c in commands]}
        if done.returncode != 0:
            raise SystemExit(f"failed ({done.returncode}): {shlex.join(command)}\n"
                             f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
    wall = time.perf_counter() - started
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    resolved = (run_dir / "config.yaml").read_text()
    family = next(line.split(":", 1)[1].strip() for line in resolved.splitlines()
                  if line.strip().startswith("family:"))
    # minirocket's normalise and pooling auto: the leave-one-out accuracies weighed, and
    # what the saved model kept
    final = metrics.get("final", {})
    views = {v: final[f"{v}_loo_accuracy"] for v in ("raw", "normalised")
             if f"{v}_loo_accuracy" in final}
    pooling = {p: final[f"{p}_loo_accuracy"] for p in ("ppv", "ppv_mipv")
               if f"{p}_loo_accuracy" in final}
    if views or pooling:
        layer = minirocket_layer(run_dir)
        if views:
            views["kept"] = layer["normalise"]
        if pooling:
            pooling["kept"] = layer["pooling"]
    return {"config": config, "problem": problem.name, "seed": seed, "family": family,
            **({"views": views} if views else {}), **({"pooling": pooling} if pooling else {}),
            "commit": COMMIT, "measured": time.strftime("%Y-%m-%d %H:%M"),
            "device": f"{manifest['backend']} on {manifest['device']}",
            **({"sets": list(extra)} if extra else {}),
            "accuracy": metrics["test"]["accuracy"], "fit_seconds": metrics["fit_seconds"],
            "predict_seconds": metrics.get("predict_seconds"),
            "parameters": metrics["parameters"], "command_seconds": wall,
            "epochs_run": metrics["epochs_run"], "majority": metrics["test"]["baseline"],
            "commands": [_short(shlex.join(c[3:]), work, data) for c in commands]}


def _short(command: str, work: Path, data: Path) -> str:
    """A command as a reader would type it: repository and data paths shortened."""
    return (command.replace(str(data), "$UCR").replace(str(ROOT) + "/", "")
            .replace(str(work) + "/", ""))


def write_synthetic(name: str, work: Path) -> tuple[Path, str]:
    """Write a synthetic problem as ``seqclf data synthetic`` does for a user: its folder
    and the command (in the work folder)."""
    spec = timeseries.PROBLEMS[name]
    folder = work / "synthetic" / name
    args = ["data", "synthetic", "--output", str(folder), "--problem", spec["problem"],
            "--classes", str(spec["classes"]), "--channels", str(spec["channels"]),
            "--min-length", str(spec["length"][0]), "--max-length", str(spec["length"][1]),
            "--train", str(spec["train"]), "--test", str(spec["test"]),
            "--width", str(spec["width"]), "--amplitude", str(spec["amplitude"]),
            "--distractors", str(spec["distractors"]),
            "--seed", str(timeseries.problem_seed(name))]
    subprocess.run(seqclf(*args), capture_output=True, text=True, cwd=work, check=True)
    return folder, "seqclf " + shlex.join(args).replace(str(work) + "/", "")


def synthetic_baselines(name: str, folder: Path) -> dict[str, dict[str, float]]:
    """benchmarks/timeseries.py's scikit-learn baselines on a synthetic problem."""
    files = {"train": folder / "train.csv", "test": folder / "test.csv"}
    found = {}
    for method in timeseries.BASELINES:
        r = timeseries.run_baseline(method, files, timeseries.PROBLEMS[name])
        found[method] = {"accuracy": r["accuracy"], "fit_seconds": r["seconds"],
                         "predict_seconds": 0.0}
    return found


def baselines(data: Path) -> dict[str, dict[str, dict[str, float]]]:
    """problem -> method -> accuracy, fit and predict seconds (baselines.csv)."""
    table: dict[str, dict[str, dict[str, float]]] = {}
    with (data / "baselines.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["accuracy"]:
                table.setdefault(row["dataset"], {})[row["method"]] = {
                    "accuracy": float(row["accuracy"]), "fit_seconds": float(row["fit_s"]),
                    "predict_seconds": float(row["predict_s"])}
    return table


def mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def accuracy_table(problems: list[str], configs: list[str], runs: Any, refusal: Any,
                   base: dict, methods: tuple[str, ...]) -> list[str]:
    """Config and baseline rows by problem: accuracy mean ± std over seeds, and the mean
    over problems where every problem has one."""
    lines = ["| config | " + " | ".join(problems) + " | mean |",
             "|" + "---|" * (len(problems) + 2)]
    for config in configs:
        cells, means = [], []
        for p in problems:
            accs = [r["accuracy"] for r in runs(config, p)]
            cells.append(mean_std(accs) if accs else "refused" if refusal(config, p) else "-")
            if accs:
                means.append(statistics.mean(accs))
        mean = f"{statistics.mean(means):.3f}" if len(means) == len(problems) else "-"
        lines.append(f"| {config} | " + " | ".join(cells) + f" | {mean} |")
    for method in methods:
        accs = [base.get(p, {}).get(method, {}).get("accuracy") for p in problems]
        cells = [f"{a:.3f}" if a is not None else "-" for a in accs]
        mean = (f"{statistics.mean(accs):.3f}" if all(a is not None for a in accs) else "-")
        lines.append(f"| *{method}* (baseline) | " + " | ".join(cells) + f" | {mean} |")
    return lines


def report(results: list[dict[str, Any]], base: dict, args: argparse.Namespace,
           seconds: float, synthetic: dict[str, dict[str, Any]]) -> str:
    # what this invocation or an earlier one (--resume) ran; configs in CONFIGS' order
    problems = [p for p in dict.fromkeys([*args.problems, *PROBLEMS])
                if any(r["problem"] == p for r in results)]
    generated = [p for p in dict.fromkeys([*args.synthetic, *synthetic])
                 if any(r["problem"] == p for r in results)]
    configs = [c for c in dict.fromkeys([*CONFIGS, *args.configs,
                                         *(r["config"] for r in results)])
               if any(r["config"] == c for r in results)]
    base = dict(base)
    for name in generated:  # the majority class from the runs (seqclf scores it)
        majority = next((r["majority"] for r in results if r["problem"] == name
                         and r.get("majority") is not None), None)
        base[name] = {**synthetic[name]["baselines"],
                      "majority_class": {"accuracy": majority} if majority is not None else {}}

    refused = [r for r in results if "refused" in r]
    results = [r for r in results if "refused" not in r]

    def runs(config: str, problem: str) -> list[dict[str, Any]]:
        return [r for r in results if r["config"] == config and r["problem"] == problem]

    def refusal(config: str, problem: str) -> bool:
        return any(r["config"] == config and r["problem"] == problem for r in refused)

    shown = [a for a in sys.argv[1:] if a != "--render"]
    # the last run's time, not the rendering's; and the minutes of every invocation
    measured = max((r["measured"] for r in results if "measured" in r),
                   default=time.strftime("%Y-%m-%d %H:%M"))
    lines = ["# Real time series: the UCR development problems", "",
             f"Command: `{shlex.join(['python', 'benchmarks/ucr.py', *shown])}` "
             f"(last run {measured} on {machine()}; {seconds / 60:.0f} min of runs over its "
             "invocations).", "",
             "Test accuracy, mean ± sample std over the training seeds "
             f"({', '.join(map(str, args.seeds))}; "
             + (f"limited runs: {', '.join(args.limit)}; " if args.limit else "")
             + "a single value: one seed), official UCR splits. Baselines from the "
             "data folder's baselines.csv (aeon 1.6.0, random_state 0, computed from the "
             "same CSV files). The majority class is the chance level to beat.", ""]
    provenance: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in results + refused:
        where = r.get("device", "")
        sets = " ".join(f"--set {s}" for s in r.get("sets", []))
        provenance.setdefault((r.get("commit", "?"), where, sets), []).append(r)
    if len(provenance) > 1:  # --resume kept runs of an earlier invocation
        parts = []
        for (commit, where, sets), rs in sorted(provenance.items(), key=lambda kv: min(
                r.get("measured", "") for r in kv[1])):
            when = sorted(r["measured"] for r in rs if "measured" in r)
            parts.append(f"{', '.join(sorted({r['config'] for r in rs}))}: "
                         + (f"commit {commit}, {when[0]} to {when[-1]}" if when else
                            "an earlier invocation (before runs recorded their commit)")
                         + (f", {where}" if where else "") + (f", `{sets}`" if sets else ""))
        lines += ["Runs come from several invocations (`--resume`): " + "; ".join(parts)
                  + ".", ""]
    lines += accuracy_table(problems, configs, runs, refusal, base, BASELINES)
    lines += ["", "## Against MiniROCKET, per problem", "",
              "Points of accuracy above (+) or below (-) aeon's MiniRocketClassifier (seed "
              "mean), and fit + predict seconds against its fit + predict seconds.", "",
              "| config | problem | accuracy - MiniROCKET | fit + predict s | MiniROCKET s | "
              "ratio | whole command s | family |",
              "|---|---|---|---|---|---|---|---|"]
    for config in configs:
        for p in problems:
            rs = runs(config, p)
            mr = base.get(p, {}).get("minirocket")
            if not rs or mr is None:
                continue
            acc = statistics.mean(r["accuracy"] for r in rs)
            ours = statistics.mean(r["fit_seconds"] + (r["predict_seconds"] or 0) for r in rs)
            theirs = mr["fit_seconds"] + mr["predict_seconds"]
            wall = statistics.mean(r["command_seconds"] for r in rs)
            lines.append(f"| {config} | {p} | {100 * (acc - mr['accuracy']):+.1f} | "
                         f"{ours:.2f} | {theirs:.2f} | {ours / theirs:.1f}x | {wall:.0f} | "
                         f"{rs[0]['family']} |")
    if generated:
        lines += ["", "## Synthetic long series (benchmarks/timeseries.py's problems)", "",
                  "The same configs and seeds on the generated problems of "
                  "`benchmarks/timeseries.py` (500-1500 steps; the class is a motif at a "
                  "random position, or the order of two; docs/results/timeseries.md describes "
                  "them), each written by the command below. Baselines: that benchmark's "
                  "scikit-learn ones (1-NN on the z-normalised raw series; logistic "
                  "regression on per-channel summary features) and the majority class. No "
                  "MiniROCKET baseline here (aeon is not installed with seqclf): "
                  "`minirocket` is seqclf's own, within a point of aeon's on the UCR "
                  "problems above.", ""]
        lines += accuracy_table(generated, configs, runs, refusal, base, SYNTHETIC_BASELINES)
        lines += [""] + [f"- {name}: `{synthetic[name]['command']}`" for name in generated]
    chose = [r for r in results if "views" in r]
    if chose:
        pooled = any("pooling" in r for r in chose)
        lines += ["", "## What `normalise: auto` and `pooling: auto` chose", "",
                  "Per run: the ridge's leave-one-out accuracy on the training data, raw "
                  "values against each sequence z-normalised, and the view the saved model "
                  "kept (normalised only where its leave-one-out predictions are right "
                  "clearly more often: `seqclf.models.minirocket.clearly_better`)"
                  + ("; then, on that view, PPV alone against PPV and MIPV, and the "
                     "pooling kept (by the same test)" if pooled else "")
                  + "; and the run's test accuracy.", ""]
        head = "| config | problem | seed | LOO raw | LOO normalised | view kept |"
        if pooled:
            head += " LOO PPV | LOO PPV+MIPV | pooling kept |"
        lines += [head + " test accuracy |", "|---" * (head.count("|")) + "|"]
        for r in chose:
            raw, normalised = r["views"]["raw"], r["views"]["normalised"]
            row = (f"| {r['config']} | {r['problem']} | {r['seed']} | {raw:.3f} | "
                   f"{normalised:.3f} | {'normalised' if r['views'].get('kept') else 'raw'} |")
            if pooled:
                p = r.get("pooling")
                row += (f" {p['ppv']:.3f} | {p['ppv_mipv']:.3f} | {p['kept']} |" if p
                        else " - | - | - |")
            lines.append(f"{row} {r['accuracy']:.4f} |")
    lines += ["", "## Every run", "",
              "| config | problem | seed | accuracy | fit s | predict s | command s | "
              "epochs | parameters |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['config']} | {r['problem']} | {r['seed']} | {r['accuracy']:.4f} | "
                     f"{r['fit_seconds']:.2f} | {(r['predict_seconds'] or 0):.2f} | "
                     f"{r['command_seconds']:.1f} | {r['epochs_run']} | {r['parameters']} |")
    if refused:
        lines += ["", "## Refused", "", "Runs that stopped with a one-line error before "
                  "training (exit code 2), as a user would see them:", ""]
        lines += [f"- {r['config']} / {r['problem']} seed {r['seed']}: `{r['refused']}`"
                  for r in refused]
    lines += ["", "## Notes", "",
              "- Times are wall-clock seconds on the machine named above, which other work "
              "may share (the baselines' were measured on a busy 2-core machine too): fit and "
              "predict from each run's metrics.json (predict: scoring the test set, "
              "tracing included), the whole command from start to exit (Python start-up and "
              "TensorFlow's import, about 10 s, included).",
              "- `auto` is `seqclf init` + `seqclf train`: it resolves to `minirocket` with "
              "`normalise: auto` and `pooling: auto` (the `minirocket` config is the "
              "published settings: raw values, PPV), so it fits the transform on two views "
              "and the ridge three times, and keeps one view and one pooling (the section "
              "above); the user names no family.",
              "- seqclf's MiniROCKET is saved as a Keras model, so a run evaluates, predicts "
              "and exports like any other; fit and predict compute its features in NumPy on "
              "all cores, over each sequence's real steps only (`seqclf.models.minirocket.pool`).",
              "- A config with one seed or fewer problems (see `--limit` in the command) "
              "was cut to what fits the session on a CPU; `-` marks what was not run."]
    lines += ["", "Commands of the first seed ($UCR: the data folder; synthetic/: the "
              "generated problems):", ""]
    for r in results:
        if r["seed"] == args.seeds[0]:
            lines += [f"- {r['config']} / {r['problem']}: " +
                      "; ".join(f"`seqclf {c}`" for c in r["commands"])]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS))
    parser.add_argument("--problems", nargs="+", default=list(PROBLEMS))
    parser.add_argument("--synthetic", nargs="*", choices=SYNTHETIC, default=list(SYNTHETIC),
                        help="synthetic problems of benchmarks/timeseries.py to run too "
                             "(none: the flag alone)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "results" / "ucr")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        dest="overrides", help="passed to every seqclf train, e.g. "
                        "training.backend=jax on a GPU machine without TensorFlow "
                        "(benchmarks/device_ucr.sh); recorded with each run")
    parser.add_argument("--limit", action="append", default=[], metavar="CONFIG:PROBLEMS:SEEDS",
                        help="run CONFIG on these comma-separated problems and seeds only")
    parser.add_argument("--resume", action="store_true",
                        help="keep the runs already in the .json (same config, problem, "
                             "seed) and run only the missing ones")
    parser.add_argument("--rerun", nargs="+", default=[], metavar="CONFIG",
                        help="with --resume: measure these configs again (their earlier "
                             "runs are dropped)")
    parser.add_argument("--render", action="store_true",
                        help="write the .md again from the .json of an earlier (or cut "
                             "short) run, with that run's arguments")
    parser.add_argument("--quick", action="store_true",
                        help="2 small problems, seed 0, written to /tmp (a smoke test)")
    args = parser.parse_args()
    if args.quick:
        args.problems, args.seeds, args.synthetic = ["Coffee", "ArrowHead"], [0], []
        args.output = Path(tempfile.gettempdir()) / "seqclf-ucr-quick"
    json_path = args.output.with_suffix(".json")
    if args.render:
        saved = json.loads(json_path.read_text())
        argv = saved.get("argv") or sys.argv[1:]
        args = parser.parse_args([a for a in argv if a != "--render"])
        sys.argv[1:] = argv
        text = report(saved["results"], baselines(args.data), args,
                      saved.get("seconds", float("nan")), saved.get("synthetic", {}))
        args.output.with_suffix(".md").write_text(text, encoding="utf-8")
        print(text)
        return
    args.data = args.data.resolve()  # the runs' working folder is a temporary one
    if not (args.data / "baselines.csv").exists():
        raise SystemExit(f"{args.data}: no ucr-dev data there (baselines.csv). Pass --data.")
    base = baselines(args.data)
    started = time.perf_counter()
    results, earlier, synthetic = [], 0.0, {}
    if args.resume and json_path.exists():
        saved = json.loads(json_path.read_text())
        results = [r for r in saved["results"] if r["config"] not in args.rerun]
        earlier = saved.get("seconds", 0.0)
        synthetic = saved.get("synthetic", {})
    done = {(r["config"], r["problem"], r["seed"]) for r in results}
    with tempfile.TemporaryDirectory(prefix="seqclf-ucr-") as tmp:
        work = Path(tmp)
        folders = {p: args.data / p for p in args.problems}
        for name in args.synthetic:
            folders[name], command = write_synthetic(name, work)
            if name not in synthetic:  # deterministic: kept from an earlier invocation
                synthetic[name] = {"command": command,
                                   "baselines": synthetic_baselines(name, folders[name])}
        limits = {}
        for item in args.limit:
            name, problems, seeds = item.split(":")
            limits[name] = (problems.split(","), [int(s) for s in seeds.split(",")])
        for config in args.configs:
            problems, seeds = limits.get(config, (list(folders), args.seeds))
            for problem in [p for p in folders if p in problems]:
                for seed in seeds:
                    if (config, problem, seed) in done:
                        continue
                    r = run_one(config, folders[problem], seed, work, args.data,
                                args.overrides)
                    results.append(r)
                    print(f"{config:>20} {problem:>10} seed {seed}: " + (
                        f"refused: {r['refused']}" if "refused" in r else
                        f"accuracy {r['accuracy']:.4f}, fit {r['fit_seconds']:.1f} s, "
                        f"predict {(r['predict_seconds'] or 0):.1f} s, command "
                        f"{r['command_seconds']:.0f} s"), flush=True)
                    json_path.parent.mkdir(parents=True, exist_ok=True)
                    json_path.write_text(json.dumps(
                        {"results": results, "argv": sys.argv[1:], "synthetic": synthetic,
                         "seconds": earlier + time.perf_counter() - started}, indent=1))
    seconds = earlier + time.perf_counter() - started
    text = report(results, base, args, seconds, synthetic)
    args.output.with_suffix(".md").write_text(text, encoding="utf-8")
    json_path.write_text(json.dumps({"results": results, "baselines": base,
                                     "synthetic": synthetic, "seconds": seconds,
                                     "machine": machine(), "argv": sys.argv[1:]}, indent=1))
    print(text)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    main()

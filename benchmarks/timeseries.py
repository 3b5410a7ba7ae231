"""Long numeric time series: seqclf's model families against a plain LSTM stack and
scikit-learn baselines, on synthetic problems of known difficulty.

    python benchmarks/timeseries.py            # the full table: about 25 minutes on 2 CPU cores
    python benchmarks/timeseries.py --lstm-seeds 3   # the plain LSTM on 3 seeds too (+15 min)
    python benchmarks/timeseries.py --quick    # smoke test: tiny problems, 2 epochs (a minute)

The problems are generated locally and seeded (``seqclf.datasets.synthetic_series``, the
generator behind ``seqclf data synthetic``): noisy series with a slow drift and a random
gain and offset each, 500-1500 steps, 2-5 classes, 150-200 training series. The class
is a motif (bump, square, sine, sawtooth, spikes) at a random position on the first
channel (the others, if any, carry noise, drift and distractors only), or, in the
``order`` problem, which of two motifs (bump, square) comes first. The difficulty is set
by the motif's peak over the noise (``amplitude``, the signal-to-noise ratio), its width
relative to the series, class-independent distractor swells, and the number of classes
and training series; every problem's settings are printed in the report.

Each problem is written as CSV and trained through the real seqclf path
(``seqclf.train.train``, as ``seqclf train`` runs it) with:

* ``lstm_fcn``: configs/timeseries/lstm_fcn.yaml (LSTM-FCN with half the published
  filters, its LSTM branch reading the convolutional features pooled 64x);
* ``lstm_fcn_published``: configs/timeseries/lstm_fcn_published.yaml (LSTM-FCN as
  published, LSTM on the dimension-shuffled series, with half the filters);
* ``conv_lstm``: configs/timeseries/conv_lstm.yaml (conv front-end, 64x downsampling, LSTM);
* ``lstm_2x64``: the lstm_fcn config with a plain 2-layer LSTM (64 units each) as the model;

all with the shipped small-data training settings (per-sequence normalisation,
random-crop augmentation, validation split, early stopping, learning-rate reduction on
plateau, balanced class weights) and the same epoch cap (``--epochs``, 40). The families
train once per ``--seeds`` entry (default 0, 1 and 2) and the table gives the mean and each
seed; the plain LSTM, the slowest model by far, trains with the first ``--lstm-seeds`` of
them (default 1). Beside them, two scikit-learn
baselines on the same split (z-normalised per sequence, as the models see it):
1-nearest-neighbour on the raw series (Euclidean, zero-padded), and logistic regression
on summary features (per channel: moments, quantiles, extremes and their positions,
differences, the largest windowed mean). Writes ``docs/results/timeseries.md`` (tables,
settings, machine, versions, command) and ``docs/results/timeseries.json`` (every number).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from reuters_blog import machine  # noqa: E402

# name -> generator settings (seqclf.datasets.synthetic_series) and split sizes
PROBLEMS: dict[str, dict[str, Any]] = {
    "shapes-4c-500": dict(problem="shapes", classes=4, channels=1, length=(500, 500),
                          train=150, test=300, amplitude=3.0, width=0.08, distractors=1),
    "shapes-5c-1000v-3ch": dict(problem="shapes", classes=5, channels=3, length=(700, 1000),
                                train=200, test=300, amplitude=3.0, width=0.045, distractors=2),
    "order-2c-1500": dict(problem="order", classes=2, channels=1, length=(1500, 1500),
                          train=160, test=300, amplitude=3.0, width=0.03, distractors=1),
}
QUICK = dict(length=(60, 80), train=60, test=30)
MODELS = {
    "lstm_fcn": ("configs/timeseries/lstm_fcn.yaml", None),
    "lstm_fcn_published": ("configs/timeseries/lstm_fcn_published.yaml", None),
    "conv_lstm": ("configs/timeseries/conv_lstm.yaml", None),
    "lstm_2x64": ("configs/timeseries/lstm_fcn.yaml",
                  {"family": "recurrent", "cell": "lstm", "units": [64, 64]}),
}
BASELINES = ("1nn_raw", "logreg_features")
LABELS = {"lstm_fcn": "seqclf lstm_fcn (LSTM-FCN, LSTM on pooled conv features)",
          "lstm_fcn_published": "seqclf lstm_fcn as published (LSTM on shuffled series)",
          "conv_lstm": "seqclf conv_recurrent (conv + LSTM)",
          "lstm_2x64": "seqclf recurrent (plain 2-layer LSTM, 64+64)",
          "1nn_raw": "scikit-learn 1-NN, raw series (Euclidean)",
          "logreg_features": "scikit-learn logistic regression, summary features"}


def problem_seed(name: str, data_seed: int = 1) -> int:
    """The generator seed of a problem: ``data_seed`` plus its place in PROBLEMS, so a
    problem's files are the same whichever problems are run."""
    return data_seed + list(PROBLEMS).index(name)


def write_problem(folder: Path, name: str, spec: dict[str, Any], seed: int) -> dict[str, Path]:
    from seqclf.datasets import synthetic

    options = {k: v for k, v in spec.items() if k not in ("train", "test")}
    return synthetic(folder / name, train=spec["train"], test=spec["test"], seed=seed, **options)


def run_seqclf(model: str, files: dict[str, Path], spec: dict[str, Any], work: Path,
               epochs: int | None, seed: int) -> dict[str, Any]:
    """Train one shipped config (model section swapped for the plain LSTM) on a problem."""
    from seqclf.config import read_yaml_mapping, validate_config
    from seqclf.train import train

    path, model_section = MODELS[model]
    raw = read_yaml_mapping(ROOT / path)
    if model_section is not None:
        raw["model"] = model_section
    raw["name"] = model
    raw["data"].update(train=str(files["train"]), test=str(files["test"]),
                       format="wide" if spec["channels"] == 1 else "long",
                       max_length=spec["length"][1])
    raw["training"].update(tensorboard=False, seed=seed)
    if epochs is not None:
        raw["training"]["epochs"] = epochs
    cfg = validate_config(raw, where=f"{path} ({model})")
    result = train(cfg, work)
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    return {"accuracy": result.evaluation.accuracy, "macro_f1": result.evaluation.macro_f1,
            "seconds": result.seconds, "fit_seconds": result.fit_seconds,
            "epochs": result.epochs_run, "parameters": metrics["parameters"],
            "baseline": result.evaluation.baseline, "run_dir": str(result.run_dir),
            "seed": seed}


def _padded(sequences: list, length: int):
    """Per-sequence z-normalised series, zero-padded (post) to ``length``: (n, length, c)."""
    import numpy as np

    from seqclf.data import z_normalise

    out = np.zeros((len(sequences), length, sequences[0].shape[1]))
    for i, s in enumerate(sequences):
        out[i, : len(s)] = z_normalise(s[:length])
    return out


def summary_features(sequences: list):
    """Per channel: mean, std, quantiles, extremes and where they are, differences, skew,
    kurtosis and the largest / smallest mean over a window of 5% of the series."""
    import numpy as np

    from seqclf.data import z_normalise

    rows = []
    for s in sequences:
        z = z_normalise(s)
        n = len(z)
        w = max(2, n // 20)
        window = np.cumsum(np.vstack([np.zeros((1, z.shape[1])), z]), axis=0)
        window = (window[w:] - window[:-w]) / w
        d = np.diff(z, axis=0)
        feats = [z.mean(0), z.std(0), *np.quantile(z, [0.05, 0.25, 0.5, 0.75, 0.95], axis=0),
                 z.min(0), z.max(0), z.argmin(0) / n, z.argmax(0) / n, np.abs(d).mean(0),
                 d.std(0), (z**3).mean(0), (z**4).mean(0), window.max(0), window.min(0),
                 window.argmax(0) / n, window.argmin(0) / n]
        rows.append(np.concatenate(feats))
    return np.array(rows)


def pooled(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One model's runs on one problem (one per training seed): means, and every run."""
    mean = {key: sum(r[key] for r in runs) / len(runs)
            for key in ("accuracy", "macro_f1", "seconds", "fit_seconds")}
    return {**mean, "seeds": [r["seed"] for r in runs],
            "per_seed": [r["accuracy"] for r in runs], "epochs": [r["epochs"] for r in runs],
            "parameters": runs[0]["parameters"], "baseline": runs[0]["baseline"],
            "runs": runs}


def run_baseline(name: str, files: dict[str, Path], spec: dict[str, Any]) -> dict[str, Any]:
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from seqclf.config import validate_config
    from seqclf.data import read_sequences

    started = time.time()
    cfg = validate_config({"data": {"train": str(files["train"]),
                                    "format": "wide" if spec["channels"] == 1 else "long"}})
    train = read_sequences(files["train"], cfg.data)
    test = read_sequences(files["test"], cfg.data)
    if name == "1nn_raw":
        length = spec["length"][1]
        x_train = _padded(train.sequences, length).reshape(len(train), -1)
        x_test = _padded(test.sequences, length).reshape(len(test), -1)
        model = KNeighborsClassifier(n_neighbors=1)
        parameters = x_train.size  # it stores the training set
    else:
        x_train, x_test = summary_features(train.sequences), summary_features(test.sequences)
        model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))
    model.fit(x_train, np.array(train.labels))
    if name != "1nn_raw":
        clf = model[-1]
        parameters = clf.coef_.size + clf.intercept_.size
    predicted = model.predict(x_test)
    return {"accuracy": float(accuracy_score(test.labels, predicted)),
            "macro_f1": float(f1_score(test.labels, predicted, average="macro")),
            "seconds": time.time() - started, "fit_seconds": None, "epochs": None,
            "parameters": int(parameters)}


def seeds_of(model: str, args: argparse.Namespace) -> list[int]:
    """The training seeds a seqclf model runs with (the plain LSTM: ``--lstm-seeds``)."""
    return args.seeds[: args.lstm_seeds] if model == "lstm_2x64" else args.seeds


def _cell(r: dict[str, Any] | None) -> str:
    if r is None:
        return "-"
    if len(r.get("per_seed", [])) > 1:
        return f"{r['accuracy']:.3f} ({', '.join(f'{a:.3f}' for a in r['per_seed'])})"
    return f"{r['accuracy']:.3f}"


def render(results: dict[str, dict[str, dict[str, Any]]], problems: dict[str, dict[str, Any]],
           args: argparse.Namespace, started: float) -> str:
    from seqclf.backend import versions

    rows = [m for m in [*MODELS, *BASELINES] if m in args.models]
    cap = f"at most {args.epochs} epochs"
    n_test = next(iter(problems.values()))["test"]
    seeds = ", ".join(map(str, args.seeds))
    lstm = ", ".join(map(str, seeds_of("lstm_2x64", args)))
    lines = ["# Long time series: model families vs a plain LSTM and scikit-learn baselines", "",
             f"Measured {time.strftime('%Y-%m-%d %H:%M %Z')} on {machine()}. Total wall "
             f"time {(time.time() - started) / 60:.1f} min.", "",
             "Command: `" + " ".join(["python", *sys.argv]) + "`", "",
             "Every seqclf model: the shipped configs' training settings (per-sequence "
             "scaling, random-crop augmentation, validation split 0.2, early stopping on "
             "validation accuracy with the best weights restored, learning rate halved on "
             f"plateau, balanced class weights), {cap}.", "",
             "Versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()), "",
             f"Test accuracy: mean over training seeds {seeds} for the families"
             + (f", seed(s) {lstm} for the plain LSTM" if "lstm_2x64" in rows else "")
             + " (each seed in brackets); the scikit-learn baselines are deterministic. "
             f"Each problem's test set has {n_test} series, so one series is "
             f"{100 / n_test:.2f} points.", ""]
    lines += ["| model | " + " | ".join(problems) + " | mean |",
              "|" + "---|" * (len(problems) + 2)]
    for row in rows:
        found = [results.get(p, {}).get(row) for p in problems]
        done = [r["accuracy"] for r in found if r is not None]
        mean = f"{sum(done) / len(done):.3f}" if len(done) == len(found) else "-"
        lines.append(f"| {LABELS[row]} | " + " | ".join(_cell(r) for r in found) + f" | {mean} |")
    baselines = [next((r["baseline"] for r in results.get(p, {}).values()
                       if r.get("baseline") is not None), None) for p in problems]
    lines.append("| majority class | " + " | ".join(f"{b:.3f}" if b is not None else "-"
                                                     for b in baselines) + " | |")
    lines += ["", "Per problem: accuracy and macro-F1 (means over the seeds), wall time per "
              "run (seqclf: the whole run, reading the CSVs to writing the run directory; in "
              "brackets the `model.fit` part), epochs run per seed (early stopping) and "
              "parameters (1-NN: the stored training values).", ""]
    for name, spec in problems.items():
        settings = ", ".join(f"{k}={v}" for k, v in spec.items())
        seed = problem_seed(name, args.data_seed)
        lines += [f"### {name}", "", f"Generator: {settings}, data seed {seed}.", "",
                  "| model | accuracy | macro-F1 | seconds | epochs | parameters |",
                  "|---|---|---|---|---|---|"]
        for row in rows:
            r = results.get(name, {}).get(row)
            if r is None:
                continue
            fit = f" ({r['fit_seconds']:.0f})" if r.get("fit_seconds") is not None else ""
            epochs = ", ".join(map(str, r["epochs"])) if r.get("epochs") else "-"
            lines.append(f"| {LABELS[row]} | {_cell(r)} | {r['macro_f1']:.3f} | "
                         f"{r['seconds']:.0f}{fit} | {epochs} | {r['parameters']:,} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny problems, 2 epochs")
    parser.add_argument("--problems", nargs="+", choices=list(PROBLEMS), default=list(PROBLEMS))
    parser.add_argument("--models", nargs="+", choices=[*MODELS, *BASELINES],
                        default=[*MODELS, *BASELINES])
    parser.add_argument("--epochs", type=int, default=40,
                        help="epoch cap for every seqclf model (the shipped configs say 100; "
                        "40 keeps the whole benchmark near 25 minutes on 2 cores)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="training seeds of the seqclf models")
    parser.add_argument("--lstm-seeds", type=int, default=1,
                        help="how many of --seeds the plain LSTM runs (the slowest model, "
                        "at chance level; 1 keeps the benchmark near 25 minutes)")
    parser.add_argument("--data-seed", type=int, default=1, help="generator seed")
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "runs" / "timeseries")
    parser.add_argument("--table", type=Path, default=ROOT / "docs" / "results" / "timeseries.md")
    parser.add_argument("--results", type=Path,
                        default=ROOT / "docs" / "results" / "timeseries.json")
    args = parser.parse_args()
    problems = {name: dict(PROBLEMS[name]) for name in args.problems}
    if args.quick:
        for spec in problems.values():
            spec.update(QUICK)
        args.epochs = 2
    started = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for name, spec in problems.items():
        seed = problem_seed(name, args.data_seed)
        files = write_problem(args.work / f"data-{stamp}", name, spec, seed)
        results[name] = {}
        for model in args.models:
            t = time.time()
            if model in MODELS:
                r = pooled([run_seqclf(model, files, spec, args.work / stamp / name,
                                       args.epochs, s) for s in seeds_of(model, args)])
            else:
                r = run_baseline(model, files, spec)
            results[name][model] = r
            print(f"{name:20s} {model:16s} accuracy {_cell(r)}  "
                  f"{time.time() - t:6.1f} s  epochs {r['epochs']}", flush=True)
            args.results.parent.mkdir(parents=True, exist_ok=True)
            args.results.write_text(json.dumps({"problems": problems, "results": results,
                                                "command": sys.argv}, indent=2, default=str))
    args.table.parent.mkdir(parents=True, exist_ok=True)
    args.table.write_text(render(results, problems, args, started) + "\n")
    print(f"wrote {args.table} and {args.results}")


if __name__ == "__main__":
    main()

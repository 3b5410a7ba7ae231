"""Does ``pooling: auto`` hold on problems it was not developed on?

    python benchmarks/probes/pooling_unseen.py [--seeds 0 1 2] [--output FILE]

``pooling: auto`` (MIPV weighed beside PPV by the ridge's leave-one-out predictions) was
built on the UCR development problems and benchmarks/timeseries.py's three synthetic
ones. Here six other synthetic problems, none of those settings or seeds (shorter and
longer series, more channels, variable length, other widths and signal-to-noise), each
written with ``seqclf data synthetic``, are run as a user runs ``auto``: ``seqclf init``,
then ``seqclf train`` with ``pooling: auto`` as init writes it, and again with
``--set model.pooling=ppv`` (auto before MIPV), same seeds. Prints a table of test
accuracy (mean over seeds), what auto kept, and fit seconds; writes it to ``--output``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ucr import minirocket_layer, seqclf  # noqa: E402

PROBLEMS = {  # name: seqclf data synthetic arguments
    "shapes-3c-200-300": "--problem shapes --classes 3 --min-length 200 --max-length 300 "
                         "--train 80 --test 200 --width 0.1 --seed 11",
    "shapes-5c-800-2ch": "--problem shapes --classes 5 --channels 2 --min-length 800 "
                         "--max-length 800 --train 150 --test 200 --width 0.05 "
                         "--distractors 0 --seed 12",
    "order-2c-600": "--problem order --classes 2 --min-length 600 --max-length 600 "
                    "--train 120 --test 200 --width 0.05 --seed 13",
    "order-2c-300-500-2ch": "--problem order --classes 2 --channels 2 --min-length 300 "
                            "--max-length 500 --train 120 --test 200 --width 0.06 --seed 14",
    "shapes-4c-60-100": "--problem shapes --classes 4 --min-length 60 --max-length 100 "
                        "--train 100 --test 200 --width 0.15 --seed 15",
    "order-2c-2000-snr2": "--problem order --classes 2 --min-length 2000 --max-length 2000 "
                          "--train 100 --test 200 --width 0.02 --amplitude 2.0 --seed 16",
}


def train(config: Path, seed: int, out: Path, *sets: str) -> dict:
    command = seqclf("train", str(config), "--set", f"training.seed={seed}",
                     *[a for s in sets for a in ("--set", s)], "--output-dir", str(out),
                     "--quiet")
    subprocess.run(command, check=True, capture_output=True, text=True)
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    metrics = json.loads((run / "metrics.json").read_text())
    layer = minirocket_layer(run)
    return {"accuracy": metrics["test"]["accuracy"], "fit": metrics["fit_seconds"],
            "pooling": layer["pooling"], "normalise": layer["normalise"],
            "majority": metrics["test"]["baseline"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, spec in PROBLEMS.items():
            folder = work / name
            subprocess.run(seqclf("data", "synthetic", "--output", str(folder),
                                  *spec.split()), check=True, capture_output=True)
            config = work / f"{name}.yaml"
            subprocess.run(seqclf("init", str(folder / "train.csv"), "--test",
                                  str(folder / "test.csv"), "--output", str(config)),
                           check=True, capture_output=True)
            runs = {"auto": [], "auto, pooling ppv": []}
            for seed in args.seeds:
                runs["auto"].append(train(config, seed, work / f"{name}-auto-{seed}"))
                runs["auto, pooling ppv"].append(train(config, seed, work / f"{name}-ppv-{seed}",
                                                       "model.pooling=ppv"))
            row = {"problem": name, "spec": spec, "majority": runs["auto"][0]["majority"]}
            for key, rs in runs.items():
                row[key] = statistics.mean(r["accuracy"] for r in rs)
                row[key + " fit"] = statistics.mean(r["fit"] for r in rs)
            row["kept"] = ", ".join(r["pooling"] for r in runs["auto"])
            rows.append(row)
            print(f"{name}: auto {row['auto']:.3f} (kept {row['kept']}), pooling ppv "
                  f"{row['auto, pooling ppv']:.3f}", flush=True)
    lines = ["| problem | majority | auto | auto, pooling ppv | difference | MIPV kept (per "
             "seed) | fit s: auto / ppv |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['problem']} | {r['majority']:.3f} | {r['auto']:.3f} | "
                     f"{r['auto, pooling ppv']:.3f} | "
                     f"{100 * (r['auto'] - r['auto, pooling ppv']):+.1f} | {r['kept']} | "
                     f"{r['auto fit']:.1f} / {r['auto, pooling ppv fit']:.1f} |")
    lines += ["", "Problems (`seqclf data synthetic` arguments):", ""]
    lines += [f"- {r['problem']}: `{r['spec']}`" for r in rows]
    text = "\n".join(lines)
    print(text)
    if args.output:
        args.output.write_text(
            f"# `pooling: auto` on problems it was not developed on\n\nCommand: `python "
            f"benchmarks/probes/pooling_unseen.py --seeds {' '.join(map(str, args.seeds))}` "
            f"({started}; test accuracy, mean over the seeds).\n\n{text}\n", encoding="utf-8")


if __name__ == "__main__":
    main()

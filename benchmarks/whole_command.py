"""What the user waits for: whole processes, seqclf train against the plain Keras script.

    python benchmarks/whole_command.py                 # 10, 30 and 200 epochs, 2 rounds
    python benchmarks/whole_command.py --epochs 30 --rounds 1

Every job is a fresh process timed from start to exit, one after the other on the same
machine, interleaved (round r runs every job once, with seed r):

- plain Keras: ``benchmarks/keras_blog.py`` (the tutorial script, nothing of seqclf);
- seqclf, first run: ``seqclf train configs/reuters/blog_<model>.yaml --set
  training.epochs=E`` with an empty compile cache (the user's first run on a machine);
- seqclf, cache warm: the same with the compile cache the first run left (every later run
  of that model; 10 and 30 epochs only: at 200 the compile is a few percent of the run);
- seqclf on JAX: ``--set training.backend=jax``, empty cache (the documented option);
- the quickstart (``configs/quickstart.yaml``), for seqclf's own time.

Framework import alone, each backend, in fresh processes of their own, three times a round:
``import keras`` (the import's seconds in the process, and the whole process), and the
framework's import as seqclf makes it (``seqclf.backend.keras()``: the garbage collector
off, compile caches set). seqclf's own time = whole process - fit (``model.fit``,
compile included) - that second import, timed again just before and just after each
seqclf run (their mean; the machine's speed drifts over a long benchmark): everything
seqclf does besides importing the framework and fitting. Strict subtracts the
framework's import as it ran in seqclf's process instead (``phases``), and so also
counts the pandas, NumPy and scikit-learn imports that seqclf makes first and the
framework's import would make anyway. The breakdown comes from the run's manifest
(``phases``). Writes
docs/results/whole-command.md and .json. Needs the Reuters files in $KERAS_HOME/datasets
(``seqclf data reuters --output data/reuters`` is run when data/reuters is missing).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.common import machine  # noqa: E402

MODELS = {"lstm": "LSTM(50)", "stacked_lstm": "LSTM(50) -> LSTM(50)"}
JOBS = ("plain Keras", "seqclf, first run", "seqclf, cache warm", "seqclf on JAX")
WARM_MAX_EPOCHS = 30
# Framework imports timed per round and backend: one process's import varies by up to a
# second from the next, and own time is what is left after subtracting their median.
IMPORT_PROBES = 3
OUT = ROOT / "docs" / "results"


def seqclf_command() -> list[str]:
    exe = Path(sys.executable).parent / "seqclf"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "seqclf.cli"]


def env(cache: Path | None) -> dict[str, str]:
    e = dict(os.environ)
    e["KERAS_BACKEND"] = "tensorflow"
    e["SEQCLF_CACHE_DIR"] = str(cache) if cache else ""
    e.pop("TF_XLA_FLAGS", None)
    return e


def timed(cmd: list[str], environment: dict[str, str]) -> tuple[float, str]:
    """Wall seconds of one process from start to exit, and its stdout."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=environment, cwd=ROOT)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return seconds, proc.stdout


def run_seqclf(config: Path, sets: list[str], cache: Path | None, work: Path) -> dict[str, Any]:
    backend = "jax" if "training.backend=jax" in sets else "tensorflow"
    before = seqclf_import_seconds(backend)
    out = Path(tempfile.mkdtemp(dir=work))
    cmd = seqclf_command() + ["train", str(config), "--output-dir", str(out)]
    for s in sets:
        cmd += ["--set", s]
    seconds, stdout = timed(cmd, env(cache))
    run = next(out.iterdir())
    manifest = json.loads((run / "manifest.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    shutil.rmtree(out)
    after = seqclf_import_seconds(backend)
    phases = manifest["phases"]
    return {"whole": seconds, "fit": phases["fit"], "phases": phases,
            "import_beside": (before + after) / 2,
            "in_process": manifest["seconds"], "accuracy": metrics["test"]["accuracy"],
            "compute": {k: manifest["compute"].get(k, 1) for k in (
                "jit_compile", "steps_per_execution", "work", "batch_parts")}}


def run_plain(model: str, epochs: int, seed: int) -> dict[str, Any]:
    cmd = [sys.executable, str(ROOT / "benchmarks" / "keras_blog.py"), "--model", model,
           "--epochs", str(epochs), "--seed", str(seed)]
    seconds, stdout = timed(cmd, env(None))
    result = json.loads(stdout.strip().splitlines()[-1])
    return {"whole": seconds, "fit": result["seconds"], "accuracy": result["accuracy"]}


def _probe(backend: str, statement: str) -> tuple[float, float]:
    """A fresh process that runs ``statement``: its whole seconds (Python's start-up and
    teardown included), and the seconds ``statement`` took in it."""
    whole, stdout = timed([sys.executable, "-c", "import time; start = time.perf_counter(); "
                           f"{statement}; print(time.perf_counter() - start)"],
                          dict(env(None), KERAS_BACKEND=backend))
    return whole, float(stdout.strip().splitlines()[-1])


def seqclf_import_seconds(backend: str) -> float:
    """The framework's import as seqclf makes it (``seqclf.backend.keras()``), alone in a
    fresh process: its seconds in the process."""
    return _probe(backend, "from seqclf import backend; start = time.perf_counter(); "
                           "backend.keras()")[1]


def import_seconds(backend: str) -> dict[str, float]:
    """The framework's import alone, in fresh processes: ``import keras`` (its seconds in
    the process, and the whole process's), and as seqclf makes it."""
    seqclf_way = seqclf_import_seconds(backend)
    whole, plain = _probe(backend, "import keras")
    return {"whole": whole, "import": plain, "seqclf_import": seqclf_way}


def one_round(seed: int, epochs: list[int], work: Path, jax: bool) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def record(job: str, model: str, e: int, result: dict[str, Any]) -> None:
        rows.append({"job": job, "model": model, "epochs": e, "seed": seed, **result})
        print(f"  {job:20s} {model:13s} {e:4d} epochs: {result['whole']:6.1f} s "
              f"(fit {result['fit']:.1f})", flush=True)

    for backend in ("tensorflow", "jax") if jax else ("tensorflow",):
        for _ in range(IMPORT_PROBES):
            rows.append({"job": "import keras", "model": backend, "epochs": 0, "seed": seed,
                         **import_seconds(backend), "fit": 0.0})
    for e in epochs:
        for model in MODELS:
            config = ROOT / "configs" / "reuters" / f"blog_{model}.yaml"
            sets = [f"training.epochs={e}", f"training.seed={seed}"]
            record(JOBS[0], model, e, run_plain(model, e, seed))
            cold = Path(tempfile.mkdtemp(dir=work))
            record(JOBS[1], model, e, run_seqclf(config, sets, cold, work))
            if e <= WARM_MAX_EPOCHS:
                record(JOBS[2], model, e, run_seqclf(config, sets, cold, work))
            shutil.rmtree(cold)
            if jax:
                cold = Path(tempfile.mkdtemp(dir=work))
                record(JOBS[3], model, e, run_seqclf(
                    config, sets + ["training.backend=jax"], cold, work))
                shutil.rmtree(cold)
    cold = Path(tempfile.mkdtemp(dir=work))
    record("seqclf, first run", "quickstart", 25,
           run_seqclf(ROOT / "configs" / "quickstart.yaml", [f"training.seed={seed}"], cold, work))
    shutil.rmtree(cold)
    return rows


def median(values: list[float]) -> float:
    return statistics.median(values)


def span(values: list[float]) -> str:
    return f"{min(values):.1f}-{max(values):.1f}"


def own_seconds(row: dict[str, Any], imports: dict[str, float]) -> float:
    """Whole process - fit - the framework's import as seqclf makes it, alone in a process
    of its own (pandas, NumPy and scikit-learn included): the mean of the two imports timed
    just before and just after this run, so that the machine slowing or speeding up over a
    long benchmark does not count as seqclf's (runs recorded before those probes existed
    use the median of the round's probes)."""
    if "import_beside" in row:
        return row["whole"] - row["import_beside"] - row["fit"]
    backend = "jax" if row["job"] == JOBS[3] else "tensorflow"
    return row["whole"] - imports[backend] - row["fit"]


def own_strict(row: dict[str, Any]) -> float:
    """Whole process - fit - the framework's import as it ran in seqclf's own process:
    everything else, seqclf's imports of pandas, NumPy and scikit-learn (which the
    framework's import would otherwise make) and the process's start and exit included."""
    return row["whole"] - row["fit"] - row["phases"]["framework"]


def render(rows: list[dict[str, Any]], command: str, started: str, minutes: float) -> str:
    probes = {b: [r for r in rows if r["job"] == "import keras" and r["model"] == b]
              for b in ("tensorflow", "jax")}
    imports = {b: median([r["seqclf_import"] for r in rs]) for b, rs in probes.items() if rs}
    plain_imports = {b: median([r["import"] for r in rs]) for b, rs in probes.items() if rs}
    import_processes = {b: median([r["whole"] for r in rs]) for b, rs in probes.items() if rs}
    seeds = sorted({r["seed"] for r in rows})
    lines = [
        "# Whole-command time: seqclf train against the plain Keras script",
        "",
        f"Measured {started} on {machine()}; Python {sys.version.split()[0]}.",
        "",
        f"Command: `{f'python benchmarks/whole_command.py {command}'.rstrip()}`" +
        f" ({minutes:.0f} minutes; raw measurements in `whole-command.json`). Every job is a "
        "fresh process timed from start to exit, jobs one after the other, interleaved over "
        f"{len(seeds)} rounds (round r: seed r for every job). Figures are medians over the "
        "rounds, with min-max; runs on this machine vary by 10-30 % from one process to the "
        "next, so only ratios within this page mean much.",
        "",
        "- **plain Keras**: `benchmarks/keras_blog.py`, the tutorial as a plain script "
        "(`keras.datasets.reuters`, post-padding to 49 steps, `model.fit`, `model.evaluate`).",
        "- **seqclf, first run**: `seqclf train configs/reuters/blog_<model>.yaml --set "
        "training.epochs=E`, the shipped tutorial config, with an empty compile cache: what a "
        "user meets the first time. It writes everything a run writes (model, metrics, "
        "report, four plots, history, TensorBoard logs, manifest).",
        "- **seqclf, cache warm**: the same command again (compiled XLA programs in the "
        "persistent cache, `SEQCLF_CACHE_DIR`): every later run of the same model and batch "
        f"shape. Up to {WARM_MAX_EPOCHS} epochs (at 200 the compile is a few percent).",
        "- **seqclf on JAX**: `--set training.backend=jax` (needs `pip install \".[jax]\"`), "
        "empty cache.",
        "",
        "The framework's import alone, in a fresh process of its own (medians): `import "
        f"keras` TensorFlow {plain_imports.get('tensorflow', 0):.1f} s (the process start to "
        f"exit {import_processes.get('tensorflow', 0):.1f} s)"
        + (f", JAX {plain_imports['jax']:.1f} s ({import_processes['jax']:.1f} s)"
           if "jax" in imports else "") +
        f"; as seqclf imports it (`seqclf.backend.keras()`: the garbage collector off during "
        f"the import) TensorFlow {imports.get('tensorflow', 0):.1f} s"
        + (f", JAX {imports['jax']:.1f} s" if "jax" in imports else "") + ". "
        "fit: `model.fit` from start to end, the compile included. own: seqclf's time outside "
        "the framework's import and fit: whole - fit - the framework's import as seqclf "
        "makes it, alone (pandas, NumPy and scikit-learn included), timed in a fresh process "
        "just before and just after each run (their mean, so that the machine's drift over "
        "the benchmark is not counted as seqclf's); strict subtracts the "
        "framework's import as it ran in seqclf's process instead (see the breakdown "
        "below).",
        "",
    ]
    groups: dict[tuple[str, int], dict[str, list[dict[str, Any]]]] = {}
    for r in rows:
        if r["job"] != "import keras" and r["model"] != "quickstart":
            groups.setdefault((r["model"], r["epochs"]), {}).setdefault(r["job"], []).append(r)
    lines += ["## Whole process", "",
              "| model | epochs | job | whole process s | spread | x plain | fit s | "
              "own s | own, strict s | test accuracy | compute |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    ratios: dict[tuple[str, int, str], float] = {}
    for (model, e), jobs in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        plain = median([r["whole"] for r in jobs.get(JOBS[0], [])]) if JOBS[0] in jobs else None
        for job in JOBS:
            if job not in jobs:
                continue
            rs = jobs[job]
            whole = median([r["whole"] for r in rs])
            ratio = plain / whole if plain else None
            if ratio:
                ratios[(model, e, job)] = ratio
            own, strict = ("-", "-") if job == JOBS[0] else (
                f"{median([own_seconds(r, imports) for r in rs]):.1f}",
                f"{median([own_strict(r) for r in rs]):.1f}")
            c = rs[0].get("compute")
            compute = "-" if not c else (
                ("XLA" if c["jit_compile"] is True else "no XLA") +
                (f", {c['steps_per_execution']} batches/call" if c["steps_per_execution"] > 1
                 else "") +
                (f", {c['batch_parts']} parts" if c.get("batch_parts", 1) > 1 else ""))
            acc = statistics.mean(r["accuracy"] for r in rs)
            lines.append(f"| {MODELS[model]} | {e} | {job} | {whole:.1f} | "
                         f"{span([r['whole'] for r in rs])} | "
                         f"{'-' if ratio is None else f'{ratio:.2f}x'} | "
                         f"{median([r['fit'] for r in rs]):.1f} | {own} | {strict} | {acc:.4f} | "
                         f"{compute} |")
    lines += ["", "## seqclf's time outside fit", "",
              "From each run's manifest (`phases`, seconds; medians). start-up and exit: the "
              "whole process less what `train()` measured (Python, seqclf's imports, "
              "argument parsing, exit). framework: importing Keras and setting it up, in the "
              "process (what seqclf imported before, pandas and NumPy among them, is not "
              "counted again). build: the model built and compiled (Keras compile, not XLA). "
              "save: the model, reports, four plots, history. own, strict: whole - fit - "
              "framework as it ran in seqclf's process, so it counts seqclf's start-up imports "
              "of pandas, NumPy and scikit-learn that Keras's import makes anyway (a plain "
              "script pays them inside its `import keras`). own: whole - fit - the "
              "framework's import as seqclf makes it, alone in a process of its own, just "
              "before and just after the run (their mean).", "",
              "| run | whole | start-up and exit | read | framework | build | fit | predict | "
              "score | save | own, strict | own |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    own_rows: dict[str, tuple[float, float]] = {}
    breakdown: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if "phases" in r and r["job"] in (JOBS[1], JOBS[2]):
            name = (f"quickstart ({r['epochs']} epochs)" if r["model"] == "quickstart"
                    else f"{MODELS[r['model']]}, {r['epochs']} epochs, {r['job'][8:]}")
            breakdown.setdefault(name, []).append(r)
    for name, rs in breakdown.items():
        def m(key: str) -> float:
            return median([r["phases"].get(key, 0.0) for r in rs])
        startup = median([r["whole"] - r["in_process"] for r in rs])
        own = median([own_seconds(r, imports) for r in rs])
        strict = median([own_strict(r) for r in rs])
        own_rows[name] = (own, strict)
        lines.append(f"| {name} | {median([r['whole'] for r in rs]):.1f} | {startup:.2f} | "
                     f"{m('read'):.2f} | {m('framework'):.2f} | "
                     f"{m('build_and_fit') - m('fit'):.2f} | {m('fit'):.1f} | "
                     f"{m('predict'):.2f} | {m('score'):.2f} | {m('save'):.2f} | "
                     f"{strict:.2f} | {own:.2f} |")
    lines += ["", "## Targets (issue: whole-command time)", "",
              "| target | measured | met? |", "|---|---|---|"]
    for e, goal in ((30, 1.2), (200, 1.5)):
        for model in MODELS:
            for job in (JOBS[1], JOBS[2]):
                ratio = ratios.get((model, e, job))
                if ratio is None:
                    continue
                met = "met" if ratio >= goal else "**missed**"
                lines.append(f"| {MODELS[model]}, {e} epochs, {job}: >= {goal}x plain | "
                             f"{ratio:.2f}x | {met} |")
    for model in MODELS:
        ratio = ratios.get((model, 200, JOBS[1]))
        if ratio is not None:
            lines.append(f"| stretch: {MODELS[model]}, 200 epochs: >= 2x plain | {ratio:.2f}x | "
                         f"{'met' if ratio >= 2 else '**missed**'} |")
    for name, (own, strict) in own_rows.items():
        if "first run" in name or "quickstart" in name:
            lines.append(f"| own time <= 2 s: {name} | {own:.2f} s (strict {strict:.2f} s) | "
                         f"{'met' if own <= 2 else '**missed**'} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, nargs="+", default=[10, 30, 200])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-jax", action="store_true", help="leave out the JAX rows")
    parser.add_argument("--output", type=Path, default=OUT / "whole-command.md")
    parser.add_argument("--render", metavar="MINUTES", type=float,
                        help="only rewrite the page from the .json of a run that took MINUTES "
                             "(e.g. one stopped after some rounds)")
    args = parser.parse_args()
    if args.render is not None:
        rows = json.loads(args.output.with_suffix(".json").read_text())
        started = time.strftime("%Y-%m-%d %H:%M",
                                time.localtime(args.output.with_suffix(".json").stat().st_mtime))
        epochs = sorted({r["epochs"] for r in rows if r["model"] in MODELS})
        command = f"--rounds {len({r['seed'] for r in rows})}" + (
            "" if epochs == [10, 30, 200] else f" --epochs {' '.join(map(str, epochs))}")
        args.output.write_text(render(rows, command, started, args.render))
        return
    if not (ROOT / "data" / "reuters" / "train.csv").exists():
        subprocess.run(seqclf_command() + ["data", "reuters", "--output", "data/reuters"],
                       cwd=ROOT, check=True, env=env(None))
    jax = not args.no_jax
    if jax:
        try:
            import jax as _  # noqa: F401
        except ImportError:
            jax = False
    started = time.strftime("%Y-%m-%d %H:%M")
    start = time.time()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.rounds):
            print(f"round {seed + 1}/{args.rounds}", flush=True)
            rows += one_round(seed, args.epochs, Path(tmp), jax)
            args.output.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    args.output.write_text(render(rows, " ".join(sys.argv[1:]), started,
                                  (time.time() - start) / 60))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

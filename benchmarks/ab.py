"""One seqclf command, two checkouts of seqclf: whole-process time, interleaved.

    git worktree add /tmp/old <rev>      # the checkout to compare against
    python benchmarks/ab.py --old /tmp/old --rounds 3 --cold-cache \\
        --output docs/results/jax-last-batch.md --title "..." -- \\
        train configs/reuters/blog_stacked_lstm.yaml --set training.backend=jax

Each round runs the command once per checkout (old, then new), each as a fresh
``python -m seqclf`` process in that checkout's folder with that checkout first on
``PYTHONPATH``, timed from start to exit; ``train`` commands get a fresh ``--output-dir``
and the run's manifest gives the fit seconds. ``--cold-cache``: an empty
``SEQCLF_CACHE_DIR`` for every process (no compiled programs from earlier runs);
``--warm-cache``: a ``SEQCLF_CACHE_DIR`` of each checkout's own, filled by one unmeasured
run before the rounds (what every later run of a command meets; one shared cache would
let a checkout read programs the other wrote). Otherwise the user's cache, shared.
Prints, and with ``--output`` writes, a markdown table of medians with min-max.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import machine  # noqa: E402


def run(checkout: Path, command: list[str], cache: str | None) -> dict[str, float]:
    """The command once in ``checkout``: whole seconds, and fit seconds for ``train``.
    ``cache``: the SEQCLF_CACHE_DIR to use, "cold" for an empty one, None: the user's."""
    with tempfile.TemporaryDirectory(prefix="seqclf-ab-") as tmp:
        env = {**os.environ, "PYTHONPATH": str(checkout)}
        if cache is not None:
            env["SEQCLF_CACHE_DIR"] = str(Path(tmp) / "cache") if cache == "cold" else cache
        out = Path(tmp) / "runs"
        extra = ["--output-dir", str(out), "--quiet"] if command[0] == "train" else []
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "seqclf", *command, *extra], cwd=checkout,
                              env=env, capture_output=True, text=True)
        whole = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"{checkout}: failed ({done.returncode})\n{done.stderr[-2000:]}")
        result = {"whole": whole}
        manifests = list(out.glob("*/manifest.json")) if extra else []
        if manifests:
            phases = json.loads(manifests[0].read_text())["phases"]
            result["fit"] = phases["fit"]
            result["outside fit"] = whole - result["fit"]
            result["own"] = result["outside fit"] - phases["framework"]
            result["after fit"] = phases["predict"] + phases["score"] + phases["save"]
        return result


def _revision(checkout: Path) -> str:
    """The checkout's commit, marked when its tracked files differ from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(checkout), *args], capture_output=True,
                              text=True).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "?"
    return commit + (" + uncommitted changes" if git("status", "--porcelain",
                                                     "--untracked-files=no") else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, required=True, help="the checkout to compare against")
    parser.add_argument("--new", type=Path, default=ROOT, help="default: this checkout")
    parser.add_argument("--rounds", type=int, default=3)
    caches = parser.add_mutually_exclusive_group()
    caches.add_argument("--cold-cache", action="store_true")
    caches.add_argument("--warm-cache", action="store_true")
    parser.add_argument("--output", type=Path)
    parser.add_argument("--title", default="One command, two checkouts",
                        help="the page's heading; what the new checkout changed")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="after --: seqclf's arguments")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the seqclf command after --")
    sides = {"old": args.old.resolve(), "new": args.new.resolve()}
    revisions = {name: _revision(path) for name, path in sides.items()}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="seqclf-ab-caches-") as tmp:
        cache = {name: "cold" if args.cold_cache else None for name in sides}
        if args.warm_cache:
            cache = {name: str(Path(tmp) / name) for name in sides}
            for name, path in sides.items():
                run(path, command, cache[name])
        for r in range(args.rounds):
            for name, path in sides.items():
                results[name].append(run(path, command, cache[name]))
                print(f"round {r + 1} {name}: " + ", ".join(
                    f"{k} {v:.2f} s" for k, v in results[name][-1].items()), flush=True)

    def cell(values: list[float]) -> str:
        return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"

    keys = [k for k in ("whole", "fit", "outside fit", "own", "after fit")
            if all(k in x for x in results["old"] + results["new"])]
    lines = [f"# {args.title}", "",
             f"Command: `python benchmarks/ab.py --old <checkout of {revisions['old']}> "
             f"--rounds {args.rounds}{' --cold-cache' if args.cold_cache else ''}"
             f"{' --warm-cache' if args.warm_cache else ''} -- "
             f"{shlex.join(command)}` (new: {revisions['new']}; "
             f"{time.strftime('%Y-%m-%d %H:%M')}, "
             f"{(time.perf_counter() - started) / 60:.0f} min, {machine()}).", "",
             "Seconds, median (min-max) over the rounds, old and new interleaved. own: "
             "outside fit less the framework's import as it ran in the process (the "
             "manifest's `framework` phase); after fit: the manifest's predict, score and "
             "save phases.", "",
             "| checkout | " + " | ".join(f"{k} s" for k in keys) + " |",
             "|---|" + "---|" * len(keys)]
    for name in sides:
        lines.append(f"| {name} ({revisions[name]}) | "
                     + " | ".join(cell([x[k] for x in results[name]]) for k in keys) + " |")
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    if args.output:
        args.output.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()

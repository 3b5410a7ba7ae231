"""Data larger than memory (issue 17): read speed, memory and throughput of streaming.

One run generates a long-layout dataset (``--sequences`` x ``--steps`` x ``--features``,
two classes told apart by a bump in feature 0) in Parquet shards and reports into
``docs/results/scale.md``:

1. rows/s read through seqclf's own readers (chunks + every check, as training reads
   them) for one shard as CSV and as Parquet (target: Parquet >= 3x CSV);
2. peak RSS of ``seqclf train`` streaming (``data.streaming: true``) one epoch over 1/4
   of the shards and over all of them (target: <= 10% growth);
3. seconds per epoch streaming against in memory on a size that fits (the first
   ``--fit-shards`` shards; target: streaming >= 0.8x the in-memory throughput);
4. a two-worker local ``training.distribute: multi_worker`` run streaming 1/4 of the
   shards, each worker saying which shards it reads (disjoint, together all).

Every training is a ``seqclf train`` subprocess (its peak RSS is its own). Usage::

    nice -n 10 python benchmarks/scale.py [--sequences 100000 --steps 200 --features 8]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import machine  # noqa: E402

OUT = ROOT / "docs" / "results" / "scale.md"


def generate(folder: Path, sequences: int, steps: int, features: int, shards: int,
             seed: int = 0) -> list[Path]:
    """Long-layout Parquet shards: id, step, f0..f{F-1}, label (a or b: b's sequences
    carry a bump in f0 at a random place); float32 features."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    per = sequences // shards
    paths = []
    for k in range(shards):
        n = per if k < shards - 1 else sequences - per * (shards - 1)
        first = k * per
        labels = rng.integers(0, 2, n)
        values = rng.normal(0.0, 1.0, (n, steps, features)).astype(np.float32)
        where = rng.integers(0, steps - 10, n)
        bump = np.exp(-0.5 * ((np.arange(steps)[None, :] - where[:, None] - 5) / 2.0) ** 2)
        values[:, :, 0] += (2.0 * labels[:, None] * bump).astype(np.float32)
        ids = np.repeat(np.array([f"s{first + i:07d}" for i in range(n)], dtype=object), steps)
        columns = {"id": pa.array(ids, pa.string()),
                   "step": pa.array(np.tile(np.arange(steps), n), pa.int32())}
        flat = values.reshape(n * steps, features)
        for j in range(features):
            columns[f"f{j}"] = pa.array(flat[:, j])
        columns["label"] = pa.array(np.repeat(np.array(["a", "b"], dtype=object)[labels],
                                              steps), pa.string())
        path = folder / f"data-{k:05d}-of-{shards:05d}.parquet"
        pq.write_table(pa.table(columns), path, row_group_size=65536)
        paths.append(path)
    return paths


def read_rate(path: Path, cfg) -> tuple[float, float, int]:
    """Rows per second of seqclf's reader alone (the file's chunks of rows as tables) and
    through to sequences (chunks cut at sequence boundaries, every check), and the
    sequences read."""
    from seqclf.data.readers import read_chunks
    from seqclf.data.stream import file_chunks

    start = time.perf_counter()
    rows = sum(len(t.frame) for t in read_chunks(path, (cfg.id_column, cfg.label_column)))
    reader = rows / (time.perf_counter() - start)
    start = time.perf_counter()
    sequences = sum(len(chunk) for chunk in file_chunks(path, cfg))
    return reader, rows / (time.perf_counter() - start), sequences


def write_config(path: Path, train: str, streaming: bool, epochs: int, extra: dict | None = None
                 ) -> Path:
    import yaml

    cfg = {"data": {"train": train, "format": "long", "streaming": streaming,
                    "test_split": 0.1, "shuffle_buffer": 2000},
           "model": {"family": "recurrent", "cell": "gru", "units": 8},
           "optimizer": {"name": "adam", "learning_rate": 0.01},
           "training": {"epochs": epochs, "batch_size": 256, "seed": 0,
                        "tensorboard": False, **(extra or {})}}
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


RSS = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
       "print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
       "sys.exit(r.returncode)")


def train(config: Path, out: Path, env: dict | None = None) -> dict:
    """``seqclf train`` in a subprocess: its peak RSS, wall time and the run's figures."""
    command = [sys.executable, "-c", RSS, sys.executable, "-m", "seqclf.cli", "train",
               str(config), "--output-dir", str(out), "--quiet"]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"seqclf train failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    rss = int(re.search(r"PEAK_RSS_KB (\d+)", proc.stdout).group(1)) * 1024
    run = sorted(out.iterdir())[-1]
    metrics = json.loads((run / "metrics.json").read_text())
    history = [line.split(",") for line in (run / "history.csv").read_text().splitlines()]
    epoch_seconds = [float(row[history[0].index("epoch_seconds")]) for row in history[1:]]
    return {"rss": rss, "wall": wall, "accuracy": metrics["test"]["accuracy"],
            "train": metrics["sizes"]["train"], "epoch_seconds": epoch_seconds,
            "fit_seconds": metrics["fit_seconds"]}


def two_workers(config: Path, out: Path, shards: list[Path]) -> dict:
    def port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    addresses = [f"127.0.0.1:{port()}" for _ in range(2)]
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", "SEQCLF_DEBUG")}
    start = time.perf_counter()
    procs = [subprocess.Popen(
        [sys.executable, "-m", "seqclf.cli", "train", str(config), "--output-dir", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**env, "TF_CONFIG": json.dumps({"cluster": {"worker": addresses},
                                             "task": {"type": "worker", "index": i}})})
        for i in range(2)]
    texts = [proc.communicate()[0] for proc in procs]
    wall = time.perf_counter() - start
    if any(proc.returncode for proc in procs):
        raise SystemExit("two-worker run failed:\n" + "\n".join(t[-3000:] for t in texts))
    read: dict[int, list[str]] = {}
    for text in texts:
        for worker, n, names in re.findall(r"worker (\d) of 2 reads (\d+) of \d+ files: (.*)",
                                           text):
            read.setdefault(int(worker), [])
            read[int(worker)] += [Path(p.strip()).name for p in names.split(",")]
    names = {p.name for p in shards}
    got = [set(read.get(w, [])) for w in (0, 1)]
    run = next(out.iterdir())
    return {"wall": wall, "read": {w: sorted(set(v)) for w, v in read.items()},
            "disjoint": not (got[0] & got[1]), "complete": got[0] | got[1] == names,
            "manifest_workers": json.loads((run / "manifest.json").read_text())["workers"],
            "accuracy": json.loads((run / "metrics.json").read_text())["test"]["accuracy"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--features", type=int, default=8)
    parser.add_argument("--shards", type=int, default=20)
    parser.add_argument("--fit-shards", type=int, default=2,
                        help="shards of the in-memory vs streaming comparison")
    parser.add_argument("--epochs", type=int, default=2, help="epochs of that comparison")
    parser.add_argument("--folder", type=Path, default=None, help="where the data goes")
    parser.add_argument("--output", type=Path, default=OUT)
    args = parser.parse_args()

    from seqclf.config import validate_config
    from seqclf.outputs import write_text

    folder = args.folder or Path(tempfile.mkdtemp(prefix="seqclf-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    command = "nice -n 10 python benchmarks/scale.py " + " ".join(sys.argv[1:])
    print(f"data in {folder}", flush=True)
    t0 = time.perf_counter()
    shards = generate(folder, args.sequences, args.steps, args.features, args.shards)
    generated = time.perf_counter() - t0
    rows = args.sequences * args.steps
    print(f"generated {rows:,} rows in {len(shards)} shards in {generated:.0f} s", flush=True)

    # 1. read speed, one shard in both formats
    import pyarrow.parquet as pq

    csv = folder / "shard0.csv"
    pq.read_table(shards[0]).to_pandas().to_csv(csv, index=False)
    cfg = validate_config({"data": {"train": str(csv), "format": "long"}}, where="scale").data
    csv_rate, csv_full, n_csv = read_rate(csv, cfg)
    parquet_rate, parquet_full, n_pq = read_rate(shards[0], cfg)
    assert n_csv == n_pq
    print(f"read: CSV {csv_rate:,.0f} rows/s ({csv_full:,.0f} to sequences), Parquet "
          f"{parquet_rate:,.0f} rows/s ({parquet_full:,.0f})", flush=True)

    # 2. peak RSS streaming one epoch over 1/4 and all of the data
    quarter = folder / "quarter"
    quarter.mkdir(exist_ok=True)
    for p in shards[: max(1, len(shards) // 4)]:
        (quarter / p.name).symlink_to(p)
    runs = folder / "runs"
    rss = {}
    for name, pattern in (("1/4", str(quarter / "data-*.parquet")),
                          ("full", str(folder / "data-*.parquet"))):
        config = write_config(folder / f"stream-{name.replace('/', '_')}.yaml", pattern, True, 1)
        rss[name] = train(config, runs / f"rss-{name.replace('/', '_')}")
        print(f"streaming, {name}: peak RSS {rss[name]['rss'] / 2**20:.0f} MiB, "
              f"{rss[name]['wall']:.0f} s", flush=True)
    growth = rss["full"]["rss"] / rss["1/4"]["rss"] - 1

    # 3. streaming vs in memory on a size that fits
    fits = folder / "fits"
    fits.mkdir(exist_ok=True)
    for p in shards[: args.fit_shards]:
        (fits / p.name).symlink_to(p)
    speed = {}
    for streaming in (False, True):
        config = write_config(folder / f"fit-{streaming}.yaml", str(fits / "data-*.parquet"),
                              streaming, args.epochs, {"shuffle": True})
        speed[streaming] = train(config, runs / f"fit-{streaming}")
        print(f"fits, streaming {streaming}: {speed[streaming]['epoch_seconds']} s/epoch, "
              f"peak RSS {speed[streaming]['rss'] / 2**20:.0f} MiB", flush=True)
    per_epoch = {s: float(np.mean(v["epoch_seconds"])) for s, v in speed.items()}
    ratio = per_epoch[False] / per_epoch[True]

    # 4. two workers, disjoint shards (1/4 of the data)
    config = write_config(folder / "workers.yaml", str(quarter / "data-*.parquet"), True, 1,
                          {"distribute": "multi_worker"})
    workers = two_workers(config, runs / "workers", sorted(quarter.iterdir()))
    print(f"two workers: {workers}", flush=True)

    mib = 2 ** 20
    q = max(1, len(shards) // 4)
    lines = [
        "# Data larger than memory: streaming (issue 17)",
        "",
        f"Made by `{command}` on {machine()} (cores shared with other work), in "
        f"{time.perf_counter() - t0:.0f} s; numbers are from that one run.",
        "",
        f"Data: {args.sequences:,} sequences x {args.steps} steps x {args.features} features = "
        f"{rows:,} rows, long layout, float32 features, two classes, in {len(shards)} Parquet "
        f"shards ({sum(p.stat().st_size for p in shards) / mib:,.0f} MiB; generated in "
        f"{generated:.0f} s). Model: a GRU of 8 units, batch 256 "
        "(small on purpose: the benchmark is about the data path).",
        "",
        "| measure | result | target | met |",
        "|---|---|---|---|",
        f"| read, CSV reader (one shard, {rows // len(shards):,} rows, in chunks of "
        f"65,536) | {csv_rate:,.0f} rows/s | | |",
        f"| read, Parquet reader (same shard) | {parquet_rate:,.0f} rows/s = "
        f"{parquet_rate / csv_rate:.1f}x CSV | >= 3x | "
        f"{'yes' if parquet_rate >= 3 * csv_rate else 'no'} |",
        f"| read to checked sequences (the shared checks, as training reads), CSV / "
        f"Parquet | {csv_full:,.0f} / {parquet_full:,.0f} rows/s = "
        f"{parquet_full / csv_full:.1f}x | | |",
        f"| peak RSS, streaming 1 epoch over 1/4 ({q} shards, "
        f"{rss['1/4']['train']:,} training sequences) | {rss['1/4']['rss'] / mib:,.0f} MiB "
        f"({rss['1/4']['wall']:.0f} s) | | |",
        f"| peak RSS, streaming 1 epoch over all ({len(shards)} shards, "
        f"{rss['full']['train']:,} training sequences) | {rss['full']['rss'] / mib:,.0f} MiB "
        f"({rss['full']['wall']:.0f} s): {100 * growth:+.1f}% | <= +10% | "
        f"{'yes' if growth <= 0.10 else 'no'} |",
        f"| epoch, in memory ({args.fit_shards} shards, {speed[False]['train']:,} training "
        f"sequences) | {per_epoch[False]:.1f} s, peak RSS {speed[False]['rss'] / mib:,.0f} MiB | "
        "| |",
        f"| epoch, streaming (same data, shuffle buffer 2,000) | {per_epoch[True]:.1f} s, peak "
        f"RSS {speed[True]['rss'] / mib:,.0f} MiB: {ratio:.2f}x the in-memory throughput | "
        f">= 0.8x | {'yes' if ratio >= 0.8 else 'no'} |",
        f"| two workers, multi_worker, 1/4 of the data | worker 0 read "
        f"{', '.join(workers['read'].get(0, []))}; worker 1 read "
        f"{', '.join(workers['read'].get(1, []))} | disjoint, complete | "
        f"{'yes' if workers['disjoint'] and workers['complete'] else 'no'} |",
        "",
        f"Seconds per epoch (the first includes compiling): in memory "
        f"{', '.join(f'{v:.1f}' for v in speed[False]['epoch_seconds'])}; streaming "
        f"{', '.join(f'{v:.1f}' for v in speed[True]['epoch_seconds'])}; last epoch alone: "
        f"{speed[False]['epoch_seconds'][-1] / speed[True]['epoch_seconds'][-1]:.2f}x.",
        "",
        f"Test accuracy (chance 0.5; the small model does not learn this task in so few "
        f"epochs: the benchmark times the data path, not the model): streaming 1/4 "
        f"{rss['1/4']['accuracy']:.3f}, "
        f"full {rss['full']['accuracy']:.3f}; in memory {speed[False]['accuracy']:.3f}, "
        f"streaming {speed[True]['accuracy']:.3f} ({args.epochs} epochs); two workers "
        f"{workers['accuracy']:.3f} ({workers['wall']:.0f} s, manifest workers "
        f"{workers['manifest_workers']}).",
        "",
        "Peak RSS is each `seqclf train` process's own maximum resident set "
        "(`getrusage(RUSAGE_CHILDREN)` in a wrapper per run), TensorFlow included. "
        "Streaming keeps one label and one length per sequence (for the splits and the "
        "preprocessing), the chunk being read, the shuffle buffer and the batch; the "
        "in-memory run holds the padded arrays.",
        "",
    ]
    write_text(args.output, "\n".join(lines))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Serving: latency and throughput of `seqclf serve` under concurrent load, Keras and ONNX.

    python benchmarks/serve.py                       # train the quickstart briefly, export, measure
    python benchmarks/serve.py --run RUN --onnx DIR  # an existing run and its ONNX export
    python benchmarks/serve.py --quick               # a smoke test (seconds per level)

Loopback only: each engine is served by a `seqclf serve` process on 127.0.0.1 (one
worker, default batching: --max-batch 256, --batch-wait-ms 2) and loaded by a closed
loop of N clients in this process (one keep-alive HTTP/1.1 connection each, see
``Connection``): each client sends
`POST /predict` with one digit (8 steps x 8 features, JSON `sequences`), waits for the
answer, and sends the next. Each concurrency level is bounded by ``--requests`` and by
``--seconds`` (whichever comes first) after ``--warmup`` seconds of unrecorded requests.
Latency is the client's, from sending to the whole answer; requests/s is the answers
received over the level's wall time. The server's /health counters give the mean batch
(sequences per model call) at each level.

Before the load, both engines answer the whole test set (one request each): the labels
must be identical and the probabilities within the export's 1e-4.

Writes ``docs/results/serving.json`` (every measurement) and ``docs/results/serving.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from common import machine  # noqa: E402

TARGET_RATIO = 3.0  # requests/s at concurrency 32 over concurrency 1
CONFIG = ROOT / "configs" / "quickstart.yaml"
TEST_CSV = ROOT / "data" / "digits" / "test.csv"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a finished run (default: train one)")
    parser.add_argument("--onnx", type=Path, help="its ONNX export (default: export it)")
    parser.add_argument("--epochs", type=int, default=3,
                        help="epochs when training the quickstart run (speed does not "
                             "depend on them)")
    parser.add_argument("--engines", nargs="+", default=["keras", "onnx"])
    parser.add_argument("--concurrency", nargs="+", type=int, default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=3000, help="most requests per level")
    parser.add_argument("--seconds", type=float, default=20.0, help="most seconds per level")
    parser.add_argument("--warmup", type=float, default=3.0, help="unrecorded seconds first")
    parser.add_argument("--quick", action="store_true", help="2 s per level, 1 s warm-up")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "results",
                        help="folder for serving.json and serving.md")
    parser.add_argument("--render", action="store_true",
                        help="only write serving.md again from serving.json")
    args = parser.parse_args()
    if args.render:
        results = json.loads((args.output / "serving.json").read_text())
        (args.output / "serving.md").write_text(render(results))
        return 0
    if args.quick:
        args.seconds, args.warmup, args.epochs = 2.0, 1.0, 1
    started = time.time()
    work = Path(tempfile.mkdtemp(prefix="seqclf-serve-bench-"))
    run_dir = args.run or train(work, args.epochs)
    export_dir = args.onnx or export(run_dir, work / "onnx") if "onnx" in args.engines else None
    ids, sequences = test_sequences()
    bodies = [json.dumps({"sequences": [s], "ids": [i]}).encode() for i, s in zip(ids, sequences)]
    targets = {"keras": [str(run_dir)], "onnx": [str(export_dir), "--engine", "onnx"]}
    results: dict[str, Any] = {
        "command": " ".join(["python", "benchmarks/serve.py", *sys.argv[1:]]),
        "started": time.strftime("%Y-%m-%d %H:%M", time.localtime(started)),
        "machine": machine(), "cores": os.cpu_count(), "niceness": os.nice(0),
        "versions": versions(), "run": str(run_dir), "epochs": None if args.run else args.epochs,
        "requests": args.requests, "seconds": args.seconds, "warmup": args.warmup,
        "levels": [], "parity": None}
    answers = {}
    for engine in args.engines:
        log = work / f"serve-{engine}.log"
        proc, url = start_server(targets[engine], log)
        try:
            answers[engine] = whole_test_set(url, ids, sequences)
            results["settings"] = get(url, "/metadata")["limits"]
            for concurrency in args.concurrency:
                level = asyncio.run(load(url, bodies, ids, concurrency, args.requests,
                                         args.seconds, args.warmup))
                level.update(engine=engine)
                results["levels"].append(level)
                print(f"{engine:5} c={concurrency:<3} {level['requests_per_second']:8.1f} req/s  "
                      f"p50 {level['p50_ms']:7.1f} ms  p99 {level['p99_ms']:7.1f} ms  "
                      f"batch {level['mean_batch']:5.1f}  model {level['model_ms_per_call']:6.1f} "
                      f"ms/call  errors {level['errors']}", flush=True)
        finally:
            stop_server(proc)
    if len(answers) == 2:
        results["parity"] = parity(answers["keras"], answers["onnx"])
    results["minutes"] = (time.time() - started) / 60
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "serving.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.output / "serving.md").write_text(render(results))
    print(f"wrote {args.output / 'serving.md'}")
    return 0


# --- the run and its export ----------------------------------------------------------


def seqclf(*args: str, timeout: float = 1800) -> str:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-m", "seqclf", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode:
        raise SystemExit(f"seqclf {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def train(work: Path, epochs: int) -> Path:
    print(f"training {CONFIG.name} for {epochs} epochs ...", flush=True)
    out = seqclf("train", str(CONFIG), "--set", f"training.epochs={epochs}", "--quiet",
                 "--output-dir", str(work / "runs"))
    return Path(next(line.split(": ", 1)[1] for line in out.splitlines()
                     if line.startswith("run directory: ")))


def export(run_dir: Path, output: Path) -> Path:
    print("exporting to ONNX ...", flush=True)
    seqclf("export", str(run_dir), "--format", "onnx", "--output", str(output))
    return output


def test_sequences() -> tuple[list[str], list[list[list[float]]]]:
    import pandas as pd

    frame = pd.read_csv(TEST_CSV, dtype={"id": str})
    features = [c for c in frame.columns if c not in ("id", "step", "label")]
    groups = frame.sort_values(["id", "step"]).groupby("id", sort=False)
    return ([str(i) for i, _ in groups],
            [g[features].to_numpy(dtype=float).tolist() for _, g in groups])


# --- the server process --------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, path: str) -> Any:
    import httpx

    return httpx.get(url + path, timeout=30).json()


def start_server(target: list[str], log: Path, timeout: float = 300) -> tuple[Any, str]:
    import httpx

    port = free_port()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    with open(log, "w") as out:  # a file: the access log must never block the server
        proc = subprocess.Popen([sys.executable, "-m", "seqclf", "serve", *target, "--host",
                                 "127.0.0.1", "--port", str(port)], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"seqclf serve exited {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"seqclf serve did not answer in {timeout} s:\n{log.read_text()}")


def stop_server(proc: Any) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()


def whole_test_set(url: str, ids: list[str], sequences: list[Any]) -> list[dict[str, Any]]:
    import httpx

    response = httpx.post(url + "/predict", json={"sequences": sequences, "ids": ids},
                          timeout=300)
    response.raise_for_status()
    return response.json()["predictions"]


def parity(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> dict[str, Any]:
    differ = sum(x["label"] != y["label"] for x, y in zip(a, b))
    diff = max(abs(x["probabilities"][c] - y["probabilities"][c])
               for x, y in zip(a, b) for c in x["probabilities"])
    return {"sequences": len(a), "labels_differ": differ, "max_abs_diff": diff}


# --- the load ------------------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection of the load generator: a request written whole,
    the answer read by its Content-Length. The client is this small on purpose: on 2 cores
    it shares the CPU with the server, and a general client (httpx) spends about as much
    CPU per request as the server does, which the numbers would then measure."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> "Connection":
        return cls(*await asyncio.open_connection(host, port))

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        self.writer.write(b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                          b"application/json\r\nContent-Length: %d\r\n\r\n%s"
                          % (path.encode(), len(body), body))
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
        if length is None:
            raise RuntimeError(f"an answer without Content-Length: {head[:200]!r}")
        return int(head[9:12]), await self.reader.readexactly(int(length[1]))

    def close(self) -> None:
        self.writer.close()


async def load(url: str, bodies: list[bytes], ids: list[str], concurrency: int,
               max_requests: int, max_seconds: float, warmup: float) -> dict[str, Any]:
    """A closed loop of ``concurrency`` clients; the level's numbers."""
    host, port = url.rsplit("/", 1)[1].split(":")
    connections = [await Connection.open(host, int(port)) for _ in range(concurrency)]
    latencies: list[float] = []
    errors = 0
    counter = itertools.count()

    async def loop(connection: Connection, until: float, limit: int | None,
                   record: bool) -> None:
        nonlocal errors
        while time.perf_counter() < until:
            n = next(counter)
            if limit is not None and n >= limit:
                return
            start = time.perf_counter()
            status, answer = await connection.post("/predict", bodies[n % len(bodies)])
            if not record:
                continue
            if status != 200:
                errors += 1
            elif n % 50 == 0 and json.loads(answer)["predictions"][0]["id"] != ids[
                    n % len(ids)]:  # a sample of the answers is checked
                errors += 1
            else:
                latencies.append(time.perf_counter() - start)

    try:
        await asyncio.gather(*(loop(c, time.perf_counter() + warmup, None, False)
                               for c in connections))
        before = get(url, "/health")
        load_before = os.getloadavg()[0]
        counter = itertools.count()
        start = time.perf_counter()
        await asyncio.gather(*(loop(c, start + max_seconds, max_requests, True)
                               for c in connections))
        elapsed = time.perf_counter() - start
        after = get(url, "/health")
    finally:
        for c in connections:
            c.close()
    latencies.sort()
    batches = after["batches"] - before["batches"]
    return {
        "concurrency": concurrency, "requests": len(latencies), "errors": errors,
        "seconds": elapsed, "requests_per_second": len(latencies) / elapsed,
        "p50_ms": 1000 * percentile(latencies, 50), "p99_ms": 1000 * percentile(latencies, 99),
        "mean_ms": 1000 * statistics.fmean(latencies),
        "model_calls": batches,
        "model_ms_per_call": (1000 * (after["model_seconds"] - before["model_seconds"]) / batches
                              if batches else 0.0),
        "mean_batch": (after["sequences"] - before["sequences"]) / batches if batches else 0.0,
        "load_average_before": load_before,
    }


def percentile(sorted_values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of sorted values."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-q * len(sorted_values) // 100))
    return sorted_values[int(rank) - 1]


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for package in ("seqclf", "tensorflow", "keras", "onnxruntime", "fastapi", "uvicorn",
                    "httpx", "numpy"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = "not installed"
    return out


# --- the report ----------------------------------------------------------------------


def render(r: dict[str, Any]) -> str:
    v = r["versions"]
    s = r.get("settings", {})
    nice = f", at niceness {r['niceness']} (`nice -n {r['niceness']}`)" if r["niceness"] else ""
    served = ("the quickstart run (`configs/quickstart.yaml`: LSTM(64) on the digits, 8 steps "
              f"x 8 features, 10 classes; trained {r['epochs']} epochs here: speed does not "
              "depend on them)" if r["epochs"] else f"the run `{r['run']}`")
    loads = [x["load_average_before"] for x in r["levels"]]
    lines = [
        "# Serving: `seqclf serve` under concurrent load",
        "",
        f"Measured {r['started']} on {r['machine']}; Python {v['python']}, seqclf "
        f"{v['seqclf']}, TensorFlow {v['tensorflow']}, Keras {v['keras']}, onnxruntime "
        f"{v['onnxruntime']}, FastAPI {v['fastapi']}, uvicorn {v['uvicorn']} (h11, asyncio).",
        "",
        f"Command: `{r['command']}`{nice} ({r['minutes']:.0f} minutes; every number on this "
        "page comes from that one run; raw measurements in `serving.json`).",
        "",
        f"What was served: {served}, by one `seqclf serve` process per "
        f"engine on 127.0.0.1, one worker, --max-batch {s.get('max_batch')}, "
        f"--batch-wait-ms {s.get('batch_wait_ms')}. The load: a closed loop of N clients "
        "(a minimal keep-alive HTTP/1.1 client each, on asyncio streams) in the benchmark's "
        "own process on the same machine, each "
        "sending one digit per `POST /predict` and the next as soon as the answer is in; "
        f"per level at most {r['requests']} requests or {r['seconds']:g} s after "
        f"{r['warmup']:g} s of unrecorded warm-up. Latency: the client's, send to whole "
        "answer. Mean batch and model ms per call: sequences per model call and the wall time "
        "inside it (the server's model thread), from the server's /health counters.",
        "",
        "| engine | concurrency | requests | req/s | p50 ms | p99 ms | mean batch | model ms "
        "per call | errors | load avg before |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for x in r["levels"]:
        lines.append(f"| {x['engine']} | {x['concurrency']} | {x['requests']} | "
                     f"{x['requests_per_second']:.1f} | {x['p50_ms']:.1f} | {x['p99_ms']:.1f} | "
                     f"{x['mean_batch']:.1f} | {x['model_ms_per_call']:.1f} | {x['errors']} | "
                     f"{x['load_average_before']:.2f} |")
    lines += ["", f"The 1-minute load average before each level (last column) counts the "
              "benchmark's own previous level (its server and its client, up to about 2 on "
              f"their own); here it reached {max(loads):.1f} on {r['cores']} cores"
              + (", so other work shared the machine during the run: absolute figures vary "
                 "with it, the ratios between levels less so." if max(loads) > r["cores"]
                 else "."),
              "", "## Batching: requests/s at concurrency 32 over concurrency 1", "",
              f"Target: at least {TARGET_RATIO:g}x.", ""]
    for engine in dict.fromkeys(x["engine"] for x in r["levels"]):
        by = {x["concurrency"]: x for x in r["levels"] if x["engine"] == engine}
        if 1 in by and 32 in by and by[1]["requests_per_second"]:
            ratio = by[32]["requests_per_second"] / by[1]["requests_per_second"]
            met = "met" if ratio >= TARGET_RATIO else "**missed**"
            lines.append(f"- {engine}: {ratio:.1f}x ({by[1]['requests_per_second']:.1f} -> "
                         f"{by[32]['requests_per_second']:.1f} req/s): {met}. A model call took "
                         f"{by[1]['model_ms_per_call']:.1f} ms for 1 sequence at concurrency 1 "
                         f"and {by[32]['model_ms_per_call']:.1f} ms for "
                         f"{by[32]['mean_batch']:.1f} (the mean batch) at 32, "
                         f"{by[1]['model_ms_per_call'] / by[1]['p50_ms']:.0%} and "
                         f"{by[32]['model_ms_per_call'] / by[32]['p50_ms']:.0%} of the median "
                         "latency.")
    p = r.get("parity")
    if p:
        lines += ["", f"Same answers: on the {p['sequences']} test digits (one request per "
                  f"engine) the labels differ on {p['labels_differ']}, the largest "
                  f"probability difference is {p['max_abs_diff']:.2e} (the export's "
                  "tolerance: 1e-4)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())

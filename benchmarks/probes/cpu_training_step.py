"""Probe (not a shipped feature): where the seconds of an epoch go on a small CPU, and
what a different TensorFlow training step would save there.

    python benchmarks/probes/cpu_training_step.py --rounds 3 --epochs 15

The tutorial's 2 x LSTM(50) on 49 steps x 1 feature, 46 classes, batch 50, Adam, on
random data of the tutorial's size (1400 sequences: 28 batches an epoch), trained with
XLA by each variant in a fresh process (TensorFlow's threads are fixed at start-up);
variants interleaved, round r runs each once. Per process: the median of its epochs after
the second (the first two compile), and its slowest epoch after the first. Variants:

- ``keras_1_thread``: ``model.fit`` on a tf.data pipeline, 32 batches per call, one
  thread per op: seqclf's plan on a 2-core CPU.
- ``keras_default_threads``: the same with TensorFlow's default threads.
- ``one_program``: the epoch's 28 batches trained in one XLA program (a ``while_loop``
  over ``train_step``) instead of one launch per batch; one thread per op.
- ``two_parts``: each batch split in halves, each half's gradient one XLA program, the
  two run side by side on the inter-op threads, averaged, then one optimizer update
  (TensorFlow's default threads; ``--prefetch`` gives the tf.data pipeline its default
  thread pool, else a private one of one thread without autotuning).

Writes docs/results/cpu-training-step.md and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from benchmarks.common import machine  # noqa: E402

VARIANTS = ("keras_1_thread", "keras_default_threads", "one_program", "two_parts")
N, STEPS, BATCH = 1400, 49, 50
OUT = ROOT / "docs" / "results"


def run_variant(variant: str, epochs: int, prefetch: bool) -> dict:
    """Train in this process as ``variant`` does; returns the epochs' seconds."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import tensorflow as tf

    one_thread = variant in ("keras_1_thread", "one_program")
    threads = 1 if one_thread else 0  # 0: TensorFlow's default
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 30000, (N, STEPS, 1)).astype("float32")
    y = rng.integers(0, 46, N)
    model = keras.Sequential([keras.Input((STEPS, 1)),
                              keras.layers.LSTM(50, return_sequences=True),
                              keras.layers.LSTM(50),
                              keras.layers.Dense(46, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.001),
                  loss="sparse_categorical_crossentropy", jit_compile=True,
                  steps_per_execution=32)
    data = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(N, seed=0).batch(
        BATCH, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    if variant == "two_parts" and not prefetch:
        options = tf.data.Options()
        options.threading.private_threadpool_size = 1
        options.autotune.enabled = False
        data = data.with_options(options)
    seconds: list[float] = []
    if variant.startswith("keras"):
        class Clock(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                seconds.append(time.perf_counter() - self.start)

        model.fit(data, epochs=epochs, verbose=0, callbacks=[Clock()])
        return {"variant": variant, "epoch_seconds": seconds}
    model.fit(data.take(1), epochs=1, verbose=0)  # builds the optimizer's variables
    epoch = one_program_epoch(model, x, y) if variant == "one_program" else \
        two_parts_epoch(model, data)
    for _ in range(epochs):
        start = time.perf_counter()
        epoch()
        seconds.append(time.perf_counter() - start)
    return {"variant": variant, "epoch_seconds": seconds}


def one_program_epoch(model, x, y):
    import tensorflow as tf

    batches = len(x) // BATCH
    xs = tf.constant(x[:batches * BATCH].reshape(batches, BATCH, STEPS, 1))
    ys = tf.constant(y[:batches * BATCH].reshape(batches, BATCH))

    @tf.function(jit_compile=True)
    def train(xs, ys):
        def body(i, loss):
            return i + 1, model.train_step((xs[i], ys[i]))["loss"]
        return tf.while_loop(lambda i, _: i < batches, body, (0, 0.0))[1]

    return lambda: train(xs, ys).numpy()


def two_parts_epoch(model, data):
    import keras
    import tensorflow as tf

    weights = model.trainable_variables
    loss_of = keras.losses.SparseCategoricalCrossentropy()

    @tf.function(jit_compile=True)
    def gradients(x, y, values, state):
        with tf.GradientTape() as tape:
            tape.watch(values)
            out, _ = model.stateless_call(values, state, x, training=True)
            loss = loss_of(y, out)
        return tape.gradient(loss, values), loss

    @tf.function(jit_compile=True)
    def update(grads):
        model.optimizer.apply_gradients(zip(grads, weights))

    @tf.function
    def step(x, y):
        values = [tf.identity(v) for v in weights]
        state = [tf.identity(v) for v in model.non_trainable_variables]
        halves = [gradients(a, b, values, state)
                  for a, b in zip(tf.split(x, 2), tf.split(y, 2))]
        update([(g + h) / 2 for g, h in zip(halves[0][0], halves[1][0])])
        return (halves[0][1] + halves[1][1]) / 2

    def epoch():
        for x, y in data:
            loss = step(x, y)
        loss.numpy()

    return epoch


def summary(seconds: list[float]) -> dict:
    return {"median": statistics.median(seconds[2:]), "slowest": max(seconds[1:]),
            "first": seconds[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--prefetch", action="store_true",
                        help="two_parts with tf.data's default thread pool")
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.epochs, args.prefetch)))
        return
    started = time.strftime("%Y-%m-%d %H:%M")
    rows = []
    for r in range(args.rounds):
        for variant in VARIANTS:
            cmd = [sys.executable, __file__, "--variant", variant, "--epochs", str(args.epochs)]
            cmd += ["--prefetch"] if args.prefetch else []
            proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            row.update(summary(row["epoch_seconds"]), round=r)
            rows.append(row)
            print(f"round {r} {variant:22s} median {row['median']:.3f} s  slowest "
                  f"{row['slowest']:.2f} s", flush=True)
    command = "python benchmarks/probes/cpu_training_step.py " + " ".join(sys.argv[1:])
    (OUT / "cpu-training-step.json").write_text(json.dumps(
        {"command": command, "started": started, "machine": machine(), "rows": rows}, indent=1))
    (OUT / "cpu-training-step.md").write_text(page(rows, command, started, args.rounds))


def page(rows: list[dict], command: str, started: str, rounds: int) -> str:
    lines = ["# Probe: the TensorFlow training step on a small CPU", "",
             f"Measured {started} on {machine()}.", "",
             f"Command: `{command.strip()}` ({rounds} rounds, variants interleaved, each a "
             "fresh process). The tutorial's 2 x LSTM(50), batch 50, 28 batches an epoch, "
             "XLA; see the script's docstring for the variants. Seconds per epoch: each "
             "process's median after its second epoch, then the median and range of those "
             "over the rounds; slowest: the slowest epoch after the first, over all rounds.", "",
             "| variant | s / epoch | range | x keras_1_thread | slowest epoch |",
             "|---|---|---|---|---|"]
    base = statistics.median(r["median"] for r in rows if r["variant"] == "keras_1_thread")
    for variant in VARIANTS:
        mine = [r for r in rows if r["variant"] == variant]
        medians = [r["median"] for r in mine]
        m = statistics.median(medians)
        lines.append(f"| {variant} | {m:.3f} | {min(medians):.3f}-{max(medians):.3f} | "
                     f"{base / m:.2f}x | {max(r['slowest'] for r in mine):.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

"""Epoch time of the stacked blog model on a larger synthetic set, on whatever backend.

    python benchmarks/gpu.py                       # 100 000 sequences x 200 steps
    python benchmarks/gpu.py --sequences 2000 --steps 50   # a quick CPU smoke run
    KERAS_BACKEND=torch python benchmarks/gpu.py   # a GPU machine without TensorFlow

Times one epoch (after a warm-up epoch) of LSTM(50) -> LSTM(50) -> Dense(46) through
seqclf's own model builder, for: cuDNN allowed vs forced off (model.use_cudnn: false),
each with and without mixed precision, and prints samples/s as a markdown table with the
device, backend and versions. Meant for docs/results/gpu.md when a GPU is at hand.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def measure(sequences: int, steps: int, use_cudnn: bool, mixed: bool, batch: int) -> float:
    from seqclf.backend import configure, keras
    from seqclf.config import validate_config
    from seqclf.data import Preprocessor
    from seqclf.model import build_model

    cfg = validate_config({
        "data": {"train": "synthetic.csv"},
        "model": {"units": [50, 50], "use_cudnn": "auto" if use_cudnn else False},
        "training": {"batch_size": batch, "mixed_precision": mixed},
    })
    configure(cfg.training.backend, "auto", mixed)
    prep = Preprocessor(feature_names=["value"], classes=list(range(46)), majority_class=0,
                        max_length=steps, pad_value=-1.0e9)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(sequences, steps, 1)).astype("float32")
    y = rng.integers(0, 46, size=sequences)
    model = build_model(cfg, prep)
    model.fit(x[: batch * 4], y[: batch * 4], batch_size=batch, epochs=1, verbose=0)  # warm-up
    start = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
    keras().mixed_precision.set_global_policy("float32")
    return sequences / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=512)
    args = parser.parse_args()

    from seqclf.backend import environment

    env = environment()
    gpus = ", ".join(d["model"] for d in env["devices"]) or "none (CPU)"
    print(f"backend {env['backend']}; GPU: {gpus}; versions: "
          + ", ".join(f"{k} {v}" for k, v in env["versions"].items() if k != "platform"))
    print(f"{args.sequences} sequences x {args.steps} steps x 1 feature, batch {args.batch}, "
          "LSTM(50) -> LSTM(50) -> Dense(46)\n")
    print("| cuDNN | mixed precision | samples/s |\n|---|---|---|")
    for use_cudnn in (True, False):
        for mixed in (False, True):
            rate = measure(args.sequences, args.steps, use_cudnn, mixed, args.batch)
            print(f"| {'allowed' if use_cudnn else 'forced off'} | {'yes' if mixed else 'no'} "
                  f"| {rate:,.0f} |", flush=True)


if __name__ == "__main__":
    main()

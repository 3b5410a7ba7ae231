"""Probe (not a shipped feature): would MultiRocket's MIPV pooling let a linear model on
MiniROCKET's features see where motifs fire, and would the ridge's leave-one-out
accuracy tell when it helps?

    seqclf data synthetic --output /tmp/syn/order-2c-1500 --problem order --classes 2 \\
        --channels 1 --min-length 1500 --max-length 1500 --train 160 --test 300 \\
        --width 0.03 --amplitude 3.0 --distractors 1 --seed 3
    python benchmarks/probes/mipv.py /tmp/syn/order-2c-1500 ../shared/data/ucr-dev/PigCVP

Each argument is a folder with train.csv and test.csv in the wide layout, equal lengths.
For the raw and the per-sequence z-normalised view, the transform is fitted as
``seqclf.models.minirocket`` fits it (seed 0, 10,000 features), then two feature sets go
to its ridge (``fit_ridge``): PPV alone, and PPV beside MIPV (Tan et al., 2022: the mean
index of the steps where the output exceeds the bias, over the length; -1 when none
does). Simplified against the shipped transform: every feature is pooled over all steps
('same' padding), no central-steps rule and no masking, so PPV alone differs a little
from ``minirocket``'s. Prints test accuracy and the ridge's leave-one-out accuracy of
each.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from seqclf.models.minirocket import fit_dilations, fit_ridge, fit_transform, z_normalise


def load(path: Path) -> tuple[np.ndarray, np.ndarray]:
    frame = pd.read_csv(path)
    y = frame["label"].astype(str).to_numpy()
    x = frame.drop(columns=[c for c in ("id", "label") if c in frame]).to_numpy(np.float32)
    return x[:, :, None], y


def features(x: np.ndarray, kernels: np.ndarray, biases: np.ndarray, dilations: list[int],
             per_dilation: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """PPV and MIPV of every (dilation, kernel, bias), over all steps."""
    n, steps, _ = x.shape
    reach = 4 * max(dilations)
    padded = np.pad(np.ascontiguousarray(x.transpose(0, 2, 1)), [(0, 0), (0, 0), (reach, reach)])
    position = np.arange(steps, dtype=np.float32)
    ppv, mipv, start = [], [], 0
    for j, (d, n_biases) in enumerate(zip(dilations, per_dilation)):
        skip = reach - 4 * d
        taps = np.concatenate([padded[:, :, skip + i * d:skip + i * d + steps]
                               for i in range(9)], axis=1)
        conv = np.matmul(kernels[j], taps)  # (n, 84, steps)
        block = biases[start:start + 84 * n_biases].reshape(n_biases, 84)
        start += 84 * n_biases
        for b in range(n_biases):
            hits = conv > block[b][None, :, None]
            count = hits.sum(-1)
            ppv.append(count / steps)
            mipv.append(np.where(count > 0, (hits @ position) / np.maximum(count, 1) / steps,
                                 -1.0))
    return np.stack(ppv, -1).reshape(n, -1), np.stack(mipv, -1).reshape(n, -1)


def score(f_train: np.ndarray, y_train: np.ndarray, f_test: np.ndarray,
          y_test: np.ndarray) -> str:
    classes = {c: i for i, c in enumerate(sorted(set(y_train)))}
    y = np.array([classes[c] for c in y_train])
    fit = fit_ridge(f_train.astype(np.float32), y, len(classes))
    predicted = (f_test @ fit.kernel + fit.bias).argmax(axis=1)
    accuracy = np.mean(predicted == np.array([classes.get(c, -1) for c in y_test]))
    return f"test {accuracy:.3f} LOO {fit.loo_accuracy:.3f}"


def main() -> None:
    for folder in map(Path, sys.argv[1:]):
        x_train, y_train = load(folder / "train.csv")
        x_test, y_test = load(folder / "test.csv")
        for view in ("raw", "normalised"):
            a, b = x_train, x_test
            if view == "normalised":
                a = z_normalise(a, np.ones(a.shape[:2], bool))
                b = z_normalise(b, np.ones(b.shape[:2], bool))
            dilations, per_dilation = (v.tolist() for v in fit_dilations(a.shape[1], 10_000, 32))
            kernels, biases, _ = fit_transform(a, np.ones(a.shape[:2], bool), dilations,
                                               per_dilation, np.random.default_rng(0))
            started = time.time()
            p_train, m_train = features(a, kernels, biases, dilations, per_dilation)
            p_test, m_test = features(b, kernels, biases, dilations, per_dilation)
            alone = score(p_train, y_train, p_test, y_test)
            both = score(np.hstack([p_train, m_train]), y_train,
                         np.hstack([p_test, m_test]), y_test)
            print(f"{folder.name} {view}: PPV {alone}; PPV+MIPV {both} "
                  f"({time.time() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main()

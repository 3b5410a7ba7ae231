"""Probe (not a shipped feature): which further MiniROCKET feature sets would help, and
would the ridge's leave-one-out accuracy tell when?

    python benchmarks/probes/views.py FOLDER...   # each with train.csv, test.csv

For each problem (read as ``seqclf train`` reads it: format guessed, padded, masked),
the transform is fitted as ``seqclf.models.minirocket`` fits it (seed 0, 10,000
features) on several inputs, and ``fit_ridge`` is fitted on feature sets made of them:

* raw / norm: the values, or each sequence z-normalised (``normalise``);
* diff: the first difference of the values (MultiRocket's second representation; its
  own dilations, biases and features), of the raw or the normalised view;
* +mipv: MIPV beside PPV (``pooling: ppv_mipv``).

Prints test accuracy and the ridge's leave-one-out accuracy of each set.

Result (2026-12-02, seed 0; test / leave-one-out; the four UCR development problems and
benchmarks/timeseries.py's three, as ucr.py writes them):

| problem | raw | raw+diff | raw+mipv | norm | norm+diff | norm+mipv | raw+norm |
|---|---|---|---|---|---|---|---|
| ArrowHead | 0.863/0.833 | 0.857/0.861 | 0.851/0.861 | 0.863/0.833 | 0.857/0.861 | 0.851/0.861 | 0.863/0.833 |
| Coffee | 1.000/1.000 | 1.000/1.000 | 1.000/1.000 | 1.000/1.000 | 1.000/1.000 | 1.000/1.000 | 1.000/1.000 |
| PigCVP | 0.957/0.731 | 0.957/0.712 | 0.817/0.375 | 0.947/0.731 | 0.928/0.683 | 0.837/0.442 | 0.942/0.740 |
| PLAID | 0.950/0.940 | 0.957/0.937 | 0.946/0.942 | 0.909/0.912 | 0.901/0.909 | 0.914/0.918 | 0.946/0.940 |
| shapes-4c-500 | 0.657/0.660 | 0.670/0.700 | 0.557/0.453 | 0.903/0.787 | 0.870/0.807 | 0.820/0.713 | 0.850/0.807 |
| shapes-5c-1000v-3ch | 0.357/0.235 | 0.343/0.335 | 0.253/0.215 | 0.537/0.545 | 0.520/0.585 | 0.410/0.460 | 0.497/0.495 |
| order-2c-1500 | 0.547/0.487 | 0.520/0.487 | 0.860/0.831 | 0.527/0.450 | 0.510/0.444 | 0.877/0.881 | 0.553/0.475 |

Not shipped: the difference series moves test accuracy by -3.3 to +1.3 points (mean
-0.9 over the seven problems and both views) and its leave-one-out gains (shapes-5c +4,
ArrowHead +3) came with test losses, so the ridge's leave-one-out accuracy would choose
it where it does not help; raw and normalised features side by side (raw+norm) are never better than the view
``normalise: auto`` keeps. MIPV, the one set that changes a problem (order-2c +31), is
``pooling: ppv_mipv``, weighed by ``pooling: auto``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from seqclf.config import validate_config
from seqclf.models.minirocket import fit_dilations, fit_ridge, fit_transform, pool, z_normalise
from seqclf.prepare import prepare


def load(folder: Path):
    fmt = "long" if "step" in (folder / "train.csv").open().readline() else "wide"
    cfg = validate_config({"data": {"train": str(folder / "train.csv"),
                                    "test": str(folder / "test.csv"), "format": fmt},
                           "model": {"family": "minirocket"}})
    d = prepare(cfg)
    mask = d.prep.pad_value
    real = lambda x: np.any(x != mask, axis=-1)
    return d.x_train, real(d.x_train), d.y_train, d.x_test, real(d.x_test), \
        d.prep.encode_labels(d.test.labels)


def diff(x: np.ndarray, real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First difference over real steps (each real step but a sequence's first: its
    value less the previous real step's); the first real step becomes padding."""
    out = np.zeros_like(x)
    out[:, 1:] = x[:, 1:] - x[:, :-1]
    r = real.copy()
    r[:, 1:] &= real[:, :-1]
    r[:, 0] = False
    return np.where(r[..., None], out, 0).astype(np.float32), r


def features(x, real, xt, realt, seed=0, mipv=True):
    dil, per = (v.tolist() for v in fit_dilations(x.shape[1], 10_000, 32))
    k, b, _ = fit_transform(x, real, dil, per, np.random.default_rng(seed))
    return pool(x, real, k, b, dil, per, mipv=mipv), pool(xt, realt, k, b, dil, per, mipv=mipv)


def main() -> None:
    for folder in map(Path, sys.argv[1:]):
        x, real, y, xt, realt, yt = load(folder)
        started = time.time()
        sets = {}
        for view in ("raw", "norm"):
            a, b = (x, xt) if view == "raw" else (z_normalise(x, real), z_normalise(xt, realt))
            f, ft = features(a, real, b, realt)
            n = f.shape[1] // 2
            sets[view] = (f[:, :n], ft[:, :n])
            sets[view + "+mipv"] = (f, ft)
            (da, dr), (db, dt) = diff(a, real), diff(b, realt)
            g, gt = features(da, dr, db, dt)
            sets[view + "+diff"] = (np.hstack([f[:, :n], g[:, :n]]), np.hstack([ft[:, :n], gt[:, :n]]))
            sets[view + "+diff+mipv"] = (np.hstack([f, g]), np.hstack([ft, gt]))
        sets["raw+norm"] = (np.hstack([sets["raw"][0], sets["norm"][0]]),
                            np.hstack([sets["raw"][1], sets["norm"][1]]))
        n_classes = int(max(y.max(), yt.max())) + 1
        out = []
        for name, (f, ft) in sets.items():
            fit = fit_ridge(f, y, n_classes)
            acc = np.mean((ft @ fit.kernel + fit.bias).argmax(1) == yt)
            out.append(f"{name} {acc:.3f}/{fit.loo_accuracy:.3f}")
        print(f"{folder.name} ({time.time() - started:.0f} s): " + "; ".join(out), flush=True)


if __name__ == "__main__":
    main()

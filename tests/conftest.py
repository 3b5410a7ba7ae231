"""Shared helpers and fixtures for the seqclf test suite.

Everything is tiny on purpose (units 4-8, a few epochs, a hundred-odd short sequences):
the whole suite runs on 2 CPU cores in a few minutes. The one expensive thing, a trained
run, is made once per session (``long_run``) and reused by the evaluate/predict/CLI tests.
"""

from __future__ import annotations

import os
import shutil
import tempfile

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Compiled XLA programs go to a cache of this session, not the user's ~/.cache/seqclf.
if "SEQCLF_CACHE_DIR" not in os.environ:
    _SESSION_CACHE = tempfile.mkdtemp(prefix="seqclf-cache-")
    os.environ["SEQCLF_CACHE_DIR"] = _SESSION_CACHE
else:
    _SESSION_CACHE = None

from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ("down", "flat", "up")  # string labels; the class sets the mean of feature x


# --- slow tests: `pytest` leaves them out, `pytest --slow` runs everything -------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true",
                     help="also run the tests marked slow (subprocesses, several processes, "
                          "exports, longer fits): the whole suite, as CI runs it")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _SESSION_CACHE is not None:
        shutil.rmtree(_SESSION_CACHE, ignore_errors=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--slow"):
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]


# --- small writers -------------------------------------------------------------------


def write_text(path: Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def write_csv(path: Path, rows: list[dict[str, Any]] | pd.DataFrame) -> Path:
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def write_config(path: Path, config: dict[str, Any]) -> Path:
    return write_text(path, yaml.safe_dump(config, sort_keys=False))


def long_frame(n: int, seed: int, classes: tuple[str, ...] = CLASSES, min_len: int = 3,
               max_len: int = 9, shuffle_rows: bool = True, with_labels: bool = True,
               id_prefix: str = "s", shift: float = 0.8) -> pd.DataFrame:
    """Learnable long-layout data: 2 features (x, y), variable lengths, string labels.

    Sequence i has class ``classes[i % len(classes)]``; feature x has mean
    ``shift * (class index - middle)``, y is noise. Rows are shuffled (across and within
    sequences) when ``shuffle_rows``, so readers must use the step column.
    """
    rng = np.random.default_rng(seed)
    rows = []
    mid = (len(classes) - 1) / 2
    for i in range(n):
        c = i % len(classes)
        length = int(rng.integers(min_len, max_len + 1))
        x = rng.normal(shift * (c - mid), 1.0, length)
        y = rng.normal(0.0, 1.0, length)
        for s in range(length):
            row = {"id": f"{id_prefix}{i:03d}", "step": s, "x": round(float(x[s]), 4),
                   "y": round(float(y[s]), 4)}
            if with_labels:
                row["label"] = classes[c]
            rows.append(row)
    frame = pd.DataFrame(rows)
    if shuffle_rows:
        frame = frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    return frame


def wide_frame(n: int, seed: int, steps: int = 6, min_len: int = 2) -> pd.DataFrame:
    """Wide-layout data: id, t0..t{steps-1} (trailing cells empty), integer labels 0/1."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = i % 2
        length = int(rng.integers(min_len, steps + 1))
        values = rng.normal(1.0 if label else -1.0, 1.0, length)
        row: dict[str, Any] = {"id": f"w{i:03d}"}
        for s in range(steps):
            row[f"t{s}"] = round(float(values[s]), 4) if s < length else None
        row["label"] = label
        rows.append(row)
    return pd.DataFrame(rows)


# --- a trained run, once per session -------------------------------------------------


@dataclass
class TrainedRun:
    """A finished training run and the files it was made from."""

    config_path: Path
    config: Any  # seqclf.config.Config
    result: Any  # seqclf.train.TrainResult
    data_dir: Path
    train_csv: Path
    predict_csv: Path  # same layout, no label column
    unseen_csv: Path  # labelled, including a label training never saw
    known_csv: Path  # the known-label part of unseen_csv alone

    @property
    def run_dir(self) -> Path:
        return self.result.run_dir


LONG_RUN_CONFIG = {
    "name": "tiny",
    "data": {"train": "train.csv", "format": "long", "scaling": "standard",
             "test_split": 0.25},
    "model": {"cell": "lstm", "units": 8},
    "optimizer": {"name": "adam", "learning_rate": 0.03},
    "training": {"epochs": 4, "batch_size": 16, "seed": 3, "validation_split": 0.2,
                 "early_stopping": {"monitor": "val_loss", "patience": 5}},
}


@pytest.fixture(scope="session")
def keras():
    """The Keras module on seqclf's configured backend (imports it: use only where needed)."""
    from seqclf.backend import keras as get_keras

    return get_keras()


@pytest.fixture(scope="session")
def long_data(tmp_path_factory) -> Path:
    """A folder with train.csv (150 long-layout sequences) and a config next to it."""
    folder = tmp_path_factory.mktemp("long_data")
    write_csv(folder / "train.csv", long_frame(150, seed=0))
    write_config(folder / "tiny.yaml", LONG_RUN_CONFIG)
    known = long_frame(12, seed=11, id_prefix="k")
    unseen = long_frame(4, seed=12, classes=("sideways",), id_prefix="u")
    write_csv(folder / "known.csv", known)
    write_csv(folder / "unseen.csv", pd.concat([known, unseen], ignore_index=True))
    write_csv(folder / "predict.csv", long_frame(7, seed=13, with_labels=False, id_prefix="p"))
    return folder


@pytest.fixture(scope="session")
def long_run(long_data, tmp_path_factory) -> TrainedRun:
    """One tiny LSTM trained on long_data (config file with paths relative to it)."""
    from seqclf.config import load_config
    from seqclf.train import train

    cfg = load_config(long_data / "tiny.yaml")
    result = train(cfg, tmp_path_factory.mktemp("runs"))
    return TrainedRun(config_path=long_data / "tiny.yaml", config=cfg, result=result,
                      data_dir=long_data, train_csv=long_data / "train.csv",
                      predict_csv=long_data / "predict.csv",
                      unseen_csv=long_data / "unseen.csv", known_csv=long_data / "known.csv")


@pytest.fixture(scope="session")
def wide_run(tmp_path_factory) -> TrainedRun:
    """A 1-epoch GRU on wide-layout data with integer labels and a separate test file."""
    from seqclf.config import load_config
    from seqclf.train import train

    folder = tmp_path_factory.mktemp("wide_data")
    write_csv(folder / "train.csv", wide_frame(40, seed=1))
    write_csv(folder / "test.csv", wide_frame(16, seed=2))
    write_csv(folder / "predict.csv", wide_frame(5, seed=3).drop(columns=["label"]))
    write_config(folder / "wide.yaml", {
        "data": {"train": "train.csv", "test": "test.csv", "format": "wide"},
        "model": {"cell": "gru", "units": 4},
        "training": {"epochs": 1, "batch_size": 8, "seed": 0},
    })
    cfg = load_config(folder / "wide.yaml")
    result = train(cfg, tmp_path_factory.mktemp("wide_runs"))
    return TrainedRun(config_path=folder / "wide.yaml", config=cfg, result=result,
                      data_dir=folder, train_csv=folder / "train.csv",
                      predict_csv=folder / "predict.csv", unseen_csv=folder / "test.csv",
                      known_csv=folder / "test.csv")

"""The Reuters tutorial data through the real keras.datasets.reuters loader, offline.

The raw files come from ../shared/data/reuters (the exact files Keras downloads), copied
into a private $KERAS_HOME so that Keras finds them and never touches the network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from seqclf.config import load_config

ROOT = Path(__file__).resolve().parent.parent
# The real loader reads and splits the whole archive: seconds per test.
pytestmark = pytest.mark.slow

SHARED = ROOT.parent / "shared" / "data" / "reuters"
REUTERS_CONFIGS = sorted((ROOT / "configs" / "reuters").glob("*.yaml"))


@pytest.fixture(scope="module")
def reuters_csv(tmp_path_factory) -> Path:
    if not (SHARED / "reuters.npz").exists():
        pytest.skip(f"{SHARED}/reuters.npz is not here (it is beside the project in CI)")
    home = tmp_path_factory.mktemp("keras_home")
    (home / "datasets").mkdir()
    for name in ("reuters.npz", "reuters_word_index.json"):
        shutil.copy(SHARED / name, home / "datasets" / name)
    out = tmp_path_factory.mktemp("reuters")
    env = {**os.environ, "KERAS_HOME": str(home)}
    done = subprocess.run([sys.executable, "-m", "seqclf", "data", "reuters", "--output", str(out)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"wrote train: {out / 'train.csv'}" in done.stdout
    return out


def test_reuters_split_matches_the_tutorial(reuters_csv):
    train = pd.read_csv(reuters_csv / "train.csv")
    test = pd.read_csv(reuters_csv / "test.csv")
    assert (len(train), len(test)) == (1395, 599)
    steps = [c for c in train.columns if c.startswith("t")]
    assert steps == [f"t{i}" for i in range(49)]
    lengths = train[steps].notna().sum(axis=1)
    assert lengths.max() == 49 and lengths.min() >= 1
    # the majority class ('earn', label 3) scores 0.748 on the test set
    assert round((test["label"] == 3).mean(), 3) == 0.748
    assert set(train["label"]) | set(test["label"]) <= set(range(46))
    assert train["t0"].eq(1).all()  # Keras's start-of-sequence marker


@pytest.mark.parametrize("path", REUTERS_CONFIGS, ids=lambda p: p.name)
def test_reuters_configs_read_the_generated_data(reuters_csv, path):
    from seqclf.prepare import prepare

    cfg = load_config(path, [f"data.train={reuters_csv / 'train.csv'}",
                             f"data.test={reuters_csv / 'test.csv'}"])
    d = prepare(cfg)
    assert len(d.prep.classes) == 46
    assert d.x_train.shape[:2] == (1395, 49) and d.x_test.shape[:2] == (599, 49)
    if cfg.model.embedding is None:
        # the tutorial: raw indices, zero post-padding, nothing masked
        assert not cfg.model.masking and d.prep.pad_value == 0.0
        assert d.x_train.shape == (1395, 49, 1)
    else:
        assert d.x_train.max() < cfg.model.embedding.input_dim


def test_reuters_data_command_rejects_bad_options(tmp_path):
    done = subprocess.run([sys.executable, "-m", "seqclf", "data", "reuters", "--output",
                           str(tmp_path), "--test-split", "1.5"], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip() == ("error: seqclf data reuters: --test-split must be > 0 and "
                                   "< 1. Got 1.5 instead.")

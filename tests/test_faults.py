"""Interrupted runs, resuming, reproducibility across processes, and safe model loading."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from seqclf.config import load_config
from seqclf.errors import SeqclfError
from seqclf.runs import open_run
from seqclf.train import resume, train

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "configs" / "quickstart.yaml"
SMALL = ["model.units=8", "training.batch_size=64", "training.tensorboard=false"]


def _seqclf(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "seqclf", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


@pytest.mark.slow
def test_sigterm_leaves_an_incomplete_run_that_resumes_to_the_full_epoch_count(tmp_path):
    epochs = 40
    proc = _seqclf("train", str(QUICKSTART), "--output-dir", str(tmp_path), "--quiet",
                   *[f"--set={s}" for s in SMALL + [f"training.epochs={epochs}"]])
    history = None
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        found = list(tmp_path.glob("*/history.csv"))
        if found and len(pd.read_csv(found[0])) >= 3:
            history = found[0]
            break
        time.sleep(0.05)
    assert history is not None, "training never reached epoch 3"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err.strip() == "error: interrupted. An unfinished run directory stays marked INCOMPLETE."
    run_dir = history.parent
    assert (run_dir / "INCOMPLETE").exists()
    assert not (run_dir / "manifest.json").exists()
    assert (run_dir / "backup").is_dir()
    with pytest.raises(SeqclfError, match="did not finish"):
        open_run(run_dir)
    interrupted_at = len(pd.read_csv(history))
    assert interrupted_at < epochs

    result = resume(run_dir)
    assert result.epochs_run == epochs
    rows = pd.read_csv(run_dir / "history.csv")
    assert rows["epoch"].tolist() == list(range(1, epochs + 1))
    assert not (run_dir / "INCOMPLETE").exists() and not (run_dir / "backup").exists()
    assert json.loads((run_dir / "metrics.json").read_text())["epochs_run"] == epochs
    assert open_run(run_dir).manifest["status"] == "complete"
    # the optimizer state came back too: Adam's step counter covers every epoch
    import keras

    steps = -(-result.sizes["train"] // 64)
    model = keras.saving.load_model(run_dir / "model.keras")
    assert int(model.optimizer.iterations.numpy()) == epochs * steps
    with pytest.raises(SeqclfError, match="already complete; nothing to resume"):
        resume(run_dir)


@pytest.mark.slow
def test_same_config_and_seed_give_identical_results_in_two_processes(tmp_path):
    outputs = []
    for i in range(2):
        out = tmp_path / f"p{i}"
        proc = _seqclf("train", str(QUICKSTART), "--output-dir", str(out), "--quiet",
                       *[f"--set={s}" for s in SMALL + ["training.epochs=3", "model.dropout=0.2"]])
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        run_dir = next(out.iterdir())
        pred = _seqclf("predict", str(run_dir), "--data", str(ROOT / "data/digits/test.csv"))
        csv_text, err = pred.communicate(timeout=300)
        assert pred.returncode == 0, err
        metrics = json.loads((run_dir / "metrics.json").read_text())
        outputs.append((metrics["test"]["accuracy"], metrics["final"]["loss"], csv_text))
    assert outputs[0] == outputs[1]


@pytest.mark.slow
def test_a_model_file_that_would_run_code_is_refused(tmp_path):
    import keras

    cfg = load_config(QUICKSTART, SMALL + ["training.epochs=1"])
    run_dir = train(cfg, tmp_path).run_dir
    inputs = keras.Input(shape=(8, 8))
    outputs = keras.layers.Lambda(lambda x: x * 2.0)(inputs)
    keras.Model(inputs, outputs).save(run_dir / "model.keras")
    with pytest.raises(SeqclfError, match=r"model.keras: refused: it contains code \(e.g. a Lambda"):
        open_run(run_dir).load_model()


def test_resume_refuses_a_directory_that_is_not_an_interrupted_run(tmp_path):
    with pytest.raises(SeqclfError, match="is not an unfinished seqclf run"):
        resume(tmp_path)


def test_checkpoint_carries_early_stopping_and_plateau_counters_into_a_resumed_fit(
        tmp_path, keras):
    """Resuming continues patience, best value and best weights; it does not restart them."""
    import numpy as np

    from seqclf.callbacks import CHECKPOINT_BEST_WEIGHTS, checkpointer, load_checkpoint

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    stop = keras.callbacks.EarlyStopping(monitor="loss", patience=9, restore_best_weights=True)
    plateau = keras.callbacks.ReduceLROnPlateau(monitor="loss", patience=4, cooldown=3)
    saver = checkpointer(keras, tmp_path, [plateau, stop], {})
    for cb in (plateau, stop, saver):
        cb.set_model(model)
        cb.on_train_begin()
    stop.wait, stop.best, stop.best_epoch = 6, np.float32(0.25), 2
    stop.best_weights = [w + 1.0 for w in model.get_weights()]
    plateau.wait, plateau.best, plateau.cooldown_counter = 2, 0.5, 1
    saver.on_epoch_end(8)
    assert (tmp_path / CHECKPOINT_BEST_WEIGHTS).is_file()

    _, epoch, saved = load_checkpoint(keras, tmp_path)
    assert epoch == 9
    stop2 = keras.callbacks.EarlyStopping(monitor="loss", patience=9, restore_best_weights=True)
    plateau2 = keras.callbacks.ReduceLROnPlateau(monitor="loss", patience=4, cooldown=3)
    restorer = checkpointer(keras, tmp_path, [plateau2, stop2], saved)
    for cb in (plateau2, stop2, restorer):  # fit's order: theirs reset, then restored
        cb.set_model(model)
        cb.on_train_begin()
    assert (stop2.wait, stop2.best, stop2.best_epoch) == (6, 0.25, 2)
    assert (plateau2.wait, plateau2.best, plateau2.cooldown_counter) == (2, 0.5, 1)
    for restored, original in zip(stop2.best_weights, stop.best_weights):
        np.testing.assert_array_equal(restored, original)

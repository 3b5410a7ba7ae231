"""The Keras callbacks of a fit and the files they keep: the end-of-epoch checkpoint that
``seqclf train --resume`` continues from, ``history.csv``, and progress updates."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from seqclf import runs
from seqclf.errors import SeqclfError
from seqclf.progress import Progress


CHECKPOINT_MODEL = "model.keras"
CHECKPOINT_STATE = "state.json"


# Saving the whole model takes 30-50 ms on 2 CPU cores: after every sub-second epoch that
# is a tenth of the training time (benchmarks/performance.py). So a checkpoint is written
# after the first epoch and then at the first epoch end CHECKPOINT_SECONDS after the last
# one: an interrupted run repeats at most that much training (plus an epoch) on resume.
CHECKPOINT_SECONDS = 10.0


CHECKPOINT_BEST_WEIGHTS = "best_weights.npz"
# What early stopping and the plateau schedule count across epochs: a resumed run carries
# on counting (patience, best value, best weights) instead of starting afresh.
RESUMABLE = {"EarlyStopping": ("wait", "best", "best_epoch"),
             "ReduceLROnPlateau": ("wait", "best", "cooldown_counter")}


def checkpointer(k: Any, folder: Path, callbacks: list[Any], saved: dict[str, Any]) -> Any:
    """Saves the whole model (weights and optimizer state), the epoch count and the
    counters of ``callbacks`` (see RESUMABLE) at epoch ends (see CHECKPOINT_SECONDS),
    atomically, state file last: it never names an epoch or weights not saved. Restores
    the counters from ``saved`` (a loaded state file) when training begins.

    It must come after ``callbacks`` in the list given to fit: their ``on_train_begin``
    resets the counters that it then restores, and their ``on_epoch_end`` updates them
    before it saves.
    """
    tracked = [c for c in callbacks if type(c).__name__ in RESUMABLE]

    class Checkpoint(k.callbacks.Callback):
        written: float | None = None

        def on_train_begin(self, logs: Any = None) -> None:
            for cb in tracked:
                name = type(cb).__name__
                for attr, value in saved.get("callbacks", {}).get(name, {}).items():
                    setattr(cb, attr, value)
                if name == "EarlyStopping" and saved.get("best_weights"):
                    with np.load(folder / CHECKPOINT_BEST_WEIGHTS) as data:
                        cb.best_weights = [data[f"arr_{i}"] for i in range(len(data.files))]

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if self.written is not None and time.monotonic() - self.written < CHECKPOINT_SECONDS:
                return
            folder.mkdir(exist_ok=True)
            runs.save_model(folder / CHECKPOINT_MODEL, self.model)
            state: dict[str, Any] = {"epoch": epoch + 1, "callbacks": {}, "best_weights": False}
            for cb in tracked:
                name = type(cb).__name__
                state["callbacks"][name] = {a: _plain(getattr(cb, a)) for a in RESUMABLE[name]}
                if getattr(cb, "best_weights", None) is not None:
                    runs.write_arrays(folder / CHECKPOINT_BEST_WEIGHTS, cb.best_weights)
                    state["best_weights"] = True
            runs.write_json(folder / CHECKPOINT_STATE, state)
            self.written = time.monotonic()

    return Checkpoint()


def _plain(value: Any) -> Any:
    """A callback counter as JSON: numpy scalars become Python numbers."""
    return value.item() if isinstance(value, np.generic) else value


def load_checkpoint(k: Any, folder: Path) -> tuple[Any, int, dict[str, Any]] | None:
    """The model, epoch count and saved state of an interrupted fit, or None when there
    is none."""
    import json

    from seqclf.backend import tensorflow_left_unloaded

    state, model = folder / CHECKPOINT_STATE, folder / CHECKPOINT_MODEL
    if not (state.exists() and model.exists()):
        return None
    try:
        saved = json.loads(state.read_text(encoding="utf-8"))
        with tensorflow_left_unloaded():
            restored = k.saving.load_model(model, safe_mode=True)
        return restored, int(saved["epoch"]), saved
    except Exception as exc:  # a checkpoint cut short by the interruption itself
        raise SeqclfError(f"{folder}: the checkpoint cannot be read ({type(exc).__name__}). "
                          "Start a new run.") from None


def read_history(path: Path) -> dict[str, list[float]]:
    import pandas as pd

    if not path.exists():
        return {}
    frame = pd.read_csv(path)
    return {c: frame[c].tolist() for c in frame.columns if c != "epoch"}


def history_recorder(k: Any, path: Path) -> Any:
    """Times each epoch (``epoch_seconds`` in the logs) and rewrites history.csv after it.

    Rows already in the file (from an interrupted fit being resumed) are kept up to the
    epoch training restarts from.
    """
    import pandas as pd

    rows: list[dict[str, Any]] = pd.read_csv(path).to_dict("records") if path.exists() else []
    clock = {}

    def epoch_end(epoch: int, logs: dict[str, Any]) -> None:
        logs["epoch_seconds"] = time.perf_counter() - clock["t"]
        rows[:] = [r for r in rows if r["epoch"] <= epoch]
        rows.append({"epoch": epoch + 1, **{key: float(v) for key, v in logs.items()}})
        write_history(path, rows)

    return k.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs=None: clock.__setitem__("t", time.perf_counter()),
        on_epoch_end=epoch_end)


def history_rows(columns: dict[str, list[float]]) -> list[dict[str, Any]]:
    """history.csv rows (one per epoch) from history columns; a shorter column (an
    ensemble member that stopped early) is empty in the later rows."""
    n = max((len(v) for v in columns.values()), default=0)
    return [{"epoch": i + 1, **{key: float(v[i]) if i < len(v) else None
                                for key, v in columns.items()}}
            for i in range(n)]


def write_history(path: Path, rows: list[dict[str, Any]]) -> None:
    import pandas as pd

    runs.write_text(path, pd.DataFrame(rows).to_csv(index=False))


def progress_callback(k: Any, progress: Progress) -> Any:
    hooks = dict(on_epoch_begin=lambda epoch, logs=None: progress.epoch_begin(epoch),
                 on_epoch_end=lambda epoch, logs=None: progress.epoch_end(epoch, logs or {}))
    if progress.live:
        # Batch hooks make Keras sync every step, so only a live bar pays for them.
        hooks["on_train_batch_end"] = lambda batch, logs=None: progress.batch_end(batch, logs or {})
    return k.callbacks.LambdaCallback(**hooks)


def prediction_warmup(k: Any, batch: np.ndarray) -> Any:
    """Readies the model's prediction step (TensorFlow) while it trains: from the second
    epoch on, a background thread traces the step as a graph (``predict_on_batch``'s
    function, for ``batch``: zeros of the shape and type later predictions come in)
    without running it, so training draws the same random numbers with it or without.
    Tracing a recurrent model took 0.25-0.6 s of the command after training on 2 CPU
    cores, while training kept mostly to one core.

    It must come first in the list given to fit: every epoch's end (and the fit's) waits
    for the thread before the other callbacks run, so it only ever overlaps training and
    validation steps, never a checkpoint being saved; the first epoch, which traces the
    training and validation steps, runs alone. The step is made without XLA, as
    ``seqclf.train`` predicts (``backend.make_prediction_step``). A failure here is left
    for the prediction after the fit to meet and report.
    """
    import threading

    class PredictionWarmup(k.callbacks.Callback):
        thread: threading.Thread | None = None
        epochs_ended = 0

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            if self.epochs_ended != 1 or self.thread is not None:
                return
            from seqclf.backend import make_prediction_step

            model = self.model
            make_prediction_step(model)  # the step (tf.function) made now, traced below

            def warm() -> None:
                with contextlib.suppress(Exception):
                    # Traced, not run: running the step draws from the layers' seed
                    # generators (Keras's LSTM advances its dropout seed in inference
                    # too), at a point of training that depends on the threads' timing,
                    # and so changed the dropout masks of the epochs after it.
                    model.predict_function.get_concrete_function([(batch,)])

            self.thread = threading.Thread(target=warm, name="seqclf-prediction-warmup",
                                           daemon=True)
            self.thread.start()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.epochs_ended += 1
            self.on_train_end()

        def on_train_end(self, logs: Any = None) -> None:
            if self.thread is not None:
                self.thread.join()

    return PredictionWarmup()


def restore_or_build(k: Any, strategy: Any, checkpoint: Path | None,
                     build: Callable[[], Any]) -> tuple[Any, int, dict[str, Any]]:
    """The model to fit (under the distribution strategy, if any): the interrupted fit's
    from ``checkpoint`` with its epoch count and saved state, else a new one from
    ``build`` (epoch 0, no state)."""
    with strategy.scope() if strategy else contextlib.nullcontext():
        restored = load_checkpoint(k, checkpoint) if checkpoint is not None else None
        return restored if restored is not None else (build(), 0, {})


def fit_callbacks(k: Any, training: Any, callbacks: Any, checkpoint: Path | None,
                  saved_state: dict[str, Any]) -> list[Any]:
    """``callbacks`` and those ``training`` asks for, in the order a fit needs them:
    ReduceLROnPlateau first (it logs the rate history.csv records), then the given ones,
    early stopping, and the checkpoint last (see ``checkpointer``)."""
    callbacks = list(callbacks)
    if training.early_stopping is not None:
        es = training.early_stopping
        callbacks.append(k.callbacks.EarlyStopping(
            monitor=es.monitor, patience=es.patience, min_delta=es.min_delta,
            restore_best_weights=es.restore_best_weights))
    if training.reduce_lr_on_plateau is not None:
        callbacks.insert(0, k.callbacks.ReduceLROnPlateau(
            **training.reduce_lr_on_plateau.model_dump()))
    if checkpoint is not None:
        callbacks.append(checkpointer(k, checkpoint, callbacks, saved_state))
    return callbacks

"""The one training step that ``seqclf train`` and ``SequenceClassifier.fit`` share:
build the model and fit it on prepared arrays (``model.fit`` with seqclf's callbacks, a
family's closed-form ``fit``, or an ensemble's members one by one)."""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from seqclf.callbacks import checkpointer, load_checkpoint, progress_callback
from seqclf.compute import Hardware
from seqclf.config import Config
from seqclf.prepare import Prepared
from seqclf.progress import Progress


def fit_model(cfg: Config, d: Prepared, hardware: Hardware, callbacks: Any = (),
              progress: Progress | None = None, checkpoint: Path | None = None
              ) -> tuple[Any, float, dict[str, list[float]] | None]:
    """Build the model and fit it on prepared arrays: the one training step that
    ``train()`` and ``SequenceClassifier.fit`` share (seed, class weights, stateful batch
    padding, validation data, early stopping, learning-rate schedule). A family with a
    ``fit`` hook (a closed-form fit, e.g. minirocket's) is fitted by it instead of
    ``model.fit``, and the callbacks are not called.

    Args:
        cfg: The validated config.
        d: The arrays, from ``prepare`` or ``prepare_sets``.
        hardware: From ``seqclf.compute.setup`` (the distribution strategy, if any).
        callbacks: Extra Keras callbacks, run before early stopping and progress
            (``train()`` passes its run-directory ones: history, TensorBoard).
        progress: Receives per-epoch updates; None: silent.
        checkpoint: A folder for the end-of-epoch checkpoint (model with optimizer state,
            and the epoch count); when it already holds one, training continues from it.

    Returns:
        (the fitted Keras model, seconds spent fitting, the closed-form fit's history
        columns or None when the fit went through ``model.fit`` and its callbacks).
    """
    from seqclf import distributed
    from seqclf.backend import keras, set_seed
    from seqclf.model import build_model, fixed_batch_padding, member_config
    from seqclf.models import registry

    k = keras()
    set_seed(cfg.training.seed)
    if registry.hook(cfg.model.family, "combine") is not None:
        # an ensemble: each member fitted as a config of its own, then combined
        fit_start = time.time()
        models = []
        for section, seed in cfg.model.member_sections(cfg.training.seed):
            if progress is not None:
                progress.note(f"member {len(models) + 1}: {section['family']}, seed {seed}")
            models.append(fit_model(member_config(cfg, section, seed), d, hardware,
                                    progress=progress)[0])
        model = registry.get(cfg.model.family).combine(k, models)
        return model, time.time() - fit_start, {}
    closed_form = registry.hook(cfg.model.family, "fit")
    if closed_form is not None:
        model = build_model(cfg, d.prep)
        if progress is not None:
            progress.note(hardware.plan.resolved(model).line())
            progress.note(f"fitting model.family {cfg.model.family!r} in closed form")
        fit_start = time.time()
        history = closed_form(model, d.x_train, d.y_train, d.x_val, d.y_val, cfg)
        return model, time.time() - fit_start, history
    initial_epoch, saved_state = 0, {}
    with hardware.strategy.scope() if hardware.strategy else contextlib.nullcontext():
        restored = load_checkpoint(k, checkpoint) if checkpoint is not None else None
        if restored is not None:
            model, initial_epoch, saved_state = restored
        else:
            model = build_model(cfg, d.prep)
    t = cfg.training
    stateful = cfg.model.is_stateful()
    x, y, w = _weighted(d.x_train, d.y_train, t.class_weight, len(d.prep.classes),
                        fixed_batch_padding(len(d.x_train), t.batch_size, stateful))
    validation = None
    if d.x_val is not None:
        validation = _weighted(d.x_val, d.y_val, "none", len(d.prep.classes),
                               fixed_batch_padding(len(d.x_val), t.batch_size, stateful))
    callbacks = list(callbacks)
    if t.early_stopping is not None:
        es = t.early_stopping
        callbacks.append(k.callbacks.EarlyStopping(
            monitor=es.monitor, patience=es.patience, min_delta=es.min_delta,
            restore_best_weights=es.restore_best_weights))
    if t.reduce_lr_on_plateau is not None:  # first: it logs the rate history.csv records
        callbacks.insert(0, k.callbacks.ReduceLROnPlateau(**t.reduce_lr_on_plateau.model_dump()))
    if checkpoint is not None:
        callbacks.append(checkpointer(k, checkpoint, callbacks, saved_state))
    if progress is not None:
        progress.note(hardware.plan.resolved(model).line())
        progress.train_begin(t.epochs, math.ceil(len(x) / t.batch_size), initial_epoch)
        callbacks.append(progress_callback(k, progress))
    fit_start = time.time()
    # Keras's fit cannot run under the multi-worker strategy (see seqclf.distributed).
    if distributed.is_multi_worker(hardware.strategy):
        model = distributed.fit(model, hardware.strategy, x, y, w, validation, t.epochs,
                                initial_epoch, t.batch_size, t.shuffle, t.seed, callbacks,
                                rebuild=lambda: build_model(cfg, d.prep))
    else:
        model.fit(x, y, sample_weight=w, validation_data=validation, epochs=t.epochs,
                  initial_epoch=initial_epoch, batch_size=t.batch_size, shuffle=t.shuffle,
                  callbacks=callbacks, verbose=0)
    fit_seconds = time.time() - fit_start
    if progress is not None:
        progress.train_end()
    return model, fit_seconds, None


def _weighted(x: np.ndarray, y: np.ndarray, class_weight: str, n_classes: int, pad: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Arrays plus per-sample weights: balanced class weights, zero for batch padding."""
    weights = None
    if class_weight == "balanced":
        counts = np.bincount(y, minlength=n_classes).astype(np.float64)
        per_class = np.where(counts > 0, len(y) / (n_classes * np.maximum(counts, 1)), 0.0)
        weights = per_class[y]
    if pad:
        weights = np.ones(len(y)) if weights is None else weights
        x = np.concatenate([x, np.repeat(x[-1:], pad, axis=0)])
        y = np.concatenate([y, np.repeat(y[-1:], pad)])
        weights = np.concatenate([weights, np.zeros(pad)])
    return x, y, weights

"""The one training step that ``seqclf train`` and ``SequenceClassifier.fit`` share:
build the model and fit it on prepared arrays (``model.fit`` with seqclf's callbacks, a
family's closed-form ``fit``, or an ensemble's members one by one), with the imbalance
settings (class weights, focal loss, oversampling) and, after it, the temperature
scaling of ``training.calibration``, folded into the model."""

from __future__ import annotations

import inspect
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from seqclf.callbacks import (fit_callbacks, prediction_warmup, progress_callback,
                              restore_or_build)
from seqclf.compute import Hardware
from seqclf.config import Config
from seqclf.errors import must_be
from seqclf.prepare import Prepared
from seqclf.progress import Progress


def fit_model(cfg: Config, d: Prepared, hardware: Hardware, callbacks: Any = (),
              progress: Progress | None = None, checkpoint: Path | None = None,
              record: dict[str, Any] | None = None
              ) -> tuple[Any, float, dict[str, list[float]] | None]:
    """Build the model and fit it on prepared arrays: the one training step that
    ``train()`` and ``SequenceClassifier.fit`` share (seed, class weights, stateful batch
    padding, validation data, early stopping, learning-rate schedule). A family with a
    ``fit`` hook (a closed-form fit, e.g. minirocket's) builds and fits the model itself
    instead of ``model.fit``, and the callbacks are not called.

    Args:
        cfg: The validated config.
        d: The arrays, from ``prepare`` or ``prepare_sets``.
        hardware: From ``seqclf.compute.setup`` (the distribution strategy, if any).
        callbacks: Extra Keras callbacks, run before early stopping and progress
            (``train()`` passes its run-directory ones: history, TensorBoard).
        progress: Receives per-epoch updates; None: silent.
        checkpoint: A folder for the end-of-epoch checkpoint (model with optimizer state,
            and the epoch count); when it already holds one, training continues from it.
        record: Filled with what the fit decided: ``imbalance`` (the class weights per
            class, loss, sampling) and ``calibration`` (``calibrate``'s record, or None).

    Returns:
        (the fitted Keras model, seconds spent fitting, the history columns of a fit
        that did not run through ``model.fit``'s callbacks: a closed-form fit's, or an
        ensemble's members' as ``member_<i>_<column>``; None when it did).
    """
    from seqclf import distributed, split_step
    from seqclf.backend import keras, set_seed
    from seqclf.model import build_model, fixed_batch_padding, member_config
    from seqclf.models import registry

    k = keras()
    set_seed(cfg.training.seed)
    t = cfg.training
    per_class = class_weights(cfg, d.prep.classes, d.y_train)
    if d.streamed:  # data.streaming: batches read from the files each epoch
        from seqclf import streaming

        return streaming.fit(cfg, d, hardware, per_class, callbacks, progress, checkpoint)
    record = {} if record is None else record
    record["imbalance"] = {**t.imbalance(), "weights": (
        None if per_class is None else dict(zip(map(str, d.prep.classes), per_class.tolist())))}
    if registry.hook(cfg.model.family, "combine") is not None:
        # an ensemble: each member fitted as a config of its own (calibrated together
        # below, not one by one), then combined
        fit_start = time.time()
        models, history = [], {}
        for section, seed in cfg.model.member_sections(cfg.training.seed):
            if progress is not None:
                progress.note(f"member {len(models) + 1}: {section['family']}, seed {seed}")
            member = member_config(cfg, section, seed)
            member = member.model_copy(update={"training": member.training.model_copy(
                update={"calibration": "none"})})
            fitted, _, own = fit_model(member, d, hardware, progress=progress)
            models.append(fitted)
            # history.csv: each member's columns, member_<i>_loss, ...
            own = own if own is not None else fitted.history.history
            history.update({f"member_{len(models)}_{key}": [float(v) for v in values]
                            for key, values in own.items()})
        model = registry.get(cfg.model.family).combine(k, models)
        fit_seconds = time.time() - fit_start
        record["calibration"] = calibrate(model, cfg, d, progress)
        return model, fit_seconds, history
    closed_form = registry.hook(cfg.model.family, "fit")
    if closed_form is not None:
        # (its config refused the training keys of gradient descent: config.CLOSED_FORM_UNUSED)
        def build(**model: Any) -> Any:  # called by the family, after its choices from data
            chosen = cfg.model_copy(update={"model": cfg.model.model_copy(update=model)})
            built = build_model(chosen, d.prep, hardware.plan.work)
            if progress is not None and not model:
                progress.note(hardware.plan.resolved(built).line())
            return built

        if progress is not None:
            progress.note(f"fitting model.family {cfg.model.family!r} in closed form")
        fit_start = time.time()
        extra = {}
        if per_class is not None:
            if "sample_weight" not in inspect.signature(closed_form).parameters:
                raise must_be(cfg.source, "training.class_weight", f"'none' for model.family "
                              f"{cfg.model.family!r} (its fit takes no weights)",
                              t.class_weight)
            extra["sample_weight"] = per_class[d.y_train]
        if "progress" in inspect.signature(closed_form).parameters:
            extra["progress"] = progress
        model, history = closed_form(build, d.x_train, d.y_train, d.x_val, d.y_val, cfg,
                                     **extra)
        fit_seconds = time.time() - fit_start
        record["calibration"] = calibrate(model, cfg, d, progress)
        return model, fit_seconds, history
    model, initial_epoch, saved_state = restore_or_build(
        k, hardware.strategy, checkpoint, lambda: build_model(cfg, d.prep, hardware.plan.work))
    stateful = cfg.model.is_stateful()
    x_train, y_train = d.x_train, d.y_train
    if t.sampling == "oversample":
        x_train, y_train = oversample(x_train, y_train, t.seed)
    n_classes = len(d.prep.classes)
    targets = (lambda y: np.eye(n_classes, dtype=np.float32)[y]) if t.loss == "focal" else (
        lambda y: y)  # the focal loss is Keras's categorical one: one-hot targets
    x, y, w = _weighted(x_train, targets(y_train), per_class, y_train,
                        fixed_batch_padding(len(x_train), t.batch_size, stateful))
    validation = None
    if d.x_val is not None:
        validation = _weighted(d.x_val, targets(d.y_val), None, d.y_val,
                               fixed_batch_padding(len(d.x_val), t.batch_size, stateful))
    callbacks = fit_callbacks(k, t, callbacks, checkpoint, saved_state)
    if k.backend.backend() == "tensorflow" and hardware.strategy is None and not stateful:
        # in the batches seqclf.model.predict_proba predicts in: training.batch_size
        # sequences, the last batch padded to full size (a stateful model is left alone:
        # a prediction would move its states between training batches)
        callbacks.insert(0, prediction_warmup(k, np.zeros((t.batch_size, *x.shape[1:]),
                                                          x.dtype)))
    if progress is not None:
        progress.note(hardware.plan.resolved(model).line())
        progress.train_begin(t.epochs, math.ceil(len(x) / t.batch_size), initial_epoch)
        callbacks.append(progress_callback(k, progress))
    pad = last_batch_padding(model, cfg, len(x))
    record["last_batch_padding"] = pad
    # (the plan splits no batch under a distribution strategy)
    split = split_step.install(model, hardware.plan.batch_parts)
    fit_start = time.time()
    # Keras's fit cannot run under the multi-worker strategy (see seqclf.distributed).
    if distributed.is_multi_worker(hardware.strategy):
        model = distributed.fit(model, hardware.strategy, x, y, w, validation, t.epochs,
                                initial_epoch, t.batch_size, t.shuffle, t.seed, callbacks,
                                rebuild=lambda: build_model(cfg, d.prep, hardware.plan.work))
    elif pad or split:
        model.fit(full_batches(x, y, w, t.batch_size, t.shuffle, t.seed,
                               k.backend.backend(), one_thread=split),
                  shuffle=False,  # the batches shuffle themselves (Keras warned it ignores it)
                  validation_data=validation, validation_batch_size=t.batch_size,
                  epochs=t.epochs, initial_epoch=initial_epoch, callbacks=callbacks, verbose=0)
    else:
        model.fit(x, y, sample_weight=w, validation_data=validation, epochs=t.epochs,
                  initial_epoch=initial_epoch, batch_size=t.batch_size, shuffle=t.shuffle,
                  callbacks=callbacks, verbose=0)
    fit_seconds = time.time() - fit_start
    if progress is not None:
        progress.train_end()
    record["calibration"] = calibrate(model, cfg, d, progress)
    return model, fit_seconds, None


def last_batch_padding(model: Any, cfg: Config, n: int) -> int:
    """Rows that top up the last training batch of an epoch to full size, or 0.

    XLA compiles the training step once per batch shape, so a training set that is not a
    whole number of batches (the tutorial's 1395 = 27 x 50 + 45) compiles it twice: the
    second compile cost about 4 s of a cold run on 2 CPU cores for the tutorial's stacked
    LSTM (a tenth of a 30-epoch run), on TensorFlow with XLA and on JAX alike. Padded
    there (``full_batches``), where no stateful model (padded already, unshuffled) or
    distribution strategy is involved.
    """
    from seqclf.backend import keras
    from seqclf.model import fixed_batch_padding

    t = cfg.training
    padded = (keras().backend.backend() in ("tensorflow", "jax") and model.jit_compile is True
              and not cfg.model.is_stateful() and t.distribute == "none"
              and n > t.batch_size)
    return fixed_batch_padding(n, t.batch_size, padded)


def full_batches(x: np.ndarray, y: np.ndarray, w: np.ndarray | None, batch_size: int,
                 shuffle: bool, seed: int, backend: str = "tensorflow",
                 one_thread: bool = False) -> Any:
    """The training set as batches of one size (``last_batch_padding``), for ``fit``.

    Each epoch (reshuffled when ``shuffle``, seeded) ends with its short batch topped up
    by copies of its last row at weight 0, and its real rows' weights scaled by
    batch size / real rows: Keras divides a batch's weighted loss by the batch size, so
    that batch's loss and gradient are exactly the unpadded batch's. The epoch's
    training accuracy (an unweighted metric) counts the copies: at most batch size - 1
    rows more.

    On TensorFlow a tf.data pipeline (a Python ``PyDataset`` cost 0.25 s more per epoch
    there, through ``from_generator``), on a private thread of its own when
    ``one_thread`` (batches split into parts need the cores: with tf.data's own pool,
    one epoch in three or four ran at half speed); on JAX a ``keras.utils.PyDataset``,
    which Keras reads directly and which imports no TensorFlow.
    """
    n = len(x)
    weights = np.ones(n, np.float32) if w is None else w.astype(np.float32)
    if backend == "tensorflow":
        return _tf_full_batches(x, y, weights, batch_size, shuffle, seed, one_thread)
    from seqclf.backend import keras

    class FullBatches(keras().utils.PyDataset):
        def __init__(self) -> None:
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self.on_epoch_end()

        def __len__(self) -> int:
            return -(-n // batch_size)

        def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            rows = self.order[i * batch_size:(i + 1) * batch_size]
            top = batch_size - len(rows)
            full = np.concatenate([rows, np.repeat(rows[-1:], top)])
            scaled = weights[rows] * np.float32(batch_size / len(rows))
            return x[full], y[full], np.concatenate([scaled, np.zeros(top, np.float32)])

        def on_epoch_end(self) -> None:
            self.order = self.rng.permutation(n) if shuffle else np.arange(n)

    return FullBatches()


def _tf_full_batches(x: np.ndarray, y: np.ndarray, weights: np.ndarray, batch_size: int,
                     shuffle: bool, seed: int, one_thread: bool = False) -> Any:
    """``full_batches`` as a tf.data pipeline."""
    import tensorflow as tf

    n = len(x)
    xs, ys, ws = tf.constant(x), tf.constant(y), tf.constant(weights)
    order = tf.data.Dataset.range(n)
    if shuffle:
        order = order.shuffle(n, seed=seed, reshuffle_each_iteration=True)

    def gather(rows: Any) -> tuple[Any, Any, Any]:
        real = tf.shape(rows)[0]
        top = batch_size - real
        full = tf.concat([rows, tf.repeat(rows[-1:], top)], 0)
        scale = tf.cast(batch_size, tf.float32) / tf.cast(real, tf.float32)
        weights = tf.concat([tf.gather(ws, rows) * scale, tf.zeros([top])], 0)
        return (tf.ensure_shape(tf.gather(xs, full), [batch_size, *x.shape[1:]]),
                tf.ensure_shape(tf.gather(ys, full), [batch_size, *y.shape[1:]]),
                tf.ensure_shape(weights, [batch_size]))

    batches = order.batch(batch_size).map(gather).prefetch(tf.data.AUTOTUNE)
    if one_thread:
        options = tf.data.Options()
        options.threading.private_threadpool_size = 1
        options.autotune.enabled = False
        batches = batches.with_options(options)
    return batches


def class_weights(cfg: Config, classes: list[Any], y: np.ndarray) -> np.ndarray | None:
    """``training.class_weight`` as one weight per class (None: unweighted).

    ``balanced``: n / (classes x count), scikit-learn's rule (0 for a class absent from
    the training data); a mapping: its weight per label (matched as text), 1 for labels
    it leaves out.

    Raises:
        SeqclfError: The mapping names a label that is not a training class.
    """
    spec = cfg.training.class_weight
    n_classes = len(classes)
    if spec == "none":
        return None
    if spec == "balanced":
        counts = np.bincount(y, minlength=n_classes).astype(np.float64)
        return np.where(counts > 0, len(y) / (n_classes * np.maximum(counts, 1)), 0.0)
    names = [str(c) for c in classes]
    for label in spec:
        if label not in names:
            raise must_be(cfg.source, "training.class_weight", "a mapping over the training "
                          f"labels ({', '.join(names)})", label)
    return np.array([spec.get(name, 1.0) for name in names], dtype=np.float64)


def oversample(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Every class drawn as often as the largest: each sequence once, then random draws
    (with replacement, seeded) from the smaller classes; shuffled, so every batch is
    balanced in expectation."""
    rng = np.random.default_rng(seed)
    counts = np.bincount(y)
    target = counts.max()
    index = [np.arange(len(y))]
    for c, count in enumerate(counts):
        if 0 < count < target:
            index.append(rng.choice(np.flatnonzero(y == c), target - count, replace=True))
    index = rng.permutation(np.concatenate(index))
    return x[index], y[index]


def calibrate(model: Any, cfg: Config, d: Prepared, progress: Progress | None = None
              ) -> dict[str, Any] | None:
    """``training.calibration: temperature``: the temperature that best fits the
    validation split (log loss), folded into the model's last Dense layer (``classes``:
    its kernel and bias times the temperature), so every later use of the model, saved
    or exported, gives the calibrated probabilities and the same labels.

    The temperature is minirocket's ``fit_temperature`` on the validation log
    probabilities (logits up to a per-row constant, which softmax ignores). An
    ensemble's members are each scaled by their own temperature.

    Returns:
        None (calibration off), else ``method``, ``temperature`` (a list for an
        ensemble: one per member), ``validation_n`` and the validation ``ece`` and
        ``log_loss`` before and after.
    """
    from seqclf import probability
    from seqclf.model import member_config, predict_proba
    from seqclf.models import registry
    from seqclf.models.minirocket import fit_temperature

    if cfg.training.calibration == "none":
        return None
    if d.x_val is None or not len(d.x_val):
        raise must_be(cfg.source, "training.calibration", "'none' without validation data "
                      "(set training.validation_split)", cfg.training.calibration)
    if registry.hook(cfg.model.family, "combine") is not None:
        members = [(model.get_layer(f"member_{i}"), member_config(cfg, section, seed))
                   for i, (section, seed) in enumerate(
                       cfg.model.member_sections(cfg.training.seed), start=1)]
    else:
        members = [(model, cfg)]
    before = predict_proba(model, d.x_val, cfg)
    temperatures = []
    for member, member_cfg in members:
        proba = predict_proba(member, d.x_val, member_cfg)
        t = fit_temperature(np.log(np.clip(proba, probability.EPS, 1.0)), d.y_val)
        head = member.get_layer("classes")
        kernel, bias = head.get_weights()
        head.set_weights([(kernel * t).astype(kernel.dtype), (bias * t).astype(bias.dtype)])
        temperatures.append(float(t))
    after = predict_proba(model, d.x_val, cfg)
    scores = {}
    for name, proba in (("before", before), ("after", after)):
        q = probability.quality(d.y_val, proba)
        scores[f"ece_{name}"], scores[f"log_loss_{name}"] = q["ece"], q["log_loss"]
    if progress is not None:
        progress.note(f"calibration: logits x {', '.join(f'{t:.3g}' for t in temperatures)}; "
                      f"validation ECE {scores['ece_before']:.4f} -> {scores['ece_after']:.4f}")
    return {"method": "temperature",
            "temperature": temperatures[0] if len(members) == 1 else temperatures,
            "validation_n": int(len(d.x_val)), "validation": scores}


def _weighted(x: np.ndarray, y: np.ndarray, per_class: np.ndarray | None,
              labels: np.ndarray, pad: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Arrays plus per-sample weights: the class weights of ``labels`` (class indices),
    zero for batch padding. ``y`` is what the loss takes: ``labels``, or one-hot."""
    weights = None if per_class is None else per_class[labels]
    if pad:
        weights = np.ones(len(y)) if weights is None else weights
        x = np.concatenate([x, np.repeat(x[-1:], pad, axis=0)])
        y = np.concatenate([y, np.repeat(y[-1:], pad, axis=0)])
        weights = np.concatenate([weights, np.zeros(pad)])
    return x, y, weights

"""Training, scoring and prediction on data streamed from its files (``data.streaming``).

The data side (chunks, the counting pass, parts, shuffle buffer, batches) is
``seqclf.data.stream``; this module turns it into what Keras consumes: a
``keras.utils.PyDataset`` of padded batches (backend-neutral: ``model.fit`` takes it on
TensorFlow, JAX and torch), the fit with seqclf's callbacks, the multi-worker fit
(``seqclf.distributed.fit_stream``: each worker reads only its own files), and
predictions chunk by chunk.

Batches are padded to the preprocessing's ``max_length`` (``data.max_length``, else the
longest training sequence, found by the counting pass), as in memory, so a model trained
either way takes the same input; masks are the same. With ``training.shuffle: false`` the
batches are exactly the in-memory ones, in the same order.

What streaming cannot do, refused by :func:`check` with one line: families fitted in
closed form on all the data at once (minirocket's ``fit``) and ensembles (their members
are fitted one after another on arrays), stateful models (their state runs across a
whole pass), oversampling, temperature calibration and thresholds chosen on validation
predictions (they need the validation set's arrays).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from seqclf.compute import Hardware
from seqclf.config import Config
from seqclf.data import Preprocessor
from seqclf.data.sets import check_same_features
from seqclf.data.stream import (Part, moments, rebatch, reorder, scan, shard_files, shuffled,
                                split_parts)
from seqclf.errors import SeqclfError
from seqclf.models import registry
from seqclf.progress import Progress


def refusal(cfg: Config) -> str | None:
    """Why ``cfg`` cannot train on streamed data (None: it can)."""
    family = cfg.model.family
    t = cfg.training
    if registry.hook(family, "combine") is not None:
        return (f"model.family {family!r} (its members are fitted one by one on arrays "
                "in memory)")
    if registry.hook(family, "fit") is not None:
        return (f"model.family {family!r} (it is fitted in closed form on all the "
                "training data at once)")
    if cfg.model.is_stateful():
        return "a stateful model (its state runs across the whole data)"
    if getattr(t, "sampling", "none") != "none":
        return f"training.sampling {t.sampling!r} (it draws from every sequence at once)"
    if getattr(t, "calibration", "none") != "none":
        return (f"training.calibration {t.calibration!r} (it is fitted on the validation "
                "arrays)")
    if getattr(t, "chooses_threshold", lambda: False)():
        return "a training.threshold chosen on validation (it needs the validation arrays)"
    return None


def check(cfg: Config) -> None:
    """Refuse what cannot stream, in one line.

    Raises:
        SeqclfError: :func:`refusal` says why not.
    """
    why = refusal(cfg)
    if why is None:
        return
    if cfg.data.streaming is True:
        raise SeqclfError(f"{cfg.source}: data.streaming must be false for {why}. Got true "
                          "instead.")
    raise SeqclfError(f"{cfg.source}: the data exceeds data.memory_budget, so data.streaming "
                      f"auto streams it, and {why} cannot train on a stream. Change that "
                      "setting, or set data.streaming: false to read the data into memory "
                      "anyway.")


# --- the parts of a run --------------------------------------------------------------


def read_parts(cfg: Config, tokens: bool = False) -> tuple[Part, Part]:
    """The training and test parts of the config's data, by one pass over each file: the
    test set is ``data.test``, or split off the training files exactly as in memory."""
    data = cfg.data
    train = scan(data.train, data, missing_values=data.missing_values, tokens=tokens)
    if data.test is not None:
        test = scan(data.test, data, missing_values=data.missing_values)
        check_same_features(train.feature_names, _named(test))
        return (Part(train, np.arange(len(train.lengths))),
                Part(test, np.arange(len(test.lengths))))
    rest, held = split_parts(train, data.test_split, cfg.training.seed, data.stratify,
                             "data.test_split")
    return Part(train, rest), Part(train, held)


def _named(s: Any) -> Any:
    """A stand-in with the attributes ``check_same_features`` reads."""
    from types import SimpleNamespace

    return SimpleNamespace(feature_names=s.feature_names, source=s.source)


def split_validation(cfg: Config, train: Part) -> tuple[Part, Part | None]:
    """The validation part split off the training part (``training.validation_split``),
    as ``prepare_sets`` splits it in memory."""
    fraction = cfg.training.validation_split
    if fraction <= 0:
        return train, None
    rest, held = split_parts(train.scan, fraction, cfg.training.seed, cfg.data.stratify,
                             "training.validation_split", among=train.positions)
    return Part(train.scan, rest), Part(train.scan, held)


def profile(train: Part, tokens: bool) -> Any:
    """The facts ``model.family: auto`` chooses from, without the steps."""
    from collections import Counter

    from seqclf.models.auto import DataProfile

    counts = Counter(str(v) for v in train.labels)
    lengths = train.lengths
    vocabulary = int(train.scan.largest) + 1 if tokens else None
    return DataProfile(len(train), len(counts), int(lengths.min()), int(lengths.max()),
                       len(train.feature_names), min(counts.values()), vocabulary)


def preprocessor(cfg: Config, train: Part) -> Preprocessor:
    """The preprocessing fitted on the training part: labels and lengths from the
    counting pass, scaling from one more pass (standard or minmax only)."""
    if train.labels is None:
        raise SeqclfError(f"{train.source}: training data needs labels "
                          f"(column {cfg.data.label_column!r}).")
    center, scale = moments(train, cfg)
    return Preprocessor.from_summary(train.labels, train.lengths, train.feature_names,
                                     train.source, center, scale, cfg)


# --- batches -------------------------------------------------------------------------


def batches(cfg: Config, part: Part, prep: Preprocessor, per_class: np.ndarray | None,
            shuffle: bool, epoch: int, batch_size: int, files: list[int] | None = None
            ) -> Iterator[tuple[np.ndarray, ...]]:
    """A part's padded batches ``(x, y[, w])``: chunks read, transformed by the
    preprocessing, shuffled through ``data.shuffle_buffer`` (files in a new order each
    epoch) when ``shuffle``, cut into batches."""
    t = cfg.training
    rng = np.random.default_rng([t.seed, epoch]) if shuffle else None
    order = reorder(files if files is not None else _files(part), rng)
    one_hot = getattr(t, "loss", "crossentropy") == "focal"
    n_classes = len(prep.classes)

    def arrays() -> Iterator[tuple[np.ndarray, ...]]:
        for chunk in part.chunks(cfg.data, True, cfg.data.missing_values, order=order):
            x, _ = prep.transform(chunk)
            y = prep.encode_labels(chunk.labels)
            target = np.eye(n_classes, dtype=np.float32)[y] if one_hot else y
            if per_class is None:
                yield x, target
            else:
                yield x, target, per_class[y].astype(np.float32)

    stream = arrays()
    if rng is not None:
        stream = shuffled(stream, cfg.data.shuffle_buffer, rng)
    return rebatch(stream, batch_size)


def _files(part: Part) -> list[int]:
    return part.files if part.files is not None else list(range(len(part.scan.files)))


def py_dataset(make: Callable[[int], Iterator[tuple[np.ndarray, ...]]], n_batches: int) -> Any:
    """A ``keras.utils.PyDataset`` over ``make(epoch)``'s batches, read in order (Keras
    asks for batch 0, 1, ... each epoch; any other order restarts the stream and skips
    ahead)."""
    from seqclf.backend import keras

    class StreamedBatches(keras().utils.PyDataset):
        def __init__(self) -> None:
            super().__init__(workers=1, use_multiprocessing=False)
            self.epoch = 0
            self._batches: Iterator[Any] | None = None
            self._next = 0

        def __len__(self) -> int:
            return n_batches

        def __getitem__(self, index: int) -> Any:
            if index >= n_batches:
                raise IndexError(index)
            if self._batches is None or index != self._next:
                self._batches, self._next = make(self.epoch), 0
                for _ in range(index):
                    next(self._batches)
                    self._next += 1
            self._next += 1
            return next(self._batches)

        def on_epoch_end(self) -> None:
            self.epoch += 1
            self._batches = None

    return StreamedBatches()


# --- the fit -------------------------------------------------------------------------


def fit(cfg: Config, d: Any, hardware: Hardware, per_class: np.ndarray | None,
        callbacks: Any = (), progress: Progress | None = None,
        checkpoint: Path | None = None) -> tuple[Any, float, None]:
    """``fitting.fit_model``'s streaming branch: the model fitted on batches read from the
    files each epoch (``model.fit`` on a ``PyDataset``; the multi-worker loop on each
    worker's own files), with the same callbacks as in memory; ``per_class``: the class
    weights ``fit_model`` computed (``fitting.class_weights``), or None."""
    from seqclf import distributed, split_step
    from seqclf.backend import keras, set_seed
    from seqclf.callbacks import fit_callbacks, progress_callback, restore_or_build
    from seqclf.model import build_model

    check(cfg)
    k = keras()
    set_seed(cfg.training.seed)
    t = cfg.training
    model, initial_epoch, saved_state = restore_or_build(
        k, hardware.strategy, checkpoint, lambda: build_model(cfg, d.prep, hardware.plan.work))
    steps = math.ceil(len(d.train) / t.batch_size)
    callbacks = fit_callbacks(k, t, callbacks, checkpoint, saved_state)  # as fit_model's
    if progress is not None:
        progress.note(hardware.plan.resolved(model).line())
        progress.note(f"streaming {len(d.train):,} training sequences from "
                      f"{len(d.train.scan.files)} file(s), shuffle buffer "
                      f"{cfg.data.shuffle_buffer:,}" if t.shuffle else
                      f"streaming {len(d.train):,} training sequences from "
                      f"{len(d.train.scan.files)} file(s), in file order")
        progress.train_begin(t.epochs, steps, initial_epoch)
        callbacks.append(progress_callback(k, progress))
    fit_start = time.time()
    if distributed.is_multi_worker(hardware.strategy):
        model = _fit_workers(cfg, d, model, hardware, per_class, steps, callbacks,
                             lambda: build_model(cfg, d.prep, hardware.plan.work), progress)
    else:
        split_step.install(model, hardware.plan.batch_parts)
        train = py_dataset(lambda epoch: batches(cfg, d.train, d.prep, per_class, t.shuffle,
                                                 epoch, t.batch_size), steps)
        validation = None
        if d.val is not None:
            validation = py_dataset(lambda epoch: batches(cfg, d.val, d.prep, None, False, 0,
                                                          t.batch_size),
                                    math.ceil(len(d.val) / t.batch_size))
        train.epoch = initial_epoch
        model.fit(train, validation_data=validation, epochs=t.epochs,
                  initial_epoch=initial_epoch, shuffle=False, callbacks=callbacks, verbose=0)
    fit_seconds = time.time() - fit_start
    if progress is not None:
        progress.train_end()
    return model, fit_seconds, None


def _fit_workers(cfg: Config, d: Any, model: Any, hardware: Hardware,
                 per_class: np.ndarray | None, steps: int, callbacks: list[Any],
                 rebuild: Callable[[], Any], progress: Progress | None = None) -> Any:
    """The multi-worker fit: worker i of n reads files i, i+n, ... (``shard_files``),
    which it says (a progress note) the first time it reads them."""
    import tensorflow as tf

    from seqclf import distributed

    t = cfg.training
    strat = hardware.strategy
    replicas = strat.num_replicas_in_sync
    if t.batch_size % replicas:
        raise SeqclfError(f"{cfg.source}: training.batch_size must be a multiple of the "
                          f"{replicas} replicas of the cluster when streaming with "
                          f"training.distribute 'multi_worker'. Got {t.batch_size} instead.")
    workers = distributed.cluster_spec(cfg.source)["workers"]
    for part, name in ((d.train, "training"), (d.val, "validation")):
        if part is None:
            continue
        for worker in range(workers):
            if not len(part.only(shard_files(len(part.scan.files), workers, worker))):
                raise SeqclfError(
                    f"{part.source}: worker {worker} of {workers} has no {name} sequences in "
                    f"its files (worker i reads files i, i+{workers}, ...; there are "
                    f"{len(part.scan.files)}). Split the data into more files (seqclf data "
                    "convert --shards) than workers.")
    if d.prep.vocab_size is not None:
        x_spec = tf.TensorSpec((None, d.prep.max_length), tf.int32)
    else:
        x_spec = tf.TensorSpec((None, d.prep.max_length, d.prep.n_features), tf.float32)
    signature = (x_spec, tf.TensorSpec((None,), tf.int64), tf.TensorSpec((None,), tf.float32))
    if getattr(t, "loss", "crossentropy") == "focal":
        raise SeqclfError(f"{cfg.source}: training.loss must be 'crossentropy' when "
                          "streaming with training.distribute 'multi_worker'. Got 'focal' "
                          "instead.")

    said: set[tuple[int, int]] = set()

    def maker(part: Part, weights: np.ndarray | None, shuffle: bool) -> Any:
        def make(worker: int, n: int, per_replica: int, epoch: int) -> Iterator[Any]:
            files = shard_files(len(part.scan.files), n, worker)
            if progress is not None and (worker, id(part)) not in said:
                said.add((worker, id(part)))
                names = ", ".join(str(part.scan.files[f]) for f in files)
                progress.note(f"worker {worker} of {n} reads {len(files)} of "
                              f"{len(part.scan.files)} files: {names}")
            for batch in batches(cfg, part.only(files), d.prep, weights, shuffle, epoch,
                                 per_replica, files):
                x, y = batch[0], batch[1].astype(np.int64)
                w = batch[2] if len(batch) > 2 else np.ones(len(y), dtype=np.float32)
                yield x, y, w
        return make

    val = maker(d.val, None, False) if d.val is not None else None
    return distributed.fit_stream(
        model, strat, maker(d.train, per_class, t.shuffle), val, signature, steps,
        math.ceil(len(d.val) / t.batch_size) if d.val is not None else 0, t.epochs,
        t.batch_size, callbacks, rebuild)


# --- predictions ---------------------------------------------------------------------


def predicted(model: Any, cfg: Config, prep: Preprocessor, chunks: Iterator[Any],
              streamed: bool = True) -> Iterator[tuple[list[str], list[Any] | None,
                                                         np.ndarray, int]]:
    """Class probabilities of sequences read in chunks: (ids, labels or None,
    probabilities, sequences truncated), block by block.

    Streamed, the chunks' padded arrays are regrouped into blocks of 32 batches
    (``training.batch_size``) counted from the first sequence, so the model sees exactly
    the batches it sees on the whole set in memory, and gives bit-identical
    probabilities (a batch of another size may round differently). Not streamed (one
    chunk, the whole set), the chunk is one block.
    """
    from seqclf.model import predict_proba

    def arrays() -> Iterator[tuple[np.ndarray, ...]]:
        for chunk in chunks:
            x, truncated = prep.transform(chunk)
            n = len(chunk)
            cut = np.zeros(n, dtype=np.int64)
            cut[0] = truncated
            labels = chunk.labels if chunk.labels is not None else [None] * n
            yield x, np.array(chunk.ids, dtype=object), np.array(labels, dtype=object), cut

    blocks = rebatch(arrays(), 32 * cfg.training.batch_size) if streamed else arrays()
    for x, ids, labels, cut in blocks:
        has = len(labels) and labels[0] is not None
        yield (list(ids), list(labels) if has else None, predict_proba(model, x, cfg),
               int(cut.sum()))


def test_proba(model: Any, d: Any, cfg: Config) -> np.ndarray:
    """The test set's class probabilities: on the arrays in memory, or chunk by chunk."""
    from seqclf.model import predict_proba

    if not d.streamed:
        return predict_proba(model, d.x_test, cfg)
    parts = [p for _, _, p, _ in predicted(
        model, cfg, d.prep, d.test.chunks(cfg.data, True, cfg.data.missing_values))]
    return np.concatenate(parts) if parts else np.zeros((0, len(d.prep.classes)))

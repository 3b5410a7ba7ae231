"""The :class:`Preprocessor`: labels, scaling, padding and truncation, fitted on training
data alone and saved with each run, so evaluation applies exactly the same steps."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from seqclf.config import Config
from seqclf.data.sets import SequenceSet, check_same_features, label_sort_key
from seqclf.errors import SeqclfError

# Padded steps of numeric input hold this value; the Masking layer skips steps whose
# features all equal it. It is far outside any scaled data, and a real step that
# equals it is rejected rather than silently masked.
MASK_VALUE = -1.0e9


@dataclass
class Preprocessor:
    """Everything needed to turn a SequenceSet into model inputs, saved with each run.

    Attributes:
        feature_names: Training feature columns, in order.
        classes: Label vocabulary (raw values, sorted); the model's output order.
        majority_class: The most frequent training label (the baseline's prediction).
        max_length: Steps per padded sequence.
        padding: ``post`` or ``pre``: where padding goes.
        truncating: ``post`` or ``pre``: which end of a long sequence is cut.
        pad_value: Value of padded steps (MASK_VALUE when masked numeric input).
        scaling: ``none`` | ``standard`` | ``minmax`` | ``per_sequence`` (each sequence
            and channel z-normalised over its own real steps at transform time; nothing
            is fitted, center and scale stay 0 and 1).
        center: Per-feature value subtracted before dividing by ``scale``.
        scale: Per-feature divisor.
        vocab_size: With an embedding: token ids must be in 1..vocab_size-1.
    """

    feature_names: list[str]
    classes: list[Any]
    majority_class: Any
    max_length: int
    padding: str = "post"
    truncating: str = "post"
    pad_value: float = 0.0
    scaling: str = "none"
    center: list[float] = field(default_factory=list)
    scale: list[float] = field(default_factory=list)
    vocab_size: int | None = None

    @classmethod
    def fit(cls, train: SequenceSet, cfg: Config) -> "Preprocessor":
        """Learn label vocabulary, padding length and scaling from training data only."""
        if train.labels is None:
            raise SeqclfError(f"{train.source}: training data needs labels "
                              f"(column {cfg.data.label_column!r}).")
        stacked = np.concatenate(train.sequences)
        return cls.from_summary(train.labels, [len(s) for s in train.sequences],
                                train.feature_names, train.source,
                                *scaling_of(cfg.data.scaling, stacked), cfg)

    @classmethod
    def from_summary(cls, raw_labels: list[Any], lengths: Any, feature_names: list[str],
                     source: str, center: list[float], scale: list[float],
                     cfg: Config) -> "Preprocessor":
        """The preprocessing of training data described by its labels, lengths and
        scaling (``fit`` computes them from sequences in memory; streaming from one pass
        over the files)."""
        labels = pd.Series([str(v) for v in raw_labels])
        by_key = {str(v): v for v in raw_labels}
        keys = sorted(by_key, key=label_sort_key)
        if cfg.data.classes is not None:
            # A fixed vocabulary: the output layer covers every listed class, seen or not.
            declared = {str(v): v for v in cfg.data.classes}
            extra = [k for k in keys if k not in declared]
            if extra:
                raise SeqclfError(f"{source}: label {extra[0]!r} is not in data.classes. "
                                  "Add it there, or remove data.classes.")
            by_key, keys = declared, list(declared)
        elif len(keys) < 2:
            raise SeqclfError(f"{source}: training data has one class only "
                              f"({keys[0]!r}). A classifier needs at least two.")
        n_features = len(feature_names)
        embedding = cfg.model.token_input()
        if embedding is not None:
            pad_value = 0.0
        else:
            pad_value = MASK_VALUE if cfg.model.masking else 0.0
        prep = cls(
            feature_names=list(feature_names),
            classes=[by_key[k] for k in keys],
            majority_class=by_key[labels.value_counts().index[0]],
            max_length=cfg.data.max_length or int(max(lengths)),
            padding=cfg.data.padding, truncating=cfg.data.truncating, pad_value=pad_value,
            scaling=cfg.data.scaling, center=list(center), scale=list(scale),
            vocab_size=None if embedding is None else embedding.input_dim)
        if embedding is not None and n_features != 1:
            raise SeqclfError(f"{source}: model.embedding needs one token feature per "
                              f"step; the data has {n_features} ({', '.join(feature_names)}).")
        return prep

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def transform(self, dataset: SequenceSet) -> tuple[np.ndarray, int]:
        """Scale, pad and truncate to an array.

        Returns:
            (array of shape (n, max_length, n_features), or (n, max_length) of int32 token
            ids with an embedding; number of sequences that were truncated).
        """
        check_same_features(self.feature_names, dataset)
        n, t, f = len(dataset), self.max_length, self.n_features
        out = np.full((n, t, f), self.pad_value, dtype=np.float32)
        center, scale = np.asarray(self.center), np.asarray(self.scale)
        truncated = 0
        for i, seq in enumerate(dataset.sequences):
            if len(seq) > t:
                truncated += 1
                seq = seq[:t] if self.truncating == "post" else seq[-t:]
            if self.scaling == "per_sequence":
                seq = z_normalise(seq)
            with np.errstate(over="ignore", invalid="ignore"):  # checked just below
                seq = (seq - center) / scale
                if self.padding == "post":
                    out[i, : len(seq)] = seq
                else:
                    out[i, t - len(seq):] = seq
        if not np.isfinite(out).all():  # scaling by a tiny spread can overflow float32
            i = int(np.argwhere(~np.isfinite(out))[0][0])
            raise SeqclfError(f"{dataset.where(i)}: a value overflows "
                              f"32-bit floats after {self.scaling} scaling (the training spread "
                              "is too small or the values too large). Rescale the data or "
                              "change data.scaling.")
        if self.vocab_size is not None:
            return self._tokens(dataset, out[..., 0]), truncated
        if self.pad_value == MASK_VALUE:
            lengths = np.array([min(len(s), t) for s in dataset.sequences])
            real = np.arange(t)[None, :] < lengths[:, None]
            if self.padding == "pre":
                real = real[:, ::-1]
            clash = real & np.all(out == MASK_VALUE, axis=-1)
            if clash.any():
                i = int(np.argwhere(clash)[0][0])
                raise SeqclfError(f"{dataset.where(i)}: a step equals the "
                                  f"padding value {MASK_VALUE:g} in every feature. Rescale the data.")
        return out, truncated

    def _tokens(self, dataset: SequenceSet, values: np.ndarray) -> np.ndarray:
        real = np.concatenate(dataset.sequences)[:, 0]
        bad = (real != np.round(real)) | (real < 1) | (real >= self.vocab_size)
        if bad.any():
            value = real[int(np.flatnonzero(bad)[0])]
            seq = next(i for i, s in enumerate(dataset.sequences) if np.isin(value, s[:, 0]))
            raise SeqclfError(
                f"{dataset.where(seq)}: token {value:g} must be a whole "
                f"number from 1 to {self.vocab_size - 1} (model.embedding.input_dim - 1; 0 is "
                "padding). Raise input_dim or fix the data.")
        return values.astype(np.int32)

    def encode_labels(self, labels: list[Any]) -> np.ndarray:
        """Class indices for raw labels; -1 for a label training never saw."""
        index = {str(c): i for i, c in enumerate(self.classes)}
        return np.array([index.get(str(v), -1) for v in labels], dtype=np.int64)

    def to_json(self) -> str:
        """The preprocessing state as JSON text (written into the run directory)."""
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> "Preprocessor":
        return cls(**json.loads(text))


def scaling_of(scaling: str, stacked: np.ndarray) -> tuple[list[float], list[float]]:
    """``data.scaling``'s center and scale per feature, from every training step
    (rows of ``stacked``): standard: mean and standard deviation; minmax: minimum and
    range; otherwise 0 and 1. A constant feature keeps scale 1."""
    n_features = stacked.shape[1]
    center, scale = [0.0] * n_features, [1.0] * n_features
    if scaling == "standard":
        center = stacked.mean(axis=0).tolist()
        std = stacked.std(axis=0)
        scale = np.where(std > 0, std, 1.0).tolist()  # constant features stay constant
    elif scaling == "minmax":
        lo, hi = stacked.min(axis=0), stacked.max(axis=0)
        center = lo.tolist()
        scale = np.where(hi > lo, hi - lo, 1.0).tolist()
    return center, scale


def z_normalise(seq: np.ndarray) -> np.ndarray:
    """Each channel of one (steps, features) sequence to mean 0 and standard deviation 1.

    Computed over the steps given (the real, unpadded ones, after truncation). A channel
    whose spread is below 1e-10 of its largest magnitude (a constant one, up to rounding)
    becomes all zeros rather than amplified rounding noise.
    """
    mean = seq.mean(axis=0)
    std = seq.std(axis=0)
    constant = std <= 1e-10 * np.abs(seq).max(axis=0)
    return np.where(constant, 0.0, (seq - mean) / np.where(constant, 1.0, std))

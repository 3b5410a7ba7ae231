"""Sequences as read: :class:`SequenceSet`, and the rule that evaluation data has the
training features."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from seqclf.errors import SeqclfError


@dataclass
class SequenceSet:
    """Variable-length sequences read from one file (or the shards of one dataset).

    Attributes:
        ids: One id per sequence (strings).
        sequences: One float64 array of shape (steps, features) per sequence.
        labels: Raw labels (int or str), or None when the file has no label column.
        feature_names: Names of the feature columns (wide layout: one, ``value``).
        source: The file the sequences came from (or the shards' pattern), for messages.
        lines: The line (CSV) or row (Parquet, .npz) of each sequence's first row, for
            messages.
        missing: How many empty feature cells were filled (``data.missing_values``).
        unit: What ``lines`` count: ``line`` (a CSV's lines, the header is line 1) or
            ``row`` (a table's rows, from 1).
        files: Each sequence's file when the set was read from several shards, else None
            (then every sequence comes from ``source``).
    """

    ids: list[str]
    sequences: list[np.ndarray]
    labels: list[Any] | None
    feature_names: list[str]
    source: str
    lines: list[int]
    missing: int = 0
    unit: str = "line"
    files: list[str] | None = None

    def __len__(self) -> int:
        return len(self.sequences)

    def where(self, i: int) -> str:
        """Where sequence ``i`` starts, for a message: ``<file>: line N``."""
        return f"{self.source if self.files is None else self.files[i]}: {self.unit} {self.lines[i]}"

    def subset(self, index: np.ndarray | list[int]) -> "SequenceSet":
        """The sequences at ``index``, in that order."""
        return SequenceSet(
            ids=[self.ids[i] for i in index],
            sequences=[self.sequences[i] for i in index],
            labels=None if self.labels is None else [self.labels[i] for i in index],
            feature_names=self.feature_names, source=self.source,
            lines=[self.lines[i] for i in index], missing=self.missing, unit=self.unit,
            files=None if self.files is None else [self.files[i] for i in index])

    def summary(self) -> dict[str, Any]:
        """Counts for ``seqclf check``: sequences, lengths, channels, classes, missing cells."""
        lengths = np.array([len(s) for s in self.sequences])
        counts = None
        if self.labels:
            counts = pd.Series([str(v) for v in self.labels]).value_counts()
            counts = counts[sorted(counts.index, key=label_sort_key)]
        return {
            "source": self.source,
            "sequences": len(self),
            "length": {"min": int(lengths.min()), "median": float(np.median(lengths)),
                       "max": int(lengths.max())},
            "channels": len(self.feature_names),
            "features": list(self.feature_names),
            "classes": None if counts is None else {k: int(v) for k, v in counts.items()},
            "missing_values": self.missing,
        }


def check_same_features(train: SequenceSet | list[str], other: SequenceSet) -> None:
    """Evaluation data must have the training feature columns, in the same order."""
    names = train if isinstance(train, list) else train.feature_names
    if other.feature_names != names:
        raise SeqclfError(
            f"{other.source}: feature columns {other.feature_names} differ from the "
            f"training data's {names}. Use a file with the same columns.")


def label_sort_key(key: str) -> tuple[int, Any]:
    """Labels in order: numbers by value first, then text."""
    try:
        return (0, float(key))
    except ValueError:
        return (1, key)

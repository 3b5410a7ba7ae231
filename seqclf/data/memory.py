"""Sequences already in memory: a pandas DataFrame in the wide or long layout (read as a
file's rows are, with the same checks) or NumPy arrays (the scikit-learn estimator's
``X``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from seqclf.config import DataConfig
from seqclf.data.sets import SequenceSet
from seqclf.data.table import Table, as_text, check_finite, column_list, fill_missing, to_sequences
from seqclf.errors import SeqclfError, must_be


def from_frame(frame: pd.DataFrame, cfg: DataConfig, require_labels: bool = True,
               missing_values: str = "error", source: str = "DataFrame") -> SequenceSet:
    """Sequences from a DataFrame in the layout ``cfg.format``, read as a CSV file is.

    The id and label columns are taken as text, as from a CSV (labels that are all
    integers become ints again); feature columns must be numeric. Messages name rows
    by their position from 1 (``line 3`` is the third row).

    Raises:
        SeqclfError: Not a DataFrame, no rows, bad cells; a frame with repeated ids read
            as ``wide`` (one row per sequence): it is in the long layout.
    """
    if not isinstance(frame, pd.DataFrame):
        raise must_be(source, "", "a pandas DataFrame", type(frame).__name__)
    if frame.empty:
        raise SeqclfError(f"{source}: has no rows.")
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]
    if len(set(frame.columns)) < len(frame.columns):
        raise SeqclfError(f"{source}: column names must be unique. Got {column_list(frame)}.")
    if (cfg.format == "wide" and cfg.id_column in frame.columns
            and frame[cfg.id_column].duplicated().any()):
        raise SeqclfError(f"{source}: id column {cfg.id_column!r} repeats ids, as in the long "
                          "layout (one row per step), but data.format is 'wide' (one row per "
                          "sequence). Set data.format: long.")
    as_text(frame, (cfg.id_column, cfg.label_column))
    lines = np.arange(len(frame)) + 1
    return to_sequences(Table(source, frame, lines, "line"), cfg, require_labels, missing_values)


def from_arrays(X: Any, y: Any = None, feature_names: list[str] | None = None,
                missing_values: str = "error", source: str = "X") -> SequenceSet:
    """Sequences from arrays, numbered from 0 (ids ``0``, ``1``, ...).

    Args:
        X: Shape (sequences, steps, features); (sequences, steps) for one feature per
            step, as in the wide layout; or a list of per-sequence (steps, features) or
            (steps,) arrays of any lengths.
        y: One label per sequence, or None.
        feature_names: Names of the features; ignored when their number differs from
            the data's (default: ``value`` for one feature, else ``x0``, ``x1``, ...).
        missing_values: ``error`` | ``zero`` | ``ffill``, for NaN values.
        source: What messages call ``X``.

    Raises:
        SeqclfError: Sparse or non-numeric input, no sequences or steps, sequences with
            different feature counts, inf, NaN under ``error``, a label count that is not the
            sequence count.
    """
    if hasattr(X, "toarray"):  # scipy.sparse
        raise SeqclfError(f"{source}: sparse matrices are not supported. Pass a dense array.")
    try:
        array = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):  # ragged, or not numbers: look at each sequence
        array = None
    if array is not None:
        if array.ndim not in (2, 3):
            raise SeqclfError(f"{source}: must be a 3-D array (sequences, steps, features), a "
                              "2-D array (sequences, steps) or a list of 2-D (steps, features) "
                              f"arrays. Got an array of shape {array.shape} instead.")
        sequences = list(array if array.ndim == 3 else array[:, :, None])
    else:
        sequences = []
        for i, seq in enumerate(X):
            try:
                seq = np.asarray(seq, dtype=np.float64)
            except (TypeError, ValueError):
                raise SeqclfError(f"{source}: sequence {i} is not an array of numbers. "
                                  "Feature values must be numeric.") from None
            if seq.ndim not in (1, 2):
                raise SeqclfError(f"{source}: sequence {i} must be a 1-D (steps) or 2-D "
                                  "(steps, features) array. Got an array of shape "
                                  f"{seq.shape} instead.")
            sequences.append(seq[:, None] if seq.ndim == 1 else seq)
    if not sequences:
        raise SeqclfError(f"{source}: has no sequences.")
    n_features = sequences[0].shape[1]
    for i, seq in enumerate(sequences):
        if not seq.size:
            raise SeqclfError(f"{source}: sequence {i} is empty (shape {seq.shape}). Every "
                              "sequence needs at least one step with at least one feature.")
        if seq.shape[1] != n_features:
            raise SeqclfError(f"{source}: sequence {i} has {seq.shape[1]} features, sequence 0 "
                              f"has {n_features}. Every sequence needs the same features.")
    starts = np.r_[0, np.cumsum([len(s) for s in sequences])[:-1]]
    values = np.concatenate(sequences)  # a copy: filling never changes the caller's arrays

    def cell(i: int, j: int) -> str:
        k = int(np.searchsorted(starts, i, side="right")) - 1
        return f"{source}: sequence {k}, step {i - starts[k]}, feature {j}"

    check_finite(values, cell)
    missing = fill_missing(values, starts, missing_values, lambda i, j: f"{cell(i, j)} is NaN")
    labels = None
    if y is not None:
        labels = [v.item() if isinstance(v, np.generic) else v for v in y]
        if len(labels) != len(sequences):
            raise SeqclfError(f"{source}: has {len(sequences)} sequences but y has "
                              f"{len(labels)} labels. Give one label per sequence.")
    if feature_names is None or len(feature_names) != n_features:
        feature_names = ["value"] if n_features == 1 else [f"x{j}" for j in range(n_features)]
    index = list(range(len(sequences)))
    return SequenceSet(ids=[str(i) for i in index], sequences=np.split(values, starts[1:]),
                       labels=labels, feature_names=list(feature_names), source=source,
                       lines=index, missing=missing)

"""The checks every reader shares: a table of rows (a DataFrame) in the wide or long
layout → a :class:`~seqclf.data.sets.SequenceSet`.

A reader (CSV, Parquet, .npz, ...) only turns a file into a :class:`Table`; everything a
cell or a row can get wrong (non-numeric or missing cells, infinities, empty ids and
labels, repeated or missing steps, a sequence with two labels) is found here, so every
format reports it with the same one-line message, naming the file and the line (CSV) or
row (other formats) at fault.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seqclf.config import DataConfig
from seqclf.data.sets import SequenceSet
from seqclf.errors import SeqclfError, show

FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass
class Table:
    """The rows of one file, as a reader hands them over.

    Attributes:
        source: The file, for messages.
        frame: One row per row of the file. The text columns the reader was asked for
            (the id and label columns, where present) hold ``str`` cells, ``""`` for an
            empty one; feature cells are numbers, NaN when empty (or text, which the
            checks then report by row and column).
        lines: Each row's number in the file, for messages.
        unit: What ``lines`` count: ``line`` (a text file's lines) or ``row``.
    """

    source: str
    frame: pd.DataFrame
    lines: np.ndarray
    unit: str = "line"


@dataclass
class FileInfo:
    """What a reader tells about a file without reading its rows (streaming's memory
    estimate and its split of shards between workers).

    Attributes:
        rows: The number of rows (an estimate when ``estimated``).
        columns: The column names.
        estimated: Whether ``rows`` is estimated (CSV: from the first lines' size).
    """

    rows: int
    columns: list[str]
    estimated: bool = False


def as_text(frame: pd.DataFrame, names: tuple[str, ...] | list[str]) -> pd.DataFrame:
    """The columns ``names`` (where present) as text, as a CSV's are read: ``str`` cells,
    ``""`` for a missing one (in place; returns the frame)."""
    for name in names:
        if name in frame.columns:
            column = frame[name]
            frame[name] = column.where(column.notna(), "").astype(str)
    return frame


def to_sequences(table: Table, cfg: DataConfig, require_labels: bool = True,
                 missing_values: str = "error", first_id: int = 1) -> SequenceSet:
    """A table (from any reader, or a DataFrame) → sequences, per ``cfg.format``.

    Args:
        table: The rows; its id and label columns hold text (see :func:`as_text`).
        cfg: The data section (layout, column names).
        require_labels: Whether a missing label column is an error (False for predict).
        missing_values: ``error`` | ``zero`` | ``ffill``, for empty cells inside a sequence.
        first_id: The id of the first sequence of a wide table without an id column (the
            next shard of a dataset continues the numbering).

    Raises:
        SeqclfError: A missing column, non-numeric or missing cells, repeated steps, ...
    """
    path, frame, lines, unit = table.source, table.frame, table.lines, table.unit
    if (not require_labels and cfg.label_column in frame.columns
            and (frame[cfg.label_column].str.strip() == "").all()):
        frame = frame.drop(columns=[cfg.label_column])  # an unused, empty label column
    if cfg.label_column not in frame.columns:
        if require_labels:
            raise SeqclfError(
                f"{path}: has no label column {cfg.label_column!r}. Columns: "
                f"{column_list(frame)}. Set data.label_column to the right one"
                f"{_separator_hint(frame)}.")
    reader = _read_wide if cfg.format == "wide" else _read_long
    return reader(path, frame, lines, unit, cfg, missing_values, first_id)


def _separator_hint(frame: pd.DataFrame) -> str:
    """A hint when a single column name looks like a whole header in another separator."""
    if len(frame.columns) == 1:
        name = str(frame.columns[0])
        for sep, word in ((";", "semicolons"), ("\t", "tabs"), ("|", "bars")):
            if sep in name:
                return f" (the file seems to be separated by {word}; seqclf reads commas)"
    return ""


def column_list(frame: pd.DataFrame, limit: int = 12) -> str:
    cols = [str(c) for c in frame.columns]
    return ", ".join(cols[:limit]) + (f", ... ({len(cols)} in all)" if len(cols) > limit else "")


def _numeric(path: Path | str, frame: pd.DataFrame, columns: list[str], lines: np.ndarray,
             unit: str) -> np.ndarray:
    """The given columns as a float64 matrix; a non-numeric cell is an error naming it."""
    if all(pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
           for c in columns):  # one block copy: 3x faster than filling column by column
        out = frame[columns].to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
    else:
        out = np.empty((len(frame), len(columns)), dtype=np.float64)
        for j, col in enumerate(columns):
            out[:, j] = _numeric_column(path, frame[col], col, lines, unit)
    check_finite(out, lambda i, j: f"{path}: {unit} {lines[i]}, column {columns[j]!r}")
    return out


def _numeric_column(path: Path | str, series: pd.Series, col: str, lines: np.ndarray,
                    unit: str) -> np.ndarray:
    """One column as float64; a boolean or non-numeric cell is an error naming it."""
    if pd.api.types.is_bool_dtype(series):  # pandas reads a column of True/False as bools
        i = int(series.notna().to_numpy().argmax())
        raise SeqclfError(f"{path}: {unit} {lines[i]}, column {col!r}: "
                          f"{show(str(series.iloc[i]))} is not a number. Feature cells "
                          "must be numeric.")
    if pd.api.types.is_numeric_dtype(series):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    values = pd.to_numeric(series, errors="coerce")
    bad = values.isna() & series.notna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise SeqclfError(f"{path}: {unit} {lines[i]}, column {col!r}: "
                          f"{show(series.iloc[i])} is not a number. Feature cells must be "
                          "numeric.")
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


def check_finite(out: np.ndarray, where) -> None:
    """Reject inf and values beyond float32 in a (rows, features) matrix; NaN passes.

    inf (or a number too large for the float32 arrays the model sees) is always an
    error, whatever data.missing_values says: it is not a missing value, and no fill
    would be honest. ``where(i, j)`` names row i, column j for the message.
    """
    with np.errstate(invalid="ignore"):
        # fmax/fmin skip NaN (empty cells) and need no temporary array: one pass each
        over = out.size and (np.fmax.reduce(out, axis=None) > FLOAT32_MAX
                             or np.fmin.reduce(out, axis=None) < -FLOAT32_MAX)
    if over:
        with np.errstate(invalid="ignore"):
            huge = np.abs(out) > FLOAT32_MAX
        i, j = map(int, np.argwhere(huge)[0])
        what = ("is not finite" if np.isinf(out[i, j])
                else f"is too large (beyond ±{FLOAT32_MAX:.3g})")
        raise SeqclfError(f"{where(i, j)}: {out[i, j]:g} {what}. Feature values must be "
                          "finite numbers.")


def _factorize(column: pd.Series, **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
    """``pd.factorize(column, **kwargs)``, fast when equal values come in runs.

    A long-layout file repeats each sequence's id and label on every row of the sequence:
    hashing a million strings takes ~50 ms each, finding where the runs change ~8 ms. The
    run heads keep every value's first appearance in order, so factorizing them alone and
    repeating their codes gives exactly ``pd.factorize``'s codes and uniques.
    """
    values = column.to_numpy(dtype=object)
    if len(values) == 0:
        return pd.factorize(values, **kwargs)
    starts = np.r_[0, np.flatnonzero(values[1:] != values[:-1]) + 1]
    codes, uniques = pd.factorize(values[starts], **kwargs)
    return np.repeat(codes, np.diff(np.r_[starts, len(values)])), uniques


def _labels(path: Path | str, frame: pd.DataFrame, cfg: DataConfig, lines: np.ndarray,
            unit: str, rows: np.ndarray | None = None,
            factorized: tuple[np.ndarray, Any] | None = None) -> list[Any] | None:
    """The labels at ``rows`` (default: all) as ints or strings; an empty one is an error.

    ``factorized``: ``_factorize(label column, use_na_sentinel=False)`` when the caller
    has it already.
    """
    if cfg.label_column not in frame.columns:
        return None
    # String work on the distinct labels only: a long-layout file repeats a sequence's
    # label on each of its rows, and pandas string methods loop in Python.
    column = frame[cfg.label_column]
    codes, uniques = factorized or _factorize(column, use_na_sentinel=False)
    distinct = pd.Series(uniques, dtype=column.dtype).str.strip()
    blank = (distinct == "").to_numpy()
    if blank.any():  # only then a row-sized array
        empty = blank[codes]
        if empty.all():
            raise SeqclfError(f"{path}: the label column {cfg.label_column!r} is empty on "
                              f"every {unit} ({lines[0]}-{lines[-1]}). Fill in the labels, or "
                              "set data.label_column to the column that holds them.")
        raise SeqclfError(f"{path}: {unit} {lines[int(np.flatnonzero(empty)[0])]}: the label "
                          f"({cfg.label_column!r}) is empty. Every sequence needs a label.")
    stripped = distinct.to_numpy()
    values = stripped[codes] if rows is None else stripped[codes[rows]]
    if distinct.str.fullmatch(r"[+-]?\d+").all():  # integer labels stay integers
        return [int(v) for v in values]
    return [str(v) for v in values]


def fill_missing(values: np.ndarray, starts: np.ndarray, policy: str, where) -> int:
    """Apply ``data.missing_values`` in place to rows grouped into sequences at ``starts``.

    ``where(i, j)`` names row i, column j of ``values`` for the error message.
    """
    nan = np.isnan(values)
    count = int(nan.sum())
    if not count:
        return 0
    if policy == "error":
        i, j = map(int, np.argwhere(nan)[0])
        raise SeqclfError(f"{where(i, j)}: empty cell. Fill it, or set data.missing_values "
                          "to 'zero' or 'ffill'.")
    if policy == "zero":
        values[nan] = 0.0
        return count
    bounds = list(starts) + [len(values)]
    for a, b in zip(bounds[:-1], bounds[1:]):
        # forward fill within one sequence; a leading hole has nothing before it: zero
        values[a:b] = pd.DataFrame(values[a:b]).ffill().fillna(0.0).to_numpy()
    return count


def _read_wide(path: str, frame: pd.DataFrame, lines: np.ndarray, unit: str, cfg: DataConfig,
               policy: str, first_id: int) -> SequenceSet:
    skip = {cfg.label_column, cfg.id_column}
    steps = cfg.feature_columns or [c for c in frame.columns if c not in skip]
    _require_columns(path, frame, steps, "data.feature_columns")
    if not steps:
        raise SeqclfError(f"{path}: has no step columns besides the label and id. "
                          "In the wide layout every other column is one time step.")
    values = _numeric(path, frame, steps, lines, unit)
    labels = _labels(path, frame, cfg, lines, unit)
    ids = ([str(v) for v in frame[cfg.id_column]] if cfg.id_column in frame.columns
           else [str(i) for i in range(first_id, first_id + len(frame))])
    sequences, missing = [], 0
    present = ~np.isnan(values)
    for i in range(len(frame)):
        filled = np.flatnonzero(present[i])
        if not len(filled):
            raise SeqclfError(f"{path}: {unit} {lines[i]}: the sequence has no values. "
                              "Remove the row or fill it.")
        row = values[i, : filled[-1] + 1, None].copy()  # empty trailing cells: a shorter sequence
        missing += fill_missing(row, np.array([0]), policy,
                                 lambda k, _, i=i: f"{path}: {unit} {lines[i]}, column {steps[k]!r}")
        sequences.append(row)
    return SequenceSet(ids=ids, sequences=sequences, labels=labels, feature_names=["value"],
                       source=str(path), lines=[int(v) for v in lines], missing=missing,
                       unit=unit)


def _require_columns(path: Path | str, frame: pd.DataFrame, names: list[str], key: str) -> None:
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise SeqclfError(f"{path}: has no column {missing[0]!r} (named by {key}). Columns: "
                          f"{column_list(frame)}.")


def _read_long(path: str, frame: pd.DataFrame, lines: np.ndarray, unit: str, cfg: DataConfig,
               policy: str, first_id: int) -> SequenceSet:
    if cfg.id_column not in frame.columns:
        raise SeqclfError(f"{path}: has no id column {cfg.id_column!r}; the long layout needs "
                          f"one. Columns: {column_list(frame)}. Set data.id_column.")
    use_step = cfg.step_column is not None and cfg.step_column in frame.columns
    skip = {cfg.label_column, cfg.id_column, cfg.step_column if use_step else None}
    features = cfg.feature_columns or [c for c in frame.columns if c not in skip]
    _require_columns(path, frame, features, "data.feature_columns")
    if not features:
        raise SeqclfError(f"{path}: has no feature columns besides id, step and label.")
    codes, uniques = _factorize(frame[cfg.id_column])
    empty = np.flatnonzero(np.asarray(uniques == ""))  # compare distinct ids, not rows
    if len(empty):
        i = int(np.flatnonzero(codes == empty[0])[0])
        raise SeqclfError(f"{path}: {unit} {lines[i]}: the id ({cfg.id_column!r}) is empty.")
    # `order` sorts rows by id, then step; None when they already are (the usual file),
    # which saves a copy of every row-sized array.
    order = None

    def file_row(i):  # a sorted row's index in the file
        return i if order is None else order[i]

    if use_step:
        step = _numeric(path, frame, [cfg.step_column], lines, unit)[:, 0]
        if np.isnan(step).any():
            i = int(np.flatnonzero(np.isnan(step))[0])
            raise SeqclfError(f"{path}: {unit} {lines[i]}: the step ({cfg.step_column!r}) is empty.")
        d_codes, d_step = np.diff(codes), np.diff(step)
        if not ((d_codes > 0) | ((d_codes == 0) & (d_step > 0))).all():
            order = np.lexsort((step, codes))
            step = step[order]
            d_codes, d_step = np.diff(codes[order]), np.diff(step)
            dup = (d_codes == 0) & (d_step == 0)
            if dup.any():
                k = int(np.flatnonzero(dup)[0])
                raise SeqclfError(
                    f"{path}: {unit}s {lines[order[k]]} and {lines[order[k + 1]]}: id "
                    f"{uniques[codes[order[k]]]!r} has step {step[k]:g} twice. "
                    "Steps must be unique within a sequence.")
        if cfg.step_gaps == "error" and np.array_equal(step, np.round(step)):
            # Integer steps count: a hole (0, 1, 3) is a lost row, not a shorter sequence.
            gap = (d_codes == 0) & (d_step > 1)
            if gap.any():
                k = int(np.flatnonzero(gap)[0])
                i, j = file_row(k), file_row(k + 1)
                raise SeqclfError(
                    f"{path}: {unit}s {lines[i]} and {lines[j]}: id {uniques[codes[i]]!r} "
                    f"jumps from step {step[k]:g} to {step[k + 1]:g}; step {step[k] + 1:g} "
                    "is missing. Integer steps must be consecutive within a sequence (or set "
                    "data.step_gaps: allow to use them for ordering only).")
    elif (np.diff(codes) < 0).any():
        order = np.argsort(codes, kind="stable")
    values = _numeric(path, frame, features, lines, unit)
    if order is not None:
        values, codes = values[order], codes[order]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    factorized = (_factorize(frame[cfg.label_column], use_na_sentinel=False)
                  if cfg.label_column in frame.columns else None)
    labels = _labels(path, frame, cfg, lines, unit, file_row(starts), factorized)
    if order is not None:
        lines = lines[order]
    missing = fill_missing(values, starts, policy,
                            lambda i, j: f"{path}: {unit} {lines[i]}, column {features[j]!r}")
    if labels is not None:
        label_codes = factorized[0] if order is None else factorized[0][order]
        change = np.flatnonzero(label_codes[1:] != label_codes[:-1]) + 1
        inside = change[~np.isin(change, starts)]  # a label change that is not a new id
        if len(inside):
            k = int(inside[0])
            a = starts[np.searchsorted(starts, k, side="right") - 1]
            column = frame[cfg.label_column]
            raise SeqclfError(
                f"{path}: {unit}s {lines[a]} and {lines[k]}: id {uniques[codes[a]]!r} has labels "
                f"{show(column.iloc[file_row(a)])} and {show(column.iloc[file_row(k)])}. All "
                "rows of a sequence must have the same label.")
    ends = np.r_[starts[1:], len(values)]
    sequences = [values[a:b] for a, b in zip(starts, ends)]  # np.split is 3x slower
    return SequenceSet(ids=[str(v) for v in uniques[codes[starts]]], sequences=sequences,
                       labels=labels, feature_names=[str(f) for f in features],
                       source=str(path), lines=lines[starts].tolist(), missing=missing,
                       unit=unit)

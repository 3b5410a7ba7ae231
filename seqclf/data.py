"""Reading sequences from CSV and turning them into padded arrays.

Two layouts (see README): *wide*, one row per sequence with one column per step of a
single feature; *long*, one row per step with an id column and any number of feature
columns. Reading yields a :class:`SequenceSet` (variable-length float arrays plus raw
labels); a :class:`Preprocessor` fitted on training data alone then scales, pads and
encodes, and is saved with the run so evaluation applies exactly the same steps.

Errors name the file and the line (the header is line 1) or column at fault.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seqclf.config import Config, DataConfig
from seqclf.errors import SeqclfError, must_be, show

# Padded steps of numeric input hold this value; the Masking layer skips steps whose
# features all equal it. It is far outside any scaled data, and a real step that
# equals it is rejected rather than silently masked.
MASK_VALUE = -1.0e9
HEADER_LINE = 1
FLOAT32_MAX = float(np.finfo(np.float32).max)
ENCODING = "utf-8-sig"  # UTF-8, with or without the byte-order mark some editors write
# A header cell that reads as a number: a header made of these alone is a data row.
NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
# Cells read as missing in feature columns. Ids and labels are read as text, verbatim:
# a class may be called 'NA' or 'None', and id '007' is not id '7'.
MISSING_CELLS = ["", "NA", "N/A", "n/a", "NaN", "nan", "-nan", "null", "NULL", "None", "<NA>",
                 "#N/A"]


@dataclass
class SequenceSet:
    """Variable-length sequences read from one file.

    Attributes:
        ids: One id per sequence (strings).
        sequences: One float64 array of shape (steps, features) per sequence.
        labels: Raw labels (int or str), or None when the file has no label column.
        feature_names: Names of the feature columns (wide layout: one, ``value``).
        source: The file the sequences came from, for messages.
        lines: The CSV line of each sequence's first row, for messages.
        missing: How many empty feature cells were filled (``data.missing_values``).
    """

    ids: list[str]
    sequences: list[np.ndarray]
    labels: list[Any] | None
    feature_names: list[str]
    source: str
    lines: list[int]
    missing: int = 0

    def __len__(self) -> int:
        return len(self.sequences)

    def subset(self, index: np.ndarray | list[int]) -> "SequenceSet":
        """The sequences at ``index``, in that order."""
        return SequenceSet(
            ids=[self.ids[i] for i in index],
            sequences=[self.sequences[i] for i in index],
            labels=None if self.labels is None else [self.labels[i] for i in index],
            feature_names=self.feature_names, source=self.source,
            lines=[self.lines[i] for i in index], missing=self.missing)

    def summary(self) -> dict[str, Any]:
        """Counts for ``seqclf check``: sequences, lengths, channels, classes, missing cells."""
        lengths = np.array([len(s) for s in self.sequences])
        counts = None
        if self.labels:
            counts = pd.Series([str(v) for v in self.labels]).value_counts()
            counts = counts[sorted(counts.index, key=_label_sort_key)]
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


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file, recorded in run manifests."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_sequences(path: str | Path, cfg: DataConfig, require_labels: bool = True,
                   missing_values: str = "error") -> SequenceSet:
    """Read a CSV in the layout ``cfg.format``.

    Args:
        path: The CSV file.
        cfg: The data section (layout, column names).
        require_labels: Whether a missing label column is an error (False for predict).
        missing_values: ``error`` | ``zero`` | ``ffill``, for empty cells inside a sequence.

    Raises:
        SeqclfError: Missing/empty file, bad header, non-numeric or missing cells, ...
    """
    path = Path(path)
    frame, lines = _read_frame(path, text_columns=(cfg.id_column, cfg.label_column))
    return _sequences(path, frame, lines, cfg, require_labels, missing_values)


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
        raise SeqclfError(f"{source}: column names must be unique. Got {_columns(frame)}.")
    if (cfg.format == "wide" and cfg.id_column in frame.columns
            and frame[cfg.id_column].duplicated().any()):
        raise SeqclfError(f"{source}: id column {cfg.id_column!r} repeats ids, as in the long "
                          "layout (one row per step), but data.format is 'wide' (one row per "
                          "sequence). Set data.format: long.")
    for name in (cfg.id_column, cfg.label_column):
        if name in frame.columns:
            column = frame[name]
            frame[name] = column.where(column.notna(), "").astype(str)
    lines = np.arange(len(frame)) + 1
    return _sequences(source, frame, lines, cfg, require_labels, missing_values)


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

    _check_finite(values, cell)
    missing = _fill_missing(values, starts, missing_values, lambda i, j: f"{cell(i, j)} is NaN")
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


def _sequences(path: Path | str, frame: pd.DataFrame, lines: np.ndarray, cfg: DataConfig,
               require_labels: bool, missing_values: str) -> SequenceSet:
    """A frame read from a CSV (or given as a DataFrame) → sequences, per ``cfg.format``."""
    if (not require_labels and cfg.label_column in frame.columns
            and (frame[cfg.label_column].str.strip() == "").all()):
        frame = frame.drop(columns=[cfg.label_column])  # an unused, empty label column
    if cfg.label_column not in frame.columns:
        if require_labels:
            raise SeqclfError(
                f"{path}: has no label column {cfg.label_column!r}. Columns: "
                f"{_columns(frame)}. Set data.label_column to the right one"
                f"{_separator_hint(frame)}.")
    reader = _read_wide if cfg.format == "wide" else _read_long
    return reader(path, frame, lines, cfg, missing_values)


def _separator_hint(frame: pd.DataFrame) -> str:
    """A hint when a single column name looks like a whole header in another separator."""
    if len(frame.columns) == 1:
        name = str(frame.columns[0])
        for sep, word in ((";", "semicolons"), ("\t", "tabs"), ("|", "bars")):
            if sep in name:
                return f" (the file seems to be separated by {word}; seqclf reads commas)"
    return ""


def _columns(frame: pd.DataFrame, limit: int = 12) -> str:
    cols = [str(c) for c in frame.columns]
    return ", ".join(cols[:limit]) + (f", ... ({len(cols)} in all)" if len(cols) > limit else "")


def _read_frame(path: Path, text_columns: tuple[str, ...]) -> tuple[pd.DataFrame, np.ndarray]:
    """Read a CSV; returns the frame and each row's line number in the file.

    ``text_columns`` (where present) are read as strings, with no missing-value parsing.
    Blank lines are skipped but still counted, so messages name the right line.
    """
    if not path.exists():
        raise SeqclfError(f"{path}: file not found. Check the path in the config or command.")
    if path.is_dir():
        raise SeqclfError(f"{path}: is a directory, not a CSV file.")
    try:
        with open(path, newline="", encoding=ENCODING) as fh:
            rows = csv.reader(fh)
            header = next(rows, None)
            # a blank first line: is there anything after it?
            later = None if header else next((r for r in rows if any(c.strip() for c in r)), None)
    except UnicodeDecodeError:
        raise _not_utf8(path) from None
    except OSError as exc:
        raise SeqclfError(f"{path}: cannot be read ({exc.strerror or exc}).") from None
    except csv.Error as exc:
        raise SeqclfError(f"{path}: line 1 (the header) is not valid CSV ({exc}).") from None
    if later is not None:
        raise SeqclfError(f"{path}: line 1 is blank. The first line must be the header "
                          "(the column names).")
    if not header or not any(h.strip() for h in header):
        raise SeqclfError(f"{path}: file is empty. It needs a header line and data rows.")
    if all(NUMBER.fullmatch(h.strip()) for h in header):
        raise SeqclfError(f"{path}: line 1 (the header) looks like data: every column name is "
                          f"a number ({show(','.join(header), 40)}). The first line must name "
                          "the columns, e.g. id,t0,t1,label.")
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise SeqclfError(f"{path}: column {name!r} appears twice in the header. "
                              "Column names must be unique.")
        seen.add(name)
    if any(not h.strip() for h in header):
        col = [i for i, h in enumerate(header) if not h.strip()][0] + 1
        raise SeqclfError(f"{path}: header column {col} has no name. Name every column.")
    text = [c for c in text_columns if c in header]
    try:
        with warnings.catch_warnings():
            # a row with more fields than the header: pandas would drop the extra ones
            warnings.simplefilter("error", pd.errors.ParserWarning)
            # The file is parsed in chunks (25% faster than in one piece on a 1M-row file);
            # a chunk with a non-numeric cell makes its column mixed, which _numeric then
            # reports by line and column, so pandas's own warning about it is noise.
            warnings.simplefilter("ignore", pd.errors.DtypeWarning)
            frame = pd.read_csv(path, encoding=ENCODING, index_col=False,
                                skip_blank_lines=False, keep_default_na=False,
                                dtype={c: str for c in text},
                                na_values={c: MISSING_CELLS for c in header if c not in text})
    except pd.errors.ParserWarning:
        line, got = _ragged_row(path, len(header))
        raise SeqclfError(f"{path}: line {line} has {got} fields, the header has "
                          f"{len(header)}. Fix that row.") from None
    except pd.errors.ParserError as exc:
        match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if match:
            want, line, got = match.groups()
            raise SeqclfError(f"{path}: line {line} has {got} fields, the header has {want}. "
                              "Fix that row.") from None
        match = re.search(r"EOF inside string starting at row (\d+)", str(exc))
        if match:
            raise SeqclfError(f"{path}: line {int(match.group(1)) + 1}: a quoted field is "
                              "never closed (a \" without its closing \"). Fix the quotes."
                              ) from None
        raise SeqclfError(f"{path}: is not a valid CSV ({' '.join(str(exc).split())}).") from None
    except UnicodeDecodeError:
        raise _not_utf8(path) from None
    except (OSError, ValueError) as exc:  # pandas has more ways to fail than it documents
        raise SeqclfError(f"{path}: cannot be read as CSV ({' '.join(str(exc).split())})."
                          ) from None
    if list(frame.columns) != header:  # the header itself spans lines (quoted newlines) etc.
        raise SeqclfError(f"{path}: the header could not be read consistently (columns "
                          f"{show([str(c) for c in frame.columns])}). Check its quotes.")
    lines = np.arange(HEADER_LINE + 1, len(frame) + HEADER_LINE + 1)
    # Column by column, stopping once no row can still be blank: usually after the first.
    # Text cells are compared only in the rows still blank (string compares are slow).
    blank = np.ones(len(frame), dtype=bool)
    for c in [c for c in frame.columns if c not in text] + text:
        rows = np.flatnonzero(blank)
        if not len(rows):
            break
        cells = frame[c].iloc[rows]
        blank[rows] = (cells == "" if c in text else cells.isna()).to_numpy()
    if blank.any():
        frame, lines = frame[~blank].reset_index(drop=True), lines[~blank]
    if frame.empty:
        raise SeqclfError(f"{path}: has a header but no data rows.")
    return frame, lines


def _ragged_row(path: Path, width: int) -> tuple[int, int]:
    """The first line holding a row with more than ``width`` fields, and its field count."""
    with open(path, newline="", encoding=ENCODING) as fh:
        rows = csv.reader(fh)
        start = 1
        for row in rows:
            if len(row) > width:
                return start, len(row)
            start = rows.line_num + 1
    return start, width


def _not_utf8(path: Path) -> SeqclfError:
    """The error for a file that does not decode as UTF-8, naming the first bad line."""
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, start=1):  # an error path only: a loop is fine
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return SeqclfError(f"{path}: is not UTF-8 text. Line {n} is the first that "
                                   "is not; save the file as a UTF-8 CSV.")
    return SeqclfError(f"{path}: is not UTF-8 text. Save it as a UTF-8 CSV.")


def _numeric(path: Path, frame: pd.DataFrame, columns: list[str], lines: np.ndarray) -> np.ndarray:
    """The given columns as a float64 matrix; a non-numeric cell is an error naming it."""
    if all(pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
           for c in columns):  # one block copy: 3x faster than filling column by column
        out = frame[columns].to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
    else:
        out = np.empty((len(frame), len(columns)), dtype=np.float64)
        for j, col in enumerate(columns):
            out[:, j] = _numeric_column(path, frame[col], col, lines)
    _check_finite(out, lambda i, j: f"{path}: line {lines[i]}, column {columns[j]!r}")
    return out


def _numeric_column(path: Path, series: pd.Series, col: str, lines: np.ndarray) -> np.ndarray:
    """One column as float64; a boolean or non-numeric cell is an error naming it."""
    if pd.api.types.is_bool_dtype(series):  # pandas reads a column of True/False as bools
        i = int(series.notna().to_numpy().argmax())
        raise SeqclfError(f"{path}: line {lines[i]}, column {col!r}: "
                          f"{show(str(series.iloc[i]))} is not a number. Feature cells "
                          "must be numeric.")
    if pd.api.types.is_numeric_dtype(series):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    values = pd.to_numeric(series, errors="coerce")
    bad = values.isna() & series.notna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise SeqclfError(f"{path}: line {lines[i]}, column {col!r}: "
                          f"{show(series.iloc[i])} is not a number. Feature cells must be "
                          "numeric.")
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


def _check_finite(out: np.ndarray, where) -> None:
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


def _labels(path: Path, frame: pd.DataFrame, cfg: DataConfig, lines: np.ndarray,
            rows: np.ndarray | None = None,
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
                              f"every line ({lines[0]}-{lines[-1]}). Fill in the labels, or "
                              "set data.label_column to the column that holds them.")
        raise SeqclfError(f"{path}: line {lines[int(np.flatnonzero(empty)[0])]}: the label "
                          f"({cfg.label_column!r}) is empty. Every sequence needs a label.")
    stripped = distinct.to_numpy()
    values = stripped[codes] if rows is None else stripped[codes[rows]]
    if distinct.str.fullmatch(r"[+-]?\d+").all():  # integer labels stay integers
        return [int(v) for v in values]
    return [str(v) for v in values]


def _fill_missing(values: np.ndarray, starts: np.ndarray, policy: str, where) -> int:
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


def _read_wide(path: Path, frame: pd.DataFrame, lines: np.ndarray, cfg: DataConfig,
               policy: str) -> SequenceSet:
    skip = {cfg.label_column, cfg.id_column}
    steps = cfg.feature_columns or [c for c in frame.columns if c not in skip]
    _require_columns(path, frame, steps, "data.feature_columns")
    if not steps:
        raise SeqclfError(f"{path}: has no step columns besides the label and id. "
                          "In the wide layout every other column is one time step.")
    values = _numeric(path, frame, steps, lines)
    labels = _labels(path, frame, cfg, lines)
    ids = ([str(v) for v in frame[cfg.id_column]] if cfg.id_column in frame.columns
           else [str(i) for i in range(1, len(frame) + 1)])
    sequences, missing = [], 0
    present = ~np.isnan(values)
    for i in range(len(frame)):
        filled = np.flatnonzero(present[i])
        if not len(filled):
            raise SeqclfError(f"{path}: line {lines[i]}: the sequence has no values. "
                              "Remove the row or fill it.")
        row = values[i, : filled[-1] + 1, None].copy()  # empty trailing cells: a shorter sequence
        missing += _fill_missing(row, np.array([0]), policy,
                                 lambda k, _, i=i: f"{path}: line {lines[i]}, column {steps[k]!r}")
        sequences.append(row)
    return SequenceSet(ids=ids, sequences=sequences, labels=labels, feature_names=["value"],
                       source=str(path), lines=[int(v) for v in lines], missing=missing)


def _require_columns(path: Path, frame: pd.DataFrame, names: list[str], key: str) -> None:
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise SeqclfError(f"{path}: has no column {missing[0]!r} (named by {key}). Columns: "
                          f"{_columns(frame)}.")


def _read_long(path: Path, frame: pd.DataFrame, lines: np.ndarray, cfg: DataConfig,
               policy: str) -> SequenceSet:
    if cfg.id_column not in frame.columns:
        raise SeqclfError(f"{path}: has no id column {cfg.id_column!r}; the long layout needs "
                          f"one. Columns: {_columns(frame)}. Set data.id_column.")
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
        raise SeqclfError(f"{path}: line {lines[i]}: the id ({cfg.id_column!r}) is empty.")
    # `order` sorts rows by id, then step; None when they already are (the usual file),
    # which saves a copy of every row-sized array.
    order = None

    def file_row(i):  # a sorted row's index in the file
        return i if order is None else order[i]

    if use_step:
        step = _numeric(path, frame, [cfg.step_column], lines)[:, 0]
        if np.isnan(step).any():
            i = int(np.flatnonzero(np.isnan(step))[0])
            raise SeqclfError(f"{path}: line {lines[i]}: the step ({cfg.step_column!r}) is empty.")
        d_codes, d_step = np.diff(codes), np.diff(step)
        if not ((d_codes > 0) | ((d_codes == 0) & (d_step > 0))).all():
            order = np.lexsort((step, codes))
            step = step[order]
            d_codes, d_step = np.diff(codes[order]), np.diff(step)
            dup = (d_codes == 0) & (d_step == 0)
            if dup.any():
                k = int(np.flatnonzero(dup)[0])
                raise SeqclfError(
                    f"{path}: lines {lines[order[k]]} and {lines[order[k + 1]]}: id "
                    f"{uniques[codes[order[k]]]!r} has step {step[k]:g} twice. "
                    "Steps must be unique within a sequence.")
        if cfg.step_gaps == "error" and np.array_equal(step, np.round(step)):
            # Integer steps count: a hole (0, 1, 3) is a lost row, not a shorter sequence.
            gap = (d_codes == 0) & (d_step > 1)
            if gap.any():
                k = int(np.flatnonzero(gap)[0])
                i, j = file_row(k), file_row(k + 1)
                raise SeqclfError(
                    f"{path}: lines {lines[i]} and {lines[j]}: id {uniques[codes[i]]!r} "
                    f"jumps from step {step[k]:g} to {step[k + 1]:g}; step {step[k] + 1:g} "
                    "is missing. Integer steps must be consecutive within a sequence (or set "
                    "data.step_gaps: allow to use them for ordering only).")
    elif (np.diff(codes) < 0).any():
        order = np.argsort(codes, kind="stable")
    values = _numeric(path, frame, features, lines)
    if order is not None:
        values, codes = values[order], codes[order]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    factorized = (_factorize(frame[cfg.label_column], use_na_sentinel=False)
                  if cfg.label_column in frame.columns else None)
    labels = _labels(path, frame, cfg, lines, file_row(starts), factorized)
    if order is not None:
        lines = lines[order]
    missing = _fill_missing(values, starts, policy,
                            lambda i, j: f"{path}: line {lines[i]}, column {features[j]!r}")
    if labels is not None:
        label_codes = factorized[0] if order is None else factorized[0][order]
        change = np.flatnonzero(label_codes[1:] != label_codes[:-1]) + 1
        inside = change[~np.isin(change, starts)]  # a label change that is not a new id
        if len(inside):
            k = int(inside[0])
            a = starts[np.searchsorted(starts, k, side="right") - 1]
            column = frame[cfg.label_column]
            raise SeqclfError(
                f"{path}: lines {lines[a]} and {lines[k]}: id {uniques[codes[a]]!r} has labels "
                f"{show(column.iloc[file_row(a)])} and {show(column.iloc[file_row(k)])}. All "
                "rows of a sequence must have the same label.")
    ends = np.r_[starts[1:], len(values)]
    sequences = [values[a:b] for a, b in zip(starts, ends)]  # np.split is 3x slower
    return SequenceSet(ids=[str(v) for v in uniques[codes[starts]]], sequences=sequences,
                       labels=labels, feature_names=[str(f) for f in features],
                       source=str(path), lines=lines[starts].tolist(), missing=missing)


def load_splits(cfg: Config) -> tuple[SequenceSet, SequenceSet]:
    """Read the training data and the test data (or split it off the training file)."""
    data = cfg.data
    train = read_sequences(data.train, data, missing_values=data.missing_values)
    if data.test is not None:
        test = read_sequences(data.test, data, missing_values=data.missing_values)
        check_same_features(train, test)
        return train, test
    return split(train, data.test_split, cfg.training.seed, data.stratify, "data.test_split")


def check_same_features(train: SequenceSet | list[str], other: SequenceSet) -> None:
    """Evaluation data must have the training feature columns, in the same order."""
    names = train if isinstance(train, list) else train.feature_names
    if other.feature_names != names:
        raise SeqclfError(
            f"{other.source}: feature columns {other.feature_names} differ from the "
            f"training data's {names}. Use a file with the same columns.")


def split(dataset: SequenceSet, fraction: float, seed: int, stratify: bool,
          key: str) -> tuple[SequenceSet, SequenceSet]:
    """Split off ``fraction`` of the sequences, stratified by label when asked.

    Returns:
        (the rest, the split-off part).
    """
    from sklearn.model_selection import train_test_split

    index = np.arange(len(dataset))
    labels = [str(v) for v in dataset.labels] if dataset.labels is not None else None
    if stratify and labels is not None:
        counts = pd.Series(labels).value_counts()
        n_test = int(np.ceil(fraction * len(index)))
        if counts.min() < 2:
            raise SeqclfError(
                f"{dataset.source}: a stratified split ({key}) needs at least 2 sequences "
                f"of each class; class {counts.idxmin()!r} has 1. Add data, or set "
                "data.stratify: false.")
        if n_test < len(counts) or len(index) - n_test < len(counts):
            raise must_be(dataset.source, key, f"large enough for one sequence of each of "
                          f"the {len(counts)} classes on both sides of a stratified split", fraction)
    try:
        rest, part = train_test_split(index, test_size=fraction, random_state=seed,
                                      stratify=labels if stratify else None)
    except ValueError as exc:
        raise must_be(dataset.source, key, f"a fraction that leaves sequences on both sides "
                      f"({exc})", fraction) from None
    return dataset.subset(np.sort(rest)), dataset.subset(np.sort(part))


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
        labels = pd.Series([str(v) for v in train.labels])
        by_key = {str(v): v for v in train.labels}
        keys = sorted(by_key, key=_label_sort_key)
        if cfg.data.classes is not None:
            # A fixed vocabulary: the output layer covers every listed class, seen or not.
            declared = {str(v): v for v in cfg.data.classes}
            extra = [k for k in keys if k not in declared]
            if extra:
                raise SeqclfError(f"{train.source}: label {extra[0]!r} is not in data.classes. "
                                  "Add it there, or remove data.classes.")
            by_key, keys = declared, list(declared)
        elif len(keys) < 2:
            raise SeqclfError(f"{train.source}: training data has one class only "
                              f"({keys[0]!r}). A classifier needs at least two.")
        lengths = [len(s) for s in train.sequences]
        stacked = np.concatenate(train.sequences)
        n_features = stacked.shape[1]
        center, scale = [0.0] * n_features, [1.0] * n_features
        if cfg.data.scaling == "standard":
            center = stacked.mean(axis=0).tolist()
            std = stacked.std(axis=0)
            scale = np.where(std > 0, std, 1.0).tolist()  # constant features stay constant
        elif cfg.data.scaling == "minmax":
            lo, hi = stacked.min(axis=0), stacked.max(axis=0)
            center = lo.tolist()
            scale = np.where(hi > lo, hi - lo, 1.0).tolist()
        embedding = cfg.model.token_input()
        if embedding is not None:
            pad_value = 0.0
        else:
            pad_value = MASK_VALUE if cfg.model.masking else 0.0
        prep = cls(
            feature_names=list(train.feature_names),
            classes=[by_key[k] for k in keys],
            majority_class=by_key[labels.value_counts().index[0]],
            max_length=cfg.data.max_length or max(lengths),
            padding=cfg.data.padding, truncating=cfg.data.truncating, pad_value=pad_value,
            scaling=cfg.data.scaling, center=center, scale=scale,
            vocab_size=None if embedding is None else embedding.input_dim)
        if embedding is not None and n_features != 1:
            raise SeqclfError(f"{train.source}: model.embedding needs one token feature per "
                              f"step; the data has {n_features} ({', '.join(train.feature_names)}).")
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
            raise SeqclfError(f"{dataset.source}: line {dataset.lines[i]}: a value overflows "
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
                raise SeqclfError(f"{dataset.source}: line {dataset.lines[i]}: a step equals the "
                                  f"padding value {MASK_VALUE:g} in every feature. Rescale the data.")
        return out, truncated

    def _tokens(self, dataset: SequenceSet, values: np.ndarray) -> np.ndarray:
        real = np.concatenate(dataset.sequences)[:, 0]
        bad = (real != np.round(real)) | (real < 1) | (real >= self.vocab_size)
        if bad.any():
            value = real[int(np.flatnonzero(bad)[0])]
            seq = next(i for i, s in enumerate(dataset.sequences) if np.isin(value, s[:, 0]))
            raise SeqclfError(
                f"{dataset.source}: line {dataset.lines[seq]}: token {value:g} must be a whole "
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


def _label_sort_key(key: str) -> tuple[int, Any]:
    try:
        return (0, float(key))
    except ValueError:
        return (1, key)

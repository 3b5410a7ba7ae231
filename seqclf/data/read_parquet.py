"""The Parquet reader (pyarrow): a file's columns → a :class:`Table` whose rows are
numbered from 1, in the wide or long layout as a CSV's columns are."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seqclf.data.table import Table, as_text, column_list
from seqclf.errors import SeqclfError

INSTALL = "pip install pyarrow"


def read(path: Path, text_columns: tuple[str, ...] = ()) -> Table:
    """Read a Parquet file; the ``text_columns`` (ids, labels) become text, feature columns
    keep their types (numbers; nulls are missing cells; anything else is reported by the
    shared checks, by row and column).

    Raises:
        SeqclfError: No such file, a directory, pyarrow missing, not a Parquet file,
            duplicate or nested columns, no rows.
    """
    if not path.exists():
        raise SeqclfError(f"{path}: file not found. Check the path in the config or command.")
    if path.is_dir():
        raise SeqclfError(f"{path}: is a directory, not a Parquet file.")
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise SeqclfError(f"{path}: reading Parquet needs pyarrow: {INSTALL}") from None
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise SeqclfError(f"{path}: is not a readable Parquet file "
                          f"({' '.join(str(exc).split())}).") from None
    names = table.column_names
    for name in names:
        if names.count(name) > 1:
            raise SeqclfError(f"{path}: column {name!r} appears twice. Column names must be "
                              "unique.")
    for field in table.schema:
        if pa.types.is_nested(field.type):
            raise SeqclfError(f"{path}: column {field.name!r} holds {field.type} values, not "
                              "numbers or text. Store one value per cell (the long layout "
                              "has a row per step).")
    frame = table.to_pandas()
    frame.columns = [str(c) for c in frame.columns]
    if frame.empty:
        if not len(frame.columns):
            raise SeqclfError(f"{path}: has no columns. It needs the data's columns and rows.")
        raise SeqclfError(f"{path}: has columns ({column_list(frame)}) but no rows.")
    as_text(frame, text_columns)
    return Table(str(path), frame, np.arange(1, len(frame) + 1), "row")

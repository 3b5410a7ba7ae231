"""The Parquet reader (pyarrow): a file's columns → a :class:`Table` whose rows are
numbered from 1, in the wide or long layout as a CSV's columns are; also in chunks of
rows (``chunks``, for streaming) and its row count and columns from the file's footer
alone (``info``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np

from seqclf.data.table import FileInfo, Table, as_text, column_list
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
    pa, pq, file = _open(path)
    try:
        table = file.read()
    except (pa.ArrowException, OSError) as exc:
        raise _unreadable(path, exc) from None
    return _table(path, table, text_columns, 0)


def chunks(path: Path, text_columns: tuple[str, ...] = (), rows: int = 65536
           ) -> Iterator[Table]:
    """The file's rows in order, about ``rows`` at a time (one record batch each), rows
    numbered as :func:`read` numbers them. Only one batch is in memory at a time."""
    pa, pq, file = _open(path)
    first = 0
    try:
        for batch in file.iter_batches(batch_size=rows):
            if batch.num_rows:
                yield _table(path, pa.Table.from_batches([batch]), text_columns, first)
                first += batch.num_rows
    except (pa.ArrowException, OSError) as exc:
        raise _unreadable(path, exc) from None


def info(path: Path) -> FileInfo:
    """The row count and column names, from the footer (no data is read)."""
    _, _, file = _open(path)
    return FileInfo(int(file.metadata.num_rows), [str(n) for n in file.schema_arrow.names])


def _open(path: Path) -> tuple[Any, Any, Any]:
    """pyarrow, pyarrow.parquet and the open ``ParquetFile``, its columns checked."""
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
        file = pq.ParquetFile(path)
        schema = file.schema_arrow
    except (pa.ArrowException, OSError) as exc:
        raise _unreadable(path, exc) from None
    names = schema.names
    for name in names:
        if names.count(name) > 1:
            raise SeqclfError(f"{path}: column {name!r} appears twice. Column names must be "
                              "unique.")
    for field in schema:
        if pa.types.is_nested(field.type):
            raise SeqclfError(f"{path}: column {field.name!r} holds {field.type} values, not "
                              "numbers or text. Store one value per cell (the long layout "
                              "has a row per step).")
    if file.metadata.num_rows == 0:
        if not len(names):
            raise SeqclfError(f"{path}: has no columns. It needs the data's columns and rows.")
        import pandas as pd

        raise SeqclfError(f"{path}: has columns ({column_list(pd.DataFrame(columns=names))}) "
                          "but no rows.")
    return pa, pq, file


def _unreadable(path: Path, exc: BaseException) -> SeqclfError:
    return SeqclfError(f"{path}: is not a readable Parquet file "
                       f"({' '.join(str(exc).split())}).")


def _table(path: Path, table: Any, text_columns: tuple[str, ...], first: int) -> Table:
    frame = table.to_pandas()
    frame.columns = [str(c) for c in frame.columns]
    if frame.empty:  # a footer that promised rows (checked in _open) but no columns
        raise SeqclfError(f"{path}: has columns ({column_list(frame)}) but no rows.")
    as_text(frame, text_columns)
    return Table(str(path), frame, np.arange(first + 1, first + len(frame) + 1), "row")

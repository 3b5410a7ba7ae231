"""The reader registry: which reader reads a file, taken from its name alone.

A reader turns one file into a :class:`~seqclf.data.table.Table` (its rows, numbered for
messages); the shared checks of :mod:`seqclf.data.table` turn that into sequences, so a
new format gets every check and message of the others by construction. Readers are keyed
by the end of the file name (``.csv``, ``.parquet``, ...; the longest registered suffix
that matches wins, case-insensitively); a name no reader claims is read as CSV, as
seqclf always has. The content is never sniffed.

Adding a format: a module with ``read(path, text_columns) -> Table`` and one
:func:`register` call here (or from a plugin, as ``tests/test_data_readers.py`` does).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from seqclf.config import DataConfig
import seqclf.data.read_csv as read_csv
import seqclf.data.read_npz as read_npz
import seqclf.data.read_parquet as read_parquet
from seqclf.data.read_csv import COMPRESSIONS
from seqclf.data.sets import SequenceSet
from seqclf.data.sources import data_files, describe
from seqclf.data.table import FileInfo, Table, to_sequences
from seqclf.errors import SeqclfError


@dataclass(frozen=True)
class Reader:
    """One format.

    Attributes:
        name: What messages call the format (``CSV``, ``Parquet``, ...).
        read: ``read(path, text_columns) -> Table``. ``text_columns`` are the id and label
            columns (where present): the table must hold them as ``str`` cells (``""`` when
            empty; :func:`seqclf.data.table.as_text`). The reader reports a missing file,
            a directory, and everything wrong with the file as a whole (not that format,
            no rows, duplicate column names) with a one-line ``SeqclfError``.
        chunks: For streaming, ``chunks(path, text_columns, rows) -> Iterator[Table]``:
            the file's rows in order, about ``rows`` at a time, numbered as ``read``
            numbers them, with its checks. None: ``read`` whole, as one chunk.
        info: ``info(path) -> FileInfo``: the row count (exact or estimated) and columns
            without reading the rows. None: counted by ``read``.
    """

    name: str
    read: Callable[[Path, tuple[str, ...]], Table]
    chunks: Callable[[Path, tuple[str, ...], int], Iterator[Table]] | None = None
    info: Callable[[Path], FileInfo] | None = None


CSV = Reader("CSV", read_csv.read, read_csv.chunks, read_csv.info)
PARQUET = Reader("Parquet", read_parquet.read, read_parquet.chunks, read_parquet.info)
NPZ = Reader("NumPy .npz", read_npz.read, read_npz.chunks, read_npz.info)
_READERS: dict[str, Reader] = {
    ".csv": CSV, **{f".csv{suffix}": CSV for suffix in COMPRESSIONS},
    ".parquet": PARQUET, ".pq": PARQUET,
    ".npz": NPZ,
}


def register(suffix: str, reader: Reader) -> None:
    """Read files whose name ends with ``suffix`` (e.g. ``.csv.gz``) with ``reader``."""
    if not suffix.startswith(".") or suffix != suffix.lower():
        raise ValueError(f"a reader's suffix must be lower case and start with '.': {suffix!r}")
    _READERS[suffix] = reader


def unregister(suffix: str) -> None:
    """Forget the reader of ``suffix`` (a test's example reader)."""
    _READERS.pop(suffix, None)


def suffixes() -> list[str]:
    """The registered suffixes, sorted."""
    return sorted(_READERS)


def reader_for(path: str | Path) -> Reader:
    """The reader for a file, by its name: the longest registered suffix it ends with;
    CSV when none does."""
    name = Path(path).name.lower()
    matches = [s for s in _READERS if name.endswith(s)]
    return _READERS[max(matches, key=len)] if matches else CSV


def read_table(path: str | Path, text_columns: tuple[str, ...] = ()) -> Table:
    """One file's rows, by the reader its name picks (``seqclf init`` looks at these)."""
    path = Path(path)
    return reader_for(path).read(path, tuple(text_columns))


def read_chunks(path: str | Path, text_columns: tuple[str, ...] = (), rows: int = 65536
                ) -> Iterator[Table]:
    """One file's rows in chunks of about ``rows``, by its reader (whole, when the reader
    cannot read in parts)."""
    path = Path(path)
    reader = reader_for(path)
    if reader.chunks is None:
        yield reader.read(path, tuple(text_columns))
        return
    yield from reader.chunks(path, tuple(text_columns), rows)


def file_info(path: str | Path) -> FileInfo:
    """A file's row count and columns, by its reader (reading it whole when the reader
    has no cheaper way)."""
    path = Path(path)
    reader = reader_for(path)
    if reader.info is not None:
        return reader.info(path)
    table = reader.read(path, ())
    return FileInfo(len(table.frame), [str(c) for c in table.frame.columns])


def check_one_format(files: list[Path]) -> None:
    """The shards of one dataset must be in one format."""
    for file in files[1:]:
        if reader_for(file) is not reader_for(files[0]):
            raise SeqclfError(f"{file}: is a {reader_for(file).name} file but {files[0]} is "
                              f"{reader_for(files[0]).name}. The shards of one dataset must "
                              "be in one format.")


def read_sequences(path: Any, cfg: DataConfig, require_labels: bool = True,
                   missing_values: str = "error") -> SequenceSet:
    """Read a file (or the shards of one dataset) in the layout ``cfg.format``, each file
    with the reader its name picks.

    Args:
        path: The file; a glob pattern (its matches, in sorted order) or a list of files
            (``data.train`` as a list): the shards of one dataset, one format, the same
            columns, each sequence in one shard.
        cfg: The data section (layout, column names).
        require_labels: Whether a missing label column is an error (False for predict).
        missing_values: ``error`` | ``zero`` | ``ffill``, for empty cells inside a sequence.

    Raises:
        SeqclfError: Missing/empty file, bad header, non-numeric or missing cells, a
            pattern that matches nothing, shards that do not agree, ...
    """
    text = (cfg.id_column, cfg.label_column)
    files = data_files(path)
    if len(files) == 1:
        return to_sequences(read_table(files[0], text), cfg, require_labels, missing_values)
    check_one_format(files)
    parts: list[SequenceSet] = []
    for file in files:
        first_id = 1 + sum(len(p) for p in parts)  # wide, no id column: numbered on
        parts.append(to_sequences(read_table(file, text), cfg, require_labels,
                                  missing_values, first_id))
    return _merge(parts, describe(path), cfg)


def _merge(parts: list[SequenceSet], source: str, cfg: DataConfig) -> SequenceSet:
    """Shards → one set, checking that they agree: the same feature columns, all with
    labels or none, and (long layout) each id in one shard only."""
    first = parts[0]
    for part in parts[1:]:
        if part.feature_names != first.feature_names:
            raise SeqclfError(f"{part.source}: feature columns {part.feature_names} differ from "
                              f"{first.source}'s {first.feature_names}. All shards of a "
                              "dataset need the same columns.")
        if (part.labels is None) != (first.labels is None):
            has, lacks = (part, first) if first.labels is None else (first, part)
            raise SeqclfError(f"{lacks.source}: has no label column {cfg.label_column!r} but "
                              f"{has.source} has. All shards of a dataset need the same "
                              "columns.")
    if cfg.format == "long":
        shard_of: dict[str, str] = {}
        for part in parts:
            for seq_id in part.ids:
                if seq_id in shard_of:
                    raise SeqclfError(f"{part.source}: id {seq_id!r} is also in "
                                      f"{shard_of[seq_id]}. All rows of a sequence must be in "
                                      "one shard.")
                shard_of[seq_id] = part.source
    labels = None
    if first.labels is not None:
        labels = [v for part in parts for v in part.labels]
        if not all(isinstance(v, int) for v in labels):  # integers only if every shard's are
            labels = [str(v) for v in labels]
    return SequenceSet(
        ids=[i for part in parts for i in part.ids],
        sequences=[s for part in parts for s in part.sequences],
        labels=labels, feature_names=list(first.feature_names), source=source,
        lines=[n for part in parts for n in part.lines],
        missing=sum(part.missing for part in parts), unit=first.unit,
        files=[part.source for part in parts for _ in range(len(part))])

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
from typing import Callable

from seqclf.config import DataConfig
from seqclf.data.read_csv import read as read_csv
from seqclf.data.sets import SequenceSet
from seqclf.data.table import Table, to_sequences


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
    """

    name: str
    read: Callable[[Path, tuple[str, ...]], Table]


CSV = Reader("CSV", read_csv)
_READERS: dict[str, Reader] = {".csv": CSV}


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


def read_sequences(path: str | Path, cfg: DataConfig, require_labels: bool = True,
                   missing_values: str = "error") -> SequenceSet:
    """Read a file in the layout ``cfg.format``, with the reader its name picks.

    Args:
        path: The file.
        cfg: The data section (layout, column names).
        require_labels: Whether a missing label column is an error (False for predict).
        missing_values: ``error`` | ``zero`` | ``ffill``, for empty cells inside a sequence.

    Raises:
        SeqclfError: Missing/empty file, bad header, non-numeric or missing cells, ...
    """
    table = read_table(path, text_columns=(cfg.id_column, cfg.label_column))
    return to_sequences(table, cfg, require_labels, missing_values)

"""The NumPy ``.npz`` reader: each array is a column (``np.savez(path, id=..., step=...,
x=..., label=...)``), read in the wide or long layout as a CSV's columns are.

A 1-D array is one column; a 2-D array of shape (rows, k) is k columns named
``name[0]`` ... ``name[k-1]`` (the wide layout's steps, or several features). Every array
has one entry per row; rows are numbered from 1. Object arrays (pickles) are refused:
save text as a NumPy string array (``np.array(ids, dtype=str)``).

An .npz member cannot be read in part, so streaming (``chunks``) reads the whole file and
hands it over in slices of rows: memory is bounded by the largest file, not the dataset
(keep the shards of a large dataset small, or convert them to Parquet).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from seqclf.data.table import FileInfo, Table, as_text
from seqclf.errors import SeqclfError


def read(path: Path, text_columns: tuple[str, ...] = ()) -> Table:
    """Read an ``.npz`` file's arrays as columns.

    Raises:
        SeqclfError: No such file, a directory, not an .npz file, an object array, an
            array that is not 1-D or 2-D, arrays of different lengths, no rows.
    """
    if not path.exists():
        raise SeqclfError(f"{path}: file not found. Check the path in the config or command.")
    if path.is_dir():
        raise SeqclfError(f"{path}: is a directory, not a NumPy .npz file.")
    if not zipfile.is_zipfile(path):
        raise SeqclfError(f"{path}: is not a NumPy .npz file (a zip archive of arrays, as "
                          "np.savez writes). Check the file, or rename it if it is in another "
                          "format.")
    columns: dict[str, np.ndarray] = {}
    try:
        with np.load(path, allow_pickle=False) as arrays:
            if not hasattr(arrays, "files"):  # np.load read a .npy array
                raise SeqclfError(f"{path}: is a single .npy array, not an .npz file of named "
                                  "arrays. Save the columns with np.savez(path, id=..., "
                                  "label=..., ...).")
            for name in arrays.files:
                try:
                    array = arrays[name]
                except ValueError:  # "Object arrays cannot be loaded when allow_pickle=False"
                    raise SeqclfError(f"{path}: array {name!r} holds Python objects, which "
                                      "seqclf does not unpickle. Save text as a string array "
                                      "(np.array(values, dtype=str)).") from None
                columns.update(_columns(path, name, array))
    except SeqclfError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise SeqclfError(f"{path}: is not a readable NumPy .npz file "
                          f"({' '.join(str(exc).split())}).") from None
    if not columns:
        raise SeqclfError(f"{path}: holds no arrays. Save the columns with np.savez(path, "
                          "id=..., label=..., ...).")
    lengths = {name: len(a) for name, a in columns.items()}
    first = next(iter(lengths))
    for name, n in lengths.items():
        if n != lengths[first]:
            raise SeqclfError(f"{path}: array {name!r} has {n} rows, array {first!r} has "
                              f"{lengths[first]}. Each array is a column: all need one entry "
                              "per row.")
    if lengths[first] == 0:
        raise SeqclfError(f"{path}: its arrays have no rows.")
    frame = pd.DataFrame(columns)
    as_text(frame, text_columns)
    return Table(str(path), frame, np.arange(1, len(frame) + 1), "row")


def _columns(path: Path, name: str, array: np.ndarray) -> dict[str, np.ndarray]:
    if array.dtype.kind == "S":  # bytes: text as UTF-8
        array = np.char.decode(array, "utf-8", errors="replace")
    if array.dtype.kind == "V" or array.dtype.names:
        raise SeqclfError(f"{path}: array {name!r} is a structured array. Save each field as "
                          "its own array.")
    if array.ndim == 1:
        return {name: array}
    if array.ndim == 2:
        return {f"{name}[{j}]": array[:, j] for j in range(array.shape[1])}
    raise SeqclfError(f"{path}: array {name!r} must be 1-D (a column) or 2-D (rows, columns). "
                      f"Got shape {array.shape} instead. A 3-D (sequences, steps, features) "
                      "array goes into the long layout: see the README's data section.")


def chunks(path: Path, text_columns: tuple[str, ...] = (), rows: int = 65536
           ) -> Iterator[Table]:
    """The file's rows in slices of ``rows``, numbered as :func:`read` numbers them (the
    whole file is read first: see the module's note)."""
    table = read(path, text_columns)
    for start in range(0, len(table.frame), rows):
        yield Table(table.source, table.frame.iloc[start:start + rows].reset_index(drop=True),
                    table.lines[start:start + rows], table.unit)


def info(path: Path) -> FileInfo:
    """The row count and columns, from the arrays' headers (no data is read)."""
    if not zipfile.is_zipfile(path):
        read(path)  # its one-line error
    columns: list[str] = []
    rows = 0
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            if not member.endswith(".npy"):
                continue
            with archive.open(member) as fh:
                try:
                    version = np.lib.format.read_magic(fh)
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0)
                    shape, _, _ = read_header(fh)
                except ValueError:  # not an array header: read() says what is wrong
                    table = read(path)
                    return FileInfo(len(table.frame), list(table.frame.columns))
            name = member[:-4]
            rows = shape[0] if shape else 0
            columns += [name] if len(shape) == 1 else [f"{name}[{j}]" for j in range(
                shape[1] if len(shape) > 1 else 0)]
    return FileInfo(rows, columns)

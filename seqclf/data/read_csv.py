"""The CSV reader: a UTF-8 text file with a header line → a :class:`Table`.

A name ending in ``.gz``, ``.bz2``, ``.xz`` or ``.zst`` is decompressed first (``.zst``
needs the ``zstandard`` package); any other name is read as plain text.

Every problem of the text itself (encoding, quotes, ragged rows, a missing or numeric
header, blank lines) is reported here by line; the cells' checks are the shared ones in
:mod:`seqclf.data.table`.
"""

from __future__ import annotations

import bz2
import contextlib
import csv
import gzip
import io
import lzma
import re
import warnings
from pathlib import Path
from typing import IO, Any, Iterator

import numpy as np
import pandas as pd

from seqclf.data.table import FileInfo, Table
from seqclf.errors import SeqclfError, show

HEADER_LINE = 1
ENCODING = "utf-8-sig"  # UTF-8, with or without the byte-order mark some editors write
# A header cell that reads as a number: a header made of these alone is a data row.
NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
# Cells read as missing in feature columns. Ids and labels are read as text, verbatim:
# a class may be called 'NA' or 'None', and id '007' is not id '7'.
MISSING_CELLS = ["", "NA", "N/A", "n/a", "NaN", "nan", "-nan", "null", "NULL", "None", "<NA>",
                 "#N/A"]
# Compressed CSV: the name's last suffix -> what pandas calls the compression.
COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd"}


def read(path: Path, text_columns: tuple[str, ...] = ()) -> Table:
    """Read a CSV into a table whose rows are numbered by their line in the file.

    ``text_columns`` (where present) are read as strings, with no missing-value parsing.
    Blank lines are skipped but still counted, so messages name the right line.
    """
    header = _header(path)
    text = [c for c in text_columns if c in header]
    with _translated(path, header):
        frame = pd.read_csv(path, **_options(path, header, text))
    table = _rows(path, frame, header, text, HEADER_LINE + 1)
    if table is None:
        raise SeqclfError(f"{path}: has a header but no data rows.")
    return table


def chunks(path: Path, text_columns: tuple[str, ...] = (), rows: int = 65536
           ) -> Iterator[Table]:
    """The file's rows in order, ``rows`` lines at a time, each numbered by its line as
    :func:`read` numbers it, with the same checks and messages; only one chunk is in
    memory at a time."""
    header = _header(path)
    text = [c for c in text_columns if c in header]
    with _translated(path, header):
        reader = pd.read_csv(path, chunksize=rows, **_options(path, header, text))
    any_rows = False
    first = HEADER_LINE + 1
    with reader:
        while True:
            with _translated(path, header):  # around each read only, never a yield
                frame = next(reader, None)
            if frame is None:
                break
            table = _rows(path, frame, header, text, first)
            first += len(frame)
            if table is not None:
                any_rows = True
                yield table
    if not any_rows:
        raise SeqclfError(f"{path}: has a header but no data rows.")


def info(path: Path) -> FileInfo:
    """The columns, and the row count estimated from the size of the first lines (up to
    1 MiB of text) and the file's size; a compressed file's ratio is measured on them."""
    header = _header(path)
    size = path.stat().st_size
    try:
        with open(path, "rb") as raw:
            with _decompressed(path, raw) as fh:
                head = fh.read(1 << 20)
                if len(head) < (1 << 20):  # the whole file: count its lines
                    lines = [line for line in head.splitlines()[1:] if line.strip()]
                    return FileInfo(len(lines), header)
                used = max(raw.tell(), 1)  # the compressed bytes that gave those lines
    except (EOFError, OSError, lzma.LZMAError, _zstd_error()) as exc:
        raise _bad_compression(path, exc) from None
    lines = head.count(b"\n")
    per_row = used / max(lines, 1)
    return FileInfo(int(size / per_row), header, estimated=True)


def _header(path: Path) -> list[str]:
    """The header line's column names, checked (file-level errors as one line)."""
    if not path.exists():
        raise SeqclfError(f"{path}: file not found. Check the path in the config or command.")
    if path.is_dir():
        raise SeqclfError(f"{path}: is a directory, not a CSV file.")
    try:
        with _open_text(path) as fh:
            rows = csv.reader(fh)
            header = next(rows, None)
            # a blank first line: is there anything after it?
            later = None if header else next((r for r in rows if any(c.strip() for c in r)), None)
    except UnicodeDecodeError:
        raise _not_utf8(path) from None
    except (EOFError, lzma.LZMAError, _zstd_error()) as exc:  # a truncated or corrupt compressed file
        raise _bad_compression(path, exc) from None
    except OSError as exc:
        if _compression(path) and not exc.strerror:  # gzip.BadGzipFile and the like
            raise _bad_compression(path, exc) from None
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
    return header


def _options(path: Path, header: list[str], text: list[str]) -> dict[str, Any]:
    """pandas.read_csv's arguments: ids and labels as text, seqclf's missing cells.

    Text as Python strings (``object``): pandas 3's ``str`` columns took 0.13 s more to
    parse on a million rows, and the readers then need the strings as objects anyway
    (another 0.06 s a column)."""
    return dict(encoding=ENCODING, index_col=False, compression=_compression(path),
                skip_blank_lines=False, keep_default_na=False,
                dtype={c: object for c in text},
                na_values={c: MISSING_CELLS for c in header if c not in text})


@contextlib.contextmanager
def _translated(path: Path, header: list[str]) -> Iterator[None]:
    """pandas's errors while parsing, as one-line ``SeqclfError``s naming the line."""
    try:
        with warnings.catch_warnings():
            # a row with more fields than the header: pandas would drop the extra ones
            warnings.simplefilter("error", pd.errors.ParserWarning)
            # The file is parsed in chunks (25% faster than in one piece on a 1M-row file);
            # a chunk with a non-numeric cell makes its column mixed, which _numeric then
            # reports by line and column, so pandas's own warning about it is noise.
            warnings.simplefilter("ignore", pd.errors.DtypeWarning)
            yield
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
    except (EOFError, lzma.LZMAError, _zstd_error()) as exc:
        raise _bad_compression(path, exc) from None
    except (OSError, ValueError) as exc:  # pandas has more ways to fail than it documents
        raise SeqclfError(f"{path}: cannot be read as CSV ({' '.join(str(exc).split())})."
                          ) from None


def _rows(path: Path, frame: pd.DataFrame, header: list[str], text: list[str],
          first: int) -> Table | None:
    """The parsed rows whose first is line ``first``, blank lines dropped (None when
    every one is blank)."""
    if list(frame.columns) != header:  # the header itself spans lines (quoted newlines) etc.
        raise SeqclfError(f"{path}: the header could not be read consistently (columns "
                          f"{show([str(c) for c in frame.columns])}). Check its quotes.")
    lines = np.arange(first, first + len(frame))
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
        return None
    return Table(str(path), frame, lines, "line")


def _ragged_row(path: Path, width: int) -> tuple[int, int]:
    """The first line holding a row with more than ``width`` fields, and its field count."""
    with _open_text(path) as fh:
        rows = csv.reader(fh)
        start = 1
        for row in rows:
            if len(row) > width:
                return start, len(row)
            start = rows.line_num + 1
    return start, width


def _not_utf8(path: Path) -> SeqclfError:
    """The error for a file that does not decode as UTF-8, naming the first bad line."""
    with _open_binary(path) as fh:
        for n, raw in enumerate(fh, start=1):  # an error path only: a loop is fine
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return SeqclfError(f"{path}: is not UTF-8 text. Line {n} is the first that "
                                   "is not; save the file as a UTF-8 CSV.")
    return SeqclfError(f"{path}: is not UTF-8 text. Save it as a UTF-8 CSV.")



def _compression(path: Path) -> str | None:
    """The compression a file's name says (pandas's name for it), or None."""
    return COMPRESSIONS.get(path.suffix.lower())


def _open_binary(path: Path) -> IO[bytes]:
    """The file's bytes, decompressed as its name says."""
    kind = _compression(path)
    if kind == "gzip":
        return gzip.open(path, "rb")
    if kind == "bz2":
        return bz2.open(path, "rb")
    if kind == "xz":
        return lzma.open(path, "rb")
    if kind == "zstd":
        try:
            import zstandard
        except ImportError:
            raise SeqclfError(f"{path}: reading .zst files needs the zstandard package: "
                              "pip install zstandard") from None
        return zstandard.open(path, "rb")
    return open(path, "rb")


def _decompressed(path: Path, raw: IO[bytes]) -> IO[bytes]:
    """``raw`` (the open file) decompressed as the name says; ``raw`` itself when plain."""
    kind = _compression(path)
    if kind == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if kind == "bz2":
        return bz2.BZ2File(raw, "rb")
    if kind == "xz":
        return lzma.LZMAFile(raw, "rb")
    if kind == "zstd":
        with _open_binary(path):  # the message when zstandard is missing
            pass
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(raw)
    return contextlib.nullcontext(raw)  # type: ignore[return-value]


def _open_text(path: Path) -> IO[str]:
    """The file as text for the csv module (UTF-8, newlines left to it)."""
    if _compression(path) is None:
        return open(path, newline="", encoding=ENCODING)
    return io.TextIOWrapper(_open_binary(path), encoding=ENCODING, newline="")


def _zstd_error() -> type[Exception]:
    """zstandard's error class (a corrupt .zst file), or one nothing raises."""
    try:
        import zstandard
    except ImportError:
        return _NeverRaised
    return zstandard.ZstdError


class _NeverRaised(Exception):
    pass


def _bad_compression(path: Path, exc: BaseException) -> SeqclfError:
    kind = _compression(path)
    return SeqclfError(f"{path}: cannot be read as {kind}-compressed CSV ({exc}). The name "
                       f"ends in {path.suffix}: compress the file with {kind}, or rename it.")


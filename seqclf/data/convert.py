"""``seqclf data convert``: a dataset in any format seqclf reads → Parquet, in the long or
wide layout, in one file or ``N`` shards cut at sequence boundaries.

Parquet is the format to keep large data in: typed columns read in record batches
without parsing text, and a row count in the footer. Data that fits in memory
(``data.streaming``'s rule, ``stream.decide``) is read whole, its rows in any order, and
written in row groups; larger data streams: one pass counts and checks every sequence
(``stream.scan``, every check of a read), the second reads the sequences chunk by chunk
and writes them as they come, so memory stays bounded by a chunk (its rows must then be
grouped by sequence: sort the file by id first).

What is written (each file atomically, through ``seqclf.outputs``):

- long: the id column (text), the step column (0, 1, ... within each sequence: the order
  the reader established; the original step values are not kept), one float64 column
  per feature, the label column (text, when the data has labels); the rows of a
  sequence together, as streaming needs them;
- wide (one feature only): the id column, ``t0`` ... ``t{L-1}`` for the longest
  sequence's L steps (a shorter sequence's trailing cells null), the label column.

The columns keep the input's names (``data.id_column``, ``data.step_column`` or
``step``, ``data.label_column``), so the same data section reads the result.

Shards: ``OUT.parquet`` with ``--shards N`` writes ``OUT-00000-of-0000N.parquet`` ...
``OUT-0000{N-1}-of-0000N.parquet`` beside it (the glob ``OUT-*-of-0000N.parquet`` reads
them back in order), each with n/N sequences (the first ones one more when N does not
divide n).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from seqclf.config import DataConfig
import seqclf.data.stream as stream
from seqclf.data.readers import read_sequences
from seqclf.data.sets import SequenceSet
from seqclf.data.stream import Part, decide, scan
from seqclf.errors import SeqclfError, must_be
from seqclf.outputs import check_writable, is_stdout, write_with

SUFFIXES = (".parquet", ".pq")
WHERE = "seqclf data convert"


@dataclass
class Converted:
    """What ``convert`` wrote: the files, and the sequences and rows in each."""

    files: list[Path]
    sequences: list[int]
    rows: list[int]
    layout: str


def shard_names(output: str | Path, shards: int) -> list[Path]:
    """The files ``--output OUT.parquet --shards N`` writes: OUT.parquet itself for one
    shard, else ``OUT-00000-of-0000N.parquet`` ... in its folder."""
    output = Path(output)
    if shards == 1:
        return [output]
    suffix = next(s for s in SUFFIXES if output.name.lower().endswith(s))
    stem = output.name[: -len(suffix)]
    return [output.with_name(f"{stem}-{i:05d}-of-{shards:05d}{suffix}") for i in range(shards)]


def convert(source: Any, cfg: DataConfig, output: str | Path, layout: str | None = None,
            shards: int = 1) -> Converted:
    """Convert the data ``source`` (read in the layout ``cfg.format``) to Parquet.

    Args:
        source: A file, a glob or a list of shards, as ``data.train`` takes.
        cfg: The input's layout and columns (``format``, ``id_column``, ...;
            ``missing_values`` fills empty cells, as for training).
        output: A ``.parquet`` (or ``.pq``) file name.
        layout: ``long`` or ``wide`` for the output (default: the input's).
        shards: Files to cut the data into, at sequence boundaries.

    Raises:
        SeqclfError: A bad output name or shard count, more shards than sequences, the
            wide layout for several features, any error of reading the data.
    """
    layout = layout or cfg.format
    if not str(output).lower().endswith(SUFFIXES):
        raise must_be(WHERE, "--output", "a file name ending in .parquet", str(output))
    if shards < 1:
        raise must_be(WHERE, "--shards", "1 or more", shards)
    if shards > 1 and is_stdout(output):
        raise must_be(WHERE, "--output", "a file name (not -) with --shards", str(output))
    names = shard_names(output, shards)
    for name in names:
        check_writable(name)
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise SeqclfError(f"{WHERE}: writing Parquet needs pyarrow: pip install pyarrow") from None
    if decide(cfg).stream:  # larger than memory: the rows of a sequence must be together
        found = scan(source, cfg, require_labels=False, missing_values=cfg.missing_values)
        lengths, labelled, features = found.lengths, found.labels is not None, found.feature_names
        chunks = Part(found, np.arange(len(lengths))).chunks(cfg, False, cfg.missing_values)
        where = found.source
    else:  # in memory: rows in any order
        whole = read_sequences(source, cfg, require_labels=False,
                               missing_values=cfg.missing_values)
        lengths = np.array([len(q) for q in whole.sequences])
        labelled, features, where = whole.labels is not None, whole.feature_names, whole.source
        chunks = _slices(whole)
    n = len(lengths)
    if shards > n:
        raise must_be(WHERE, "--shards", f"at most the {n} sequences of {where}", shards)
    if layout == "wide" and len(features) != 1:
        raise must_be(WHERE, "--to", f"'long' for {len(features)} features per step "
                      f"({', '.join(features)}; the wide layout holds one)", layout)
    width = int(lengths.max())
    columns = (cfg.id_column, cfg.step_column or "step", cfg.label_column)
    schema = _schema(pa, layout, columns, features, width, labelled)
    pieces = _pieces(chunks)
    sizes = [n // shards + (1 if k < n % shards else 0) for k in range(shards)]
    rows: list[int] = []
    for name, size in zip(names, sizes):
        written = [0]

        def save(tmp: str, size: int = size, written: list[int] = written) -> None:
            with pq.ParquetWriter(tmp, schema) as writer:
                for piece in pieces.take(size):
                    table = _table(pa, schema, columns, piece, layout, width)
                    writer.write_table(table)
                    written[0] += table.num_rows

        write_with(name, save, suffix=".parquet")
        rows.append(written[0])
    return Converted(names, sizes, rows, layout)


def _slices(whole: SequenceSet) -> Iterator[SequenceSet]:
    """A set in memory in pieces of about ``CHUNK_ROWS`` rows (the writer's row groups)."""
    start, rows = 0, 0
    for i, seq in enumerate(whole.sequences):
        rows += len(seq)
        if rows >= stream.CHUNK_ROWS or i == len(whole) - 1:
            yield whole.subset(np.arange(start, i + 1))
            start, rows = i + 1, 0


class _pieces:
    """Chunks of sequences, handed out ``take(n)`` sequences at a time (a chunk that
    crosses a shard boundary is cut there)."""

    def __init__(self, chunks: Iterator[SequenceSet]) -> None:
        self.chunks = chunks
        self.left: SequenceSet | None = None

    def take(self, n: int) -> Iterator[SequenceSet]:
        while n > 0:
            chunk = self.left if self.left is not None else next(self.chunks)
            self.left = None
            if len(chunk) > n:
                self.left = chunk.subset(np.arange(n, len(chunk)))
                chunk = chunk.subset(np.arange(n))
            n -= len(chunk)
            yield chunk


def _schema(pa: Any, layout: str, columns: tuple[str, str, str], features: list[str],
            width: int, labels: bool) -> Any:
    id_column, step_column, label_column = columns
    if layout == "long":
        fields = [pa.field(id_column, pa.string()), pa.field(step_column, pa.int64())]
        fields += [pa.field(f, pa.float64()) for f in features]
    else:
        fields = [pa.field(id_column, pa.string())]
        fields += [pa.field(f"t{j}", pa.float64()) for j in range(width)]
    if labels:
        fields.append(pa.field(label_column, pa.string()))
    return pa.schema(fields)


def _table(pa: Any, schema: Any, names: tuple[str, str, str], piece: SequenceSet,
           layout: str, width: int) -> Any:
    id_column, step_column, label_column = names
    lengths = np.array([len(s) for s in piece.sequences], dtype=np.int64)
    columns: dict[str, Any] = {}
    if layout == "long":
        values = np.concatenate(piece.sequences)
        columns[id_column] = pa.array(np.repeat(np.array(piece.ids, dtype=object), lengths),
                                      pa.string())
        starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
        columns[step_column] = pa.array(np.arange(len(values)) - starts, pa.int64())
        for j, name in enumerate(piece.feature_names):
            columns[name] = pa.array(values[:, j], pa.float64())
        repeat = lengths
    else:
        grid = np.full((len(piece), width), np.nan)
        for i, seq in enumerate(piece.sequences):
            grid[i, : len(seq)] = seq[:, 0]
        columns[id_column] = pa.array(piece.ids, pa.string())
        for j in range(width):
            columns[f"t{j}"] = pa.array(grid[:, j], pa.float64(), from_pandas=True)
        repeat = np.ones(len(piece), dtype=np.int64)
    if label_column in schema.names:
        columns[label_column] = pa.array(np.repeat(np.array([str(v) for v in piece.labels],
                                                       dtype=object), repeat), pa.string())
    return pa.table(columns, schema=schema)

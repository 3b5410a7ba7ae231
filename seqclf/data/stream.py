"""Data larger than memory: a dataset read as a stream of chunks, never whole.

``data.streaming`` (``decide``) says whether a run reads its files into memory or streams
them. Streaming reads each file in chunks of about ``CHUNK_ROWS`` rows (its reader's
``chunks``), cut at sequence boundaries: in the long layout the rows of the chunk's last
id are carried into the next chunk, so every chunk is whole sequences, checked by the
same ``table.to_sequences`` as a file read whole. The rows of one sequence must therefore
be together in their file (``seqclf data convert`` writes them so); an id that comes back
after other ids is an error naming it.

One pass (``scan``) counts the sequences of every file and keeps one label and one
length per sequence (tens of bytes each, never the steps): enough to split off test and
validation sets exactly as in memory (``split_parts``: the same ``splits.split`` on the
same labels) and to fit the label set and padding length; a second pass over the
training part alone fits standard or minmax scaling (``moments``). A :class:`Part` is
then one split's sequences (train, validation or test), read chunk by chunk, and
``rebatch`` / ``shuffled`` turn its chunks into batches with memory bounded by the
batch and the shuffle buffer, not by the data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from seqclf.config import Config, DataConfig
from seqclf.data.readers import check_one_format, file_info, read_chunks
from seqclf.data.sets import SequenceSet, label_sort_key
from seqclf.data.sources import data_files, describe
from seqclf.data.splits import split
from seqclf.data.table import Table, to_sequences
from seqclf.errors import SeqclfError

CHUNK_ROWS = 65536  # rows read at a time: about 4 MB of float64 per 8 feature columns
BYTES_PER_CELL = 24  # in memory: the float64 table as read, the float64 sequences, the
# float32 padded arrays, rounded up (the estimate streaming's auto decision compares)
GIB = 1 << 30


# --- the decision --------------------------------------------------------------------


@dataclass
class Decision:
    """Whether a run streams, and the line that says why (printed by train)."""

    stream: bool
    line: str


def available_memory() -> int:
    """Bytes of memory available now: the system's MemAvailable, lowered to the cgroup's
    limit less its usage when a container has one."""
    available = None
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
    except OSError:
        pass
    if available is None:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
        if limit != "max":
            available = min(available, int(limit) - used)
    except (OSError, ValueError):
        pass
    return max(int(available), 0)


def estimate_cells(specs: list[Any], cfg: DataConfig) -> tuple[int, int, bool]:
    """The feature cells the data paths hold: (cells, rows, whether estimated), from
    each file's reader ``info`` (Parquet and .npz: exact, from their headers; CSV: from
    the size of the first lines)."""
    cells = rows = 0
    estimated = False
    skip = {cfg.id_column, cfg.label_column, cfg.step_column}
    for spec in specs:
        for path in data_files(spec):
            info = file_info(path)
            features = (len(cfg.feature_columns) if cfg.feature_columns
                        else len([c for c in info.columns if c not in skip]))
            cells += info.rows * max(features, 1)
            rows += info.rows
            estimated |= info.estimated
    return cells, rows, estimated


def decide(cfg: DataConfig, available: int | None = None) -> Decision:
    """``data.streaming``: true and false as they say; auto streams when the data would
    take more than ``data.memory_budget`` of the available memory in memory, at
    ``BYTES_PER_CELL`` bytes per feature cell of the training and test files."""
    if cfg.streaming is not True and cfg.streaming is not False:
        specs = [s for s in (cfg.train, cfg.test) if s]
        cells, rows, estimated = estimate_cells(specs, cfg)
        available = available_memory() if available is None else available
        need, budget = cells * BYTES_PER_CELL, cfg.memory_budget * available
        stream = need > budget
        about = "about " if estimated else ""
        return Decision(stream, (
            f"data.streaming auto: {about}{rows:,} rows, {cells:,} feature cells, "
            f"~{need / GIB:.2f} GiB in memory ({BYTES_PER_CELL} bytes a cell) "
            f"{'>' if stream else '<='} {budget / GIB:.2f} GiB (data.memory_budget "
            f"{cfg.memory_budget:g} of {available / GIB:.2f} GiB available): "
            f"{'streaming' if stream else 'in memory'}"))
    if cfg.streaming:
        return Decision(True, "data.streaming true: streaming")
    return Decision(False, "data.streaming false: in memory")


# --- reading in chunks ---------------------------------------------------------------


def file_chunks(path: Path, cfg: DataConfig, require_labels: bool = True,
                missing_values: str = "error", first_id: int = 1, rows: int | None = None,
                seen: set[str] | None = None) -> Iterator[SequenceSet]:
    """One file's sequences, chunk by chunk (each a ``SequenceSet`` of whole sequences,
    checked and numbered as a file read whole).

    Args:
        first_id: The id of the file's first sequence when the wide layout has no id
            column (the sequences before it in the dataset, plus one).
        rows: Rows per chunk (default ``CHUNK_ROWS``).
        seen: The ids of the chunks before, to catch a sequence whose rows are not
            together (long layout); updated. None: not checked.

    Raises:
        SeqclfError: Everything ``to_sequences`` reports, and an id whose rows are apart.
    """
    text = (cfg.id_column, cfg.label_column)
    carry: Table | None = None
    next_id = first_id
    for table in read_chunks(path, text, rows or CHUNK_ROWS):
        if cfg.format == "long" and cfg.id_column in table.frame.columns:
            if carry is not None:
                table = Table(table.source, pd.concat([carry.frame, table.frame],
                                                      ignore_index=True),
                              np.concatenate([carry.lines, table.lines]), table.unit)
            ids = table.frame[cfg.id_column].to_numpy()
            tail = ids == ids[-1]  # the last id may go on in the next chunk
            carry = _rows(table, tail)
            if tail.all():
                continue
            table = _rows(table, ~tail)
        chunk = to_sequences(table, cfg, require_labels, missing_values, next_id)
        _check_new(chunk, seen)
        next_id += len(chunk)
        yield chunk
    if carry is not None:
        chunk = to_sequences(carry, cfg, require_labels, missing_values, next_id)
        _check_new(chunk, seen)
        yield chunk


def _rows(table: Table, keep: np.ndarray) -> Table:
    return Table(table.source, table.frame[keep].reset_index(drop=True), table.lines[keep],
                 table.unit)


def _check_new(chunk: SequenceSet, seen: set[str] | None) -> None:
    if seen is None:
        return
    for i, seq_id in enumerate(chunk.ids):
        if seq_id in seen:
            raise SeqclfError(
                f"{chunk.where(i)}: id {seq_id!r} comes again after rows of other ids. To "
                "stream a dataset, the rows of each sequence must be together in one file "
                "(seqclf data convert writes them so), or set data.streaming: false.")
    seen.update(chunk.ids)


# --- the pass that counts ------------------------------------------------------------


@dataclass
class Scan:
    """What one pass over a dataset's files found (all but the steps).

    Attributes:
        source: The data path, for messages.
        files: The files, in reading order.
        counts: Sequences per file.
        labels: One raw label per sequence (ints only if every one is), or None.
        lengths: Steps per sequence.
        feature_names: The feature columns (checked equal in every file).
        unit: ``line`` or ``row``, as the reader numbers rows.
        missing: Empty cells filled (``data.missing_values``).
        largest: The largest value of the first feature (token vocabularies).
    """

    source: str
    files: list[Path]
    counts: list[int]
    labels: list[Any] | None
    lengths: np.ndarray
    feature_names: list[str]
    unit: str
    missing: int = 0
    largest: float = float("nan")

    @property
    def offsets(self) -> list[int]:
        """Each file's first sequence's position in the dataset."""
        return [int(v) for v in np.r_[0, np.cumsum(self.counts)[:-1]]]


def scan(spec: Any, cfg: DataConfig, require_labels: bool = True,
         missing_values: str = "error", rows: int | None = None, tokens: bool = False) -> Scan:
    """One pass over the files of a data path: every check a read makes, and the counts,
    labels and lengths (see :class:`Scan`); with ``tokens``, the largest first feature.

    Raises:
        SeqclfError: Any reader or table error; shards in several formats, with other
            feature columns, with and without labels; an id in two places.
    """
    files = data_files(spec)
    counts = [0] * len(files)
    labels: list[Any] = []
    has_labels = False
    lengths: list[np.ndarray] = []
    names: list[str] = []
    unit, missing, largest = "line", 0, -np.inf
    for f, chunk in dataset_chunks(files, cfg, require_labels, missing_values, rows):
        names, unit, has_labels = chunk.feature_names, chunk.unit, chunk.labels is not None
        if chunk.labels is not None:
            labels += chunk.labels
        lengths.append(np.array([len(s) for s in chunk.sequences], dtype=np.int64))
        missing += chunk.missing
        if tokens:
            largest = max(largest, max(float(np.nanmax(s[:, 0])) for s in chunk.sequences))
        counts[f] += len(chunk)
    if has_labels and not all(isinstance(v, int) for v in labels):
        labels = [str(v) for v in labels]  # integers only if every chunk's are
    return Scan(describe(spec), files, counts, labels if has_labels else None,
                np.concatenate(lengths) if lengths else np.zeros(0, np.int64),
                names, unit, missing, largest)


def dataset_chunks(spec: Any, cfg: DataConfig, require_labels: bool = True,
                   missing_values: str = "error", rows: int | None = None
                   ) -> Iterator[tuple[int, SequenceSet]]:
    """Every file's chunks of a data path in one pass, with the checks that the shards
    agree (one format, the same feature columns, labels in all or none, each id in one
    place): (the file's index, a chunk).

    Raises:
        SeqclfError: As ``read_sequences`` for the same files.
    """
    files = spec if isinstance(spec, list) and all(isinstance(f, Path) for f in spec) \
        else data_files(spec)
    check_one_format(files)
    seen: set[str] | None = set() if cfg.format == "long" else None
    names: list[str] | None = None
    has_labels, first, n = False, None, 0
    for f, path in enumerate(files):
        for chunk in file_chunks(path, cfg, require_labels, missing_values, 1 + n, rows, seen):
            if names is None:
                names, first, has_labels = chunk.feature_names, chunk.source, chunk.labels is not None
            elif chunk.feature_names != names:
                raise SeqclfError(f"{chunk.source}: feature columns {chunk.feature_names} "
                                  f"differ from {first}'s {names}. All shards of a dataset "
                                  "need the same columns.")
            elif (chunk.labels is not None) != has_labels:
                has, lacks = (chunk.source, first) if not has_labels else (first, chunk.source)
                raise SeqclfError(f"{lacks}: has no label column {cfg.label_column!r} but "
                                  f"{has} has. All shards of a dataset need the same columns.")
            n += len(chunk)
            yield f, chunk


def split_parts(scan: Scan, fraction: float, seed: int, stratify: bool, key: str,
                among: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the sequences that stay and of those split off, by the same
    ``splits.split`` the in-memory path runs on the same labels (so both paths split
    alike). ``among``: the positions to split (default: all)."""
    among = np.arange(len(scan.lengths)) if among is None else among
    empty = np.zeros((0, 0))
    skeleton = SequenceSet(
        ids=[str(i) for i in among], sequences=[empty] * len(among),
        labels=None if scan.labels is None else [scan.labels[i] for i in among],
        feature_names=scan.feature_names, source=scan.source, lines=[0] * len(among))
    rest, part = split(skeleton, fraction, seed, stratify, key)
    return (np.array([int(i) for i in rest.ids], dtype=np.int64),
            np.array([int(i) for i in part.ids], dtype=np.int64))


# --- one part of a dataset, read chunk by chunk --------------------------------------


@dataclass
class Part:
    """One split's sequences of a scanned dataset (training, validation or test),
    standing in for a ``SequenceSet`` that is never in memory: its labels and lengths
    are, its steps are read chunk by chunk (:meth:`chunks`).

    Attributes:
        scan: The dataset.
        positions: The part's sequences, as sorted positions in the dataset.
        files: Which of the dataset's files to read (default: all; a worker of a
            multi-worker run reads its own).
    """

    scan: Scan
    positions: np.ndarray
    files: list[int] | None = None
    _labels: list[Any] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.files is not None:
            offsets, counts = self.scan.offsets, self.scan.counts
            inside = np.zeros(len(self.scan.lengths), dtype=bool)
            for f in self.files:
                inside[offsets[f]:offsets[f] + counts[f]] = True
            self.positions = self.positions[inside[self.positions]]

    @property
    def source(self) -> str:
        return self.scan.source

    @property
    def feature_names(self) -> list[str]:
        return self.scan.feature_names

    @property
    def unit(self) -> str:
        return self.scan.unit

    @property
    def missing(self) -> int:
        return self.scan.missing

    @property
    def labels(self) -> list[Any] | None:
        if self.scan.labels is None:
            return None
        if self._labels is None:
            self._labels = [self.scan.labels[i] for i in self.positions]
        return self._labels

    @property
    def lengths(self) -> np.ndarray:
        return self.scan.lengths[self.positions]

    def __len__(self) -> int:
        return len(self.positions)

    def only(self, files: list[int]) -> "Part":
        """The part's sequences in the given files alone."""
        return Part(self.scan, self.positions, sorted(files))

    def chunks(self, cfg: DataConfig, require_labels: bool = True,
               missing_values: str = "error", order: list[int] | None = None,
               rows: int | None = None) -> Iterator[SequenceSet]:
        """The part's sequences, chunk by chunk, files in ``order`` (default: theirs).

        Chunks without any of the part's sequences are skipped; the others are cut to
        them (``SequenceSet.subset``), in file order within each file.
        """
        wanted = np.zeros(len(self.scan.lengths), dtype=bool)
        wanted[self.positions] = True
        files = order if order is not None else (
            self.files if self.files is not None else range(len(self.scan.files)))
        offsets = self.scan.offsets
        for f in files:
            start = offsets[f]
            if not wanted[start:start + self.scan.counts[f]].any():
                continue
            for chunk in file_chunks(self.scan.files[f], cfg, require_labels,
                                     missing_values, start + 1, rows):
                keep = np.flatnonzero(wanted[start:start + len(chunk)])
                start += len(chunk)
                if len(keep) == len(chunk):
                    yield chunk
                elif len(keep):
                    yield chunk.subset(keep)

    def summary(self) -> dict[str, Any]:
        """As ``SequenceSet.summary``, from the labels and lengths."""
        lengths = self.lengths
        counts = None
        if self.labels:
            counts = pd.Series([str(v) for v in self.labels]).value_counts()
            counts = counts[sorted(counts.index, key=label_sort_key)]
        return {
            "source": self.source, "sequences": len(self),
            "length": {"min": int(lengths.min()), "median": float(np.median(lengths)),
                       "max": int(lengths.max())},
            "channels": len(self.feature_names), "features": list(self.feature_names),
            "classes": None if counts is None else {k: int(v) for k, v in counts.items()},
            "missing_values": self.missing,
        }


def moments(part: Part, cfg: Config, rows: int | None = None
            ) -> tuple[list[float], list[float]]:
    """``data.scaling``'s center and scale over the part's steps, in one pass (standard:
    Chan et al.'s pairwise merge of each chunk's mean and sum of squares; minmax: the
    running extremes); ``none``/``per_sequence``: 0 and 1 without reading anything."""
    n_features = len(part.feature_names)
    scaling = cfg.data.scaling
    if scaling not in ("standard", "minmax"):
        return [0.0] * n_features, [1.0] * n_features
    count, mean, m2 = 0, np.zeros(n_features), np.zeros(n_features)
    lo, hi = np.full(n_features, np.inf), np.full(n_features, -np.inf)
    for chunk in part.chunks(cfg.data, True, cfg.data.missing_values, rows=rows):
        stacked = np.concatenate(chunk.sequences)
        if scaling == "minmax":
            lo, hi = np.minimum(lo, stacked.min(axis=0)), np.maximum(hi, stacked.max(axis=0))
            continue
        n = len(stacked)
        chunk_mean = stacked.mean(axis=0)
        chunk_m2 = ((stacked - chunk_mean) ** 2).sum(axis=0)
        delta = chunk_mean - mean
        total = count + n
        mean = mean + delta * (n / total)
        m2 = m2 + chunk_m2 + delta ** 2 * (count * n / total)
        count = total
    if scaling == "minmax":
        return lo.tolist(), np.where(hi > lo, hi - lo, 1.0).tolist()
    std = np.sqrt(m2 / max(count, 1))
    return mean.tolist(), np.where(std > 0, std, 1.0).tolist()


# --- chunks to batches ---------------------------------------------------------------


def rebatch(chunks: Iterator[tuple[np.ndarray, ...]], batch_size: int
            ) -> Iterator[tuple[np.ndarray, ...]]:
    """Aligned arrays in chunks of any size → batches of ``batch_size`` in the same
    order (the last one shorter). Holds less than one batch besides the chunk."""
    pending: tuple[np.ndarray, ...] | None = None
    for arrays in chunks:
        if pending is not None and len(pending[0]):
            arrays = tuple(np.concatenate([a, b]) for a, b in zip(pending, arrays))
        n = len(arrays[0])
        full = n - n % batch_size
        for start in range(0, full, batch_size):
            yield tuple(a[start:start + batch_size] for a in arrays)
        pending = tuple(a[full:].copy() for a in arrays)
    if pending is not None and len(pending[0]):
        yield pending


def shuffled(chunks: Iterator[tuple[np.ndarray, ...]], buffer: int,
             rng: np.random.Generator) -> Iterator[tuple[np.ndarray, ...]]:
    """A shuffle buffer over aligned arrays (as ``tf.data``'s): the first ``buffer``
    rows fill it; then each arriving row takes the place of a row drawn at random from
    it, which leaves; at the end the rest leaves in random order. Memory: the buffer."""
    held: list[np.ndarray] | None = None
    size = 0
    for arrays in chunks:
        if held is None:
            held = [np.empty((buffer,) + a.shape[1:], dtype=a.dtype) for a in arrays]
        n = len(arrays[0])
        start = 0
        if size < buffer:  # filling
            take = min(buffer - size, n)
            for h, a in zip(held, arrays):
                h[size:size + take] = a[:take]
            size += take
            start = take
        while start < n:
            block = min(buffer, n - start)
            slots = rng.choice(buffer, size=block, replace=False)
            out = tuple(h[slots] for h in held)
            for h, a in zip(held, arrays):
                h[slots] = a[start:start + block]
            start += block
            yield out
    if held is not None and size:
        order = rng.permutation(size)
        yield tuple(h[:size][order] for h in held)


def shard_files(n_files: int, workers: int, index: int) -> list[int]:
    """The files worker ``index`` of ``workers`` reads: every ``workers``-th from its
    index (disjoint, and together every file)."""
    return list(range(index, n_files, workers))


def reorder(files: list[int], rng: np.random.Generator | None) -> list[int]:
    """``files`` in a random order (None: as they are)."""
    if rng is None:
        return list(files)
    return [files[i] for i in rng.permutation(len(files))]

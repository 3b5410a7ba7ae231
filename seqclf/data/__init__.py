"""Sequences in, padded arrays out: the data package.

Two layouts (see README): *wide*, one row per sequence with one column per step of a
single feature; *long*, one row per step with an id column and any number of feature
columns. Reading yields a :class:`SequenceSet` (variable-length float arrays plus raw
labels); a :class:`Preprocessor` fitted on training data alone then scales, pads and
encodes, and is saved with the run so evaluation applies exactly the same steps.

One job per module:

- ``readers``: the reader registry (a file's reader, from its name) and
  ``read_sequences``;
- ``read_csv`` (and one module per further format): a file → a ``table.Table``;
- ``table``: the checks every format shares, a table → a ``SequenceSet``;
- ``sets``: ``SequenceSet``, ``check_same_features``;
- ``sources``: the files a data path names, ``file_sha256``;
- ``memory``: DataFrames and arrays already in memory (``from_frame``, ``from_arrays``);
- ``splits``: ``load_splits``, ``split``;
- ``preprocess``: ``Preprocessor``, ``z_normalise``, ``MASK_VALUE``.

Errors name the file and the line (CSV; the header is line 1) or row at fault.
"""

from seqclf.data.memory import from_arrays, from_frame
from seqclf.data.preprocess import MASK_VALUE, Preprocessor, z_normalise
from seqclf.data.readers import Reader, read_sequences, read_table, reader_for, register
from seqclf.data.sets import SequenceSet, check_same_features
from seqclf.data.sources import changed, digests, file_sha256
from seqclf.data.splits import load_splits, split
from seqclf.data.table import Table

__all__ = [
    "MASK_VALUE", "Preprocessor", "Reader", "SequenceSet", "Table", "changed",
    "check_same_features", "digests", "file_sha256", "from_arrays", "from_frame",
    "load_splits", "read_sequences", "read_table", "reader_for", "register", "split",
    "z_normalise",
]

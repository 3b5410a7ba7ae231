"""seqclf data convert: any readable data → Parquet in the long or wide layout, in one
file or shards cut at sequence boundaries, read back as the same sequences."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import long_frame, wide_frame, write_csv
from seqclf.config import validate_config
from seqclf.data import read_sequences, stream
from seqclf.data.convert import convert, shard_names
from seqclf.errors import SeqclfError


def data_cfg(path, fmt="long", **data):
    return validate_config({"data": {"train": str(path), "format": fmt, **data}},
                           where="c.yaml").data


def same(a, b):
    assert a.ids == b.ids and a.labels == b.labels and a.feature_names == b.feature_names
    for x, y in zip(a.sequences, b.sequences, strict=True):
        np.testing.assert_array_equal(x, y)


def test_shard_names():
    from pathlib import Path

    assert shard_names("d/out.parquet", 1) == [Path("d/out.parquet")]
    assert [p.name for p in shard_names("d/out.parquet", 3)] == [
        "out-00000-of-00003.parquet", "out-00001-of-00003.parquet", "out-00002-of-00003.parquet"]


@pytest.mark.parametrize("streaming", [False, True])
def test_csv_to_parquet_shards_reads_back_the_same_sequences(tmp_path, monkeypatch, streaming):
    """In memory, rows in any order (the reader sorts by id and step); streamed, rows
    grouped by id, in chunks of 11 rows that cross shard boundaries. 3 shards of 7, 7, 6
    sequences, cut between sequences."""
    frame = long_frame(20, seed=0)
    if streaming:
        frame = frame.sort_values("id", kind="stable")
    csv = write_csv(tmp_path / "d.csv", frame)
    cfg = data_cfg(csv, streaming=streaming)
    monkeypatch.setattr(stream, "CHUNK_ROWS", 11)
    done = convert(csv, cfg, tmp_path / "out.parquet", shards=3)
    assert [p.name for p in done.files] == [p.name for p in shard_names(tmp_path / "out.parquet", 3)]
    assert done.sequences == [7, 7, 6] and done.layout == "long"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(  # no temporary files left
        ["d.csv"] + [p.name for p in done.files])
    ids = [set(pd.read_parquet(p)["id"]) for p in done.files]
    assert not (ids[0] & ids[1]) and not (ids[1] & ids[2])  # each sequence in one shard
    assert done.rows == [len(pd.read_parquet(p)) for p in done.files]
    assert max(pq_row_groups(p) for p in done.files) > 1  # written chunk by chunk
    back = read_sequences(str(tmp_path / "out-*-of-00003.parquet"), cfg)
    same(back, read_sequences(csv, cfg))
    # the shards stream: the rows of each sequence are together
    assert stream.scan(str(tmp_path / "out-*.parquet"), cfg).counts == [7, 7, 6]


def pq_row_groups(path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_row_groups


def test_long_and_wide_convert_both_ways(tmp_path):
    wide_csv = write_csv(tmp_path / "w.csv", wide_frame(12, seed=1))
    wide = data_cfg(wide_csv, "wide")
    convert(wide_csv, wide, tmp_path / "long.parquet", layout="long")
    long = data_cfg(tmp_path / "long.parquet", "long")
    back = read_sequences(tmp_path / "long.parquet", long)
    same(back, read_sequences(wide_csv, wide))
    assert back.feature_names == ["value"]
    convert(tmp_path / "long.parquet", long, tmp_path / "wide.parquet", layout="wide")
    frame = pd.read_parquet(tmp_path / "wide.parquet")
    width = max(len(q) for q in back.sequences)
    assert list(frame.columns) == ["id"] + [f"t{j}" for j in range(width)] + ["label"]
    assert frame[f"t{width - 1}"].isna().any()  # shorter sequences: trailing nulls
    same(read_sequences(tmp_path / "wide.parquet", data_cfg("x", "wide")),
         read_sequences(wide_csv, wide))


def test_unlabelled_data_and_the_input_column_names(tmp_path):
    frame = long_frame(5, seed=2, with_labels=False).rename(columns={"id": "key", "step": "t"})
    csv = write_csv(tmp_path / "d.csv", frame)
    cfg = data_cfg(csv, id_column="key", step_column="t")
    convert(csv, cfg, tmp_path / "o.parquet")
    assert list(pd.read_parquet(tmp_path / "o.parquet").columns) == ["key", "t", "x", "y"]
    same(read_sequences(tmp_path / "o.parquet", cfg, require_labels=False),
         read_sequences(csv, cfg, require_labels=False))


@pytest.mark.parametrize("output, shards, layout, expected", [
    ("o.csv", 1, None, "seqclf data convert: --output must be a file name ending in .parquet. "
                       "Got 'OUT/o.csv' instead."),
    ("o.parquet", 0, None, "seqclf data convert: --shards must be 1 or more. Got 0 instead."),
    ("o.parquet", 7, None, "seqclf data convert: --shards must be at most the 6 sequences of "
                           "IN. Got 7 instead."),
    ("o.parquet", 1, "wide", "seqclf data convert: --to must be 'long' for 2 features per step "
                             "(x, y; the wide layout holds one). Got 'wide' instead."),
])
def test_bad_requests_are_one_line_errors(tmp_path, output, shards, layout, expected):
    csv = write_csv(tmp_path / "d.csv", long_frame(6, seed=3))
    with pytest.raises(SeqclfError) as info:
        convert(csv, data_cfg(csv), tmp_path / output, layout, shards)
    assert str(info.value) == expected.replace("OUT", str(tmp_path)).replace("IN", str(csv))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv"]


def test_the_command(tmp_path, monkeypatch):
    from seqclf.cli import app

    write_csv(tmp_path / "d.csv", long_frame(4, seed=4))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["data", "convert", "d.csv", "--output", "o.parquet",
                                      "--shards", "2"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("wrote o-00000-of-00002.parquet: 2 sequences, ")
    assert lines[1].endswith("rows (long layout)")
    bad = CliRunner().invoke(app, ["data", "convert", "d.csv", "--output", "o.parquet",
                                   "--to", "tall"])
    assert bad.exit_code == 2
    assert "error: seqclf data convert: --to must be 'long' or 'wide'. Got 'tall' instead." in (
        bad.output)

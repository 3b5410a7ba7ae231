"""Every reader (CSV plain and compressed, Parquet, .npz) on both layouts, with the CSV
reader's checks and messages; file-level errors of each format; shards (a glob or a list
of files); a training run on Parquet through the CLI."""

from __future__ import annotations

import bz2
import gzip
import lzma
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zstandard  # the test extra installs it (seqclf's zstd extra)
from typer.testing import CliRunner

from conftest import long_frame, wide_frame, write_config, write_text
from seqclf.config import load_config, validate_config
from seqclf.data import changed, digests, file_sha256, load_splits, read_sequences, reader_for
from seqclf.errors import SeqclfError


COMPRESS = {".csv.gz": gzip.compress, ".csv.bz2": bz2.compress, ".csv.xz": lzma.compress,
            ".csv.zst": zstandard.compress}
FORMATS = [".csv", *COMPRESS, ".parquet", ".npz"]


def write(path: Path, frame: pd.DataFrame) -> Path:
    """``frame`` in the format the name says (NaN: an empty cell / a null)."""
    name = path.name
    if name.endswith(".parquet"):
        frame.to_parquet(path, index=False)
    elif name.endswith(".npz"):
        np.savez(path, **{c: (frame[c].to_numpy() if pd.api.types.is_numeric_dtype(frame[c])
                              else frame[c].to_numpy(dtype=str)) for c in frame.columns})
    else:
        text = frame.to_csv(index=False).encode("utf-8")
        suffix = next((s for s in COMPRESS if name.endswith(s)), None)
        path.write_bytes(COMPRESS[suffix](text) if suffix else text)
    return path


def at(fmt: str, row: int) -> str:
    """How messages name the frame's row ``row`` (from 1): a CSV's line, else the row."""
    return f"line {row + 1}" if fmt.startswith(".csv") else f"row {row}"


def data(fmt_format="long", **keys):
    return validate_config({"data": {"train": "x", "format": fmt_format, **keys}}).data


def read(path, fmt_format="long", missing_values="error", require_labels=True, **keys):
    return read_sequences(path, data(fmt_format, **keys), require_labels=require_labels,
                          missing_values=missing_values)


def fails(path, message, **kwargs):
    with pytest.raises(SeqclfError) as info:
        read(path, **kwargs)
    assert str(info.value) == f"{path}: {message}"


LONG = pd.DataFrame({"id": ["a", "a", "a", "b", "b"], "step": [0, 1, 2, 0, 1],
                     "x": [0.5, 1.5, 2.5, 3.5, 4.5], "y": [1.0, 2.0, 3.0, 4.0, 5.0],
                     "label": ["up", "up", "up", "down", "down"]})


def long_with(**changes) -> pd.DataFrame:
    frame = LONG.copy()
    for column, (row, value) in changes.items():
        if isinstance(value, str):  # a text cell: the whole column is text (Parquet, .npz)
            frame[column] = frame[column].astype(str)
        frame.loc[row, column] = value
    return frame


# --- both layouts, every format ------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_long_layout_reads_as_the_csv_does(fmt, tmp_path):
    frame = long_frame(12, seed=4)
    csv = read(write(tmp_path / "t.csv", frame))
    ss = read(write(tmp_path / f"t{fmt}", frame))
    assert ss.ids == csv.ids and ss.labels == csv.labels
    assert ss.feature_names == csv.feature_names == ["x", "y"]
    for a, b in zip(ss.sequences, csv.sequences):
        np.testing.assert_array_equal(a, b)
    assert ss.unit == ("line" if fmt.startswith(".csv") else "row")


@pytest.mark.parametrize("fmt", FORMATS)
def test_wide_layout_trailing_empty_cells_shorten_and_integer_labels_stay(fmt, tmp_path):
    frame = wide_frame(8, seed=2)
    csv = read(write(tmp_path / "w.csv", frame), "wide")
    ss = read(write(tmp_path / f"w{fmt}", frame), "wide")
    assert ss.ids == csv.ids and ss.labels == csv.labels
    assert all(isinstance(v, int) for v in ss.labels)
    assert [len(s) for s in ss.sequences] == [len(s) for s in csv.sequences]
    assert len({len(s) for s in ss.sequences}) > 1  # some rows were shorter
    for a, b in zip(ss.sequences, csv.sequences):
        np.testing.assert_array_equal(a, b)
    no_ids = read(write(tmp_path / f"n{fmt}", frame.drop(columns=["id"])), "wide")
    assert no_ids.ids == [str(i) for i in range(1, 9)]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("frame, row, message, keys", [
    (long_with(x=(2, "oops")), 3, "{at}, column 'x': 'oops' is not a number. Feature cells "
                                  "must be numeric.", {}),
    (long_with(y=(1, np.nan)), 2, "{at}, column 'y': empty cell. Fill it, or set "
                                  "data.missing_values to 'zero' or 'ffill'.", {}),
    (long_with(x=(4, np.inf)), 5, "{at}, column 'x': inf is not finite. Feature values must "
                                  "be finite numbers.", {}),
    (long_with(x=(0, 1e39)), 1, "{at}, column 'x': 1e+39 is too large (beyond ±3.4e+38). "
                                "Feature values must be finite numbers.", {}),
    (long_with(label=(2, "down")), None, "{at_pair}: id 'a' has labels 'up' and 'down'. All "
                                         "rows of a sequence must have the same label.", {}),
    (long_with(label=(3, "")), 4, "{at}: the label ('label') is empty. Every sequence needs a "
                                  "label.", {}),
    (long_with(id=(1, "")), 2, "{at}: the id ('id') is empty.", {}),
])
def test_the_csv_checks_apply_to_every_format(fmt, frame, row, message, keys, tmp_path):
    path = write(tmp_path / f"bad{fmt}", frame)
    pair = ("lines 2 and 4" if fmt.startswith(".csv") else "rows 1 and 3")
    expected = message.format(at=at(fmt, row) if row else "", at_pair=pair)
    fails(path, expected, **keys)


@pytest.mark.parametrize("fmt", FORMATS)
def test_steps_missing_values_and_columns_every_format(fmt, tmp_path):
    dup = write(tmp_path / f"dup{fmt}", long_with(step=(1, 0)))
    unit = "lines 2 and 3" if fmt.startswith(".csv") else "rows 1 and 2"
    fails(dup, f"{unit}: id 'a' has step 0 twice. Steps must be unique within a sequence.")
    gap = write(tmp_path / f"gap{fmt}", long_with(step=(2, 3)))
    unit = "lines 3 and 4" if fmt.startswith(".csv") else "rows 2 and 3"
    fails(gap, f"{unit}: id 'a' jumps from step 1 to 3; step 2 is missing. Integer steps must "
               "be consecutive within a sequence (or set data.step_gaps: allow to use them for "
               "ordering only).")
    assert len(read(gap, step_gaps="allow")) == 2
    holes = write(tmp_path / f"holes{fmt}", long_with(y=(1, np.nan)))
    assert read(holes, missing_values="zero").missing == 1
    assert read(holes, missing_values="ffill").sequences[0][1, 1] == 1.0
    no_label = write(tmp_path / f"nl{fmt}", LONG.drop(columns=["label"]))
    fails(no_label, "has no label column 'label'. Columns: id, step, x, y. Set "
                    "data.label_column to the right one.")
    assert read(no_label, require_labels=False).labels is None
    fails(write(tmp_path / f"ni{fmt}", LONG.drop(columns=["id"])),
          "has no id column 'id'; the long layout needs one. Columns: step, x, y, label. Set "
          "data.id_column.")
    fails(write(tmp_path / f"nf{fmt}", LONG), "has no column 'z' (named by "
          "data.feature_columns). Columns: id, step, x, y, label.", feature_columns=["z"])


# --- each format's own file-level errors ---------------------------------------------


@pytest.mark.parametrize("fmt, kind", [(".parquet", "Parquet"), (".npz", "NumPy .npz")])
def test_missing_file_directory_and_other_content(fmt, kind, tmp_path):
    fails(tmp_path / f"none{fmt}", "file not found. Check the path in the config or command.")
    (tmp_path / f"dir{fmt}").mkdir()
    fails(tmp_path / f"dir{fmt}", f"is a directory, not a {kind} file.")
    text = write_text(tmp_path / f"text{fmt}", "id,step,x,label\na,0,1,up\n")
    with pytest.raises(SeqclfError, match=rf"^{re.escape(str(text))}: is not a "):
        read(text)


def test_parquet_nested_and_empty(tmp_path):
    nested = LONG.assign(x=[[1.0], [2.0], [3.0], [4.0], [5.0]])
    path = write(tmp_path / "n.parquet", nested)
    fails(path, "column 'x' holds list<element: double> values, not numbers or text. Store "
                "one value per cell (the long layout has a row per step).")
    fails(write(tmp_path / "e.parquet", LONG.iloc[:0]),
          "has columns (id, step, x, y, label) but no rows.")


def test_parquet_without_pyarrow_names_the_pip_command(tmp_path, monkeypatch):
    path = write(tmp_path / "t.parquet", LONG)
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    fails(path, "reading Parquet needs pyarrow: pip install pyarrow")


def test_npz_arrays_are_columns_and_their_errors(tmp_path):
    path = tmp_path / "w.npz"  # a 2-D array: one column per step
    np.savez(path, values=np.array([[1.0, 2.0, np.nan], [3.0, 4.0, 5.0]]),
             label=np.array(["a", "b"]), id=np.array([b"s1", b"s2"]))
    ss = read(path, "wide")
    assert [s[:, 0].tolist() for s in ss.sequences] == [[1.0, 2.0], [3.0, 4.0, 5.0]]
    assert ss.ids == ["s1", "s2"] and ss.labels == ["a", "b"]
    long = tmp_path / "l.npz"
    np.savez(long, id=np.array(["a", "a", "b"]), x=np.arange(6.0).reshape(3, 2),
             label=np.array([1, 1, 2]))
    ss = read(long, step_column=None)
    assert ss.feature_names == ["x[0]", "x[1]"] and ss.labels == [1, 2]
    np.savez(path, id=np.array(["a", None], dtype=object), x=np.zeros(2))
    fails(path, "array 'id' holds Python objects, which seqclf does not unpickle. Save text "
                "as a string array (np.array(values, dtype=str)).")
    np.savez(path, id=np.array(["a", "b"]), x=np.zeros(3))
    fails(path, "array 'x' has 3 rows, array 'id' has 2. Each array is a column: all need one "
                "entry per row.")
    np.savez(path, x=np.zeros((2, 3, 4)))
    fails(path, "array 'x' must be 1-D (a column) or 2-D (rows, columns). Got shape (2, 3, 4) "
                "instead. A 3-D (sequences, steps, features) array goes into the long layout: "
                "see the README's data section.")
    np.savez(path, id=np.array([], dtype=str), x=np.zeros(0))
    fails(path, "its arrays have no rows.")


@pytest.mark.parametrize("fmt", COMPRESS)
def test_compressed_csv_that_is_not_compressed(fmt, tmp_path):
    path = tmp_path / f"t{fmt}"
    path.write_bytes(LONG.to_csv(index=False).encode())
    kind = {".csv.gz": "gzip", ".csv.bz2": "bz2", ".csv.xz": "xz", ".csv.zst": "zstd"}[fmt]
    with pytest.raises(SeqclfError, match=rf"^{re.escape(str(path))}: cannot be read as "
                                          rf"{kind}-compressed CSV \(.+\)\. The name ends in "
                                          rf"\.{fmt.rsplit('.', 1)[1]}: compress the file"):
        read(path)


def test_zst_without_zstandard_names_the_pip_command(tmp_path, monkeypatch):
    path = write(tmp_path / "t.csv.zst", LONG)
    monkeypatch.setitem(sys.modules, "zstandard", None)
    fails(path, "reading .zst files needs the zstandard package: pip install zstandard")


def test_the_format_comes_from_the_name_only(tmp_path):
    assert reader_for("a.CSV.GZ").name == reader_for("a.txt").name == "CSV"
    assert reader_for("x/a.parquet").name == reader_for("a.pq").name == "Parquet"
    assert reader_for("a.npz").name == "NumPy .npz"
    disguised = write(tmp_path / "t.csv", LONG)
    parquet = tmp_path / "really-csv.parquet"
    parquet.write_bytes(disguised.read_bytes())
    with pytest.raises(SeqclfError, match="is not a readable Parquet file"):
        read(parquet)


# --- shards ----------------------------------------------------------------------------


def test_a_glob_reads_shards_in_sorted_order_and_a_list_in_its_order(tmp_path):
    frame = long_frame(10, seed=3, shuffle_rows=False)
    ids = list(dict.fromkeys(frame["id"]))
    write(tmp_path / "part-2.parquet", frame[frame["id"].isin(ids[5:])])
    write(tmp_path / "part-1.parquet", frame[frame["id"].isin(ids[:5])])
    ss = read(str(tmp_path / "part-*.parquet"))
    assert ss.ids == ids and ss.source == str(tmp_path / "part-*.parquet")
    assert ss.files == [str(tmp_path / "part-1.parquet")] * 5 + [str(tmp_path / "part-2.parquet")] * 5
    listed = read([str(tmp_path / "part-2.parquet"), str(tmp_path / "part-1.parquet")])
    assert listed.ids == ids[5:] + ids[:5]
    one = read(str(tmp_path / "part-1.parquet"))
    np.testing.assert_array_equal(ss.sequences[0], one.sequences[0])


def test_wide_shards_without_ids_are_numbered_on(tmp_path):
    frame = wide_frame(6, seed=1).drop(columns=["id"])
    write(tmp_path / "a.csv", frame.iloc[:4])
    write(tmp_path / "b.csv.gz", frame.iloc[4:])
    ss = read([str(tmp_path / "a.csv"), str(tmp_path / "b.csv.gz")], "wide")
    assert ss.ids == ["1", "2", "3", "4", "5", "6"]


def test_shards_must_agree(tmp_path):
    write(tmp_path / "a.parquet", LONG[LONG["id"] == "a"])
    b = write(tmp_path / "b.parquet", LONG[LONG["id"] == "b"].drop(columns=["y"]))
    with pytest.raises(SeqclfError) as info:
        read(str(tmp_path / "*.parquet"))
    assert str(info.value) == (f"{b}: feature columns ['x'] differ from {tmp_path / 'a.parquet'}'s "
                               "['x', 'y']. All shards of a dataset need the same columns.")
    split = write(tmp_path / "b.parquet", LONG.iloc[2:])  # id a's last row here too
    with pytest.raises(SeqclfError, match=rf"^{re.escape(str(split))}: id 'a' is also in .*a\.parquet\. "
                                          r"All rows of a sequence must be in one shard\.$"):
        read(str(tmp_path / "*.parquet"))
    write(tmp_path / "b.parquet", LONG[LONG["id"] == "b"].drop(columns=["label"]))
    with pytest.raises(SeqclfError, match=r"b\.parquet: has no label column 'label' but .*a\.parquet "
                                          r"has\. All shards"):
        read(str(tmp_path / "*.parquet"), require_labels=False)
    csv = write(tmp_path / "c.csv", LONG[LONG["id"] == "b"])
    with pytest.raises(SeqclfError, match=r"c\.csv: is a CSV file but .*a\.parquet is Parquet\. "
                                          r"The shards of one dataset must be in one format\."):
        read([str(tmp_path / "a.parquet"), str(csv)])
    with pytest.raises(SeqclfError, match=r"z-\*\.npz: no file matches this pattern\. Check the "
                                          r"path in the config or command\.$"):
        read(str(tmp_path / "z-*.npz"))
    with pytest.raises(SeqclfError, match=r"a\.parquet: is named twice"):
        read([str(tmp_path / "a.parquet"), str(tmp_path / "a*.parquet")])


def test_config_takes_a_list_or_a_glob_relative_to_its_folder(tmp_path):
    frame = long_frame(40, seed=5, shuffle_rows=False)
    ids = list(dict.fromkeys(frame["id"]))
    (tmp_path / "d").mkdir()
    for n in range(4):
        write(tmp_path / "d" / f"train-{n}.npz", frame[frame["id"].isin(ids[n * 10:(n + 1) * 10])])
    write(tmp_path / "d" / "test.csv.xz", long_frame(8, seed=6))
    path = write_config(tmp_path / "c.yaml", {"data": {
        "train": ["d/train-0.npz", "d/train-1.npz", "d/train-[23].npz"],
        "test": "d/test.csv.*", "format": "long"}})
    cfg = load_config(path)
    assert cfg.data.train[0] == str(tmp_path / "d" / "train-0.npz")
    assert "- " + str(tmp_path / "d" / "train-0.npz") in cfg.to_yaml()  # written back as a list
    train, test = load_splits(cfg)
    assert train.ids == ids and len(test) == 8
    before = file_sha256(cfg.data.train)
    assert before == file_sha256(cfg.data.train) and len(before) == 64
    recorded = digests(cfg.data.train)  # what a run's manifest keeps: one per shard
    assert sorted(recorded) == [str(tmp_path / "d" / f"train-{n}.npz") for n in range(4)]
    assert changed(recorded, cfg.data.train) is None
    write(tmp_path / "d" / "train-3.npz", frame[frame["id"].isin(ids[30:39])])
    assert file_sha256(cfg.data.train) != before
    assert changed(recorded, cfg.data.train) == str(tmp_path / "d" / "train-3.npz")
    write(tmp_path / "d" / "train-4.npz", frame[frame["id"].isin(ids[39:])])
    recorded = digests(cfg.data.train)
    assert changed(recorded, str(tmp_path / "d" / "train-*.npz")) == str(
        tmp_path / "d" / "train-4.npz")  # a glob that now matches a new shard
    for bad in ([], ["a.csv", "a.csv"]):
        with pytest.raises(SeqclfError, match=r"data\.train must be a path, a glob or a "
                                              "non-empty list of distinct paths"):
            validate_config({"data": {"train": bad}})


@pytest.mark.slow
def test_seqclf_train_on_parquet_shards(tmp_path):
    from seqclf.cli import app

    frame = long_frame(60, seed=0, shuffle_rows=False)
    ids = list(dict.fromkeys(frame["id"]))
    write(tmp_path / "train-0.parquet", frame[frame["id"].isin(ids[:30])])
    write(tmp_path / "train-1.parquet", frame[frame["id"].isin(ids[30:])])
    write(tmp_path / "test.parquet", long_frame(12, seed=9))
    config = write_config(tmp_path / "pq.yaml", {
        "data": {"train": "train-*.parquet", "test": "test.parquet", "format": "long",
                 "scaling": "standard"},
        "model": {"units": 4}, "training": {"epochs": 1, "batch_size": 16, "seed": 0,
                                            "validation_split": 0}})
    result = CliRunner().invoke(app, ["train", str(config), "--quiet",
                                      "--output-dir", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    assert re.search(r"^test accuracy \d\.\d{4} \(\d+/12\)", result.stdout, re.M)
    run_dir = Path(re.search(r"^run directory: (.+)$", result.stdout, re.M).group(1))
    result = CliRunner().invoke(app, ["evaluate", str(run_dir)])
    assert result.exit_code == 0, result.output

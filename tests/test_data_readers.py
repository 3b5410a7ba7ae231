"""Adding a data format is one reader: this test-only format (cells separated by ``|``,
one row per line, the first line naming the columns) plugs in through the reader
registry alone and gets every check and message of the CSV reader, through
``read_sequences``, ``seqclf check`` and ``seqclf train``."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import long_frame, write_config, write_text
from seqclf.config import validate_config
from seqclf.data import Reader, Table, read_sequences, reader_for, register
from seqclf.data.readers import unregister
from seqclf.data.table import as_text
from seqclf.errors import SeqclfError


def read_pipes(path: Path, text_columns: tuple[str, ...]) -> Table:
    """The example reader: a file → its rows, numbered by line (the header is line 1)."""
    if not path.is_file():
        raise SeqclfError(f"{path}: file not found. Check the path in the config or command.")
    header, *rows = path.read_text(encoding="utf-8").splitlines()
    names = header.split("|")
    frame = pd.DataFrame([r.split("|") for r in rows], columns=names)
    for name in names:  # feature cells: text, empty = missing (the checks parse numbers)
        if name not in text_columns:
            frame[name] = frame[name].replace("", np.nan)
    as_text(frame, text_columns)
    return Table(str(path), frame, np.arange(2, len(frame) + 2), "line")


@pytest.fixture
def pipes():
    """The example format, registered for one test."""
    register(".pipes", Reader("pipe-separated text", read_pipes))
    yield
    unregister(".pipes")


def write_pipes(path: Path, frame: pd.DataFrame) -> Path:
    lines = ["|".join(frame.columns)] + ["|".join("" if pd.isna(v) else str(v) for v in row)
                                         for row in frame.itertuples(index=False)]
    return write_text(path, "\n".join(lines) + "\n")


def long_cfg(path):
    return validate_config({"data": {"train": str(path), "format": "long"}}).data


def test_the_reader_is_picked_by_the_file_name_and_reads_both_layouts(pipes, tmp_path):
    assert reader_for(tmp_path / "x.PIPES").name == "pipe-separated text"
    assert reader_for(tmp_path / "x.pipes.csv").name == "CSV"  # the name's end decides
    path = write_pipes(tmp_path / "long.pipes", long_frame(6, seed=1))
    ss = read_sequences(path, long_cfg(path))
    assert len(ss) == 6 and ss.feature_names == ["x", "y"] and ss.source == str(path)
    wide = write_text(tmp_path / "wide.pipes", "id|t0|t1|t2|label\na|1|2|3|up\nb|4|5||down\n")
    ss = read_sequences(wide, validate_config({"data": {"train": str(wide)}}).data)
    assert [s[:, 0].tolist() for s in ss.sequences] == [[1, 2, 3], [4, 5]]
    assert ss.labels == ["up", "down"] and ss.ids == ["a", "b"]


def test_the_reader_gets_the_shared_checks_and_messages(pipes, tmp_path):
    path = write_text(tmp_path / "bad.pipes", "id|step|x|label\na|0|1|up\na|1|oops|up\n")
    with pytest.raises(SeqclfError) as info:
        read_sequences(path, long_cfg(path))
    assert str(info.value) == (f"{path}: line 3, column 'x': 'oops' is not a number. Feature "
                               "cells must be numeric.")
    path = write_text(tmp_path / "dup.pipes", "id|step|x|label\na|0|1|up\na|0|2|up\n")
    with pytest.raises(SeqclfError, match=r"lines 2 and 3: id 'a' has step 0 twice"):
        read_sequences(path, long_cfg(path))


def test_unregistered_the_suffix_is_read_as_csv_again(tmp_path):
    path = write_text(tmp_path / "x.pipes", "id|step|x|label\na|0|1|up\n")
    with pytest.raises(SeqclfError, match=r"no label column 'label'.* separated by bars; seqclf "
                                          r"reads commas"):
        read_sequences(path, long_cfg(path))


@pytest.mark.slow
def test_seqclf_train_reads_the_registered_format(pipes, tmp_path):
    from seqclf.cli import app

    write_pipes(tmp_path / "train.pipes", long_frame(60, seed=0))
    config = write_config(tmp_path / "pipes.yaml", {
        "data": {"train": "train.pipes", "format": "long", "scaling": "standard"},
        "model": {"units": 4}, "training": {"epochs": 1, "batch_size": 16, "seed": 0,
                                            "validation_split": 0}})
    result = CliRunner().invoke(app, ["train", str(config), "--quiet",
                                      "--output-dir", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    assert re.search(r"^test accuracy \d\.\d{4} \(\d+/12\)", result.stdout, re.M)

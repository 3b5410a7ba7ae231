"""data.streaming: chunked reading cut at sequence boundaries, the counting pass, the
splits and preprocessing it fits, batches through a bounded shuffle buffer, training and
prediction on a stream against the in-memory path, the memory decision, refusals, and
the multi-worker split of shards."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import long_frame, wide_frame, write_csv
from seqclf.config import validate_config
from seqclf.data import read_sequences, stream
from seqclf.errors import SeqclfError


def grouped(n: int, seed: int, **kwargs) -> pd.DataFrame:
    """Long-layout rows grouped by id (steps within a sequence still shuffled)."""
    frame = long_frame(n, seed, **kwargs)
    return frame.sort_values("id", kind="stable").reset_index(drop=True)


def data_cfg(path, fmt="long", **data):
    return validate_config({"data": {"train": str(path), "format": fmt, **data}},
                           where="c.yaml").data


def write(frame: pd.DataFrame, path):
    if str(path).endswith(".parquet"):
        frame.to_parquet(path, index=False)
    elif str(path).endswith(".npz"):
        np.savez(path, **{c: (frame[c].to_numpy(dtype=str)
                              if pd.api.types.is_string_dtype(frame[c]) else
                              frame[c].to_numpy(dtype=np.float64)) for c in frame.columns})
    else:
        write_csv(path, frame)
    return path


def joined(chunks) -> dict:
    chunks = list(chunks)
    return {"ids": [i for c in chunks for i in c.ids],
            "labels": [v for c in chunks for v in c.labels],
            "lines": [n for c in chunks for n in c.lines],
            "sequences": [s for c in chunks for s in c.sequences], "n_chunks": len(chunks)}


# --- reading in chunks ---------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet", ".npz"])
@pytest.mark.parametrize("fmt", ["long", "wide"])
def test_chunks_cut_at_sequence_boundaries_read_like_the_whole_file(tmp_path, monkeypatch,
                                                                     suffix, fmt):
    """Chunks of 7 rows (sequences of 3-9 rows cross every boundary) give the sequences,
    labels and row numbers of the file read whole."""
    frame = grouped(20, seed=1) if fmt == "long" else wide_frame(20, seed=1)
    path = write(frame, tmp_path / f"d{suffix}")
    cfg = data_cfg(path, fmt)
    whole = read_sequences(path, cfg)
    monkeypatch.setattr(stream, "CHUNK_ROWS", 7)
    got = joined(stream.file_chunks(path, cfg, seen=set()))
    assert got["n_chunks"] > 2
    assert got["ids"] == whole.ids and got["labels"] == whole.labels
    assert got["lines"] == whole.lines
    for a, b in zip(got["sequences"], whole.sequences, strict=True):
        np.testing.assert_array_equal(a, b)


def test_wide_numbering_continues_across_chunks_and_shards(tmp_path, monkeypatch):
    frame = wide_frame(9, seed=2).drop(columns=["id"])
    write_csv(tmp_path / "a.csv", frame.iloc[:5])
    write_csv(tmp_path / "b.csv", frame.iloc[5:])
    cfg = data_cfg(tmp_path / "*.csv", "wide")
    monkeypatch.setattr(stream, "CHUNK_ROWS", 2)
    scan = stream.scan(cfg.train, cfg)
    part = stream.Part(scan, np.arange(9))
    ids = [i for c in part.chunks(cfg) for i in c.ids]
    assert ids == read_sequences(cfg.train, cfg).ids == [str(i) for i in range(1, 10)]
    assert scan.counts == [5, 4] and scan.offsets == [0, 5]


def test_an_id_whose_rows_are_apart_is_an_error_naming_it(tmp_path, monkeypatch):
    frame = grouped(6, seed=3)
    rows = frame[frame["id"] == "s001"]
    moved = rows[rows["step"] == rows["step"].max()]  # its last step, at the end of the file
    frame = pd.concat([frame[~frame.index.isin(moved.index)], moved], ignore_index=True)
    path = write_csv(tmp_path / "d.csv", frame)
    monkeypatch.setattr(stream, "CHUNK_ROWS", 4)
    with pytest.raises(SeqclfError) as info:
        stream.scan(path, data_cfg(path))
    assert str(info.value) == (
        f"{path}: line {len(frame) + 1}: id 's001' comes again after rows of other ids. To "
        "stream a dataset, the rows of each sequence must be together in one file (seqclf "
        "data convert writes them so), or set data.streaming: false.")


def test_shards_must_agree_when_scanned(tmp_path):
    write_csv(tmp_path / "a.csv", grouped(4, seed=4))
    write_csv(tmp_path / "b.csv", grouped(4, seed=5, id_prefix="t").rename(columns={"y": "z"}))
    with pytest.raises(SeqclfError, match=r"b.csv: feature columns \['x', 'z'\] differ from "
                       r".*a.csv's \['x', 'y'\]\. All shards of a dataset need the same "
                       r"columns\.$"):
        stream.scan(str(tmp_path / "*.csv"), data_cfg(tmp_path / "*.csv"))


def test_chunks_are_read_lazily(tmp_path, monkeypatch):
    """A reader spy: the first batch of a stream needs the first chunks only, and the
    chunks held never grow with the file."""
    from seqclf.data import readers

    path = write(grouped(60, seed=6), tmp_path / "d.parquet")
    real = readers.PARQUET.chunks
    read = []

    def spy(p, text, rows):
        for table in real(p, text, rows):
            read.append(len(table.frame))
            yield table

    monkeypatch.setitem(readers._READERS, ".parquet",
                        readers.Reader("Parquet", readers.PARQUET.read, spy))
    monkeypatch.setattr(stream, "CHUNK_ROWS", 20)
    part = stream.Part(stream.Scan(str(path), [path], [60], None, np.full(60, 5), ["x", "y"],
                                   "row"), np.arange(60))
    chunks = part.chunks(data_cfg(path))
    next(chunks)
    assert read == [20]  # one chunk read so far, of a file of ~360 rows
    rest = list(chunks)
    assert len(rest) > 10 and max(read) == 20 and sum(read) == sum(len(g) for _, g in
                                                                   grouped(60, 6).groupby("id"))


# --- batches -------------------------------------------------------------------------


def test_rebatch_keeps_order_and_sizes():
    chunks = [(np.arange(a, b), np.arange(a, b) * 2) for a, b in ((0, 5), (5, 6), (6, 17))]
    out = list(stream.rebatch(iter(chunks), 4))
    assert [len(x) for x, _ in out] == [4, 4, 4, 4, 1]
    np.testing.assert_array_equal(np.concatenate([x for x, _ in out]), np.arange(17))
    np.testing.assert_array_equal(np.concatenate([y for _, y in out]), np.arange(17) * 2)


def test_the_shuffle_buffer_is_a_permutation_bounded_by_its_size():
    rng = np.random.default_rng(0)
    chunks = [(np.arange(a, a + 10), -np.arange(a, a + 10)) for a in range(0, 100, 10)]
    out = list(stream.shuffled(iter(chunks), 16, rng))
    x = np.concatenate([a for a, _ in out])
    assert sorted(x) == list(range(100)) and list(x) != list(range(100))
    np.testing.assert_array_equal(np.concatenate([b for _, b in out]), -x)  # rows stay aligned
    # a row cannot leave before it arrived: the first 16 only fill the buffer
    position = np.empty(100, dtype=int)
    position[x] = np.arange(100)
    assert all(position[v] >= v - 16 for v in range(100))


def test_shard_files_between_workers_are_disjoint_and_complete():
    for n_files in range(1, 12):
        for workers in range(1, 5):
            shares = [stream.shard_files(n_files, workers, i) for i in range(workers)]
            flat = [f for share in shares for f in share]
            assert sorted(flat) == list(range(n_files))  # every file once
            assert len(set(flat)) == len(flat)


# --- the counting pass, splits and preprocessing -------------------------------------


def test_splits_and_preprocessing_equal_the_in_memory_ones(tmp_path, monkeypatch):
    from seqclf.prepare import prepare

    write_csv(tmp_path / "d.csv", grouped(90, seed=7))
    base = {"train": str(tmp_path / "d.csv"), "format": "long", "scaling": "standard",
            "test_split": 0.2}
    training = {"validation_split": 0.25, "seed": 5}
    monkeypatch.setattr(stream, "CHUNK_ROWS", 13)
    streamed = prepare(validate_config({"data": {**base, "streaming": True},
                                        "training": training}, where="c.yaml"))
    memory = prepare(validate_config({"data": {**base, "streaming": False},
                                      "training": training}, where="c.yaml"))
    assert streamed.streamed and not memory.streamed
    for part in ("train", "val", "test"):
        assert getattr(streamed, part).labels == getattr(memory, part).labels
    assert [i for c in streamed.val.chunks(streamed.config.data) for i in c.ids] == memory.val.ids
    a, b = streamed.prep, memory.prep
    assert (a.classes, a.majority_class, a.max_length) == (b.classes, b.majority_class,
                                                          b.max_length)
    np.testing.assert_allclose(a.center, b.center, rtol=1e-12)
    np.testing.assert_allclose(a.scale, b.scale, rtol=1e-12)
    np.testing.assert_array_equal(streamed.y_train, memory.y_train)
    assert streamed.chosen == ["data.streaming true: streaming"]
    summary = streamed.test.summary()
    assert summary == memory.test.summary()


def test_minmax_moments_equal_the_in_memory_ones(tmp_path):
    from seqclf.data.preprocess import scaling_of

    path = write_csv(tmp_path / "d.csv", grouped(30, seed=8))
    cfg = validate_config({"data": {"train": str(path), "format": "long",
                                    "scaling": "minmax"}}, where="c.yaml")
    scan = stream.scan(path, cfg.data)
    got = stream.moments(stream.Part(scan, np.arange(30)), cfg, rows=11)
    whole = read_sequences(path, cfg.data)
    assert got == scaling_of("minmax", np.concatenate(whole.sequences))


# --- the decision and refusals -------------------------------------------------------


def test_auto_streams_above_the_memory_budget(tmp_path):
    path = write(grouped(10, seed=9), tmp_path / "d.parquet")
    rows = len(pd.read_parquet(path))
    cfg = data_cfg(path, memory_budget=0.5)
    need = rows * 2 * stream.BYTES_PER_CELL  # 2 feature columns, x and y
    assert not stream.decide(cfg, available=2 * need).stream
    small = stream.decide(cfg, available=2 * need - 2)
    assert small.stream
    assert small.line.startswith(f"data.streaming auto: {rows:,} rows, {2 * rows:,} feature "
                                 f"cells, ~")
    assert small.line.endswith(": streaming")
    assert stream.decide(data_cfg(path, streaming=True)).line == "data.streaming true: streaming"
    assert not stream.decide(data_cfg(path, streaming=False)).stream


def test_csv_row_counts_are_estimated_from_the_first_lines(tmp_path):
    from seqclf.data.readers import file_info

    frame = grouped(8000, seed=10)  # > 1 MiB of text
    path = write_csv(tmp_path / "d.csv", frame)
    info = file_info(path)
    assert info.estimated and info.columns == list(frame.columns)
    assert abs(info.rows - len(frame)) < 0.05 * len(frame)
    gz = tmp_path / "d.csv.gz"
    frame.to_csv(gz, index=False)
    assert abs(file_info(gz).rows - len(frame)) < 0.2 * len(frame)
    small = write_csv(tmp_path / "s.csv", frame.iloc[:10])
    assert file_info(small).rows == 10 and not file_info(small).estimated


@pytest.mark.parametrize("model, training, why", [
    ({"family": "minirocket"}, {}, "model.family 'minirocket' (it is fitted in closed form "
                                   "on all the training data at once)"),
    ({"units": 4, "stateful": True}, {}, "a stateful model (its state runs across the whole "
                                         "data)"),
])
def test_what_cannot_stream_is_refused_in_one_line(tmp_path, model, training, why):
    from seqclf.prepare import prepare

    path = write_csv(tmp_path / "d.csv", grouped(20, seed=11))
    cfg = validate_config({"data": {"train": str(path), "format": "long", "streaming": True},
                           "model": model, "training": training}, where="c.yaml")
    with pytest.raises(SeqclfError) as info:
        prepare(cfg)
    assert str(info.value) == f"c.yaml: data.streaming must be false for {why}. Got true instead."


def test_streaming_is_true_false_or_auto():
    with pytest.raises(SeqclfError, match=r"data.streaming must be true, false or 'auto'\. "
                       r"Got 'yes' instead\."):
        validate_config({"data": {"train": "x.csv", "streaming": "yes"}}, where="c.yaml")


# --- training and prediction ---------------------------------------------------------


def test_a_streamed_fit_predicts_as_the_in_memory_fit(tmp_path, monkeypatch):
    """The one training step on a stream (shuffle off, the same padding) gives the model
    the in-memory arrays give: the same test probabilities."""
    from seqclf import compute
    from seqclf.fitting import fit_model
    from seqclf.prepare import prepare
    from seqclf.streaming import test_proba

    write_csv(tmp_path / "d.csv", grouped(40, seed=14))
    monkeypatch.setattr(stream, "CHUNK_ROWS", 29)
    proba = {}
    for streaming in (True, False):
        cfg = validate_config({
            "data": {"train": str(tmp_path / "d.csv"), "format": "long",
                     "streaming": streaming},
            "model": {"units": 4},
            "training": {"epochs": 1, "batch_size": 8, "shuffle": False,
                         "tensorboard": False}}, where="c.yaml")
        d = prepare(cfg)
        model = fit_model(d.config, d, compute.setup(d.config))[0]
        proba[streaming] = test_proba(model, d, d.config)
    assert proba[True].shape == (8, 3)
    np.testing.assert_allclose(proba[True], proba[False], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_streamed_training_equals_in_memory_training_without_shuffling(tmp_path, monkeypatch):
    """shuffle off, the same padding: the same batches in the same order, so the same
    loss history, test probabilities and scores."""
    from seqclf.train import train

    write_csv(tmp_path / "d.csv", grouped(80, seed=12))
    monkeypatch.setattr(stream, "CHUNK_ROWS", 37)
    runs = {}
    for streaming in (True, False):
        cfg = validate_config({
            "data": {"train": str(tmp_path / "d.csv"), "format": "long", "streaming": streaming,
                     "scaling": "standard"},
            "model": {"units": 4},
            "training": {"epochs": 2, "batch_size": 8, "shuffle": False, "seed": 2,
                         "validation_split": 0.2, "class_weight": "balanced",
                         "tensorboard": False}}, where="c.yaml")
        runs[streaming] = train(cfg, tmp_path / "runs", run_name=f"s{streaming}")
    a, b = (pd.read_csv(runs[s].run_dir / "history.csv") for s in (True, False))
    for column in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(a[column], b[column], rtol=1e-5)
    assert runs[True].evaluation.accuracy == runs[False].evaluation.accuracy
    assert runs[True].evaluation.confusion == runs[False].evaluation.confusion
    assert runs[True].sizes == runs[False].sizes


@pytest.mark.slow
def test_streamed_training_with_shuffling_learns_as_well(tmp_path, monkeypatch):
    from seqclf.train import train

    write_csv(tmp_path / "d.csv", grouped(240, seed=13, shift=2.0))
    monkeypatch.setattr(stream, "CHUNK_ROWS", 50)
    scores = {}
    for streaming in (True, False):
        cfg = validate_config({
            "data": {"train": str(tmp_path / "d.csv"), "format": "long",
                     "streaming": streaming, "shuffle_buffer": 40, "scaling": "standard"},
            "model": {"units": 8},
            "optimizer": {"learning_rate": 0.02},
            "training": {"epochs": 8, "batch_size": 16, "seed": 1, "tensorboard": False}},
            where="c.yaml")
        scores[streaming] = train(cfg, tmp_path / "runs", run_name=f"s{streaming}").evaluation
    assert scores[True].accuracy >= 0.8 and scores[False].accuracy >= 0.8
    assert abs(scores[True].accuracy - scores[False].accuracy) <= 0.1


# --- evaluate and predict ------------------------------------------------------------


def _sorted_copy(path, tmp_path, name):
    frame = pd.read_csv(path, dtype={"id": str}).sort_values("id", kind="stable")
    return write_csv(tmp_path / name, frame)


def test_predict_writes_the_same_file_streamed_or_not(long_run, tmp_path, monkeypatch):
    """The predictions file is identical read into memory or streamed chunk by chunk
    (here in several chunks), as CSV and as Parquet, and equal to predict()'s frame."""
    from seqclf.evaluate import predict, predict_to

    data = _sorted_copy(long_run.predict_csv, tmp_path, "p.csv")
    n, _ = predict_to(long_run.run_dir, data, tmp_path / "memory.csv")
    frame, _ = predict(long_run.run_dir, data)
    monkeypatch.setattr(stream, "available_memory", lambda: 1)  # auto: streams
    monkeypatch.setattr(stream, "CHUNK_ROWS", 16)
    chunks = []
    real = stream.file_chunks
    monkeypatch.setattr(stream, "file_chunks", lambda *a, **k: (
        chunks.append(c) or c for c in real(*a, **k)))
    assert predict_to(long_run.run_dir, data, tmp_path / "streamed.csv")[0] == n == len(frame)
    assert len(chunks) > 2
    assert (tmp_path / "streamed.csv").read_bytes() == (tmp_path / "memory.csv").read_bytes()
    assert (tmp_path / "memory.csv").read_text() == frame.to_csv(index=False)
    predict_to(long_run.run_dir, data, tmp_path / "streamed.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "streamed.parquet"), frame,
                                  check_dtype=False)


def test_evaluate_scores_the_same_streamed_or_not(long_run, tmp_path, monkeypatch):
    from seqclf.evaluate import evaluate

    data = _sorted_copy(long_run.known_csv, tmp_path, "k.csv")
    memory = evaluate(long_run.run_dir, data)
    monkeypatch.setattr(stream, "available_memory", lambda: 1)
    monkeypatch.setattr(stream, "CHUNK_ROWS", 16)
    streamed = evaluate(long_run.run_dir, data)
    assert (streamed.n, streamed.correct, streamed.confusion) == (memory.n, memory.correct,
                                                                  memory.confusion)
    assert streamed.log_loss == pytest.approx(memory.log_loss, rel=1e-9)
    assert streamed.source == memory.source == str(data)


@pytest.mark.slow
def test_two_workers_stream_disjoint_shards(tmp_path):
    """training.distribute multi_worker with streaming: two local processes, each reading
    only its own Parquet shards (together every shard once), train to a complete run."""
    import json
    import os
    import re
    import socket
    import subprocess
    import sys

    from conftest import write_config
    from seqclf.data.convert import convert

    csv = write_csv(tmp_path / "d.csv", grouped(64, seed=15))
    convert(csv, data_cfg(csv), tmp_path / "d.parquet", shards=4)
    config = write_config(tmp_path / "mw.yaml", {
        "data": {"train": "d-*-of-00004.parquet", "format": "long", "streaming": True},
        "model": {"units": 4},
        "training": {"epochs": 2, "batch_size": 8, "seed": 1, "validation_split": 0.25,
                     "distribute": "multi_worker", "tensorboard": False}})

    def port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    addresses = [f"127.0.0.1:{port()}" for _ in range(2)]
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", "SEQCLF_DEBUG")}
    procs = [subprocess.Popen(
        [sys.executable, "-m", "seqclf.cli", "train", str(config), "--output-dir",
         str(tmp_path / "runs")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**env, "TF_CONFIG": json.dumps({"cluster": {"worker": addresses},
                                             "task": {"type": "worker", "index": i}})})
        for i in range(2)]
    out = []
    try:
        out = [proc.communicate(timeout=300)[0] for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert all(proc.returncode == 0 for proc in procs), [o[-3000:] for o in out]
    read = {}
    for text in out:
        for worker, names in re.findall(r"worker (\d) of 2 reads 2 of 4 files: (.*)", text):
            read.setdefault(int(worker), set()).update(n.strip() for n in names.split(","))
    shards = {str(p) for p in sorted(tmp_path.glob("d-*-of-00004.parquet"))}
    assert set(read) == {0, 1}
    assert not (read[0] & read[1]) and read[0] | read[1] == shards
    run = next((tmp_path / "runs").iterdir())
    assert json.loads((run / "manifest.json").read_text())["workers"] == 2
    assert len(pd.read_csv(run / "history.csv")) == 2

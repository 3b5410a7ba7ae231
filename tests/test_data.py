"""CSV readers (wide, long), splits and the Preprocessor; every data error by message."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import long_frame, write_csv, write_text
from seqclf.config import validate_config
from seqclf.data import (MASK_VALUE, Preprocessor, SequenceSet, load_splits, read_sequences,
                         split)
from seqclf.errors import SeqclfError


def config(train="train.csv", model=None, training=None, **data):
    raw = {"data": {"train": str(train), **data}}
    if model:
        raw["model"] = model
    if training:
        raw["training"] = training
    return validate_config(raw)


def read(path, missing_values="error", require_labels=True, **data):
    cfg = config(path, **data).data
    return read_sequences(path, cfg, require_labels=require_labels,
                          missing_values=missing_values)


def seqset(sequences, labels, features=("f",), source="mem.csv"):
    seqs = [np.asarray(s, dtype=np.float64).reshape(len(s), -1) for s in sequences]
    return SequenceSet(ids=[str(i) for i in range(len(seqs))], sequences=seqs,
                       labels=list(labels) if labels is not None else None,
                       feature_names=list(features), source=source,
                       lines=list(range(2, len(seqs) + 2)))


def arrays(ss):
    return [s.tolist() for s in ss.sequences]


# --- wide layout ---------------------------------------------------------------------


def test_wide_uses_ids_and_trailing_empty_cells_shorten(tmp_path):
    path = write_text(tmp_path / "w.csv",
                      "id,t0,t1,t2,t3,label\na,0.1,0.5,0.9,0.4,up\nb,0.7,0.2,,,down\n")
    ss = read(path)
    assert ss.ids == ["a", "b"]
    assert arrays(ss) == [[[0.1], [0.5], [0.9], [0.4]], [[0.7], [0.2]]]
    assert ss.labels == ["up", "down"]
    assert ss.feature_names == ["value"]
    assert ss.lines == [2, 3]
    assert ss.missing == 0
    assert ss.source == str(path)


def test_wide_without_id_numbers_sequences_and_reads_integer_labels(tmp_path):
    path = write_text(tmp_path / "w.csv", "t0,t1,label\n1,2,0\n3,,1\n5,6,1\n")
    ss = read(path)
    assert ss.ids == ["1", "2", "3"]
    assert ss.labels == [0, 1, 1]
    assert all(type(v) is int for v in ss.labels)
    assert arrays(ss) == [[[1.0], [2.0]], [[3.0]], [[5.0], [6.0]]]


def test_wide_feature_columns_select_steps(tmp_path):
    path = write_text(tmp_path / "w.csv", "id,t0,t1,note,label\na,1,2,9,x\nb,3,4,9,y\n")
    ss = read(path, feature_columns=["t0", "t1"])
    assert arrays(ss) == [[[1.0], [2.0]], [[3.0], [4.0]]]


def test_wide_custom_label_and_id_columns(tmp_path):
    path = write_text(tmp_path / "w.csv", "key,t0,t1,cls\nq,1,2,x\nr,3,4,y\n")
    ss = read(path, label_column="cls", id_column="key")
    assert ss.ids == ["q", "r"] and ss.labels == ["x", "y"]


def test_wide_without_labels_when_not_required(tmp_path):
    path = write_text(tmp_path / "w.csv", "id,t0,t1\na,1,2\n")
    ss = read(path, require_labels=False)
    assert ss.labels is None and arrays(ss) == [[[1.0], [2.0]]]


# --- long layout ---------------------------------------------------------------------


def test_long_multivariate_orders_by_step_and_keeps_variable_lengths(tmp_path):
    path = write_text(tmp_path / "l.csv", "id,step,x,y,label\n"
                      "b,2,3.0,30,q\n"
                      "a,1,0.2,2,p\n"
                      "b,0,1.0,10,q\n"
                      "a,0,0.1,1,p\n"
                      "b,1,2.0,20,q\n")
    ss = read(path, format="long")
    assert ss.ids == ["b", "a"]  # order of first appearance
    assert ss.feature_names == ["x", "y"]
    assert arrays(ss) == [[[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]], [[0.1, 1.0], [0.2, 2.0]]]
    assert ss.labels == ["q", "p"]
    assert ss.lines == [4, 5]  # the line of each sequence's first step


def test_long_steps_need_not_be_contiguous(tmp_path):
    path = write_text(tmp_path / "l.csv", "id,step,x,label\na,10,1,p\na,-5,2,p\na,3.5,3,p\n")
    assert arrays(read(path, format="long")) == [[[2.0], [3.0], [1.0]]]


def test_long_integer_steps_must_be_consecutive_unless_gaps_are_allowed(tmp_path):
    text = "id,step,x,label\na,1,1,p\na,2,2,p\nb,5,3,q\nb,3,4,q\nb,7,5,q\n"
    path = write_text(tmp_path / "l.csv", text)
    with pytest.raises(SeqclfError) as info:
        read(path, format="long")
    assert str(info.value) == (
        f"{path}: lines 5 and 4: id 'b' jumps from step 3 to 5; step 4 is missing. Integer "
        "steps must be consecutive within a sequence (or set data.step_gaps: allow to use "
        "them for ordering only).")
    # steps may start anywhere (1 here); with gaps allowed they only order the rows
    ss = read(path, format="long", step_gaps="allow")
    assert arrays(ss) == [[[1.0], [2.0]], [[4.0], [3.0], [5.0]]]
    # '3.0' is an integer value too; one fractional step makes the column order-only
    assert read(write_text(tmp_path / "f.csv", text.replace("b,5,", "b,5.5,")),
                format="long").ids == ["a", "b"]


def test_header_with_byte_order_mark(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufefflabel,t0,t1\nx,1,2\ny,3,4\n".encode("utf-8"))
    ss = read(path)
    assert ss.labels == ["x", "y"] and arrays(ss) == [[[1.0], [2.0]], [[3.0], [4.0]]]


def test_an_empty_label_column_is_ignored_when_labels_are_not_needed(tmp_path):
    path = write_text(tmp_path / "w.csv", "id,t0,t1,label\na,1,2,\nb,3,4,\n")
    assert read(path, require_labels=False).labels is None
    with pytest.raises(SeqclfError, match=r"the label column 'label' is empty on every line "
                       r"\(2-3\)\. Fill in the labels"):
        read(path)


def test_long_without_step_column_keeps_row_order(tmp_path):
    path = write_text(tmp_path / "l.csv", "id,x,label\na,1,1\nb,3,2\na,2,1\n")
    ss = read(path, format="long")
    assert ss.ids == ["a", "b"]
    assert arrays(ss) == [[[1.0], [2.0]], [[3.0]]]
    assert ss.labels == [1, 2]


def test_long_feature_columns_and_null_step_column(tmp_path):
    path = write_text(tmp_path / "l.csv", "id,step,x,y,label\na,1,1,5,p\na,0,2,6,p\n")
    assert arrays(read(path, format="long", feature_columns=["y"])) == [[[6.0], [5.0]]]
    # with step_column null the 'step' column is just another feature, rows keep file order
    ss = read(path, format="long", step_column=None)
    assert ss.feature_names == ["step", "x", "y"]
    assert arrays(ss) == [[[1.0, 1.0, 5.0], [0.0, 2.0, 6.0]]]


def test_long_shuffled_generated_data_round_trips(tmp_path):
    frame = long_frame(9, seed=5, shuffle_rows=False)
    path = write_csv(tmp_path / "ordered.csv", frame)
    shuffled = write_csv(tmp_path / "shuffled.csv", frame.sample(frac=1.0, random_state=1))
    a, b = read(path, format="long"), read(shuffled, format="long")
    by_id = dict(zip(b.ids, b.sequences))
    assert sorted(a.ids) == sorted(b.ids)
    for i, seq in zip(a.ids, a.sequences):
        np.testing.assert_array_equal(seq, by_id[i])
    assert dict(zip(a.ids, a.labels)) == dict(zip(b.ids, b.labels))
    assert len({len(s) for s in a.sequences}) > 1


def test_summary(tmp_path):
    path = write_text(tmp_path / "l.csv",
                      "id,step,x,label\na,0,1,2\na,1,1,2\nb,0,1,10\nc,0,1,2\nc,1,,2\nc,2,3,2\n")
    s = read(path, format="long", missing_values="zero").summary()
    assert s["sequences"] == 3
    assert s["length"] == {"min": 1, "median": 2.0, "max": 3}
    assert s["channels"] == 1 and s["features"] == ["x"]
    assert s["classes"] == {"2": 2, "10": 1}
    assert list(s["classes"]) == ["2", "10"]  # numeric order, not string order
    assert s["missing_values"] == 1


# --- missing values ------------------------------------------------------------------


def test_empty_cell_inside_wide_sequence_is_an_error(tmp_path):
    path = write_text(tmp_path / "w.csv", "id,t0,t1,t2,label\na,1,2,3,x\nb,1,,3,y\n")
    with pytest.raises(SeqclfError) as info:
        read(path)
    assert str(info.value) == (f"{path}: line 3, column 't1': empty cell. Fill it, or set "
                               "data.missing_values to 'zero' or 'ffill'.")


def test_empty_cell_inside_long_sequence_is_an_error(tmp_path):
    path = write_text(tmp_path / "l.csv", "id,step,x,y,label\na,1,,5,p\na,0,1,6,p\n")
    with pytest.raises(SeqclfError, match=rf"^{path}: line 2, column 'x': empty cell\. "):
        read(path, format="long")


def test_missing_values_zero_and_ffill(tmp_path):
    wide = write_text(tmp_path / "w.csv", "id,t0,t1,t2,t3,label\na,,2,,4,x\n")
    assert arrays(read(wide, missing_values="zero")) == [[[0.0], [2.0], [0.0], [4.0]]]
    ss = read(wide, missing_values="ffill")
    assert arrays(ss) == [[[0.0], [2.0], [2.0], [4.0]]]  # a leading hole has nothing before it
    assert ss.missing == 2
    long = write_text(tmp_path / "l.csv",
                      "id,step,x,label\na,2,,p\nb,0,,q\na,0,5,p\na,1,,p\nb,1,7,q\n")
    ss = read(long, format="long", missing_values="ffill")
    # forward fill stays within a sequence: b's leading hole is not filled from a
    assert arrays(ss) == [[[5.0], [5.0], [5.0]], [[0.0], [7.0]]]
    assert ss.missing == 3
    assert arrays(read(long, format="long", missing_values="zero")) == \
        [[[5.0], [0.0], [0.0]], [[0.0], [7.0]]]


def test_missing_values_setting_comes_from_the_config(tmp_path):
    path = write_text(tmp_path / "l.csv", "id,step,x,label\na,0,1,p\na,1,,p\nb,0,2,q\n"
                      "b,1,3,q\nc,0,1,p\nd,0,1,q\n")
    cfg = config(path, test=str(path), format="long", missing_values="ffill")
    train, test = load_splits(cfg)
    assert arrays(train)[0] == [[1.0], [1.0]]
    cfg = config(path, test=str(path), format="long")
    with pytest.raises(SeqclfError, match="empty cell"):
        load_splits(cfg)


def test_wide_row_with_no_values(tmp_path):
    path = write_text(tmp_path / "w.csv", "id,t0,t1,label\na,1,2,x\nb,,,y\n")
    with pytest.raises(SeqclfError, match=rf"^{path}: line 3: the sequence has no values\."):
        read(path)


# --- reading errors ------------------------------------------------------------------


def test_missing_label_column(tmp_path):
    path = write_text(tmp_path / "w.csv", "id,t0,t1,class\na,1,2,x\n")
    with pytest.raises(SeqclfError) as info:
        read(path)
    assert str(info.value) == (f"{path}: has no label column 'label'. Columns: id, t0, t1, "
                               "class. Set data.label_column to the right one.")


def test_non_numeric_cell_names_line_and_column(tmp_path):
    path = write_text(tmp_path / "w.csv", "id,t0,t1,t2,label\na,1,2,3,x\nb,1,2,3,y\nc,4,oops,6,x\n")
    with pytest.raises(SeqclfError) as info:
        read(path)
    assert str(info.value) == (f"{path}: line 4, column 't1': 'oops' is not a number. "
                               "Feature cells must be numeric.")


def test_non_numeric_cell_in_long_layout(tmp_path):
    path = write_text(tmp_path / "l.csv", "id,step,x,y,label\na,0,1,2,p\na,1,1,n/a?,p\n")
    with pytest.raises(SeqclfError, match=rf"^{path}: line 3, column 'y': 'n/a\?' is not a "
                       "number"):
        read(path, format="long")


def test_non_numeric_step(tmp_path):
    path = write_text(tmp_path / "l.csv", "id,step,x,label\na,0,1,p\na,one,1,p\n")
    with pytest.raises(SeqclfError, match=rf"^{path}: line 3, column 'step': 'one' is not a "):
        read(path, format="long")


@pytest.mark.parametrize("cell", ["inf", "-inf", "Infinity"])
def test_infinite_value(tmp_path, cell):
    path = write_text(tmp_path / "w.csv", f"id,t0,t1,label\na,1,2,x\nb,3,{cell},y\n")
    with pytest.raises(SeqclfError, match=rf"^{path}: line 3, column 't1': -?inf is not "
                       "finite\\. Feature values must be finite numbers\\.$"):
        read(path)


def test_ragged_long_row_with_too_many_fields(tmp_path):
    path = write_text(tmp_path / "l.csv", "id,step,x,label\na,0,1,p\na,1,2,p\na,2,3,p,extra\n")
    with pytest.raises(SeqclfError) as info:
        read(path, format="long")
    assert str(info.value) == f"{path}: line 4 has 5 fields, the header has 4. Fix that row."


def test_empty_file(tmp_path):
    path = write_text(tmp_path / "empty.csv", "")
    with pytest.raises(SeqclfError) as info:
        read(path)
    assert str(info.value) == f"{path}: file is empty. It needs a header line and data rows."


def test_header_only_file(tmp_path):
    path = write_text(tmp_path / "h.csv", "id,step,x,label\n")
    with pytest.raises(SeqclfError) as info:
        read(path, format="long")
    assert str(info.value) == f"{path}: has a header but no data rows."


def test_duplicate_column_names(tmp_path):
    path = write_text(tmp_path / "d.csv", "id,x,x,label\na,1,2,p\n")
    with pytest.raises(SeqclfError) as info:
        read(path, format="long")
    assert str(info.value) == (f"{path}: column 'x' appears twice in the header. Column "
                               "names must be unique.")


def test_unnamed_header_column(tmp_path):
    path = write_text(tmp_path / "d.csv", "id,,x,label\na,1,2,p\n")
    with pytest.raises(SeqclfError, match=rf"^{path}: header column 2 has no name\."):
        read(path, format="long")


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(SeqclfError, match=r"nope\.csv: file not found\."):
        read(tmp_path / "nope.csv")
    with pytest.raises(SeqclfError, match=r"is a directory, not a CSV file\."):
        read(tmp_path)


def test_non_utf8_file(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("id,t\xe9,label\na,1,x\n".encode("latin-1"))
    with pytest.raises(SeqclfError, match=rf"^{path}: is not UTF-8 text\."):
        read(path)


def test_long_id_with_conflicting_labels(tmp_path):
    path = write_text(tmp_path / "l.csv",
                      "id,step,x,label\nb,0,1,q\na,0,1,p\na,1,2,p\na,2,3,r\n")
    with pytest.raises(SeqclfError) as info:
        read(path, format="long")
    assert str(info.value) == (f"{path}: lines 3 and 5: id 'a' has labels 'p' and 'r'. All "
                               "rows of a sequence must have the same label.")


def test_long_duplicate_steps(tmp_path):
    path = write_text(tmp_path / "l.csv", "id,step,x,label\na,0,1,p\nb,1,1,q\na,1,2,p\nb,1,3,q\n")
    with pytest.raises(SeqclfError) as info:
        read(path, format="long")
    assert str(info.value) == (f"{path}: lines 3 and 5: id 'b' has step 1 twice. Steps must "
                               "be unique within a sequence.")


def test_long_needs_an_id_column(tmp_path):
    path = write_text(tmp_path / "l.csv", "step,x,label\n0,1,p\n")
    with pytest.raises(SeqclfError, match=rf"^{path}: has no id column 'id'; the long layout "
                       "needs one\\. Columns: step, x, label\\. Set data\\.id_column\\."):
        read(path, format="long")


def test_empty_label(tmp_path):
    path = write_text(tmp_path / "w.csv", "id,t0,label\na,1,x\nb,2,\n")
    with pytest.raises(SeqclfError, match=rf"^{path}: line 3: the label \('label'\) is empty"):
        read(path)


def test_feature_column_not_in_file(tmp_path):
    path = write_text(tmp_path / "l.csv", "id,step,x,label\na,0,1,p\n")
    with pytest.raises(SeqclfError, match=rf"^{path}: has no column 'z' \(named by "
                       r"data\.feature_columns\)"):
        read(path, format="long", feature_columns=["x", "z"])


# --- splits --------------------------------------------------------------------------


def _labelled(tmp_path, labels):
    rows = "".join(f"s{i},0,{i},{lab}\n" for i, lab in enumerate(labels))
    return write_text(tmp_path / "l.csv", "id,step,x,label\n" + rows)


def test_stratified_split_is_seeded_and_disjoint(tmp_path):
    path = _labelled(tmp_path, ["a"] * 10 + ["b"] * 10)
    cfg = config(path, format="long", test_split=0.2)
    train, test = load_splits(cfg)
    assert len(train) == 16 and len(test) == 4
    assert sorted(test.labels) == ["a", "a", "b", "b"]  # stratified
    assert not set(train.ids) & set(test.ids)
    again = load_splits(cfg)
    assert again[1].ids == test.ids
    other = load_splits(config(path, format="long", test_split=0.2,
                               training={"seed": 99}))
    assert other[1].ids != test.ids or other[0].ids != train.ids


def test_stratified_split_with_a_single_example_class(tmp_path):
    path = _labelled(tmp_path, ["a"] * 6 + ["b"] * 6 + ["lonely"])
    with pytest.raises(SeqclfError) as info:
        load_splits(config(path, format="long"))
    assert str(info.value) == (f"{path}: a stratified split (data.test_split) needs at least "
                               "2 sequences of each class; class 'lonely' has 1. Add data, or "
                               "set data.stratify: false.")
    train, test = load_splits(config(path, format="long", stratify=False))
    assert len(train) + len(test) == 13


def test_stratified_split_too_small_for_every_class(tmp_path):
    path = _labelled(tmp_path, ["a", "a", "b", "b", "c", "c", "d", "d"])
    with pytest.raises(SeqclfError, match=rf"^{path}: data\.test_split must be large enough for "
                       r"one sequence of each of the 4 classes .* Got 0\.2 instead\."):
        load_splits(config(path, format="long", test_split=0.2))


def test_validation_split_errors_name_their_key(tmp_path):
    ss = seqset([[1]] * 5 + [[2]], ["a"] * 5 + ["b"])
    with pytest.raises(SeqclfError, match=r"a stratified split \(training\.validation_split\)"):
        split(ss, 0.3, 0, True, "training.validation_split")


def test_test_file_with_different_feature_columns(tmp_path):
    train = write_text(tmp_path / "train.csv", "id,step,x,y,label\na,0,1,2,p\nb,0,1,2,q\n")
    test = write_text(tmp_path / "test.csv", "id,step,x,z,label\na,0,1,2,p\n")
    with pytest.raises(SeqclfError) as info:
        load_splits(config(train, test=str(test), format="long"))
    assert str(info.value) == (f"{test}: feature columns ['x', 'z'] differ from the training "
                               "data's ['x', 'y']. Use a file with the same columns.")


# --- Preprocessor --------------------------------------------------------------------


def test_padding_post_and_pre_with_mask_value():
    ss = seqset([[1, 2], [3, 4, 5, 6]], ["a", "b"])
    post = Preprocessor.fit(ss, config())
    x, truncated = post.transform(ss)
    assert x.shape == (2, 4, 1) and x.dtype == np.float32 and truncated == 0
    assert post.max_length == 4 and post.pad_value == MASK_VALUE
    np.testing.assert_array_equal(x[0, :, 0], [1, 2, MASK_VALUE, MASK_VALUE])
    np.testing.assert_array_equal(x[1, :, 0], [3, 4, 5, 6])
    pre = Preprocessor.fit(ss, config(padding="pre"))
    np.testing.assert_array_equal(pre.transform(ss)[0][0, :, 0], [MASK_VALUE, MASK_VALUE, 1, 2])


def test_padding_with_zero_when_masking_is_off():
    ss = seqset([[1], [3, 4]], ["a", "b"])
    prep = Preprocessor.fit(ss, config(model={"masking": False}))
    assert prep.pad_value == 0.0
    np.testing.assert_array_equal(prep.transform(ss)[0][:, :, 0], [[1, 0], [3, 4]])


def test_truncation_post_and_pre():
    train = seqset([[1, 2], [3, 4]], ["a", "b"])
    long = seqset([[1, 2, 3, 4, 5], [7]], ["a", "b"])
    post = Preprocessor.fit(train, config(max_length=3))
    x, truncated = post.transform(long)
    assert truncated == 1
    np.testing.assert_array_equal(x[0, :, 0], [1, 2, 3])
    pre = Preprocessor.fit(train, config(max_length=3, truncating="pre"))
    x, truncated = pre.transform(long)
    np.testing.assert_array_equal(x[0, :, 0], [3, 4, 5])
    both = Preprocessor.fit(train, config(max_length=3, truncating="pre", padding="pre"))
    x, _ = both.transform(long)
    np.testing.assert_array_equal(x[0, :, 0], [3, 4, 5])
    np.testing.assert_array_equal(x[1, :, 0], [MASK_VALUE, MASK_VALUE, 7])


def test_max_length_defaults_to_longest_training_sequence():
    train = seqset([[1], [1, 2, 3]], ["a", "b"])
    prep = Preprocessor.fit(train, config())
    assert prep.max_length == 3
    x, truncated = prep.transform(seqset([[1, 2, 3, 4, 5]], ["a"]))
    assert x.shape == (1, 3, 1) and truncated == 1


def test_standard_scaling_is_fitted_on_training_data_only():
    train = seqset([[[0, 10], [2, 10]], [[4, 10]]], ["a", "b"], features=("x", "c"))
    test = seqset([[[100, 50]]], ["a"], features=("x", "c"))
    prep = Preprocessor.fit(train, config(scaling="standard"))
    std = np.std([0, 2, 4])
    assert prep.center == pytest.approx([2.0, 10.0])
    assert prep.scale == pytest.approx([std, 1.0])  # a constant feature is not divided by 0
    x, _ = prep.transform(test)
    np.testing.assert_allclose(x[0, 0], [(100 - 2) / std, 40.0], rtol=1e-6)
    xt, _ = prep.transform(train)
    real = xt[xt[..., 0] != MASK_VALUE]
    np.testing.assert_allclose(real.mean(axis=0), [0.0, 0.0], atol=1e-6)


def test_minmax_scaling_is_fitted_on_training_data_only():
    train = seqset([[1, 3], [5]], ["a", "b"])
    prep = Preprocessor.fit(train, config(scaling="minmax"))
    assert prep.center == [1.0] and prep.scale == [4.0]
    x, _ = prep.transform(train)
    np.testing.assert_allclose(x[:, :, 0], [[0.0, 0.5], [1.0, MASK_VALUE]])
    x, _ = prep.transform(seqset([[9, -3]], ["a"]))
    np.testing.assert_allclose(x[0, :, 0], [2.0, -1.0])  # outside [0, 1], not clipped


def test_no_scaling_keeps_values():
    ss = seqset([[1.5, -3.25], [2]], ["a", "b"])
    prep = Preprocessor.fit(ss, config())
    assert prep.center == [0.0] and prep.scale == [1.0]
    np.testing.assert_array_equal(prep.transform(ss)[0][0, :, 0], [1.5, -3.25])


def test_labels_sorted_and_encoded_unseen_is_minus_one():
    ss = seqset([[1]] * 5, ["up", "down", "up", "flat", "up"])
    prep = Preprocessor.fit(ss, config())
    assert prep.classes == ["down", "flat", "up"]
    assert prep.majority_class == "up"
    np.testing.assert_array_equal(prep.encode_labels(["up", "down", "sideways", "flat"]),
                                  [2, 0, -1, 1])


def test_integer_labels_sort_numerically_and_match_their_string_form():
    ss = seqset([[1]] * 4, [10, 2, 2, 1])
    prep = Preprocessor.fit(ss, config())
    assert prep.classes == [1, 2, 10]
    assert prep.majority_class == 2
    np.testing.assert_array_equal(prep.encode_labels([10, "2", 3]), [2, 1, -1])


def test_one_class_only():
    ss = seqset([[1], [2]], ["only", "only"], source="one.csv")
    with pytest.raises(SeqclfError) as info:
        Preprocessor.fit(ss, config())
    assert str(info.value) == ("one.csv: training data has one class only ('only'). A "
                               "classifier needs at least two.")


def test_training_data_needs_labels():
    ss = seqset([[1], [2]], None, source="nolab.csv")
    with pytest.raises(SeqclfError, match=r"^nolab\.csv: training data needs labels"):
        Preprocessor.fit(ss, config())


def test_transform_refuses_other_feature_columns():
    prep = Preprocessor.fit(seqset([[[1, 2]], [[3, 4]]], ["a", "b"], features=("x", "y")),
                            config())
    with pytest.raises(SeqclfError, match=r"feature columns \['x', 'z'\] differ from the "
                       r"training data's \['x', 'y'\]"):
        prep.transform(seqset([[[1, 2]]], ["a"], features=("x", "z")))


def test_a_real_step_equal_to_the_mask_value_is_rejected():
    ss = seqset([[1, MASK_VALUE], [2]], ["a", "b"])
    prep = Preprocessor.fit(ss, config())
    with pytest.raises(SeqclfError, match=r"^mem\.csv: line 2: a step equals the padding "
                       r"value -1e\+09 in every feature\. Rescale the data\."):
        prep.transform(ss)


def test_embedding_tokens():
    ss = seqset([[1, 2, 3], [4]], ["a", "b"])
    cfg = config(model={"embedding": {"input_dim": 5, "output_dim": 2}})
    prep = Preprocessor.fit(ss, cfg)
    assert prep.vocab_size == 5 and prep.pad_value == 0.0
    x, _ = prep.transform(ss)
    assert x.dtype == np.int32 and x.shape == (2, 3)
    np.testing.assert_array_equal(x, [[1, 2, 3], [4, 0, 0]])
    for bad in (5, 0, 1.5):
        with pytest.raises(SeqclfError, match=r"token .* must be a whole number from 1 to 4"):
            prep.transform(seqset([[1, bad]], ["a"]))


def test_embedding_needs_one_feature():
    ss = seqset([[[1, 2]], [[3, 4]]], ["a", "b"], features=("x", "y"))
    cfg = config(model={"embedding": {"input_dim": 5, "output_dim": 2}})
    with pytest.raises(SeqclfError, match=r"model\.embedding needs one token feature per step; "
                       r"the data has 2 \(x, y\)"):
        Preprocessor.fit(ss, cfg)


@pytest.mark.parametrize("labels", [["b", "a", "b"], [3, 1, 3]])
def test_preprocessor_json_round_trip(labels):
    ss = seqset([[[1, 2], [3, 4]], [[5, 6]], [[0, 1]]], labels, features=("x", "y"))
    prep = Preprocessor.fit(ss, config(scaling="standard", padding="pre", max_length=4))
    text = prep.to_json()
    loaded = json.loads(text)
    assert loaded["classes"] == sorted(labels[:2], key=str)
    again = Preprocessor.from_json(text)
    assert again == prep
    assert type(again.majority_class) is type(labels[0])
    np.testing.assert_array_equal(again.transform(ss)[0], prep.transform(ss)[0])


def test_declared_classes_fix_the_output_vocabulary():
    ss = seqset([[1], [2], [3]], ["b", "a", "b"])
    prep = Preprocessor.fit(ss, config(classes=["c", "b", "a"]))
    assert prep.classes == ["c", "b", "a"]  # the declared order is the output order
    assert prep.majority_class == "b"
    np.testing.assert_array_equal(prep.encode_labels(["a", "c", "z"]), [2, 0, -1])
    # one class in the data is fine when the vocabulary is declared
    one = Preprocessor.fit(seqset([[1], [2]], [3, 3]), config(classes=[1, 2, 3]))
    assert one.classes == [1, 2, 3] and one.majority_class == 3


def test_a_label_outside_declared_classes_is_an_error():
    ss = seqset([[1], [2]], ["a", "z"], source="t.csv")
    with pytest.raises(SeqclfError) as info:
        Preprocessor.fit(ss, config(classes=["a", "b"]))
    assert str(info.value) == ("t.csv: label 'z' is not in data.classes. Add it there, or "
                               "remove data.classes.")


@pytest.mark.parametrize("classes", [["a"], ["a", "a"], [1, "1"], []])
def test_declared_classes_must_be_distinct_and_at_least_two(classes):
    with pytest.raises(SeqclfError, match=r"data\.classes must be null or a list of at least "
                       "2 distinct labels"):
        config(classes=classes)


# --- ids, labels and line numbers are read verbatim ----------------------------------


def test_ids_are_read_as_text(tmp_path):
    path = write_text(tmp_path / "l.csv", "id,step,x,label\n007,0,1,p\n008,0,2,q\n"
                      "01,0,3,p\n1,0,4,q\n")
    ss = read(path, format="long")
    assert ss.ids == ["007", "008", "01", "1"]
    assert ss.labels == ["p", "q", "p", "q"]


def test_error_line_numbers_count_blank_lines(tmp_path):
    path = write_text(tmp_path / "w.csv", "id,t0,label\na,1,x\n\nb,zz,y\n")
    with pytest.raises(SeqclfError, match=r"line 4, column 't0': 'zz' is not a number"):
        read(path)
    path = write_text(tmp_path / "l.csv", "id,step,x,label\na,0,1,p\n\n\na,1,,p\n")
    with pytest.raises(SeqclfError, match=r"line 5, column 'x': empty cell"):
        read(path, format="long")


def test_blank_lines_are_skipped(tmp_path):
    path = write_text(tmp_path / "w.csv", "id,t0,t1,label\na,1,2,x\n\nb,3,,y\n\n")
    ss = read(path)
    assert ss.ids == ["a", "b"] and arrays(ss) == [[[1.0], [2.0]], [[3.0]]]
    assert ss.lines == [2, 4]


@pytest.mark.parametrize("name", ["None", "NA", "null", "nan"])
def test_label_names_that_look_like_na(tmp_path, name):
    path = write_text(tmp_path / "l.csv", f"id,step,x,label\na,0,1,{name}\nb,0,2,q\n")
    assert read(path, format="long").labels == [name, "q"]


@pytest.mark.parametrize("cell", ["NA", "nan", "null", "N/A"])
def test_na_strings_in_feature_cells_are_missing(tmp_path, cell):
    path = write_text(tmp_path / "w.csv", f"id,t0,t1,t2,label\na,1,{cell},3,x\n")
    with pytest.raises(SeqclfError, match=r"line 2, column 't1': empty cell"):
        read(path)
    assert arrays(read(path, missing_values="zero")) == [[[1.0], [0.0], [3.0]]]


def test_wide_ids_keep_leading_zeros(tmp_path):
    path = write_text(tmp_path / "w.csv", "id,t0,label\n007,1,1\n7,2,2\n")
    ss = read(path)
    assert ss.ids == ["007", "7"] and ss.labels == [1, 2]

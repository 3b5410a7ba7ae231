"""The bad-input matrix: every way a user can get the config, the CSV data, the command
line or a run directory wrong ends in exit code 2 and ONE line on stderr, ``error: ...``,
that names the file and the key, line or column at fault, and never a traceback.

Each case builds its files under ``tmp_path`` and returns the command line and the
fragments the error line must contain (paths included, so a message that loses its file
or line fails). Most run in-process through Typer's CliRunner; the ``SUBPROCESS`` ones run
as real ``python -m seqclf`` processes. A few inputs are not errors by design (labels
training never saw, sequences longer than the padding length): they exit 0 with a
warning, asserted at the end.

tests/test_cli.py, test_config.py and test_data.py assert further messages; this file
does not repeat their exact cases.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import ROOT, long_frame, write_config, write_csv, write_text
from seqclf.cli import app

# 12 two-step sequences s0..s11, labels alternate a/b. Sequence i, step j is on line
# 2 + 2i + j (the header is line 1): 's3,1,4,b' is line 9.
GOOD_LONG = "id,step,x,label\n" + "".join(f"s{i},{j},{i + j},{'ab'[i % 2]}\n"
                                          for i in range(12) for j in range(2))
GOOD_WIDE = "id,t0,t1,t2,label\n" + "".join(f"w{i},{i},{i + 1},{i + 2},{'ab'[i % 2]}\n"
                                            for i in range(12))
BASE = {"model": {"units": 2}, "training": {"epochs": 1, "tensorboard": False}}


def project(tmp: Path, train: str | None = GOOD_LONG, config: dict | None = None,
            **data) -> Path:
    """train.csv (long layout unless data says otherwise) and c.yaml next to it."""
    if train is not None:
        write_text(tmp / "train.csv", train)
    sections = {k: dict(v) for k, v in BASE.items()}
    for key, value in (config or {}).items():
        sections.setdefault(key, {}).update(value)
    return write_config(tmp / "c.yaml", {
        "data": {"train": "train.csv", "format": "long", "test_split": 0.25, **data},
        **sections})


def replaced(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


Case = Callable[..., tuple[list, list[str]]]
CASES: dict[str, tuple[str, Case]] = {}
SUBPROCESS = set()  # cases run as real processes


def case(kind: str, in_subprocess: bool = False) -> Callable[[Case], Case]:
    def register(fn: Case) -> Case:
        CASES[fn.__name__] = (kind, fn)
        if in_subprocess:
            SUBPROCESS.add(fn.__name__)
        return fn
    return register


# --- config files --------------------------------------------------------------------


@case("config", in_subprocess=True)
def yaml_syntax_error(tmp):
    path = write_text(tmp / "c.yaml", "data:\n  train: t.csv\n  format: [wide\nmodel:\n"
                                      "  units: 4\n")
    return ["check", path], [f"error: {path}:4:6: invalid YAML: ", "Fix the syntax there."]


@case("config")
def yaml_tab_indentation(tmp):
    path = write_text(tmp / "c.yaml", "data:\n\ttrain: t.csv\n")
    return ["check", path], [f"error: {path}:2:1: invalid YAML: found character '\\t'"]


@case("config")
def yaml_not_a_mapping(tmp):
    path = write_text(tmp / "c.yaml", "42\n")
    return ["train", path], [f"error: {path}: the config must be a mapping of sections "
                             "(data, model, optimizer, training). Got 'int' instead."]


@case("config")
def yaml_duplicate_key(tmp):
    path = write_text(tmp / "c.yaml", "data:\n  train: a.csv\nmodel:\n  units: 4\n"
                                      "  units: 8\n")
    return ["check", path], [f"error: {path}:5:3: invalid YAML: key 'units' appears twice "
                             "in one mapping."]


@case("config")
def unknown_key_suggests(tmp):
    path = project(tmp, config={"training": {"epoch": 3}})
    return ["check", path], [f"error: {path}: training.epoch is not a valid key (did you "
                             "mean 'epochs'?). Valid keys under training: "]


@case("config")
def unknown_section(tmp):
    path = project(tmp, config={"optimiser": {"name": "sgd"}})
    return ["check", path], [f"error: {path}: optimiser is not a valid key (did you mean "
                             "'optimizer'?)."]


@case("config")
def wrong_type_bool(tmp):
    path = project(tmp, config={"model": {"bidirectional": "yes"}})
    return ["check", path], [f"error: {path}: model.bidirectional must be true or false. "
                             "Got 'yes' instead."]


@case("config")
def wrong_type_float_epochs(tmp):
    path = project(tmp, config={"training": {"epochs": 2.5}})
    return ["check", path], [f"error: {path}: training.epochs must be an integer >= 1. "
                             "Got 2.5 instead."]


@case("config")
def wrong_type_section(tmp):
    path = write_text(tmp / "c.yaml", "data: train.csv\n")
    return ["check", path], [f"error: {path}: data must be a mapping. Got 'train.csv' "
                             "instead."]


@case("config")
def units_zero(tmp):
    path = project(tmp, config={"model": {"units": 0}})
    return ["check", path], [f"error: {path}: model.units must be an integer >= 1 or a "
                             "non-empty list of them. Got 0 instead."]


@case("config")
def dropout_above_one(tmp):
    path = project(tmp, config={"model": {"dropout": 1.5}})
    return ["check", path], [f"error: {path}: model.dropout must be >= 0 and < 1. Got 1.5 "
                             "instead."]


@case("config")
def epochs_negative(tmp):
    path = project(tmp, config={"training": {"epochs": -3}})
    return ["train", path, "--quiet"], [f"error: {path}: training.epochs must be >= 1. "
                                        "Got -3 instead."]


@case("config")
def batch_size_zero(tmp):
    path = project(tmp, config={"training": {"batch_size": 0}})
    return ["check", path], [f"error: {path}: training.batch_size must be >= 1. Got 0 "
                             "instead."]


@case("config")
def split_of_one(tmp):
    path = project(tmp, test_split=1.0)
    return ["check", path], [f"error: {path}: data.test_split must be > 0 and < 1. Got 1.0 "
                             "instead."]


@case("config")
def unknown_cell(tmp):
    path = project(tmp, config={"model": {"cell": "lstn"}})
    return ["check", path], [f"error: {path}: model.cell must be one of: 'lstm', 'gru', 'rnn' "
                             "(did you mean 'lstm'?). Got 'lstn' instead."]


@case("config")
def unknown_optimizer(tmp):
    path = project(tmp, config={"optimizer": {"name": "adamm"}})
    return ["check", path], [f"error: {path}: optimizer.name must be one of: ",
                             "(did you mean 'adam'?). Got 'adamm' instead."]


@case("config")
def unknown_activation(tmp):
    path = project(tmp, config={"model": {"activation": "rleu"}})
    return ["check", path], [f"error: {path}: model.activation must be one of: ",
                             "(did you mean 'relu'?). Got 'rleu' instead."]


@case("config")
def unknown_initializer(tmp):
    path = project(tmp, config={"model": {"kernel_initializer": "he_uniformm"}})
    return ["check", path], [f"error: {path}: model.kernel_initializer must be one of: ",
                             "(did you mean 'he_uniform'?). Got 'he_uniformm' instead."]


@case("config")
def unknown_optimizer_keyword(tmp):
    path = project(tmp, config={"optimizer": {"name": "adam", "beta3": 0.9}})
    return ["check", path], [f"error: {path}: optimizer.beta3 is not an argument of "
                             "keras.optimizers.Adam (did you mean 'beta_"]


@case("config")
def optimizer_keyword_wrong_type(tmp):
    path = project(tmp, config={"optimizer": {"name": "adam", "beta_1": "0.9x"}})
    return ["check", path], [f"error: {path}: optimizer.beta_1 must be a number. "
                             "Got '0.9x' (str) instead."]


@case("config")
def format_unknown(tmp):
    path = project(tmp, format="tall")
    return ["check", path], [f"error: {path}: data.format must be one of: 'wide', 'long'. "
                             "Got 'tall' instead."]


@case("config")
def label_column_same_as_id_column(tmp):
    path = project(tmp, id_column="label")
    return ["check", path], [f"error: {path}: data.id_column must be a different column "
                             "than data.label_column. Got 'label' instead."]


@case("config")
def label_used_as_feature(tmp):
    path = project(tmp, feature_columns=["x", "label"])
    return ["check", path], [f"error: {path}: data.feature_columns must be columns other "
                             "than data.label_column ('label'). Got ['x', 'label'] instead."]


@case("config", in_subprocess=True)
def config_missing(tmp):
    path = tmp / "nope.yaml"
    return ["train", path], [f"error: {path}: file not found. Check the path."]


@case("config")
def config_not_utf8(tmp):
    path = tmp / "c.yaml"
    path.write_bytes(b"data:\n  train: \xff\xfe.csv\n")
    return ["check", path], [f"error: {path}: cannot be read (", "can't decode byte 0xff"]


@case("config")
def config_empty(tmp):
    path = write_text(tmp / "c.yaml", "")
    return ["check", path], [f"error: {path}: data must be given. Got nothing instead."]


@case("config")
def config_is_a_directory(tmp):
    return ["train", tmp], [f"error: {tmp}: is a directory, not a YAML file."]


# --- CSV data ------------------------------------------------------------------------


@case("csv")
def csv_missing_test_file(tmp):
    path = project(tmp, test="gone.csv")
    return ["check", path], [f"error: {tmp / 'gone.csv'}: file not found."]


@case("csv")
def csv_not_utf8_on_a_later_line(tmp):
    project(tmp, train=None)
    (tmp / "train.csv").write_bytes(GOOD_LONG.encode()[:40] + b"\xe9t\xe9\n" +
                                    GOOD_LONG.encode()[40:])
    line = GOOD_LONG.encode()[:40].count(b"\n") + 1
    return ["check", tmp / "c.yaml"], [f"error: {tmp / 'train.csv'}: is not UTF-8 text. "
                                       f"Line {line} is the first that is not;"]


@case("csv", in_subprocess=True)
def csv_empty(tmp):
    path = project(tmp, train="")
    return ["train", path, "--quiet"], [f"error: {tmp / 'train.csv'}: file is empty. It needs "
                                        "a header line and data rows."]


@case("csv")
def csv_header_only(tmp):
    path = project(tmp, train="id,step,x,label\n\n")
    return ["check", path], [f"error: {tmp / 'train.csv'}: has a header but no data rows."]


@case("csv")
def csv_is_a_directory(tmp):
    (tmp / "data").mkdir()
    path = write_config(tmp / "c.yaml", {"data": {"train": "data"}})
    return ["check", path], [f"error: {tmp / 'data'}: is a directory, not a CSV file."]


@case("csv", in_subprocess=True)
def csv_without_header(tmp):
    path = project(tmp, train="1,0.5,0.25,3\n2,0.1,0.2,4\n", format="wide")
    return ["check", path], [f"error: {tmp / 'train.csv'}: line 1 (the header) looks like "
                             "data: every column name is a number ('1,0.5,0.25,3')."]


@case("csv")
def csv_blank_first_line(tmp):
    path = project(tmp, train="\n" + GOOD_LONG)
    return ["check", path], [f"error: {tmp / 'train.csv'}: line 1 is blank. The first line "
                             "must be the header"]


@case("csv")
def csv_duplicate_columns(tmp):
    path = project(tmp, train=GOOD_WIDE.replace("t1", "t0", 1), format="wide")
    return ["check", path], [f"error: {tmp / 'train.csv'}: column 't0' appears twice in the "
                             "header."]


@case("csv")
def csv_missing_label_column_semicolons(tmp):
    path = project(tmp, train=GOOD_WIDE.replace(",", ";"), format="wide")
    return ["check", path], [f"error: {tmp / 'train.csv'}: has no label column 'label'. "
                             "Columns: id;t0;t1;t2;label. Set data.label_column to the right "
                             "one (the file seems to be separated by semicolons; seqclf reads "
                             "commas)."]


@case("csv")
def csv_missing_id_column_long(tmp):
    path = project(tmp, train=GOOD_LONG.replace("id,", "key,", 1))
    return ["check", path], [f"error: {tmp / 'train.csv'}: has no id column 'id'; the long "
                             "layout needs one. Columns: key, step, x, label."]


@case("csv")
def csv_non_numeric_cell_wide(tmp):
    path = project(tmp, train=replaced(GOOD_WIDE, "w4,4,5,", "w4,4,five,"), format="wide")
    return ["check", path], [f"error: {tmp / 'train.csv'}: line 6, column 't1': 'five' is "
                             "not a number."]


@case("csv")
def csv_true_false_cells(tmp):
    text = "id,t0,t1,label\n" + "".join(f"w{i},True,False,{'ab'[i % 2]}\n" for i in range(8))
    path = project(tmp, train=text, format="wide")
    return ["check", path], [f"error: {tmp / 'train.csv'}: line 2, column 't0': 'True' is not "
                             "a number."]


@case("csv")
def csv_nan_is_missing_by_default(tmp):
    path = project(tmp, train=replaced(GOOD_LONG, "s3,1,4,b", "s3,1,NaN,b"))
    return ["check", path], [f"error: {tmp / 'train.csv'}: line 9, column 'x': empty cell. "
                             "Fill it, or set data.missing_values to 'zero' or 'ffill'."]


@case("csv")
def csv_inf_is_an_error_even_when_filling(tmp):
    path = project(tmp, train=replaced(GOOD_LONG, "s3,1,4,b", "s3,1,-inf,b"),
                   missing_values="ffill")
    return ["check", path], [f"error: {tmp / 'train.csv'}: line 9, column 'x': -inf is not "
                             "finite. Feature values must be finite numbers."]


@case("csv")
def csv_value_beyond_float32(tmp):
    path = project(tmp, train=replaced(GOOD_LONG, "s3,1,4,b", "s3,1,1e39,b"))
    return ["check", path], [f"error: {tmp / 'train.csv'}: line 9, column 'x': 1e+39 is too "
                             "large"]


@case("csv")
def csv_label_differs_within_a_sequence(tmp):
    path = project(tmp, train=replaced(GOOD_LONG, "s3,1,4,b", "s3,1,4,a"))
    return ["check", path], [f"error: {tmp / 'train.csv'}: lines 8 and 9: id 's3' has labels "
                             "'b' and 'a'."]


@case("csv")
def csv_duplicate_step(tmp):
    path = project(tmp, train=replaced(GOOD_LONG, "s3,1,4,b", "s3,0,4,b"))
    return ["check", path], [f"error: {tmp / 'train.csv'}: lines 8 and 9: id 's3' has step 0 "
                             "twice."]


@case("csv")
def csv_step_gap(tmp):
    path = project(tmp, train=replaced(GOOD_LONG, "s3,1,4,b", "s3,2,4,b"))
    return ["check", path], [f"error: {tmp / 'train.csv'}: lines 8 and 9: id 's3' jumps from "
                             "step 0 to 2; step 1 is missing."]


@case("csv")
def csv_ragged_rows_everywhere(tmp):
    # every data row one field longer than the header: pandas alone would read the first
    # column as an index and shift the others under the wrong names
    text = "t0,t1,label\n" + "".join(f"{i},{i},{i + 1},{'ab'[i % 2]}\n" for i in range(8))
    path = project(tmp, train=text, format="wide")
    return ["check", path], [f"error: {tmp / 'train.csv'}: line 2 has 4 fields, the header "
                             "has 3."]


@case("csv")
def csv_unclosed_quote(tmp):
    path = project(tmp, train=replaced(GOOD_LONG, "s5,0,5,b", 's5,0,"5,b'))
    return ["check", path], [f"error: {tmp / 'train.csv'}: line 12: a quoted field is never "
                             "closed"]


@case("csv")
def csv_wide_empty_row(tmp):
    path = project(tmp, train=replaced(GOOD_WIDE, "w2,2,3,4,a", "w2,,,,a"), format="wide")
    return ["check", path], [f"error: {tmp / 'train.csv'}: line 4: the sequence has no "
                             "values."]


@case("csv")
def csv_label_column_entirely_empty(tmp):
    text = "id,t0,t1,label\n" + "".join(f"w{i},{i},{i},\n" for i in range(6))
    path = project(tmp, train=text, format="wide")
    return ["check", path], [f"error: {tmp / 'train.csv'}: the label column 'label' is empty "
                             "on every line (2-7)."]


@case("csv")
def csv_single_example_class_stratified(tmp):
    path = project(tmp, train=GOOD_LONG + "s12,0,1,c\ns12,1,2,c\n")
    return ["check", path], [f"error: {tmp / 'train.csv'}: a stratified split "
                             "(data.test_split) needs at least 2 sequences of each class; "
                             "class 'c' has 1."]


@case("csv")
def csv_one_class_only(tmp):
    path = project(tmp, train=GOOD_LONG.replace(",b\n", ",a\n"), stratify=False)
    return ["check", path], [f"error: {tmp / 'train.csv'}: training data has one class only "
                             "('a'). A classifier needs at least two."]


@case("csv")
def csv_test_file_with_other_features(tmp):
    write_text(tmp / "test.csv", GOOD_LONG.replace(",x,", ",z,", 1))
    path = project(tmp, test="test.csv")
    return ["check", path], [f"error: {tmp / 'test.csv'}: feature columns ['z'] differ from "
                             "the training data's ['x']."]


@case("csv")
def csv_token_out_of_range(tmp):
    text = "t0,t1,label\n" + "".join(f"{i + 1},{i + 2},{'ab'[i % 2]}\n" for i in range(8))
    path = project(tmp, train=replaced(text, "6,7,b", "6,99,b"), format="wide",
                   config={"model": {"embedding": {"input_dim": 30, "output_dim": 2}}})
    return ["check", path], [f"error: {tmp / 'train.csv'}: line 7: token 99 must be a whole "
                             "number from 1 to 29 (model.embedding.input_dim - 1; 0 is padding)."]


# --- command line --------------------------------------------------------------------


@case("command line")
def set_bad_key(tmp):
    path = project(tmp)
    return ["check", path, "--set", "training.batchsize=8"], [
        "error: --set training.batchsize=8: training.batchsize is not a valid key (did you "
        "mean 'batch_size'?)."]


@case("command line")
def set_bad_value(tmp):
    path = project(tmp)
    return ["train", path, "--set", "training.epochs=many"], [
        "error: --set training.epochs=many: training.epochs must be an integer >= 1. Got "
        "'many' instead."]


@case("command line", in_subprocess=True)
def set_without_equals(tmp):
    path = project(tmp)
    return ["train", path, "--set", "model.units"], [
        "error: --set: the override must be of the form section.key=value. Got 'model.units' "
        "instead."]


@case("command line")
def set_into_a_value(tmp):
    path = project(tmp)
    return ["check", path, "--set", "model.units.size=3"], [
        "error: --set model.units.size=3: model.units must be a section to set keys in. Got 2 instead."]


@case("command line")
def predict_without_data(tmp):
    return ["predict", tmp], ["error: seqclf predict: Missing option '--data'. See "
                              "'seqclf predict --help'."]


@case("command line")
def unknown_option(tmp):
    path = project(tmp)
    return ["train", path, "--epochs", "3"], ["error: seqclf train: No such option: --epochs"]


@case("command line")
def option_needs_a_number(tmp):
    return ["sweep", tmp / "x.yaml", "--jobs", "two"], [
        "error: seqclf sweep: Invalid value for '--jobs': "]


@case("command line")
def train_config_and_resume_together(tmp):
    path = project(tmp)
    return ["train", path, "--resume", tmp], [
        "error: seqclf train: give either CONFIG or --resume RUN_DIR (not both)."]


@case("command line")
def evaluate_data_without_labels(tmp, long_run):
    return ["evaluate", long_run.run_dir, "--data", long_run.predict_csv], [
        f"error: {long_run.predict_csv}: has no label column 'label'. Columns: id, step, x, y."]


@case("command line")
def evaluate_data_with_other_features(tmp, long_run):
    frame = pd.read_csv(long_run.known_csv).rename(columns={"y": "z"})
    path = write_csv(tmp / "other.csv", frame)
    return ["evaluate", long_run.run_dir, "--data", path], [
        f"error: {path}: feature columns ['x', 'z'] differ from the training data's "
        "['x', 'y']."]


@case("command line")
def predict_output_in_missing_folder(tmp, long_run):
    out = tmp / "no" / "such" / "p.csv"
    return ["predict", long_run.run_dir, "--data", long_run.predict_csv, "--output", out], [
        f"error: {out}: cannot write: the folder {out.parent} does not exist."]


@case("command line")
def predict_output_is_a_directory(tmp, long_run):
    return ["predict", long_run.run_dir, "--data", long_run.predict_csv, "--output", tmp], [
        f"error: {tmp}: is a directory. Give a file name to write."]


# --- run directories -----------------------------------------------------------------


def run_copy(tmp: Path, long_run) -> Path:
    copy = tmp / "run"
    shutil.copytree(long_run.run_dir, copy)
    return copy


@case("run directory")
def run_dir_is_a_config_file(tmp):
    path = project(tmp)
    return ["evaluate", path], [f"error: {path}: is a file, not a run directory."]


@case("run directory", in_subprocess=True)
def run_dir_not_a_seqclf_run(tmp):
    write_text(tmp / "notes.txt", "hello\n")
    return ["predict", tmp, "--data", tmp / "x.csv"], [
        f"error: {tmp}: is not a seqclf run directory (no manifest.json)."]


@case("run directory")
def run_dir_incomplete(tmp, long_run):
    run = run_copy(tmp, long_run)
    write_text(run / "INCOMPLETE", "crashed\n")
    return ["evaluate", run], [f"error: {run}: this run did not finish (it has an INCOMPLETE "
                               "marker)."]


@case("run directory")
def run_dir_model_garbage(tmp, long_run):
    run = run_copy(tmp, long_run)
    (run / "model.keras").write_bytes(b"not a model")
    return ["evaluate", run], [f"error: {run / 'model.keras'}: cannot be loaded (",
                               "The file is damaged; train the run again."]


@case("run directory")
def run_dir_model_truncated(tmp, long_run):
    run = run_copy(tmp, long_run)
    data = (run / "model.keras").read_bytes()
    (run / "model.keras").write_bytes(data[: len(data) // 2])
    return ["predict", run, "--data", long_run.predict_csv], [
        f"error: {run / 'model.keras'}: cannot be loaded (", "The file is damaged"]


@case("run directory")
def run_dir_model_missing(tmp, long_run):
    run = run_copy(tmp, long_run)
    (run / "model.keras").unlink()
    return ["evaluate", run], [f"error: {run / 'model.keras'}: is missing from the run "
                               "directory."]


@case("run directory")
def run_dir_preprocessing_damaged(tmp, long_run):
    run = run_copy(tmp, long_run)
    write_text(run / "preprocessing.json", '{"classes": ')
    return ["evaluate", run], [f"error: {run}: run files are missing or damaged "
                               "(preprocessing.json: Expecting value"]


@case("run directory")
def run_dir_preprocessing_wrong_fields(tmp, long_run):
    run = run_copy(tmp, long_run)
    write_text(run / "preprocessing.json", '{"labels": [1, 2]}')
    return ["evaluate", run], [f"error: {run}: run files are missing or damaged "
                               "(preprocessing.json: ", "'labels'"]


@case("run directory")
def run_dir_manifest_not_an_object(tmp, long_run):
    run = run_copy(tmp, long_run)
    write_text(run / "manifest.json", "[1, 2]\n")
    return ["evaluate", run], [f"error: {run}: run files are missing or damaged "
                               "(manifest.json: a JSON list, not an object)."]


@case("run directory")
def run_dir_config_damaged(tmp, long_run):
    run = run_copy(tmp, long_run)
    write_text(run / "config.yaml", "data: {train: [\n")
    return ["evaluate", run], [f"error: {run / 'config.yaml'}:2:1: invalid YAML: "]


# --- the matrix ----------------------------------------------------------------------


def subprocess_run(args: list[str]) -> tuple[int, str, str]:
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("SEQCLF_DEBUG", None)
    done = subprocess.run([sys.executable, "-m", "seqclf", *args], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=120)
    return done.returncode, done.stdout, done.stderr


def cli_run(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, args)
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("name", sorted(CASES), ids=lambda n: f"{CASES[n][0]}-{n}")
def test_bad_input_is_one_line_error(name, tmp_path, request):
    kind, build = CASES[name]
    needs_run = "long_run" in build.__code__.co_varnames[: build.__code__.co_argcount]
    extra = [request.getfixturevalue("long_run")] if needs_run else []
    args, fragments = build(tmp_path, *extra)
    args = [str(a) for a in args]
    code, out, err = (subprocess_run if name in SUBPROCESS else cli_run)(args)
    assert "Traceback" not in out + err, err
    assert code == 2, (code, out, err)
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_the_matrix_covers_every_kind():
    kinds = pd.Series([kind for kind, _ in CASES.values()]).value_counts().to_dict()
    assert len(CASES) >= 40
    assert set(kinds) == {"config", "csv", "command line", "run directory"}
    assert len(SUBPROCESS) >= 5


# --- not errors: exit 0 with a warning -----------------------------------------------


def test_unseen_labels_warn_and_count_as_wrong(long_run):
    code, out, err = cli_run(["evaluate", str(long_run.run_dir), "--data",
                              str(long_run.unseen_csv), "--json"])
    assert code == 0, err
    (line,) = err.splitlines()
    assert line == (f"warning: {long_run.unseen_csv}: 4 sequences have labels training never "
                    "saw: 'sideways' (4). The model cannot predict them; they count as wrong.")
    ev = json.loads(out)
    known = json.loads(cli_run(["evaluate", str(long_run.run_dir), "--data",
                                str(long_run.known_csv), "--json"])[1])
    # the 4 unseen sequences are in n and all wrong: same correct count, larger n
    assert ev["n"] == known["n"] + 4 and ev["correct"] == known["correct"]
    row = ev["confusion"][ev["labels"].index("sideways")]
    assert sum(row) == 4 and row[ev["labels"].index("sideways")] == 0


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_sequences_longer_than_the_padding_length_warn(long_run, tmp_path, command):
    max_length = json.loads((long_run.run_dir / "preprocessing.json").read_text())["max_length"]
    frame = long_frame(5, seed=21, min_len=max_length + 1, max_len=max_length + 3,
                       with_labels=command == "evaluate")
    path = write_csv(tmp_path / "long.csv", frame)
    code, out, err = cli_run([command, str(long_run.run_dir), "--data", str(path)])
    assert code == 0, err
    assert err.splitlines()[0] == (f"warning: {path}: 5 sequences were longer than the "
                                   "training padding length and were truncated.")
    assert "Traceback" not in out + err


# --- a full disk while a run is written ----------------------------------------------


# each case trains a run: one in the fast suite, the rest with --slow
@pytest.mark.parametrize("victim", [
    "manifest.json", *(pytest.param(v, marks=pytest.mark.slow) for v in (
        "history.csv", "backup/model.keras", "model.keras", "metrics.json"))])
def test_disk_full_while_writing_a_run_is_reported_and_the_run_stays_incomplete(
        tmp_path, monkeypatch, victim):
    """history.csv is written from inside Keras's fit loop, model.keras by Keras itself,
    manifest.json last of all: wherever the write fails, the error names the file and the
    run never looks complete."""
    import errno

    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        dst = Path(dst)
        if (dst.parent.name + "/" + dst.name).endswith(victim) and not (
                victim == "model.keras" and dst.parent.name == "backup"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    config = project(tmp_path)
    code, out, err = cli_run(["train", str(config), "--quiet", "--output-dir",
                              str(tmp_path / "runs")])
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert code == 2, (out, err)
    assert err.splitlines() == [f"error: {run_dir / victim}: cannot write (No space left on "
                                "device). Check free space and permissions."]
    assert (run_dir / "INCOMPLETE").exists()
    assert not (run_dir / "manifest.json").exists()
    assert not list(run_dir.glob(".*")), "temporary files left behind"
    monkeypatch.undo()
    code, _, err = cli_run(["evaluate", str(run_dir)])
    assert code == 2 and "this run did not finish (it has an INCOMPLETE marker)" in err

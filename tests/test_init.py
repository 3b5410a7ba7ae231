"""`seqclf init`: layout and column guesses, overrides, the written config (loadable, only
non-default keys, data paths relative to it), refusals, and no TensorFlow.

No training here: the written config is checked with load_config. Until the
``minirocket`` family is registered, ``recommend``'s model section is swapped for a small
recurrent one (its training keys and reasons are kept); once it is, the real
recommendation is written and validated.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from conftest import ROOT, long_frame, wide_frame, write_csv, write_text
from seqclf.cli import app
from seqclf.config import load_config
from seqclf.errors import SeqclfError
from seqclf.init import init, inspect_csv
from seqclf.models import auto, registry

HAS_MINIROCKET = "minirocket" in registry.families()


@pytest.fixture(autouse=True)
def profiles(monkeypatch) -> list[auto.DataProfile]:
    """The profiles ``recommend`` was called with; its model is a small recurrent one
    while minirocket is not registered."""
    seen: list[auto.DataProfile] = []

    def recommend(profile: auto.DataProfile) -> auto.Recommendation:
        seen.append(profile)
        rec = auto.recommend(profile)
        if rec.model.get("family") not in registry.families():
            rec.model = {"family": "recurrent", "units": 8}
        return rec

    monkeypatch.setattr("seqclf.init.recommend", recommend)
    return seen


def invoke(*args):
    return CliRunner().invoke(app, ["init", *[str(a) for a in args]])


def one_line_error(result) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0].removeprefix("error: ")


def written(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def labelled_wide(n: int, seed: int) -> pd.DataFrame:
    """wide_frame with string labels (its integer labels made words)."""
    frame = wide_frame(n, seed)
    frame["label"] = frame["label"].map({0: "low", 1: "high"})
    return frame


# --- layouts -------------------------------------------------------------------------


def test_wide_with_id_column_writes_a_loadable_config(tmp_path, profiles):
    train = write_csv(tmp_path / "data" / "train.csv", labelled_wide(30, seed=1))
    test = write_csv(tmp_path / "data" / "test.csv", labelled_wide(10, seed=2))
    (tmp_path / "configs").mkdir()
    out = tmp_path / "configs" / "mine.yaml"
    result = invoke(train, "--test", test, "--output", out)
    assert result.exit_code == 0, result.output
    raw = written(out)
    # only what differs from the defaults: wide layout, 'label' and 'id' columns; the
    # 6-step series padded to 9 steps, minirocket's kernel length (auto.recommend)
    assert raw["data"] == {"train": "../data/train.csv", "test": "../data/test.csv",
                           "max_length": 9}
    cfg = load_config(out)
    assert Path(cfg.data.train) == train.resolve() and Path(cfg.data.test) == test.resolve()
    assert cfg.data.format == "wide" and cfg.name == "mine"
    assert cfg.model.family == raw["model"]["family"]
    (profile,) = profiles
    assert (profile.sequences, profile.classes, profile.channels) == (30, 2, 1)
    assert profile.smallest_class == 15 and 2 <= profile.min_length <= profile.max_length <= 6
    out_text = result.stdout
    assert "found: train.csv: wide layout (one row per sequence): labels in 'label', ids in " \
           "'id', 6 step columns (t0, t1, t2, t3, t4, t5)." in out_text
    assert "2 classes (high: 15, low: 15); the majority class 'high' is 50.0%" in out_text
    assert "found: test.csv: 10 sequences" in out_text
    header = out.read_text().split("\n\n")[0]  # the same lines, as comments
    assert " ".join(header.replace("#", " ").split()).endswith(
        " ".join(" ".join(line.removeprefix("found: ") for line in out_text.splitlines()
                          if line.startswith("found: ")).split()))


def test_wide_without_id_column(tmp_path):
    frame = labelled_wide(24, seed=3).drop(columns=["id"])
    frame = frame[["label", *[c for c in frame.columns if c != "label"]]]  # label first, UCR style
    train = write_csv(tmp_path / "train.csv", frame)
    found = inspect_csv(train)
    assert (found.format, found.label_column, found.id_column) == ("wide", "label", None)
    assert found.feature_columns == [f"t{i}" for i in range(6)]
    out = tmp_path / "c.yaml"
    result = init(train, output=out)
    assert written(out)["data"] == {"train": "train.csv", "max_length": 9}
    assert "no id column (sequences numbered from 1)" in result.summary[0]
    assert "no test file: data.test_split (0.2)" in " ".join(result.summary)
    assert load_config(out).data.train == str(train.resolve())


def test_long_with_shuffled_rows_and_a_y_feature(tmp_path, profiles):
    # columns id, step, x, y, label, rows shuffled: 'y' is a feature beside 'label'
    train = write_csv(tmp_path / "train.csv", long_frame(30, seed=0, shuffle_rows=True))
    out = tmp_path / "long.yaml"
    result = invoke(train, "-o", out)
    assert result.exit_code == 0, result.output
    assert written(out)["data"] == {"train": "train.csv", "format": "long"}
    assert "format: long   # one row per step" in out.read_text()
    cfg = load_config(out)
    assert (cfg.data.format, cfg.data.id_column, cfg.data.step_column) == ("long", "id", "step")
    (profile,) = profiles
    assert (profile.sequences, profile.classes, profile.channels) == (30, 3, 2)
    assert (profile.min_length, profile.max_length) == (3, 9)
    assert "found: train.csv: long layout (one row per step): ids in 'id', steps in 'step', " \
           "labels in 'label', 2 feature columns (x, y)." in result.stdout


def test_other_column_names_are_guessed_case_insensitively(tmp_path):
    frame = long_frame(20, seed=4).rename(columns={"id": "Series", "step": "Time",
                                                   "label": "Class"})
    train = write_csv(tmp_path / "train.csv", frame)
    out = tmp_path / "c.yaml"
    init(train, output=out)
    assert written(out)["data"] == {"train": "train.csv", "format": "long",
                                    "label_column": "Class", "id_column": "Series",
                                    "step_column": "Time"}
    data = load_config(out).data
    assert (data.label_column, data.id_column, data.step_column) == ("Class", "Series", "Time")


def test_wide_id_column_with_another_name_is_written(tmp_path):
    frame = labelled_wide(20, seed=5).rename(columns={"id": "Sample", "label": "target"})
    train = write_csv(tmp_path / "train.csv", frame)
    init(train, output=tmp_path / "c.yaml")
    assert written(tmp_path / "c.yaml")["data"] == {"train": "train.csv",
                                                    "label_column": "target",
                                                    "id_column": "Sample", "max_length": 9}


def test_bundled_digits_are_long(tmp_path):
    found = inspect_csv(ROOT / "data" / "digits" / "train.csv")
    assert (found.format, found.id_column, found.step_column) == ("long", "id", "step")
    assert found.feature_columns == [f"p{i}" for i in range(8)]


# --- overrides and errors ------------------------------------------------------------


def test_unguessable_label_column_is_one_line_naming_the_option(tmp_path):
    train = write_text(tmp_path / "data.csv", "a,b,c\n1,2,x\n3,4,y\n")
    message = one_line_error(invoke(train, "-o", tmp_path / "c.yaml"))
    assert message == (f"{train}: cannot tell which column holds the labels (columns: a, b, "
                       "c). Pass --label-column NAME.")
    assert not (tmp_path / "c.yaml").exists()


def test_overrides_name_the_columns(tmp_path):
    frame = long_frame(20, seed=6).rename(columns={"id": "subject", "step": "tick",
                                                   "label": "outcome"})
    train = write_csv(tmp_path / "train.csv", frame)
    out = tmp_path / "c.yaml"
    result = invoke(train, "-o", out, "--label-column", "outcome", "--id-column", "subject",
                    "--step-column", "tick")
    assert result.exit_code == 0, result.output
    data = load_config(out).data
    assert (data.format, data.label_column, data.id_column, data.step_column) == (
        "long", "outcome", "subject", "tick")
    assert data.feature_columns is None  # x and y: every other column


def test_format_override_and_missing_step_column(tmp_path):
    frame = long_frame(20, seed=7, shuffle_rows=False).drop(columns=["step"])
    train = write_csv(tmp_path / "train.csv", frame)
    message = one_line_error(invoke(train, "-o", tmp_path / "c.yaml"))
    assert message.startswith(f"{train}: ids in 'id' repeat over rows")
    assert message.endswith("Pass --step-column NAME, or --format long to take each id's "
                            "rows in file order.")
    result = invoke(train, "-o", tmp_path / "c.yaml", "--format", "long")
    assert result.exit_code == 0, result.output
    assert written(tmp_path / "c.yaml")["data"] == {"train": "train.csv", "format": "long",
                                                    "step_column": None}
    assert load_config(tmp_path / "c.yaml").data.step_column is None


@pytest.mark.parametrize("args, fragment", [
    (["--label-column", "nope"], "has no column 'nope' (--label-column). Columns: id, step, "
                                 "x, y, label."),
    (["--format", "tall"], "seqclf init: --format must be wide or long. Got 'tall' instead."),
    (["--format", "wide", "--step-column", "step"], "--step-column is for the long layout"),
    (["--label-column", "id", "--id-column", "id"], "data.id_column must be a different "
                                                    "column than data.label_column"),
])
def test_bad_overrides(tmp_path, args, fragment):
    train = write_csv(tmp_path / "train.csv", long_frame(10, seed=8))
    assert fragment in one_line_error(invoke(train, "-o", tmp_path / "c.yaml", *args))


def test_set_reads_with_data_keys_and_writes_them(tmp_path):
    frame = long_frame(20, seed=3, shuffle_rows=False)
    frame.loc[3, "x"] = None  # an empty cell inside a sequence
    train = write_csv(tmp_path / "train.csv", frame)
    error = one_line_error(invoke(train, "-o", tmp_path / "c.yaml"))
    assert "empty cell. Fill it, or set data.missing_values to 'zero' or 'ffill'." in error
    result = invoke(train, "-o", tmp_path / "c.yaml", "--set", "data.missing_values=ffill",
                    "--set", "data.scaling=standard")
    assert result.exit_code == 0, result.output
    data = written(tmp_path / "c.yaml")["data"]
    assert data["missing_values"] == "ffill" and data["scaling"] == "standard"
    assert load_config(tmp_path / "c.yaml").data.missing_values == "ffill"


@pytest.mark.parametrize("item, fragment", [
    ("model.units=4", "--set model.units=4: seqclf init takes data keys only"),
    ("data.format=long", "--set data.format is not for init: pass it as the argument or "
                         "option of the same name."),
    ("data.missing_values=maybe", "seqclf init --set: data.missing_values must be one of: "
                                  "'error', 'zero', 'ffill'"),
])
def test_set_refuses_other_keys_and_bad_values(tmp_path, item, fragment):
    train = write_csv(tmp_path / "train.csv", long_frame(10, seed=8))
    assert fragment in one_line_error(invoke(train, "-o", tmp_path / "c.yaml", "--set", item))


def token_frame(n: int, vocabulary: int) -> pd.DataFrame:
    import numpy as np

    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        for j, token in enumerate(rng.integers(1, vocabulary, size=6)):
            rows.append({"id": i, "step": j, "word": int(token), "label": i % 2})
    return pd.DataFrame(rows)


def test_tokens_get_an_embedding_and_integer_data_a_hint(tmp_path, profiles):
    train = write_csv(tmp_path / "train.csv", token_frame(40, vocabulary=200))
    result = invoke(train, "-o", tmp_path / "c.yaml")
    assert result.exit_code == 0, result.output
    assert "if they are tokens (words, event codes) rather than measurements, run again " \
           "with --tokens." in result.output
    assert profiles[-1].tokens is None
    result = invoke(train, "-o", tmp_path / "t.yaml", "--tokens")
    assert result.exit_code == 0, result.output
    assert "--tokens" not in result.output
    model = written(tmp_path / "t.yaml")["model"]
    vocabulary = profiles[-1].tokens
    assert model["family"] == "recurrent" and model["embedding"]["input_dim"] == vocabulary
    assert vocabulary == 1 + int(token_frame(40, vocabulary=200)["word"].max())
    assert load_config(tmp_path / "t.yaml").model.embedding.input_dim == vocabulary
    # measurements do not get the hint; several channels cannot be tokens
    plain = write_csv(tmp_path / "plain.csv", long_frame(20, seed=1))
    assert "--tokens" not in invoke(plain, "-o", tmp_path / "p.yaml").output
    assert "--tokens needs one token column per step; the data has 2 (x, y)." in \
        one_line_error(invoke(plain, "-o", tmp_path / "q.yaml", "--tokens"))


def test_ambiguous_and_inconsistent_columns(tmp_path):
    frame = long_frame(10, seed=9)
    both = write_csv(tmp_path / "both.csv", frame.assign(category=frame["label"]))
    assert one_line_error(invoke(both, "-o", tmp_path / "c.yaml")) == (
        f"{both}: cannot tell which column holds the labels (candidates: label, category). "
        "Pass --label-column NAME.")
    varying = frame.copy()
    varying.loc[varying["step"] == 0, "label"] = "other"
    varying = write_csv(tmp_path / "varying.csv", varying)
    message = one_line_error(invoke(varying, "-o", tmp_path / "c.yaml"))
    assert "the label changes within id" in message and "--format wide" in message
    one_class = write_csv(tmp_path / "one.csv", frame.assign(label="same"))
    assert "a classifier needs at least 2 classes" in one_line_error(
        invoke(one_class, "-o", tmp_path / "c.yaml"))


def test_too_few_sequences_to_split_asks_for_a_test_file(tmp_path):
    frame = labelled_wide(3, seed=10)  # 'low' twice, 'high' once
    train = write_csv(tmp_path / "train.csv", frame)
    message = one_line_error(invoke(train, "-o", tmp_path / "c.yaml"))
    assert "too few sequences to hold out a stratified test set" in message
    assert message.endswith("Pass --test TEST.csv, or add sequences.")
    test = write_csv(tmp_path / "test.csv", labelled_wide(4, seed=11))
    assert invoke(train, "--test", test, "-o", tmp_path / "c.yaml").exit_code == 0


def test_test_file_in_another_layout_is_refused(tmp_path):
    train = write_csv(tmp_path / "train.csv", long_frame(20, seed=12))
    test = write_csv(tmp_path / "test.csv", long_frame(6, seed=13).drop(columns=["y"]))
    message = one_line_error(invoke(train, "--test", test, "-o", tmp_path / "c.yaml"))
    assert message.startswith(f"{test}: feature columns ['x'] differ")
    assert not (tmp_path / "c.yaml").exists()


def test_existing_output_is_refused_without_force(tmp_path):
    train = write_csv(tmp_path / "train.csv", labelled_wide(20, seed=14))
    out = write_text(tmp_path / "c.yaml", "# mine\n")
    assert one_line_error(invoke(train, "-o", out)) == (
        f"{out}: already exists. Pass --force to overwrite it, or choose another --output.")
    assert out.read_text() == "# mine\n"
    with pytest.raises(SeqclfError, match="already exists"):
        init(train, output=out)
    result = invoke(train, "-o", out, "--force")
    assert result.exit_code == 0, result.output
    assert load_config(out).data.train == str(train.resolve())
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_output_folder_must_exist(tmp_path):
    train = write_csv(tmp_path / "train.csv", labelled_wide(20, seed=15))
    message = one_line_error(invoke(train, "-o", tmp_path / "no" / "c.yaml"))
    assert "does not exist. Create it first." in message


# --- what is printed and written -----------------------------------------------------


def test_prints_the_file_family_reasons_and_next_command(tmp_path):
    train = write_csv(tmp_path / "train.csv", long_frame(30, seed=16))
    out = tmp_path / "my config.yaml"
    result = invoke(train, "-o", out)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    family = written(out)["model"]["family"]
    reasons = auto.recommend(auto.DataProfile(30, 3, 3, 9, 2, 10)).reasons
    assert f"wrote {out}" in lines and f"model: {family}" in lines
    assert [f"  - {r}" for r in reasons] == [line for line in lines if line.startswith("  - ")]
    assert lines[-1] == f"next: seqclf train '{out}'"
    assert result.stderr == ""
    text = out.read_text()
    for reason in reasons:  # each reason a comment above the model section
        first_words = " ".join(reason.split()[:5])
        assert f"# - {first_words}" in text
    assert text.index("# - ") < text.index("\nmodel:\n")
    raw = written(out)
    assert raw["training"] == auto.recommend(auto.DataProfile(30, 3, 3, 9, 2, 10)).training
    assert all(len(line) <= 100 for line in text.splitlines())


@pytest.mark.skipif(not HAS_MINIROCKET, reason="model.family minirocket is not registered yet")
def test_the_real_recommendation_validates(tmp_path, monkeypatch):
    monkeypatch.setattr("seqclf.init.recommend", auto.recommend)
    train = write_csv(tmp_path / "train.csv", long_frame(30, seed=17))
    result = init(train, output=tmp_path / "c.yaml")
    assert result.family == "minirocket"
    assert load_config(tmp_path / "c.yaml").model.family == "minirocket"


PROBE = """
import sys
from seqclf import cli, init
from seqclf.models import auto, registry
real = auto.recommend
def recommend(profile):
    rec = real(profile)
    if rec.model.get("family") not in registry.families():
        rec.model = {"family": "recurrent", "units": 8}
    return rec
init.recommend = recommend
sys.argv = ["seqclf", *sys.argv[1:]]
try:
    cli.main()
except SystemExit as exc:
    code = exc.code
print("RESULT", code, "tensorflow" in sys.modules, "keras" in sys.modules, file=sys.stderr)
"""


def test_init_does_not_import_tensorflow(tmp_path):
    train = write_csv(tmp_path / "train.csv", long_frame(20, seed=18))
    done = subprocess.run([sys.executable, "-c", PROBE, "init", str(train), "-o",
                           str(tmp_path / "c.yaml")], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert done.stderr.strip().splitlines()[-1] == "RESULT 0 False False", done.stderr
    assert (tmp_path / "c.yaml").is_file()

"""The command line: CliRunner for every command and error path, real subprocesses for
start-up (no TensorFlow for --help and config errors) and piped progress output."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import CLASSES, ROOT, write_config, write_text
from seqclf.cli import app
from seqclf.progress import Progress

TINY = ["--set", "model.units=4", "--set", "training.epochs=2",
        "--set", "training.early_stopping=null", "--set", "training.validation_split=0"]


def invoke(*args: str, env: dict | None = None):
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


def assert_user_error(result, *fragments: str) -> str:
    """Exit code 2 and exactly one line, 'error: ...', on stderr; no traceback anywhere."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "error:" not in result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def subprocess_env() -> dict[str, str]:
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    env.pop("SEQCLF_DEBUG", None)
    return env


def run_python(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          cwd=ROOT, env=subprocess_env(), timeout=timeout)


# --- commands that work --------------------------------------------------------------


@pytest.mark.slow
def test_train_quiet_prints_scores_and_run_directory(long_data, tmp_path):
    result = invoke("train", long_data / "tiny.yaml", *TINY, "--quiet",
                    "--output-dir", tmp_path / "out")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert re.search(r"^test accuracy \d\.\d{4} \(\d+/38\); majority-class baseline "
                     r"\d\.\d{4}; macro-F1 \d\.\d{4}$", out, re.M)
    assert "epoch" not in out  # --quiet: no progress
    match = re.search(r"^run directory: (.+)$", out, re.M)
    run_dir = Path(match.group(1))
    assert run_dir.parent == tmp_path / "out"
    assert (run_dir / "manifest.json").is_file()
    assert not (run_dir / "INCOMPLETE").exists()
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved["epochs_run"] == 2
    assert json.loads((run_dir / "manifest.json").read_text())["seed"] == 3


@pytest.mark.slow
def test_train_with_progress_prints_one_line_per_epoch(long_data, tmp_path):
    result = invoke("train", long_data / "tiny.yaml", *TINY, "--output-dir", tmp_path)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "training tiny: lstm(4), 2 epochs, batch 16, adam lr 0.03"
    # 2 epochs: no XLA under jit_compile auto, so one batch per call
    assert re.match(r"compute: tensorflow on (CPU|GPU), no XLA(, \d+ threads? per op)?$",
                    lines[2]), lines[:3]
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert len(epochs) == 2
    assert re.match(r"epoch 1/2 loss \d+\.\d{4} accuracy \d\.\d{4} \(\d+\.\ds\)$", epochs[0])
    assert epochs[1].startswith("epoch 2/2 loss ")
    assert lines.index(epochs[0]) < lines.index(epochs[1])
    assert lines[-2].startswith("test accuracy ")
    assert lines[-1].startswith("run directory: ")
    assert "\r" not in result.stdout


def test_evaluate_json(long_run):
    result = invoke("evaluate", long_run.run_dir, "--json")
    assert result.exit_code == 0, result.output
    assert len(result.stdout.strip().splitlines()) == 1
    obj = json.loads(result.stdout)
    stored = json.loads((long_run.run_dir / "metrics.json").read_text())["test"]
    for key in ("n", "correct", "confusion", "labels", "unseen", "majority_class"):
        assert obj[key] == stored[key], key
    for key in ("accuracy", "baseline", "macro_f1"):
        assert obj[key] == pytest.approx(stored[key]), key


def test_evaluate_text_report(long_run):
    result = invoke("evaluate", long_run.run_dir)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert re.search(r"^accuracy: \d\.\d{4} \(\d+/38\)$", out, re.M)
    assert "majority-class baseline: " in out
    assert "confusion matrix (rows: true, columns: predicted):" in out
    for name in CLASSES:
        assert name in out


def test_evaluate_with_unseen_labels_warns_on_stderr(long_run):
    result = invoke("evaluate", long_run.run_dir, "--data", long_run.unseen_csv, "--json")
    assert result.exit_code == 0, result.output
    obj = json.loads(result.stdout)
    assert obj["unseen"] == {"sideways": 4} and obj["n"] == 16
    assert result.stderr.startswith("warning: ")
    assert "'sideways' (4)" in result.stderr


def test_predict_writes_csv(long_run, tmp_path):
    out = tmp_path / "predictions.csv"
    result = invoke("predict", long_run.run_dir, "--data", long_run.predict_csv,
                    "--output", out)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert result.stderr.strip() == f"wrote 7 predictions to {out}"
    frame = pd.read_csv(out)
    assert len(frame) == 7
    assert list(frame.columns) == ["id", "predicted", *(f"prob_{c}" for c in CLASSES)]
    assert frame[[f"prob_{c}" for c in CLASSES]].sum(axis=1).round(5).eq(1).all()


def test_predict_to_stdout(long_run):
    result = invoke("predict", long_run.run_dir, "--data", long_run.predict_csv)
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(io.StringIO(result.stdout))
    assert len(frame) == 7 and frame["id"].str.startswith("p").all()


def test_check_prints_config_data_and_model(long_data):
    result = invoke("check", long_data / "tiny.yaml", "--set", "model.units=4")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "# resolved config" in out
    resolved = yaml_section(out, "# resolved config")
    assert resolved["model"]["units"] == 4
    assert resolved["data"]["train"] == str(long_data / "train.csv")
    assert f"# train data: {long_data / 'train.csv'}" in out
    assert "# validation data:" in out and "# test data:" in out
    assert re.search(r"^sequences: 89; length min \d, median [\d.]+, max \d; channels: 2 "
                     r"\(x, y\); missing values: 0$", out, re.M)
    assert re.search(r"^classes \(3\): down: \d+, flat: \d+, up: \d+$", out, re.M)
    assert "# model" in out
    assert re.search(r"^parameters: \d+$", out, re.M)
    # LSTM(4) on 2 features: 4*4*(2+4+1) = 112; Dense(4 -> 3): 15
    assert "parameters: 127" in out


@pytest.mark.parametrize("name", ["quickstart", "lstm", "stacked_lstm", "bigru"])
def test_check_shipped_configs_on_the_bundled_data(name):
    result = invoke("check", ROOT / "configs" / f"{name}.yaml")
    assert result.exit_code == 0, result.output
    assert f"# train data: {ROOT / 'data' / 'digits' / 'train.csv'}" in result.stdout
    assert "classes (10): 0: " in result.stdout
    assert re.search(r"^parameters: \d+$", result.stdout, re.M)


def yaml_section(out: str, header: str) -> dict:
    import yaml

    text = out.split(header + "\n", 1)[1].split("\n# ", 1)[0]
    return yaml.safe_load(text)


def test_info():
    result = invoke("info")
    assert result.exit_code == 0, result.output
    out = result.stdout
    for name in ("python", "keras", "tensorflow", "numpy"):
        assert re.search(rf"^{name}: \S+", out, re.M), name
    assert "keras backend: tensorflow" in out
    assert re.search(r"^device: ", out, re.M)


def test_no_arguments_shows_help():
    result = invoke()
    assert "train" in result.output and "evaluate" in result.output


def _command_names() -> list[list[str]]:
    from seqclf.cli import data_app

    def name(c):
        return c.name or c.callback.__name__.replace("_", "-")
    return ([[name(c)] for c in app.registered_commands]
            + [["data", name(c)] for c in data_app.registered_commands])


@pytest.mark.parametrize("names", _command_names(), ids=" ".join)
def test_help_fills_each_line_to_the_terminal_width(names):
    """Each paragraph of a command's help wraps where the terminal ends, not where its
    docstring's lines did (rich keeps single line breaks)."""
    width = 60
    result = CliRunner().invoke(app, [*names, "--help"], env={"COLUMNS": str(width)})
    assert result.exit_code == 0, result.output
    prose = [line.strip() for line in result.output.split("╭")[0].splitlines()][2:]
    assert sum(map(bool, prose)) >= 1
    for line, after in zip(prose, prose[1:]):
        if line and after:  # a break inside a paragraph: the next word did not fit
            assert len(line) + 1 + len(after.split()[0]) > width - 2, (line, after)


# --- user errors: one line, exit code 2 ----------------------------------------------


def _tiny_config(folder: Path, train_text: str, **data) -> Path:
    write_text(folder / "train.csv", train_text)
    return write_config(folder / "c.yaml", {
        "data": {"train": "train.csv", "format": "long", **data},
        "model": {"units": 4}, "training": {"epochs": 1}})


GOOD_LONG = "id,step,x,label\n" + "".join(f"s{i},{j},{i + j},{'ab'[i % 2]}\n"
                                          for i in range(10) for j in range(2))


def test_error_unknown_key(tmp_path):
    path = write_config(tmp_path / "c.yaml", {"data": {"train": "t.csv"},
                                              "model": {"unitz": 4}})
    for command in ("train", "check"):
        assert_user_error(invoke(command, path), f"error: {path}: model.unitz is not a valid "
                          "key for model.family 'recurrent' (did you mean 'units'?). Valid "
                          "keys under model for that family: ")


def test_error_dropout_out_of_range(tmp_path):
    path = _tiny_config(tmp_path, GOOD_LONG)
    line = assert_user_error(invoke("train", path, "--set", "model.dropout=1.5"))
    assert line == ("error: --set model.dropout=1.5: model.dropout must be >= 0 and < 1. "
                    "Got 1.5 instead.")


def test_error_missing_config(tmp_path):
    assert_user_error(invoke("train", tmp_path / "nope.yaml"), "nope.yaml: file not found")


def test_error_missing_data_file(tmp_path):
    path = write_config(tmp_path / "c.yaml", {"data": {"train": "missing.csv"}})
    assert_user_error(invoke("train", path, "--quiet"),
                      f"error: {tmp_path / 'missing.csv'}: file not found.")


def test_error_missing_label_column(tmp_path):
    path = _tiny_config(tmp_path, GOOD_LONG.replace("label", "target", 1))
    assert_user_error(invoke("train", path), "has no label column 'label'. Columns: id, step, "
                      "x, target.")


def test_error_non_numeric_cell(tmp_path):
    text = GOOD_LONG.replace("s3,1,4,b", "s3,1,four,b")
    assert "four" in text
    path = _tiny_config(tmp_path, text)
    assert_user_error(invoke("train", path),
                      f"{tmp_path / 'train.csv'}: line 9, column 'x': 'four' is not a number.")


def test_error_ragged_long_data(tmp_path):
    path = _tiny_config(tmp_path, GOOD_LONG.replace("s3,1,4,b", "s3,1,4,b,9"))
    assert_user_error(invoke("train", path), "line 9 has 5 fields, the header has 4.")


def test_error_empty_data_file(tmp_path):
    path = _tiny_config(tmp_path, "")
    assert_user_error(invoke("check", path), "file is empty.")


def test_error_evaluate_non_run_directory(tmp_path):
    assert_user_error(invoke("evaluate", tmp_path),
                      f"error: {tmp_path}: is not a seqclf run directory (no manifest.json).")
    assert_user_error(invoke("predict", tmp_path / "gone", "--data", tmp_path / "x.csv"),
                      "run directory not found")


def test_error_predict_on_missing_data(long_run, tmp_path):
    assert_user_error(invoke("predict", long_run.run_dir, "--data", tmp_path / "none.csv"),
                      "none.csv: file not found")


def test_internal_errors_are_one_line_with_exit_code_1(long_data, monkeypatch):
    import seqclf.train

    def boom(*args, **kwargs):
        raise ValueError("boom")

    monkeypatch.setattr(seqclf.train, "check", boom)
    result = invoke("check", long_data / "tiny.yaml")
    assert result.exit_code == 1
    assert result.stderr.strip() == ("error: internal error: ValueError: boom. Set "
                                     "SEQCLF_DEBUG=1 for the traceback and report it.")
    debug = invoke("check", long_data / "tiny.yaml", env={"SEQCLF_DEBUG": "1"})
    assert isinstance(debug.exception, ValueError)


def test_debug_shows_user_errors_as_exceptions(tmp_path):
    from seqclf.errors import SeqclfError

    path = write_config(tmp_path / "c.yaml", {"data": {"train": "t.csv"}, "bogus": 1})
    result = invoke("check", path, env={"SEQCLF_DEBUG": "1"})
    assert isinstance(result.exception, SeqclfError)


# --- real subprocesses ---------------------------------------------------------------

PROBE = """
import sys
from seqclf import cli
sys.argv = ["seqclf", *sys.argv[1:]]
try:
    cli.main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print("RESULT", code, "tensorflow" in sys.modules, "keras" in sys.modules, file=sys.stderr)
"""


def _probe(*args: str) -> tuple[int, bool, bool, str, str]:
    done = run_python("-c", PROBE, *args, timeout=60)
    last = done.stderr.strip().splitlines()[-1].split()
    assert last[0] == "RESULT", done.stderr
    return int(last[1]), last[2] == "True", last[3] == "True", done.stdout, done.stderr


def test_module_help_in_subprocess():
    done = run_python("-m", "seqclf", "--help", timeout=60)
    assert done.returncode == 0, done.stderr
    for command in ("train", "evaluate", "predict", "check", "info", "data"):
        assert command in done.stdout
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("args", [["--help"], ["train", "--help"], ["evaluate", "--help"]])
def test_help_does_not_import_tensorflow(args):
    code, tf, keras, out, _ = _probe(*args)
    assert code == 0
    assert "Usage" in out
    assert not tf and not keras


def test_check_config_only_prints_the_resolved_config_without_tensorflow():
    code, tf, keras, out, _ = _probe("check", str(ROOT / "configs" / "quickstart.yaml"),
                                     "--config-only", "--set", "model.units=12")
    assert code == 0
    assert not tf and not keras
    assert out.startswith("# resolved config\n") and "  units: 12\n" in out
    assert "# model" not in out


def test_config_error_fails_before_importing_tensorflow(tmp_path):
    path = write_config(tmp_path / "c.yaml", {"data": {"train": "missing.csv"},
                                              "model": {"unitz": 4}})
    for command in ("check", "train"):
        code, tf, keras, out, err = _probe(command, str(path))
        assert code == 2
        assert not tf and not keras, command
        lines = err.strip().splitlines()
        assert len(lines) == 2 and lines[0].startswith(f"error: {path}: model.unitz is not")


@pytest.mark.slow
def test_train_in_subprocess_piped_prints_a_line_per_epoch(long_data, tmp_path):
    done = run_python("-m", "seqclf", "train", str(long_data / "tiny.yaml"), *TINY,
                      "--output-dir", str(tmp_path), timeout=180)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert len(epochs) == 2
    assert re.match(r"epoch 1/2 loss \d+\.\d{4} accuracy \d\.\d{4} \(\d+\.\ds\)$", epochs[0])
    assert epochs[1].startswith("epoch 2/2 ")
    assert "\r" not in done.stdout
    assert any(line.startswith("test accuracy ") for line in lines)
    run_dir = Path(lines[-1].removeprefix("run directory: "))
    assert (run_dir / "manifest.json").is_file()
    assert "Traceback" not in done.stderr


def test_user_error_in_subprocess(tmp_path):
    done = run_python("-m", "seqclf", "evaluate", str(tmp_path), timeout=60)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        f"error: {tmp_path}: is not a seqclf run directory (no manifest.json)."]


# --- progress output -----------------------------------------------------------------


def test_progress_live_draws_a_bar_with_eta():
    stream = io.StringIO()
    progress = Progress(stream, live=True)
    progress.train_begin(2, 4)
    progress.epoch_begin(0)
    progress.batch_end(0, {"loss": 0.9, "accuracy": 0.5})
    progress.epoch_end(0, {"loss": 0.8, "accuracy": 0.6, "val_loss": 0.7})
    progress.epoch_begin(1)
    progress.epoch_end(1, {"loss": 0.5, "accuracy": 0.75})
    progress.train_end()
    text = stream.getvalue()
    assert text.startswith("\repoch 1/2 [")
    assert text.count("\r") == 3
    assert "ETA" in text and "elapsed" in text
    assert "loss 0.9000 accuracy 0.5000" in text
    assert "val_loss 0.7000" in text
    assert "100%" in text.split("\r")[-1]
    assert text.endswith("\n") and text.count("\n") == 1


def test_progress_eta_after_resume_counts_the_epochs_since_the_resume(monkeypatch):
    """Resumed at epoch 8 of 10: one epoch in 10 s leaves 1 epoch, so 10 s to go (not the
    9 epochs done in 10 s, which would say about 1 s)."""
    clock = iter([0.0, 10.0])
    monkeypatch.setattr("seqclf.progress.time.perf_counter", lambda: next(clock))
    stream = io.StringIO()
    progress = Progress(stream, live=True)
    progress.train_begin(10, 4, initial_epoch=8)
    progress.epoch = 8
    progress._draw(9, {})
    assert "elapsed 0:10 ETA 0:10" in stream.getvalue()


def test_progress_piped_writes_a_line_per_epoch():
    stream = io.StringIO()
    progress = Progress(stream, live=False)
    progress.train_begin(3, 10)
    for epoch in range(3):
        progress.epoch_begin(epoch)
        progress.batch_end(0, {"loss": 1.0})
        progress.epoch_end(epoch, {"loss": 1.0 / (epoch + 1), "accuracy": 0.5,
                                   "epoch_seconds": 1.0})
    progress.train_end()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    assert re.fullmatch(r"epoch 1/3 loss 1\.0000 accuracy 0\.5000 \(\d+\.\ds\)", lines[0])
    assert lines[2].startswith("epoch 3/3 loss 0.3333 ")
    assert "\r" not in stream.getvalue() and "ETA" not in stream.getvalue()


def test_progress_defaults_to_live_only_on_a_tty():
    assert Progress(io.StringIO()).live is False

    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert Progress(Tty()).live is True

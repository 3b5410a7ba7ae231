"""seqclf export: ONNX and SavedModel artifacts, their preprocessing.json, parity, errors.

The ONNX test exports two tiny masked models of variable-length sequences (``long_run``:
LSTM, standard scaling, post padding; ``pre_run``: bidirectional GRU, per-sequence
scaling, pre padding and truncation) and runs each again from its sidecar alone, with the
README's numpy recipe and onnxruntime, as a deployment would.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import write_csv
from seqclf.cli import app
from seqclf.errors import SeqclfError
from seqclf.export import HOW_TO_APPLY, TOLERANCE, export

PARITY = re.compile(r"^parity on (?P<data>.+) \((?P<n>\d+) sequences\): predicted labels "
                    r"identical; max abs probability difference (?P<diff>\S+)$", re.M)


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def readme_model_input(meta: dict):
    """The README's deployment recipe (its ``model_input``: numpy only), on this sidecar."""
    from test_readme_examples import examples

    code = next(code for title, lang, code in examples()
                if title == "Deploy" and lang == "python")
    source = re.search(r"^def model_input\(.*?(?=^\S)", code, re.M | re.S).group(0)
    namespace = {"np": np, "meta": meta, "p": meta["preprocessing"]}
    exec(source, namespace)
    return namespace["model_input"]


@pytest.fixture(scope="module")
def pre_run(tmp_path_factory):
    """Pre-padded, pre-truncated, per-sequence-scaled bidirectional GRU: the other side of
    every preprocessing choice that long_run makes."""
    from conftest import long_frame, write_config
    from seqclf.config import load_config
    from seqclf.train import train

    folder = tmp_path_factory.mktemp("pre")
    write_csv(folder / "train.csv", long_frame(90, seed=4, max_len=10))
    write_config(folder / "pre.yaml", {
        "data": {"train": "train.csv", "format": "long", "scaling": "per_sequence",
                 "padding": "pre", "truncating": "pre", "max_length": 7, "test_split": 0.3},
        "model": {"cell": "gru", "units": 4, "bidirectional": True},
        "training": {"epochs": 2, "batch_size": 16, "tensorboard": False}})
    return train(load_config(folder / "pre.yaml"), folder / "runs").run_dir


@pytest.mark.slow
@pytest.mark.parametrize("which", ["long_run", "pre_run"])
def test_onnx_export_of_a_masked_variable_length_model_matches_keras(which, request,
                                                                      tmp_path):
    import onnxruntime

    from seqclf.data import load_splits
    from seqclf.evaluate import infer
    from seqclf.runs import open_run

    run_dir = request.getfixturevalue(which)
    run_dir = getattr(run_dir, "run_dir", run_dir)
    run = open_run(run_dir)
    out = tmp_path / "deploy"
    result = invoke("export", run_dir, "--format", "onnx", "--output", out)
    assert result.exit_code == 0, result.output
    match = PARITY.search(result.stdout)
    _, test_set = load_splits(run.config)
    assert match and int(match["n"]) == len(test_set), result.stdout
    assert float(match["diff"]) < TOLERANCE
    assert result.stdout.rstrip().endswith(f"export directory: {out}")
    assert sorted(p.name for p in out.iterdir()) == ["model.onnx", "preprocessing.json"]

    meta = json.loads((out / "preprocessing.json").read_text())
    prep = run.preprocessor
    assert meta["classes"] == prep.classes == ["down", "flat", "up"]
    assert meta["preprocessing"] == json.loads(prep.to_json())
    assert meta["input"] == {"name": "sequences", "dtype": "float32",
                             "shape": [None, prep.max_length, 2]}
    assert meta["how_to_apply"] == HOW_TO_APPLY
    assert meta["parity"]["labels_identical"] is True
    assert meta["parity"]["max_abs_diff"] == pytest.approx(float(match["diff"]), rel=0.01)

    # Deployment: the sidecar, numpy and onnxruntime alone, on the run's test sequences.
    lengths = [len(s) for s in test_set.sequences]
    assert len(set(lengths)) > 3  # variable lengths: padded and masked
    x = readme_model_input(meta)(test_set.sequences)
    session = onnxruntime.InferenceSession(str(out / "model.onnx"),
                                           providers=["CPUExecutionProvider"])
    proba = session.run(None, {meta["input"]["name"]: x})[0]
    expected, _ = infer(run, test_set)
    assert np.abs(proba - expected).max() < TOLERANCE
    assert (proba.argmax(axis=1) == expected.argmax(axis=1)).all()


def test_savedmodel_export(wide_run, tmp_path):
    import tensorflow as tf

    out = tmp_path / "sm"
    result = export(wide_run.run_dir, "savedmodel", out)
    assert result.n == 16 and result.max_abs_diff < TOLERANCE
    assert sorted(p.name for p in out.iterdir()) == ["preprocessing.json", "saved_model"]
    meta = json.loads((out / "preprocessing.json").read_text())
    assert meta["classes"] == [0, 1] and meta["format"] == "savedmodel"
    assert meta["input"]["signature"] == "serving_default"
    x = np.full((1, meta["preprocessing"]["max_length"], 1), meta["preprocessing"]["pad_value"],
                dtype=np.float32)
    x[0, :2, 0] = [1.5, 0.7]
    loaded = tf.saved_model.load(str(out / "saved_model"))  # referenced while it runs
    proba = np.asarray(loaded.serve(x))
    assert proba.shape == (1, 2) and abs(proba.sum() - 1) < 1e-5


def test_export_checks_parity_on_given_data(wide_run, tmp_path):
    result = export(wide_run.run_dir, "onnx", tmp_path / "o", data=wide_run.predict_csv)
    assert result.n == 5 and result.source == str(wide_run.predict_csv)
    # no decision.json: the most probable class decides
    assert json.loads((tmp_path / "o" / "preprocessing.json").read_text())["decision"] is None


@pytest.mark.slow
def test_the_sidecar_records_the_run_threshold_and_how_to_apply_it(tmp_path):
    """A run with a decision threshold (decision.json): preprocessing.json holds it, the
    recipe says how to apply it, and applied to the ONNX model's output it gives seqclf
    predict's labels."""
    import onnxruntime

    from conftest import wide_frame
    from seqclf import SequenceClassifier
    from seqclf.evaluate import predict

    est = SequenceClassifier(data__format="wide", model__cell="gru", model__units=4,
                             training__epochs=2, training__batch_size=16, training__seed=0,
                             training__validation_split=0.3, training__threshold=0.8,
                             training__tensorboard=False).fit(wide_frame(80, seed=1))
    run_dir = est.save(tmp_path / "run")
    csv = write_csv(tmp_path / "data.csv", wide_frame(40, seed=5))
    out = tmp_path / "deploy"
    export(run_dir, "onnx", out, data=csv)
    meta = json.loads((out / "preprocessing.json").read_text())
    assert meta["decision"] == {"threshold": 0.8, "positive_class": 1, "negative_class": 0,
                                "rule": 0.8}
    assert any("decision.threshold" in step for step in meta["how_to_apply"])

    x, _ = est.preprocessor_.transform(est._dataset(pd.read_csv(csv), None, est.config_,
                                                     require_labels=False))
    session = onnxruntime.InferenceSession(str(out / "model.onnx"),
                                           providers=["CPUExecutionProvider"])
    proba = session.run(None, {meta["input"]["name"]: x})[0]
    d = meta["decision"]
    positive = meta["classes"].index(d["positive_class"])
    labels = [d["positive_class"] if p >= d["threshold"] else d["negative_class"]
              for p in proba[:, positive]]
    assert labels != [meta["classes"][i] for i in proba.argmax(axis=1)]  # it matters here
    expected, _ = predict(run_dir, csv)
    assert labels == expected["predicted"].astype(int).tolist()


def test_export_refuses_a_disagreeing_model_and_writes_nothing(wide_run, tmp_path, monkeypatch):
    import seqclf.export

    real = seqclf.export._run_onnx

    def off_by_a_bit(path, x):
        proba, io = real(path, x)
        return proba + 2e-4, io

    monkeypatch.setattr(seqclf.export, "_run_onnx", off_by_a_bit)
    with pytest.raises(SeqclfError, match=r"the exported onnx model disagrees with the Keras "
                                          r"model on .*test.csv: 0 of 16 predicted labels "
                                          r"differ, max abs probability difference 0.0002 "
                                          r"\(must be < 0.0001\). Nothing was written."):
        export(wide_run.run_dir, "onnx", tmp_path / "o")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, message", [
    (["--format", "tflite"], "seqclf export: --format must be one of: onnx, savedmodel. Got "
                             "'tflite' instead."),
    (["--output", "{existing}"], "{existing}: already exists; an export never overwrites."),
])
def test_export_errors_are_one_line(wide_run, tmp_path, args, message):
    (tmp_path / "existing").mkdir()
    args = [a.format(existing=tmp_path / "existing") for a in args]
    if "--output" not in args:
        args += ["--output", str(tmp_path / "new")]
    result = invoke("export", wide_run.run_dir, *args)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: " + message.format(existing=tmp_path / "existing"))
    assert len(result.stderr.strip().splitlines()) == 1


def test_export_without_onnx_packages_says_what_to_install(wide_run, tmp_path, monkeypatch):
    import importlib.util

    find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tf2onnx" else find(name, *a))
    with pytest.raises(SeqclfError, match=re.escape(
            "seqclf export --format onnx needs the tf2onnx package(s): pip install "
            "'seqclf[export]'.")):
        export(wide_run.run_dir, "onnx", tmp_path / "o")


def test_a_stateful_model_is_not_exported(tmp_path):
    from conftest import wide_frame, write_config
    from seqclf.config import load_config
    from seqclf.train import train

    write_csv(tmp_path / "train.csv", wide_frame(16, seed=1))
    write_config(tmp_path / "s.yaml", {
        "data": {"train": "train.csv", "test_split": 0.25},
        "model": {"cell": "rnn", "units": 4, "stateful": True},
        "training": {"epochs": 1, "batch_size": 4, "tensorboard": False}})
    run = train(load_config(tmp_path / "s.yaml"), tmp_path / "runs")
    with pytest.raises(SeqclfError, match="model.stateful is true: the model carries its "
                                          "state from one batch to the next"):
        export(run.run_dir, "savedmodel", tmp_path / "o")


LAZY = """
import sys
import seqclf
from typer.testing import CliRunner
from seqclf.cli import app
result = CliRunner().invoke(app, ["export", "--help"])
assert result.exit_code == 0 and "--format" in result.output and "ONNX" in result.output
print([m in sys.modules for m in ("tensorflow", "keras", "sklearn")])
from seqclf import SequenceClassifier
print([m in sys.modules for m in ("tensorflow", "keras", "sklearn")])
"""


def test_import_seqclf_and_export_help_stay_light():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", LAZY], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["[False, False, False]", "[False, False, True]"]

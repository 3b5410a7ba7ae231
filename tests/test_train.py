"""Train, evaluate and predict end to end on tiny synthetic data (one shared run)."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import CLASSES, ROOT, long_frame, write_csv, write_config
from seqclf import runs
from seqclf.config import load_config, validate_config
from seqclf.data import MASK_VALUE, Preprocessor, file_sha256, read_sequences
from seqclf.errors import SeqclfError
from seqclf.evaluate import evaluate, predict
from seqclf.runs import open_run


def readme_run_files() -> list[str]:
    """The file names in the README's run-directory table."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Run directory", 1)[1].split("\n## ", 1)[0]
    names = []
    for line in section.splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            names += re.findall(r"`([^`]+)`", first_cell)
    return names


def test_readme_lists_the_run_files():
    assert set(readme_run_files()) >= {
        "config.yaml", "model.keras", "preprocessing.json", "history.csv", "metrics.json",
        "classification_report.txt", "confusion_matrix.png", "training_curves.png",
        "manifest.json"}


@pytest.fixture(params=["long", "wide"])
def any_run(request, long_run, wide_run):
    return long_run if request.param == "long" else wide_run


# --- the run directory ---------------------------------------------------------------


def test_run_directory_has_every_artifact(any_run):
    run_dir = any_run.run_dir
    files = {p.name for p in run_dir.iterdir()}
    for name in readme_run_files():
        if name.endswith("/"):  # a folder: tensorboard/ holds event files
            assert any((run_dir / name).rglob("events.out.tfevents.*")), name
        else:
            assert (run_dir / name).is_file(), name
    assert runs.INCOMPLETE not in files
    assert not [f for f in files if f.startswith(".")], "temporary files left behind"
    assert run_dir.name.startswith(f"{any_run.config.name}-")
    for png in ("confusion_matrix.png", "training_curves.png"):
        assert (run_dir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_metrics_json(long_run):
    metrics = json.loads((long_run.run_dir / "metrics.json").read_text())
    test = metrics["test"]
    ev = long_run.result.evaluation
    assert test["accuracy"] == pytest.approx(ev.accuracy)
    assert test["n"] == long_run.result.sizes["test"] == 38  # 25% of 150, stratified
    assert test["correct"] == round(test["accuracy"] * test["n"])
    assert test["labels"] == list(CLASSES)
    confusion = np.array(test["confusion"])
    assert confusion.sum() == test["n"] and np.trace(confusion) == test["correct"]
    # the baseline: how often the most frequent training label is the true test label
    majority = CLASSES.index(test["majority_class"])
    assert test["baseline"] == pytest.approx(confusion[majority].sum() / test["n"])
    assert 0.3 <= test["baseline"] <= 0.37
    # the data is learnable: the model beats always predicting the majority class
    assert test["accuracy"] > test["baseline"] + 0.15
    assert metrics["sizes"] == {"train": 89, "validation": 23, "test": 38}
    assert metrics["epochs_run"] == 4
    assert metrics["parameters"] > 0
    assert set(metrics["final"]) >= {"loss", "accuracy", "val_loss", "val_accuracy"}


def test_history_csv(long_run):
    history = pd.read_csv(long_run.run_dir / "history.csv")
    assert list(history["epoch"]) == [1, 2, 3, 4]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "epoch_seconds"} <= set(history)
    assert (history["epoch_seconds"] > 0).all()
    assert history["loss"].iloc[-1] < history["loss"].iloc[0]


def test_manifest(long_run):
    manifest = json.loads((long_run.run_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["seed"] == 3
    assert manifest["name"] == "tiny"
    assert manifest["data_sha256"] == {str(long_run.train_csv): file_sha256(long_run.train_csv)}
    assert manifest["versions"]["keras"].startswith("3.")
    compute = manifest["compute"]  # the plan the run trained with
    assert compute["device"] in ("CPU", "GPU") and compute["backend"] == "tensorflow"
    import tensorflow as tf  # the threads the run trained with, as TensorFlow reports them

    assert compute["intra_op_threads"] == (
        tf.config.threading.get_intra_op_parallelism_threads() or None)
    assert compute["jit_compile"] is False  # a few epochs: no XLA under auto
    assert compute["steps_per_execution"] == 1  # and so Keras's one batch per call
    assert compute["cudnn"] == ("cuDNN kernel: no GPU" if compute["gpus"] == 0
                                else "cuDNN kernel: yes")


def test_saved_config_and_preprocessing(long_run):
    saved = yaml.safe_load((long_run.run_dir / "config.yaml").read_text())
    assert saved == long_run.config.to_dict()
    assert saved["data"]["train"] == str(long_run.train_csv)  # resolved, absolute
    prep = Preprocessor.from_json((long_run.run_dir / "preprocessing.json").read_text())
    assert prep.classes == list(CLASSES)
    assert prep.feature_names == ["x", "y"]
    assert prep.scaling == "standard" and prep.padding == "post"
    assert prep.pad_value == MASK_VALUE
    assert 3 <= prep.max_length <= 9
    run = open_run(long_run.run_dir)
    assert run.preprocessor == prep
    assert run.config.to_dict() == long_run.config.to_dict()


def test_classification_report_names_every_class(long_run):
    text = (long_run.run_dir / "classification_report.txt").read_text()
    for name in CLASSES:
        assert name in text
    assert "majority-class baseline" in text
    assert "confusion matrix" in text


# --- evaluate and predict ------------------------------------------------------------


def test_evaluate_reproduces_the_stored_test_scores(any_run):
    stored = json.loads((any_run.run_dir / "metrics.json").read_text())["test"]
    ev = evaluate(any_run.run_dir)
    assert ev.n == stored["n"]
    assert ev.correct == stored["correct"]
    assert ev.accuracy == pytest.approx(stored["accuracy"])
    assert ev.baseline == pytest.approx(stored["baseline"])
    assert ev.macro_f1 == pytest.approx(stored["macro_f1"])
    assert ev.confusion == stored["confusion"]
    assert ev.unseen == {}


def test_evaluate_counts_unseen_labels_as_wrong(long_run):
    known = evaluate(long_run.run_dir, long_run.known_csv)
    ev = evaluate(long_run.run_dir, long_run.unseen_csv)
    assert ev.unseen == {"sideways": 4}
    assert ev.n == known.n + 4 == 16
    assert ev.correct == known.correct  # the 4 unseen ones are all wrong, nothing dropped
    assert ev.accuracy == pytest.approx(known.correct / 16)
    assert ev.labels == [*CLASSES, "sideways"]
    assert ev.confusion[-1][-1] == 0 and sum(ev.confusion[-1]) == 4
    warnings = ev.warnings()
    assert len(warnings) == 1
    assert "4 sequences have labels training never saw: 'sideways' (4)" in warnings[0]


def test_evaluate_on_longer_sequences_reports_truncation(long_run, tmp_path):
    longer = write_csv(tmp_path / "longer.csv", long_frame(6, seed=21, min_len=12, max_len=14))
    ev = evaluate(long_run.run_dir, longer)
    assert ev.truncated == 6
    assert any("6 sequences were longer than the training padding length" in w
               for w in ev.warnings())


def test_evaluate_refuses_data_with_other_features(long_run, tmp_path):
    other = write_csv(tmp_path / "other.csv",
                      long_frame(3, seed=1).rename(columns={"y": "z"}))
    with pytest.raises(SeqclfError, match=r"feature columns \['x', 'z'\] differ from the "
                       r"training data's \['x', 'y'\]"):
        evaluate(long_run.run_dir, other)


def test_predict(long_run):
    frame, truncated = predict(long_run.run_dir, long_run.predict_csv)
    source = read_sequences(long_run.predict_csv, long_run.config.data, require_labels=False)
    assert truncated == 0
    assert len(frame) == 7
    assert list(frame["id"]) == source.ids
    assert list(frame.columns) == ["id", "predicted", *(f"prob_{c}" for c in CLASSES)]
    proba = frame[[f"prob_{c}" for c in CLASSES]].to_numpy()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert ((proba >= 0) & (proba <= 1)).all()
    assert list(frame["predicted"]) == [CLASSES[i] for i in proba.argmax(axis=1)]


def test_predict_agrees_with_evaluate(long_run):
    frame, _ = predict(long_run.run_dir, long_run.known_csv)
    truth = read_sequences(long_run.known_csv, long_run.config.data)
    labels = dict(zip(truth.ids, truth.labels))
    correct = sum(labels[i] == p for i, p in zip(frame["id"], frame["predicted"]))
    assert correct == evaluate(long_run.run_dir, long_run.known_csv).correct


def test_predict_wide_with_integer_labels(wide_run):
    frame, _ = predict(wide_run.run_dir, wide_run.predict_csv)
    assert list(frame["id"]) == [f"w{i:03d}" for i in range(5)]
    assert list(frame.columns) == ["id", "predicted", "prob_0", "prob_1"]
    assert set(frame["predicted"]) <= {0, 1}
    np.testing.assert_allclose(frame[["prob_0", "prob_1"]].sum(axis=1), 1.0, atol=1e-5)


def test_trained_model_ignores_padding(long_run):
    """Masking on the trained model: the same weights on data padded 5 steps longer."""
    from seqclf.backend import keras
    from seqclf.model import build_model

    run = open_run(long_run.run_dir)
    model = run.load_model()
    data = read_sequences(long_run.known_csv, run.config.data)
    x, _ = run.preprocessor.transform(data)
    longer_prep = Preprocessor.from_json(run.preprocessor.to_json())
    longer_prep.max_length += 5
    longer_model = build_model(run.config, longer_prep)
    longer_model.set_weights(model.get_weights())
    x_long, _ = longer_prep.transform(data)
    assert x_long.shape[1] == x.shape[1] + 5
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(longer_model(x_long)),
                               atol=1e-6)
    assert isinstance(model, keras().Model)


# --- refusing runs that are not complete ---------------------------------------------


@pytest.fixture
def run_copy(long_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(long_run.run_dir, copy)
    return copy


def test_run_with_incomplete_marker_is_refused(run_copy):
    (run_copy / runs.INCOMPLETE).write_text("crashed\n")
    with pytest.raises(SeqclfError) as info:
        open_run(run_copy)
    assert str(info.value) == (f"{run_copy}: this run did not finish (it has an INCOMPLETE "
                               "marker). Train it again.")
    with pytest.raises(SeqclfError, match="did not finish"):
        evaluate(run_copy)


def test_run_without_manifest_is_refused(run_copy):
    (run_copy / runs.MANIFEST).unlink()
    with pytest.raises(SeqclfError) as info:
        open_run(run_copy)
    assert str(info.value) == f"{run_copy}: is not a seqclf run directory (no manifest.json)."


def test_missing_run_directory(tmp_path):
    with pytest.raises(SeqclfError, match=r"nope: run directory not found\. Pass the "
                       r"directory `seqclf train` printed\."):
        open_run(tmp_path / "nope")


def test_run_with_damaged_preprocessing_is_refused(run_copy):
    (run_copy / runs.PREPROCESSING).write_text("{not json")
    with pytest.raises(SeqclfError, match=r"run files are missing or damaged .*Train the run "
                       "again"):
        open_run(run_copy)


def test_corrupted_model_is_a_seqclf_error(run_copy, long_run):
    (run_copy / runs.MODEL).write_bytes(b"this is not a zip archive \x00\x01\x02" * 10)
    run = open_run(run_copy)
    with pytest.raises(SeqclfError) as info:
        run.load_model()
    assert str(info.value).startswith(f"{run_copy / 'model.keras'}: cannot be loaded (")
    assert "The file is damaged; train the run again." in str(info.value)
    with pytest.raises(SeqclfError, match="cannot be loaded"):
        predict(run_copy, long_run.predict_csv)


def test_a_crashed_run_stays_incomplete(long_data, tmp_path, monkeypatch):
    def crash(path, model):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(runs, "save_model", crash)
    from seqclf.train import train

    cfg = load_config(long_data / "tiny.yaml", ["training.epochs=1", "model.units=4",
                                                 "training.early_stopping=null",
                                                 "training.validation_split=0"])
    with pytest.raises(RuntimeError, match="disk on fire"):
        train(cfg, tmp_path)
    (run_dir,) = tmp_path.iterdir()
    assert (run_dir / runs.INCOMPLETE).exists()
    assert not (run_dir / runs.MANIFEST).exists()
    with pytest.raises(SeqclfError, match="did not finish"):
        open_run(run_dir)


# --- reproducibility -----------------------------------------------------------------


@pytest.mark.slow
def test_same_config_and_seed_give_the_same_run(long_run, tmp_path):
    from seqclf.train import train

    again = train(long_run.config, tmp_path)
    assert again.run_dir != long_run.run_dir
    first = json.loads((long_run.run_dir / "metrics.json").read_text())["test"]
    second = json.loads((again.run_dir / "metrics.json").read_text())["test"]
    assert second["accuracy"] == first["accuracy"]
    assert second["confusion"] == first["confusion"]
    h1 = pd.read_csv(long_run.run_dir / "history.csv")
    h2 = pd.read_csv(again.run_dir / "history.csv")
    np.testing.assert_allclose(h1["loss"], h2["loss"], rtol=1e-5)
    np.testing.assert_allclose(h1["val_loss"], h2["val_loss"], rtol=1e-5)


@pytest.mark.slow
def test_class_weight_balanced_and_stateful_training(long_data, tmp_path):
    """Less common training paths run end to end and leave a complete run."""
    from seqclf.train import train

    cfg = load_config(long_data / "tiny.yaml", [
        "training.epochs=1", "model.units=4", "training.class_weight=balanced",
        "model.stateful=true", "training.batch_size=7", "training.tensorboard=false"])
    result = train(cfg, tmp_path)
    assert result.sizes["test"] == 38
    ev = evaluate(result.run_dir)
    assert ev.n == 38 and ev.correct == result.evaluation.correct


@pytest.mark.slow
def test_embedding_run_end_to_end(tmp_path):
    from seqclf.train import train

    rng = np.random.default_rng(4)
    rows = []
    for i in range(40):
        label = i % 2
        tokens = rng.integers(1 + 4 * label, 5 + 4 * label, size=rng.integers(2, 6))
        rows.append({"id": f"e{i}", **{f"t{j}": int(v) for j, v in enumerate(tokens)},
                     "label": "odd" if label else "even"})
    write_csv(tmp_path / "tokens.csv", pd.DataFrame(rows).astype(
        {f"t{j}": "Int64" for j in range(5)}))
    path = write_config(tmp_path / "emb.yaml", {
        "data": {"train": "tokens.csv", "test_split": 0.25},
        "model": {"embedding": {"input_dim": 9, "output_dim": 3}, "units": 4},
        "training": {"epochs": 1, "batch_size": 8, "tensorboard": False}})
    result = train(load_config(path), tmp_path / "runs")
    assert result.sizes["test"] == 10
    assert evaluate(result.run_dir).correct == result.evaluation.correct
    cfg = validate_config(yaml.safe_load((result.run_dir / "config.yaml").read_text()))
    assert cfg.model.embedding.input_dim == 9


# --- scoring -------------------------------------------------------------------------


def _prep(classes, majority):
    return Preprocessor(feature_names=["x"], classes=list(classes), majority_class=majority,
                        max_length=3)


def test_score_counts_and_baseline():
    from seqclf.evaluate import score

    proba = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8],
                      [0.5, 0.4, 0.1]])
    ev = score(["a", "b", "b", "c", "zzz"], proba, _prep("abc", "b"), "mem.csv")
    assert (ev.n, ev.correct) == (5, 3)
    assert ev.accuracy == pytest.approx(0.6)
    assert ev.baseline == pytest.approx(0.4)  # 'b' is 2 of the 5 true labels
    assert ev.labels == ["a", "b", "c", "zzz"]
    assert ev.confusion == [[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0]]
    assert ev.unseen == {"zzz": 1}


def test_score_with_integer_classes_and_string_labels():
    from seqclf.evaluate import score

    proba = np.array([[0.9, 0.1], [0.2, 0.8]])
    ev = score(["0", 1], proba, _prep([0, 1], 0), "mem.csv")
    assert ev.correct == 2 and ev.unseen == {} and ev.labels == ["0", "1"]


def test_macro_f1_agrees_with_the_report():
    from seqclf.evaluate import score

    proba = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.9, 0.05, 0.05], [0.2, 0.7, 0.1]])
    ev = score(["a", "b", "a", "a"], proba, _prep("abc", "a"), "mem.csv")  # no 'c' in test
    assert ev.macro_f1 == pytest.approx(ev.report["macro avg"]["f1-score"])

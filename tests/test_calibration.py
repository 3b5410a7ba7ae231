"""training.calibration (temperature scaling folded into the model) and training.threshold
(a binary decision threshold chosen on validation data, saved with the run, used by
predict, evaluate and the server's decide())."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import wide_frame, write_config, write_csv
from seqclf import runs
from seqclf.config import load_config, validate_config
from seqclf.errors import SeqclfError
from seqclf.probability import expected_calibration_error

BINARY = {
    "name": "binary",
    "data": {"train": "train.csv", "format": "wide", "test_split": 0.25},
    "model": {"cell": "gru", "units": 4},
    "optimizer": {"name": "adam", "learning_rate": 0.05},
    "training": {"epochs": 2, "batch_size": 16, "seed": 0, "validation_split": 0.3,
                 "tensorboard": False},
}


def _noisy(n: int, seed: int) -> pd.DataFrame:
    """wide_frame with a quarter of the labels flipped: no model can be sure."""
    frame = wide_frame(n, seed=seed, steps=8)
    flip = np.random.default_rng(seed).random(n) < 0.25
    frame.loc[flip, "label"] = 1 - frame.loc[flip, "label"]
    return frame


@pytest.fixture(scope="module")
def binary_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("binary")
    write_csv(folder / "train.csv", _noisy(160, seed=1))
    write_csv(folder / "predict.csv", wide_frame(6, seed=9, steps=8).drop(columns=["label"]))
    return folder


@pytest.fixture(scope="module")
def calibrated_run(binary_data, tmp_path_factory):
    from seqclf.train import train

    config = {**BINARY, "training": {**BINARY["training"], "calibration": "temperature",
                                     "threshold": {"recall": 0.9}}}
    write_config(binary_data / "calibrated.yaml", config)
    cfg = load_config(binary_data / "calibrated.yaml")
    return cfg, train(cfg, tmp_path_factory.mktemp("runs"))


def _prepared(binary_data, **training):
    from seqclf.prepare import prepare

    write_config(binary_data / "c.yaml", {**BINARY, "training": {**BINARY["training"],
                                                                   **training}})
    return prepare(load_config(binary_data / "c.yaml"))


# --- temperature scaling -------------------------------------------------------------


def test_temperature_scaling_lowers_the_ece_of_an_overconfident_model(binary_data, tmp_path,
                                                                         keras):
    from seqclf import compute
    from seqclf.fitting import calibrate, fit_model
    from seqclf.model import predict_proba

    d = _prepared(binary_data, calibration="temperature", validation_split=0.5)
    cfg = d.config
    model = fit_model(cfg.model_copy(update={"training": cfg.training.model_copy(
        update={"calibration": "none"})}), d, compute.setup(cfg))[0]
    head = model.get_layer("classes")
    kernel, bias = head.get_weights()
    head.set_weights([kernel * 8, bias * 8])  # logits x 8: far too sure of itself
    before = predict_proba(model, d.x_val, cfg)
    record = calibrate(model, cfg, d)
    after = predict_proba(model, d.x_val, cfg)
    assert record["temperature"] < 0.5  # it undoes most of the x 8
    assert expected_calibration_error(d.y_val, after) < expected_calibration_error(d.y_val, before)
    assert record["validation"]["ece_after"] < record["validation"]["ece_before"]
    assert record["validation"]["log_loss_after"] < record["validation"]["log_loss_before"]
    # the same labels: a temperature only rescales the logits
    assert (np.argmax(after, axis=1) == np.argmax(before, axis=1)).all()
    # folded into the weights: it survives save and load
    runs.save_model(tmp_path / "m.keras", model)
    loaded = keras.saving.load_model(tmp_path / "m.keras", compile=False)
    assert np.allclose(predict_proba(loaded, d.x_val, cfg), after, atol=1e-6)


def test_a_calibrated_run_records_and_reports_it(calibrated_run):
    cfg, result = calibrated_run
    manifest = json.loads((result.run_dir / runs.MANIFEST).read_text())
    c = manifest["calibration"]
    assert c["method"] == "temperature" and c["temperature"] > 0
    assert c["validation_n"] == result.sizes["validation"]
    metrics = json.loads((result.run_dir / runs.METRICS).read_text())
    test = metrics["test"]["calibration"]["test"]
    assert test["ece_after"] == pytest.approx(metrics["test"]["ece"])
    report = (result.run_dir / runs.REPORT).read_text()
    assert "calibration: temperature scaling" in report and "validation ECE" in report
    assert "test ECE" in report
    for plot in (runs.RELIABILITY_PLOT, runs.PR_PLOT):
        assert (result.run_dir / plot).read_bytes()[:4] == b"\x89PNG"


def test_calibration_needs_a_validation_split():
    with pytest.raises(SeqclfError, match=r"^c.yaml: training.calibration must be 'none' when "
                       r"training.validation_split is 0 .* Got 'temperature' instead.$"):
        validate_config({"data": {"train": "x.csv"},
                         "training": {"calibration": "temperature"}}, where="c.yaml")


# --- thresholds ------------------------------------------------------------------------


def test_the_chosen_threshold_meets_its_target_on_validation_data(calibrated_run):
    from seqclf.model import predict_proba
    from seqclf.prepare import prepare

    cfg, result = calibrated_run
    decision = json.loads((result.run_dir / runs.DECISION).read_text())
    assert decision["rule"] == {"recall": 0.9} and decision["positive_class"] == 1
    run = runs.open_run(result.run_dir)
    assert run.decision == decision
    d = prepare(cfg)  # the same split, by the seed
    p = predict_proba(run.load_model(), d.x_val, cfg)[:, 1]
    chosen = p >= decision["threshold"]
    recall = chosen[d.y_val == 1].mean()
    precision = (d.y_val[chosen] == 1).mean()
    assert recall >= 0.9
    assert decision["validation"]["recall"] == pytest.approx(recall)
    assert decision["validation"]["precision"] == pytest.approx(precision)
    # the most precision at that recall: the next higher threshold misses it
    higher = p[p > decision["threshold"]]
    if len(higher):
        assert (p[d.y_val == 1] >= higher.min()).mean() < 0.9
    assert "decision: 1 where its probability >=" in (result.run_dir / runs.REPORT).read_text()


def test_predict_and_evaluate_use_the_run_threshold_and_predict_overrides_it(
        calibrated_run, binary_data):
    from seqclf.evaluate import evaluate, predict

    _, result = calibrated_run
    threshold = json.loads((result.run_dir / runs.DECISION).read_text())["threshold"]
    frame, _ = predict(result.run_dir, binary_data / "predict.csv")
    assert (frame["predicted"] == (frame["prob_1"] >= threshold).astype(int)).all()
    for override in (0.01, 0.99):
        frame, _ = predict(result.run_dir, binary_data / "predict.csv", threshold=override)
        assert (frame["predicted"] == (frame["prob_1"] >= override).astype(int)).all()
    ev = evaluate(result.run_dir)
    assert ev.decision["threshold"] == threshold
    assert ev.accuracy == pytest.approx(result.evaluation.accuracy)
    with pytest.raises(SeqclfError, match=r"^seqclf predict: --threshold must be between 0 "
                       r"and 1 \(exclusive\). Got 1.5 instead.$"):
        predict(result.run_dir, binary_data / "predict.csv", threshold=1.5)


def test_the_server_decides_with_the_run_threshold(calibrated_run):
    from seqclf.serving.engine import decide

    _, result = calibrated_run
    decision = runs.open_run(result.run_dir).decision
    proba = np.array([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8]])
    t = decision["threshold"]
    assert decide(proba, [0, 1], decision) == [int(p >= t) for p in proba[:, 1]]
    assert decide(proba, [0, 1]) == [0, 0, 1]


def test_threshold_needs_two_classes(long_data):
    from seqclf.train import check

    cfg = load_config(long_data / "tiny.yaml", ["training.threshold=f1"])
    with pytest.raises(SeqclfError, match=r"tiny.yaml: training.threshold must be 0.5 for 3 "
                       r"classes .* Got 'f1' instead.$"):
        check(cfg)


def test_predict_threshold_needs_a_binary_run(long_run):
    from seqclf.evaluate import predict

    with pytest.raises(SeqclfError, match=r"^seqclf predict: --threshold must be left out for "
                       r"a run of 3 classes"):
        predict(long_run.run_dir, long_run.predict_csv, threshold=0.3)


@pytest.mark.parametrize("threshold, message", [
    ({"precision": 0.9, "recall": 0.9}, "{precision: q} or {recall: q} with one q in (0, 1]"),
    ({"precision": 0}, "{precision: q} or {recall: q} with one q in (0, 1]"),
    (1.0, "a number between 0 and 1 (exclusive)"),
    ("best", "a number between 0 and 1 (exclusive)"),
])
def test_threshold_errors_are_one_line(threshold, message):
    with pytest.raises(SeqclfError) as err:
        validate_config({"data": {"train": "x.csv"}, "training": {
            "threshold": threshold, "validation_split": 0.2}}, where="c.yaml")
    assert str(err.value).startswith(f"c.yaml: training.threshold must be {message}")
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_a_calibrated_run_exports_to_onnx_with_its_probabilities(calibrated_run, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("tf2onnx")
    import onnxruntime

    from seqclf.evaluate import infer, read_data
    from seqclf.export import export

    _, result = calibrated_run
    export(result.run_dir, "onnx", tmp_path / "onnx")  # refuses a disagreeing export
    run = runs.open_run(result.run_dir)
    dataset = read_data(run, None, require_labels=True)
    proba, _ = infer(run, dataset)
    x, _ = run.preprocessor.transform(dataset)
    session = onnxruntime.InferenceSession(str(tmp_path / "onnx" / "model.onnx"))
    onnx = session.run(None, {session.get_inputs()[0].name: x.astype(np.float32)})[0]
    assert np.allclose(onnx, proba, atol=1e-4)
    # and they are the calibrated ones: the metrics' ECE is of these probabilities
    metrics = json.loads((result.run_dir / runs.METRICS).read_text())
    assert metrics["test"]["calibration"]["test"]["ece_after"] == pytest.approx(
        result.evaluation.ece)


@pytest.mark.slow
def test_an_ensemble_scales_each_member_by_its_own_temperature(long_data, keras):
    from seqclf import compute
    from seqclf.fitting import fit_model
    from seqclf.model import predict_proba
    from seqclf.prepare import prepare

    cfg = load_config(long_data / "tiny.yaml", [
        "model={family: ensemble, members: [{units: 4}], copies: 2}", "training.epochs=1",
        "training.calibration=temperature", "training.early_stopping=null"])
    d = prepare(cfg)
    record: dict = {}
    model, _, _ = fit_model(d.config, d, compute.setup(d.config), record=record)
    c = record["calibration"]
    assert len(c["temperature"]) == 2 and all(t > 0 for t in c["temperature"])
    assert c["temperature"][0] != c["temperature"][1]  # members differ by seed
    after = predict_proba(model, d.x_val, d.config)
    assert c["validation"]["ece_after"] == pytest.approx(
        expected_calibration_error(d.y_val, after))

"""seqclf.SequenceClassifier: scikit-learn API, input layouts, the CLI's training path,
cross-validation and grid search on the bundled digits, save/load, estimator checks.

Fits are tiny (8 units, 2 epochs, a few hundred sequences). Only a selection of
scikit-learn's estimator checks runs by default (the whole set takes minutes on 2 CPU
cores); SEQCLF_ALL_SKLEARN_CHECKS=1 runs every one.
"""

from __future__ import annotations

import os
import pickle
import re
import warnings
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, long_frame, write_csv
from seqclf import SequenceClassifier
from seqclf.config import DataConfig
from seqclf.data import from_frame
from seqclf.errors import SeqclfError
from seqclf.config import IN_MEMORY
from seqclf.estimator import SKLEARN_CHECKS_NOT_PASSED

QUICKSTART = ROOT / "configs" / "quickstart.yaml"
DIGITS = ROOT / "data" / "digits"
# Small and quick; data.format long so DataFrames are read one row per step.
TINY = {"data__format": "long", "data__scaling": "standard", "model__units": 8,
        "training__epochs": 3, "training__batch_size": 32, "optimizer__learning_rate": 0.03,
        "training__tensorboard": False}


def _digits(split: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first n bundled digits as a (n, 8 steps, 8 features) array and labels."""
    frame = pd.read_csv(DIGITS / f"{split}.csv")
    sequences = from_frame(frame, DataConfig(train="-", format="long"))
    return np.stack(sequences.sequences[:n]), np.array(sequences.labels[:n])


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return (*_digits("train", 300), *_digits("test", 150))


# --- parameters ----------------------------------------------------------------------


def test_params_are_config_keys_and_survive_clone_and_set_params():
    from sklearn.base import clone

    est = SequenceClassifier({"model": {"cell": "gru"}}, model__units=8, training__epochs=2)
    assert est.get_params() == {"config": {"model": {"cell": "gru"}}, "model__units": 8,
                                "training__epochs": 2}
    twin = clone(est)
    assert twin is not est and twin.get_params() == est.get_params()
    assert twin.set_params(model__units=16, config=None) is twin
    assert repr(twin) == "SequenceClassifier(model__units=16, training__epochs=2)"
    assert est.get_params()["model__units"] == 8  # the clone is independent
    cfg = est.resolved_config()
    assert (cfg.model.cell, cfg.model.units, cfg.training.epochs) == ("gru", 8, 2)
    assert cfg.data.train == IN_MEMORY and cfg.data.test is None


def test_config_from_a_yaml_file_with_overrides():
    cfg = SequenceClassifier(str(QUICKSTART), model__units=4,
                             training__early_stopping__patience=3,
                             training__validation_split=np.float64(0.2),
                             training__early_stopping__monitor="val_loss").resolved_config()
    assert cfg.name == "quickstart" and cfg.source == str(QUICKSTART)
    assert (cfg.data.format, cfg.data.scaling, cfg.model.units) == ("long", "standard", 4)
    assert cfg.training.early_stopping.patience == 3
    assert cfg.training.validation_split == 0.2  # numpy scalars (grid values) are accepted


@pytest.mark.parametrize("params, message", [
    ({"model__units": 0}, "SequenceClassifier(model__units=...): model.units must be an integer >= 1 or a "
                          "non-empty list of them. Got 0 instead."),
    ({"model__unitz": 4}, "SequenceClassifier(model__unitz=...): model.unitz is not a valid key for "
                          "model.family 'recurrent' (did you mean 'units'?)."),
    ({"units": 4}, "SequenceClassifier: 'units' is not a parameter. Parameters are 'config' "
                   "and config keys as section__key"),
    ({"config": 3}, "SequenceClassifier: config must be a YAML file path, a mapping of "
                    "config sections, a seqclf Config or None. Got 3 instead."),
    ({"config": "missing.yaml"}, "missing.yaml: file not found."),
])
def test_bad_params_are_one_line_value_errors_raised_by_fit(params, message):
    est = SequenceClassifier(**params)  # scikit-learn's rule: no validation before fit
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        est.fit(np.zeros((4, 3)), [0, 1, 0, 1])
    assert isinstance(info.value, SeqclfError) and "\n" not in str(info.value)


@pytest.mark.parametrize("X, y, message", [
    (np.zeros((4, 3)), [0, 1, 0], "X: has 4 sequences but y has 3 labels."),
    (np.array([[0.0, np.nan], [1.0, 2.0]]), [0, 1],
     "X: sequence 0, step 1, feature 0 is NaN: empty cell. Fill it, or set "
     "data.missing_values to 'zero' or 'ffill'."),
    (np.array([[0.0, np.inf], [1.0, 2.0]]), [0, 1],
     "X: sequence 0, step 1, feature 0: inf is not finite."),
    ([np.ones((3, 2)), np.ones((2, 3))], [0, 1], "X: sequence 1 has 3 features, sequence 0 "
                                                 "has 2."),
    (np.zeros((4, 3)), [0.5, 1.5, 2.5, 3.5], "Unknown label type: continuous"),
    (np.zeros((4, 3)), [1, 1, 1, 1], "training data has one class only ('1')"),
    (long_frame(6, seed=0), None, "X: id column 'id' repeats ids, as in the long layout"),
])
def test_bad_data_is_a_value_error_before_any_training(X, y, message):
    est = SequenceClassifier(model__units=4)  # data.format: wide (the default)
    with pytest.raises(ValueError, match=re.escape(message)):
        est.fit(X, y)


# --- one implementation with the CLI ---------------------------------------------------


@pytest.mark.slow
def test_fitting_the_cli_runs_training_data_gives_the_cli_runs_model(long_run):
    """Same config, same training sequences: the estimator's model is the run's model."""
    from seqclf.data import load_splits
    from seqclf.evaluate import infer
    from seqclf.runs import open_run

    train_set, test_set = load_splits(long_run.config)
    est = SequenceClassifier(str(long_run.config_path))
    est.fit(train_set.sequences, train_set.labels)
    run = open_run(long_run.run_dir)
    ours, theirs = asdict(est.preprocessor_), asdict(run.preprocessor)
    assert ours.pop("feature_names") == ["x0", "x1"]  # arrays have no column names
    assert theirs.pop("feature_names") == ["x", "y"]
    assert ours == theirs
    expected, _ = infer(run, test_set)
    np.testing.assert_allclose(est.predict_proba(test_set.sequences), expected, atol=1e-6)
    assert est.n_iter_ == len(pd.read_csv(long_run.run_dir / "history.csv"))


@pytest.mark.slow
def test_input_layouts_agree(tmp_path):
    """A long DataFrame, a list of variable-length arrays: same sequences, same model."""
    frame = long_frame(60, seed=5)
    by_frame = SequenceClassifier(**TINY).fit(frame)
    sequences = from_frame(frame, DataConfig(train="-", format="long"))
    by_arrays = SequenceClassifier(**TINY).fit(sequences.sequences, sequences.labels)
    proba = by_frame.predict_proba(frame)
    assert proba.shape == (60, 3) and np.allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(by_arrays.predict_proba(sequences.sequences), proba)
    np.testing.assert_array_equal(by_frame.predict_proba(sequences.sequences), proba)
    assert list(by_frame.classes_) == ["down", "flat", "up"] and by_frame.n_features_in_ == 2
    assert set(by_frame.predict(frame)) <= set(by_frame.classes_)
    labels = np.array(sequences.labels)
    assert by_frame.score(frame) == pytest.approx(np.mean(by_frame.predict(frame) == labels))
    assert by_frame.score(frame) == by_frame.score(sequences.sequences, labels)


# --- scikit-learn model selection on the bundled digits ------------------------------


@pytest.mark.slow
def test_cross_val_score_on_the_bundled_digits(digits):
    from sklearn.model_selection import cross_val_score

    X, y, _, _ = digits
    scores = cross_val_score(SequenceClassifier(**TINY), X, y, cv=2)
    assert scores.shape == (2,)
    assert (scores > 0.3).all(), scores  # the majority-class baseline is 0.10


@pytest.mark.slow
def test_grid_search_over_config_keys_in_a_pipeline(digits):
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    X, y, X_test, y_test = digits
    pipe = Pipeline([("scale", FunctionTransformer(np.sqrt)),
                     ("clf", SequenceClassifier(**TINY))])
    search = GridSearchCV(pipe, {"clf__model__units": [4, 8]}, cv=2, error_score="raise")
    search.fit(X, y)
    assert [p["clf__model__units"] for p in search.cv_results_["params"]] == [4, 8]
    best = search.best_estimator_.named_steps["clf"]
    assert best.get_params()["model__units"] == search.best_params_["clf__model__units"]
    assert best.config_.model.units == search.best_params_["clf__model__units"]
    assert search.score(X_test, y_test) > 0.3


# --- saving ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted() -> SequenceClassifier:
    return SequenceClassifier(**TINY, training__seed=1).fit(long_frame(45, seed=2))


def test_save_load_round_trip_gives_identical_predictions(fitted, tmp_path):
    frame = long_frame(12, seed=7, id_prefix="q")
    path = fitted.save(tmp_path / "model")
    assert sorted(p.name for p in path.iterdir()) == ["config.yaml", "manifest.json",
                                                      "model.keras", "preprocessing.json"]
    loaded = SequenceClassifier.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(frame), fitted.predict_proba(frame))
    assert list(loaded.classes_) == list(fitted.classes_)
    assert loaded.get_params()["config"].model.units == 8
    unpickled = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(unpickled.predict_proba(frame), fitted.predict_proba(frame))
    with pytest.raises(SeqclfError, match="already exists; runs are never overwritten"):
        fitted.save(path)


def test_a_saved_estimator_is_a_run_the_cli_reads(fitted, tmp_path):
    from seqclf.evaluate import evaluate, predict

    path = fitted.save(tmp_path / "model")
    frame = long_frame(12, seed=8, id_prefix="c")
    csv = write_csv(tmp_path / "c.csv", frame)
    predictions, _ = predict(path, csv)
    np.testing.assert_allclose(predictions[[f"prob_{c}" for c in fitted.classes_]].to_numpy(),
                               fitted.predict_proba(frame), atol=1e-7)
    assert evaluate(path, csv).accuracy == pytest.approx(fitted.score(frame))
    with pytest.raises(SeqclfError, match=re.escape(f"{path}: was saved from Python (seqclf."
                                                    "SequenceClassifier.save) and has no test "
                                                    "data of its own. Pass --data")):
        evaluate(path)


def test_a_cli_run_loads_as_an_estimator(long_run):
    from seqclf.evaluate import predict

    est = SequenceClassifier.load(long_run.run_dir)
    expected, _ = predict(long_run.run_dir, long_run.predict_csv)
    got = est.predict_proba(pd.read_csv(long_run.predict_csv))
    np.testing.assert_allclose(got, expected[[f"prob_{c}" for c in est.classes_]], atol=1e-7)


def test_longer_sequences_are_truncated_with_a_warning(fitted):
    with pytest.warns(UserWarning, match=r"X: 1 sequences were longer than the training "
                                         r"padding length \(9\)"):
        fitted.predict([np.zeros((20, 2)), np.zeros((3, 2))])


# --- the decision threshold ----------------------------------------------------------

# Two classes, a threshold far from 0.5 so that it changes some labels of a 2-epoch model.
THRESHOLD = {"data__format": "wide", "model__cell": "gru", "model__units": 4,
             "training__epochs": 2, "training__batch_size": 16, "training__seed": 0,
             "training__validation_split": 0.3, "training__threshold": 0.8,
             "training__tensorboard": False}


@pytest.mark.slow
def test_predict_applies_the_threshold_and_save_load_keeps_it(tmp_path):
    from conftest import wide_frame
    from seqclf.evaluate import predict
    from seqclf.runs import DECISION

    est = SequenceClassifier(**THRESHOLD).fit(wide_frame(80, seed=1))
    assert est.decision_["threshold"] == 0.8 and est.decision_["positive_class"] == 1
    frame = wide_frame(40, seed=5)
    p = est.predict_proba(frame)[:, 1]
    by_threshold = np.where(p >= 0.8, 1, 0)
    assert (by_threshold != (p >= 0.5)).any(), "the threshold changes no label: no test"
    np.testing.assert_array_equal(est.predict(frame), by_threshold)
    assert est.score(frame) == pytest.approx(np.mean(by_threshold == frame["label"]))

    path = est.save(tmp_path / "model")
    assert (path / DECISION).is_file()
    loaded = SequenceClassifier.load(path)
    assert loaded.decision_ == est.decision_
    np.testing.assert_array_equal(loaded.predict(frame), by_threshold)
    csv = write_csv(tmp_path / "p.csv", frame.drop(columns=["label"]))
    predictions, _ = predict(path, csv)  # the CLI's predict reads the same decision.json
    np.testing.assert_array_equal(predictions["predicted"].astype(int), by_threshold)


def test_without_a_threshold_predict_is_the_most_probable_class(fitted):
    frame = long_frame(12, seed=7, id_prefix="q")
    assert fitted.decision_ is None
    np.testing.assert_array_equal(fitted.predict(frame),
                                  fitted.classes_[fitted.predict_proba(frame).argmax(axis=1)])


def test_a_threshold_for_three_classes_is_refused_before_training():
    est = SequenceClassifier(**TINY, training__threshold="f1", training__validation_split=0.3)
    with pytest.raises(SeqclfError, match=r"^SequenceClassifier: training.threshold must be "
                                          r"0.5 for 3 classes .* Got 'f1' instead.$"):
        est.fit(long_frame(30, seed=2))


# --- scikit-learn's estimator checks ---------------------------------------------------

# The checks that run by default: the API contract, and the fitting checks that are
# quick (a few seconds each). The rest pass too: SEQCLF_ALL_SKLEARN_CHECKS=1.
QUICK_CHECKS = {
    "check_estimator_cloneable", "check_estimator_repr", "check_no_attributes_set_in_init",
    "check_get_params_invariance", "check_set_params", "check_parameters_default_constructible",
    "check_do_not_raise_errors_in_init_or_set_params", "check_estimators_unfitted",
    "check_mixin_order", "check_fit2d_1sample", "check_fit1d", "check_complex_data",
    "check_estimator_sparse_array", "check_estimator_sparse_matrix", "check_requires_y_none",
    "check_classifiers_one_label", "check_classifiers_regression_target",
    "check_supervised_y_no_nan", "check_estimators_fit_returns_self",
    "check_fit_check_is_fitted", "check_estimators_nan_inf", "check_estimators_pickle",
    "check_n_features_in", "check_dtype_object", "check_fit2d_predict1d",
    "check_estimators_empty_data_messages",
}


@pytest.mark.slow
def test_scikit_learn_estimator_checks():
    from functools import partial

    from sklearn.utils.estimator_checks import estimator_checks_generator

    run_all = bool(os.environ.get("SEQCLF_ALL_SKLEARN_CHECKS"))
    est = SequenceClassifier(model__units=4, training__epochs=1, training__batch_size=16,
                             optimizer__learning_rate=0.05)
    ran, passed_unexpectedly = set(), []
    for estimator, check in estimator_checks_generator(est, mark=None):
        func = check.func if isinstance(check, partial) else check
        name = func.__name__
        if not (run_all or name in QUICK_CHECKS):
            continue
        ran.add(name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if name in SKLEARN_CHECKS_NOT_PASSED:
                try:
                    check(estimator)
                except (AssertionError, ValueError, TypeError):
                    continue
                passed_unexpectedly.append(name)
            else:
                check(estimator)
    assert QUICK_CHECKS <= ran, QUICK_CHECKS - ran
    assert not passed_unexpectedly, f"update SKLEARN_CHECKS_NOT_PASSED: {passed_unexpectedly}"

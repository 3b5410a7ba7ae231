"""``SequenceClassifier``: a seqclf model as a scikit-learn estimator.

It is configured by the config schema of ``seqclf train`` (a YAML file, a mapping, or
``section__key`` keyword arguments such as ``model__units=32``) and fits through the
same code as the CLI: ``prepare_sets`` (validation split, preprocessing fitted on the
training data only), ``seqclf.compute.setup`` and ``fit_model`` (seed, class weights, early
stopping, stateful batch padding). Predictions go through the same
``Preprocessor.transform``, ``predict_proba`` and decision rule (``training.threshold``)
as ``seqclf predict``. ``save`` writes a
run directory that ``load`` and the CLI read back.

Input ``X``: a 3-D array (sequences, steps, features); a 2-D array (sequences, steps),
one feature per step; a list of 2-D (steps, features) arrays of any lengths; or a
pandas DataFrame in the layout ``data.format`` names (set ``data__format="long"`` for
one row per step), whose label column gives the labels when ``y`` is None.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from seqclf.errors import SeqclfError

WHERE = "SequenceClassifier"
# The schema requires data.train; the estimator's data comes from fit() instead.
SAVED_BY = "seqclf.SequenceClassifier.save"


# The checks of sklearn.utils.estimator_checks that SequenceClassifier does not pass, and
# why; every other check passes (tests/test_estimator.py). Usable as
# parametrize_with_checks(..., expected_failed_checks=lambda est: SKLEARN_CHECKS_NOT_PASSED).
_VARIABLE_LENGTH = ("a 2-D X is read as (sequences, steps), one feature per step, and a "
                    "sequence may be longer (truncated, with a warning) or shorter (padded "
                    "and masked) at predict than in fit: n_features_in_ counts features per "
                    "step, not X.shape[1], and another number of columns is not an error")
SKLEARN_CHECKS_NOT_PASSED = {
    "check_n_features_in": _VARIABLE_LENGTH,
    "check_n_features_in_after_fitting": _VARIABLE_LENGTH,
    "check_classifiers_train": _VARIABLE_LENGTH,
    "check_dtype_object": "a non-numeric value in X raises seqclf's one-line SeqclfError (a "
                          "ValueError naming the sequence), not numpy's TypeError",
    "check_estimators_empty_data_messages": "an empty X or sequence is refused with seqclf's "
                                            "own message, not scikit-learn's wording",
    "check_fit2d_predict1d": "a 1-D X is refused with seqclf's own message naming the "
                             "accepted shapes, not scikit-learn's 'Reshape your data'",
}


class SequenceClassifier(ClassifierMixin, BaseEstimator):
    """A seqclf recurrent classifier with the scikit-learn estimator API.

    Args:
        config: A YAML config file, a config mapping (``{"model": {"units": 32}}``), a
            ``seqclf.config.Config``, or None for the defaults. The data files it names
            (``data.train``, ``data.test``) are not read: ``fit`` takes the data; the
            rest of the data section (layout, columns, scaling, padding, ...) applies.
        **overrides: Config keys as ``section__key=value`` (``model__units=32``,
            ``training__epochs=5``, ``training__early_stopping__patience=3``), applied
            over ``config``. Each is an estimator parameter, so ``set_params`` and
            ``GridSearchCV`` take them. Everything is validated by ``fit``, with the
            config's one-line errors (``model.units must be ...``).

    Attributes:
        config_: The validated ``seqclf.config.Config`` that was fitted.
        preprocessor_: The fitted ``seqclf.data.Preprocessor`` (labels, padding, scaling).
        model_: The Keras model.
        classes_: Class labels, in the order of ``predict_proba``'s columns.
        n_features_in_: Features per step.
        history_: Keras's per-epoch loss and accuracy (and validation scores); after
            ``fit`` only, not after ``load``.
        n_iter_: Epochs trained (fewer than ``training.epochs`` after early stopping);
            after ``fit`` only.
        decision_: Two classes and a ``training.threshold`` other than 0.5: the decision
            threshold on ``classes_[1]``'s probability (chosen on the validation split
            for ``f1`` and targets, as ``seqclf train`` does), which ``predict`` and
            ``score`` apply and ``save`` writes as the run's ``decision.json``; else None
            (the most probable class).
    """

    def __init__(self, config: Any = None, **overrides: Any) -> None:
        self.config = config
        self._overrides = overrides

    # --- parameters: config plus section__key overrides -------------------------------

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """``config`` and every ``section__key`` override (there are no sub-estimators)."""
        return {"config": self.config, **self._overrides}

    def set_params(self, **params: Any) -> "SequenceClassifier":
        """Set ``config`` or ``section__key`` overrides. Names and values are checked by
        ``fit`` (scikit-learn's convention), with the config's one-line errors."""
        for key, value in params.items():
            if key == "config":
                self.config = value
            else:
                self._overrides[key] = value
        return self

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        # A few epochs of a small recurrent net do not always reach the accuracy
        # scikit-learn's checks ask of tabular toy data (2-D X read as sequences).
        tags.classifier_tags.poor_score = True
        return tags

    def resolved_config(self) -> Any:
        """The ``seqclf.config.Config`` that ``fit`` would use (validated now)."""
        from seqclf.config import IN_MEMORY, Config, build_config

        overrides, origins = {}, {}
        for key, value in self._overrides.items():
            if not _is_key_path(key):
                raise SeqclfError(f"{WHERE}: {key!r} is not a parameter. Parameters are "
                                  "'config' and config keys as section__key (e.g. "
                                  "model__units, training__epochs).")
            path = key.replace("__", ".")
            overrides[path] = value.item() if isinstance(value, np.generic) else value
            origins[path] = f"{WHERE}({key}=...)"
        overrides.update({"data.train": IN_MEMORY, "data.test": None})
        # a file or a Config names itself in messages
        named = isinstance(self.config, (str, os.PathLike, Config))
        return build_config(self.config, overrides, where=None if named else WHERE,
                            origins=origins)

    # --- fitting and predicting ----------------------------------------------------------

    def fit(self, X: Any, y: Any = None) -> "SequenceClassifier":
        """Fit the model of the config on ``X`` (and ``y``, one label per sequence).

        ``training.validation_split`` and early stopping apply as in ``seqclf train``;
        there is no test split (score on held-out data with ``score``).
        """
        from seqclf import compute
        from seqclf.fitting import fit_model
        from seqclf.prepare import prepare_sets
        from seqclf.train import check_threshold, choose_decision

        cfg = self.resolved_config()
        dataset = self._dataset(X, y, cfg, require_labels=True)
        check_classification_targets(dataset.labels)
        d = prepare_sets(cfg, dataset)
        cfg = d.config  # model.family auto: the family chosen from the data
        check_threshold(cfg, d.prep)
        hardware = compute.setup(cfg, d.work())
        model, _, closed_form = fit_model(cfg, d, hardware)
        for message in d.warnings + hardware.warnings:
            warnings.warn(message, UserWarning, stacklevel=2)
        self._set_fitted(cfg, d.prep, model, choose_decision(model, cfg, d))
        history = closed_form if closed_form is not None else model.history.history
        self.history_ = {key: [float(v) for v in values] for key, values in history.items()}
        self.n_iter_ = len(self.history_.get("loss", []))
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (sequences, classes), columns in ``classes_`` order."""
        check_is_fitted(self, "model_")
        return self._proba(self._dataset(X, None, self.config_, require_labels=False))

    def predict(self, X: Any) -> np.ndarray:
        """The class of each sequence: the most probable one, or for a fitted decision
        threshold (``decision_``) ``classes_[1]`` where its probability reaches it."""
        proba = self.predict_proba(X)  # first: it raises NotFittedError before fit
        return self._decide(proba)

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        """Accuracy on ``X``; for a DataFrame, ``y`` may be None (its label column).

        A label training never saw counts as wrong.
        """
        from sklearn.metrics import accuracy_score

        check_is_fitted(self, "model_")
        dataset = self._dataset(X, y, self.config_, require_labels=True)
        predicted = self._decide(self._proba(dataset))
        # labels match as text, as in seqclf evaluate (a label 3 read from a CSV is class 3)
        return float(accuracy_score([str(v) for v in dataset.labels],
                                    [str(v) for v in predicted], sample_weight=sample_weight))

    def _decide(self, proba: np.ndarray) -> np.ndarray:
        """Labels by the run's rule (``seqclf.probability.decide``, as ``seqclf predict``)."""
        from seqclf.probability import decide

        decision = getattr(self, "decision_", None)
        return self.classes_[decide(proba, None if decision is None else decision["threshold"])]

    def _proba(self, dataset: Any) -> np.ndarray:
        from seqclf.model import predict_proba

        x, truncated = self.preprocessor_.transform(dataset)
        if truncated:
            warnings.warn(f"{dataset.source}: {truncated} sequences were longer than the "
                          f"training padding length ({self.preprocessor_.max_length}) and "
                          "were truncated.", UserWarning, stacklevel=3)
        cfg = self.config_
        return predict_proba(self.model_, x, cfg)

    def _dataset(self, X: Any, y: Any, cfg: Any, require_labels: bool) -> Any:
        """``X`` (and ``y``) as a SequenceSet, read as ``cfg``'s data section says."""
        import pandas as pd

        from seqclf.data import from_arrays, from_frame

        if y is not None:
            y = column_or_1d(y, warn=True).tolist()
        policy = cfg.data.missing_values
        if not isinstance(X, pd.DataFrame):
            names = self.preprocessor_.feature_names if hasattr(self, "preprocessor_") else None
            return from_arrays(X, y, names, policy, source="X")
        dataset = from_frame(X, cfg.data, require_labels=require_labels and y is None,
                             missing_values=policy, source="X")
        if y is not None:
            if len(y) != len(dataset):
                raise SeqclfError(f"X: has {len(dataset)} sequences but y has {len(y)} "
                                  "labels. Give one label per sequence, in the order the "
                                  "ids first appear, or y=None to use the label column.")
            dataset.labels = y
        return dataset

    def _set_fitted(self, cfg: Any, prep: Any, model: Any,
                    decision: dict[str, Any] | None) -> None:
        self.config_, self.preprocessor_, self.model_ = cfg, prep, model
        self.decision_ = decision
        self.classes_ = np.asarray(prep.classes)
        self.n_features_in_ = prep.n_features

    # --- saving --------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted estimator as a new run directory at ``path``.

        It holds config.yaml, model.keras, preprocessing.json, manifest.json and (with a
        decision threshold) decision.json, as a ``seqclf train`` run does:
        ``SequenceClassifier.load`` reads it back, and the CLI takes it (``seqclf
        predict``; ``seqclf evaluate`` and ``seqclf export`` with ``--data``, as it has no
        test data of its own). Never overwrites.
        """
        from seqclf import runs
        from seqclf.backend import environment

        check_is_fitted(self, "model_")
        path = Path(path)
        run_dir = runs.create_run_dir(path.parent, path.name, stamp=False)
        runs.write_text(run_dir / runs.CONFIG, self.config_.to_yaml())
        runs.write_text(run_dir / runs.PREPROCESSING, self.preprocessor_.to_json())
        runs.save_model(run_dir / runs.MODEL, self.model_)
        if self.decision_ is not None:
            runs.write_json(run_dir / runs.DECISION, self.decision_)
        runs.finish(run_dir, {"name": self.config_.name, "seed": self.config_.training.seed,
                              "saved_by": SAVED_BY, "epochs_run": getattr(self, "n_iter_", None),
                              **environment()})
        return run_dir

    @classmethod
    def load(cls, path: str | os.PathLike) -> "SequenceClassifier":
        """A fitted estimator from a directory written by ``save`` or by ``seqclf train``.

        Its ``config`` parameter is the run's config, so ``clone`` and ``fit`` train the
        same model afresh.
        """
        from seqclf.runs import open_run

        run = open_run(path)
        estimator = cls(config=run.config)
        estimator._set_fitted(run.config, run.preprocessor, run.load_model(), run.decision)
        return estimator


def _is_key_path(key: str) -> bool:
    """``section__key`` (or deeper): at least two non-empty parts."""
    parts = key.split("__")
    return len(parts) > 1 and all(parts)

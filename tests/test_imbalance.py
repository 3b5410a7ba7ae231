"""training.class_weight (balanced or a mapping), training.loss (crossentropy or focal),
training.sampling (oversample), what the manifest records, and what the closed-form
minirocket family takes of them."""

from __future__ import annotations

import numpy as np
import pytest

from seqclf.config import load_config, validate_config
from seqclf.errors import SeqclfError
from seqclf.fitting import _weighted, class_weights, oversample


def _cfg(**training):
    return validate_config({"data": {"train": "x.csv"}, "training": training}, where="c.yaml")


def test_class_weights_balanced_and_as_a_mapping():
    y = np.array([0, 0, 0, 1])
    assert class_weights(_cfg(), ["a", "b"], y) is None
    np.testing.assert_allclose(class_weights(_cfg(class_weight="balanced"), ["a", "b"], y),
                               [4 / 6, 4 / 2])
    # labels match as text (a YAML key 1 is the label 1); labels left out weigh 1
    cfg = _cfg(class_weight={1: 3, "c": 0.5})
    np.testing.assert_allclose(class_weights(cfg, [0, 1, "c", "d"], y), [1, 3, 0.5, 1])
    with pytest.raises(SeqclfError, match=r"^c.yaml: training.class_weight must be a mapping "
                       r"over the training labels \(a, b\). Got 'z' instead.$"):
        class_weights(_cfg(class_weight={"z": 2}), ["a", "b"], y)


@pytest.mark.parametrize("training, message", [
    ({"class_weight": {"a": 0}}, "training.class_weight must be one of: 'none', 'balanced', "
                                 "or a non-empty mapping {label: weight > 0}. Got {'a': 0}"),
    ({"class_weight": {}}, "training.class_weight must be one of: 'none', 'balanced', or a "),
    ({"class_weight": "auto"}, "training.class_weight must be one of: 'none', 'balanced', "
                               "or a non-empty mapping {label: weight > 0}. Got 'auto'"),
    ({"sampling": "oversample", "class_weight": "balanced"},
     "training.sampling must be 'none' when training.class_weight is set"),
    ({"loss": "focal", "distribute": "multi_worker"},
     "training.loss must be 'crossentropy' when training.distribute is 'multi_worker'"),
    ({"loss": "hinge"}, "training.loss must be one of: 'crossentropy', 'focal'"),
    ({"focal_gamma": -1}, "training.focal_gamma must be >= 0"),
])
def test_imbalance_errors_are_one_line(training, message):
    with pytest.raises(SeqclfError) as err:
        _cfg(**training)
    assert str(err.value).startswith(f"c.yaml: {message}")
    assert "\n" not in str(err.value)


def test_oversample_balances_the_classes_and_keeps_every_sequence():
    y = np.array([0] * 10 + [1] * 3 + [2] * 1)
    x = np.arange(len(y))[:, None, None].astype(np.float32)
    xo, yo = oversample(x, y, seed=0)
    assert np.bincount(yo).tolist() == [10, 10, 10]
    assert set(xo[:, 0, 0].astype(int)) == set(range(len(y)))  # each sequence at least once
    assert (y[xo[:, 0, 0].astype(int)] == yo).all()  # rows stay with their labels
    again = oversample(x, y, seed=0)
    np.testing.assert_array_equal(again[1], yo)  # seeded


def test_weighted_pads_one_hot_targets_for_a_stateful_batch():
    x = np.zeros((5, 3, 1), dtype=np.float32)
    labels = np.array([0, 1, 1, 0, 1])
    onehot = np.eye(2, dtype=np.float32)[labels]
    xw, yw, w = _weighted(x, onehot, np.array([2.0, 1.0]), labels, pad=3)
    assert xw.shape == (8, 3, 1) and yw.shape == (8, 2)
    np.testing.assert_allclose(w, [2, 1, 1, 2, 1, 0, 0, 0])


def test_focal_loss_and_oversampling_train_and_are_recorded(long_data, keras):
    from seqclf import compute
    from seqclf.fitting import fit_model
    from seqclf.prepare import prepare

    cfg = load_config(long_data / "tiny.yaml", [
        "training.epochs=1", "model.units=4", "training.loss=focal", "training.focal_gamma=3",
        "training.sampling=oversample", "training.early_stopping=null"])
    d = prepare(cfg)
    record: dict = {}
    model, _, _ = fit_model(d.config, d, compute.setup(d.config), record=record)
    assert isinstance(model.loss, keras.losses.CategoricalFocalCrossentropy)
    assert model.loss.gamma == 3
    assert record["imbalance"] == {"class_weight": "none", "loss": "focal", "focal_gamma": 3.0,
                                   "sampling": "oversample", "weights": None}
    assert record["calibration"] is None
    assert np.isfinite(model.history.history["loss"]).all()
    assert "val_accuracy" in model.history.history  # one-hot validation targets work too


def test_the_manifest_records_the_imbalance_settings(long_run):
    import json

    manifest = json.loads((long_run.run_dir / "manifest.json").read_text())
    assert manifest["imbalance"] == {"class_weight": "none", "loss": "crossentropy",
                                     "sampling": "none", "weights": None}
    assert manifest["calibration"] is None and manifest["threshold"] is None


# --- minirocket: fitted in closed form ---------------------------------------------------


def test_minirocket_refuses_focal_loss_and_oversampling(long_data):
    # when the config is read, before any data (tests/test_minirocket.py: the other keys)
    for override, message in (("training.loss=focal", "training.loss must be 'crossentropy'"),
                              ("training.sampling=oversample",
                               "training.sampling must be 'none'")):
        with pytest.raises(SeqclfError, match=rf"--set {override}: {message} for model.family "
                           r"'minirocket' \(it is fitted in closed form"):
            load_config(long_data / "tiny.yaml", [
                "model={family: minirocket, num_features: 168}", "data.max_length=9",
                override, "training.early_stopping=null"])


def test_minirocket_ridge_takes_class_weights_as_sample_weights():
    from seqclf.models.minirocket import fit_ridge

    rng = np.random.default_rng(0)
    y = np.arange(60) % 2
    f = (rng.random((60, 30)) + 0.3 * y[:, None] * (np.arange(30) < 3)).astype(np.float32)
    new = rng.random((200, 30)).astype(np.float32) + 0.15 * (np.arange(30) < 3)  # in between
    plain = fit_ridge(f, y, 2)
    weighted = fit_ridge(f, y, 2, sample_weight=np.where(y == 1, 20.0, 1.0))
    plain, weighted = (np.argmax(new @ r.kernel + r.bias, axis=1) for r in (plain, weighted))
    assert weighted.mean() > plain.mean()  # the heavy class wins the ambiguous cases

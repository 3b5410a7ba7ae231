"""Long time series: per-sequence normalisation, the lstm_fcn and conv_recurrent families
(masking through convolutions, save/load), learning-rate reduction, the synthetic data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, write_config
from seqclf.config import validate_config
from seqclf.models import registry
from seqclf.data import MASK_VALUE, Preprocessor, z_normalise
from seqclf.errors import SeqclfError
from test_model import _outputs_at_two_lengths, build, make_cfg, make_set


# Tiny versions of each family (the shipped sizes are for real data).
TINY_CONV = {"conv_filters": [4, 3], "conv_kernel_sizes": [3, 2]}
FAMILIES = {
    "lstm_fcn": {"family": "lstm_fcn", **TINY_CONV, "dimension_shuffle": False},
    "lstm_fcn_bigru": {"family": "lstm_fcn", **TINY_CONV, "dimension_shuffle": False,
                       "cell": "gru", "bidirectional": True, "head_units": [3]},
    "lstm_fcn_conv_features": {"family": "lstm_fcn", **TINY_CONV,
                               "recurrent_input": "conv_features", "conv_pool_sizes": [2, 3]},
    "conv_recurrent": {"family": "conv_recurrent", **TINY_CONV, "conv_pool_sizes": [2, 3]},
    "conv_recurrent_stack": {"family": "conv_recurrent", **TINY_CONV,
                             "conv_pool_sizes": [3, 1], "units": [4, 4]},
}
# Lengths that end mid-window of every pooling (and one shorter than a window).
LENGTHS = (3, 5, 7, 2, 1, 6)


# --- per-sequence normalisation ------------------------------------------------------


def test_z_normalise_each_channel_and_keep_constant_ones_finite():
    x = np.c_[np.arange(6.0) * 3 + 7, np.full(6, 0.1), np.zeros(6), 1e-9 * np.arange(6.0)]
    z = z_normalise(x)
    np.testing.assert_allclose(z[:, [0, 3]].mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(z[:, [0, 3]].std(axis=0), 1.0)
    assert np.array_equal(z[:, 1:3], np.zeros((6, 2)))  # constant (0.1 up to rounding), zero
    assert np.array_equal(z_normalise(np.array([[5.0, -2.0]])), [[0.0, 0.0]])  # one step


@pytest.mark.parametrize("padding", ["post", "pre"])
def test_per_sequence_scaling_uses_real_steps_only(padding):
    ss = make_set(lengths=(4, 9, 6), features=2, seed=4)
    ss.sequences[1] = ss.sequences[1] * 50 + 1000  # its own scale and offset
    ss.sequences[2][:, 1] = 3.0  # a constant channel
    cfg = make_cfg(data={"scaling": "per_sequence", "max_length": 8, "padding": padding,
                         "truncating": "pre"})
    prep = Preprocessor.fit(ss, cfg)
    assert prep.scaling == "per_sequence" and prep.center == [0.0, 0.0] and prep.scale == [1.0, 1.0]
    x, truncated = prep.transform(ss)
    assert truncated == 1 and np.isfinite(x).all()
    for i, n in enumerate((4, 8, 6)):
        real = x[i, :n] if padding == "post" else x[i, 8 - n:]
        pad = x[i, n:] if padding == "post" else x[i, : 8 - n]
        assert (pad == MASK_VALUE).all()
        kept = ss.sequences[i][-8:]  # truncating: pre keeps the last 8 steps
        np.testing.assert_allclose(real, z_normalise(kept), atol=1e-5)
    np.testing.assert_allclose(x[1, :8].mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(x[1, :8].std(axis=0), 1.0, atol=1e-5)
    assert np.array_equal(x[2, :6, 1] if padding == "post" else x[2, 2:, 1], np.zeros(6))
    # saved with the run and read back the same
    assert Preprocessor.from_json(prep.to_json()) == prep


def test_per_sequence_scaling_is_rejected_with_an_embedding():
    with pytest.raises(SeqclfError, match=r"data\.scaling must be 'none' when model\.embedding "
                       r"is set.*Got 'per_sequence' instead"):
        make_cfg({"embedding": {"input_dim": 5, "output_dim": 2}}, data={"scaling": "per_sequence"})


# --- config ---------------------------------------------------------------------------


def test_family_defaults_are_the_published_lstm_fcn_settings():
    m = make_cfg({"family": "lstm_fcn", "units": 64}).model
    assert (m.conv_filters, m.conv_kernel_sizes) == ([128, 256, 128], [8, 5, 3])
    assert m.dimension_shuffle is True and m.branch_dropout == 0.8 and m.conv_pool_sizes is None
    assert m.recurrent_input == "series"
    conv = make_cfg({"family": "conv_recurrent"}).model
    assert conv.conv_pool_sizes == [4, 4, 4]
    conv.conv_filters.append(1)  # a copy, not the shared default
    assert make_cfg({"family": "conv_recurrent"}).model.conv_filters == [64, 64, 64]
    plain = make_cfg().model
    assert plain.family == "recurrent" and not hasattr(plain, "conv_filters")


@pytest.mark.parametrize("family, key, value", [
    ("recurrent", "conv_filters", [8]),
    ("recurrent", "dimension_shuffle", False),
    ("conv_recurrent", "branch_dropout", 0.5),
    ("conv_recurrent", "recurrent_input", "series"),
])
def test_family_only_keys_are_rejected_for_other_families(family, key, value):
    """An unknown key lists the keys of the family in the config only."""
    with pytest.raises(SeqclfError) as info:
        make_cfg({"family": family, key: value})
    valid = ", ".join(sorted(registry.get(family).Config.model_fields))
    message = str(info.value)
    assert message.startswith(f"config: model.{key} is not a valid key for model.family "
                              f"'{family}'")
    assert message.endswith(f". Valid keys under model for that family: {valid}.")
    assert key not in valid.split(", ")


def test_lstm_fcn_recurrent_input_conv_features():
    m = make_cfg({"family": "lstm_fcn", "recurrent_input": "conv_features",
                  "conv_pool_sizes": [4, 4, 4]}).model
    assert m.dimension_shuffle is False and m.conv_pool_sizes == [4, 4, 4]
    with pytest.raises(SeqclfError) as info:
        make_cfg({"family": "lstm_fcn", "recurrent_input": "conv_features",
                  "dimension_shuffle": True})
    assert str(info.value) == (
        "config: model.dimension_shuffle must be false when model.recurrent_input is "
        "'conv_features' (the recurrent branch reads the convolutional features, not the "
        "series it would transpose). Got True instead.")
    with pytest.raises(SeqclfError) as info:
        make_cfg({"family": "lstm_fcn", "conv_pool_sizes": [2, 2, 2]})
    assert str(info.value) == (
        "config: model.conv_pool_sizes must be null for lstm_fcn when model.recurrent_input "
        "is 'series' (pooling only shortens what the recurrent branch reads; set "
        "recurrent_input: conv_features). Got [2, 2, 2] instead.")
    with pytest.raises(SeqclfError, match=r"model\.recurrent_input must be one of: 'series', "
                       r"'conv_features'"):
        make_cfg({"family": "lstm_fcn", "recurrent_input": "conv"})


def test_conv_lists_must_match_in_length():
    with pytest.raises(SeqclfError, match=r"model\.conv_kernel_sizes must be a list of 2 "
                       r"integers \(one per model\.conv_filters entry; set it too, the "
                       r"conv_recurrent default has 3\)\. Got \[7, 5, 3\] instead\."):
        make_cfg({"family": "conv_recurrent", "conv_filters": [8, 8]})
    with pytest.raises(SeqclfError, match=r"model\.conv_pool_sizes must be a list of 2 "
                       r"integers \(one per model\.conv_filters entry\)\. Got \[2\] instead"):
        make_cfg({"family": "conv_recurrent", **TINY_CONV, "conv_pool_sizes": [2]})
    with pytest.raises(SeqclfError, match=r"model\.conv_filters must be a non-empty "
                       r"list of integers >= 1\. Got \[0\] instead"):
        make_cfg({"family": "lstm_fcn", "conv_filters": [0]})


def test_unknown_family_lists_the_families():
    with pytest.raises(SeqclfError, match=r"model\.family must be one of: 'recurrent', "
                       r"'auto', 'conv_recurrent', .*'lstm_fcn'.* \(did you mean 'lstm_fcn'\?\)"):
        make_cfg({"family": "lstm-fcn"})


def test_reduce_lr_on_plateau_on_validation_needs_a_validation_split():
    with pytest.raises(SeqclfError, match=r"training\.reduce_lr_on_plateau\.monitor must be "
                       r"'loss' or 'accuracy' when training\.validation_split is 0"):
        make_cfg(training={"reduce_lr_on_plateau": {}})
    cfg = make_cfg(training={"reduce_lr_on_plateau": {"monitor": "loss", "factor": 0.7}})
    assert cfg.training.reduce_lr_on_plateau.min_lr == 0.0001
    with pytest.raises(SeqclfError, match=r"reduce_lr_on_plateau\.factor must be > 0 and < 1"):
        make_cfg(training={"reduce_lr_on_plateau": {"monitor": "loss", "factor": 1.0}})


# --- masking through convolutions ----------------------------------------------------


@pytest.mark.parametrize("padding", ["post", "pre"])
@pytest.mark.parametrize("name", list(FAMILIES))
def test_padding_does_not_change_family_predictions(keras, name, padding):
    ss = make_set(lengths=LENGTHS, seed=5)
    short, longer = _outputs_at_two_lengths(FAMILIES[name], padding, ss, extra=7)
    np.testing.assert_allclose(short, longer, atol=1e-5)


def test_without_masking_padding_changes_family_predictions(keras):
    """The control: the comparison above can fail."""
    ss = make_set(lengths=LENGTHS, seed=5)
    short, longer = _outputs_at_two_lengths({**FAMILIES["conv_recurrent"], "masking": False},
                                            "post", ss, extra=7)
    assert not np.allclose(short, longer, atol=1e-4)


@pytest.mark.parametrize("padding", ["post", "pre"])
def test_dimension_shuffle_ignores_padded_steps(keras, padding):
    """With the dimension shuffle the LSTM reads each step as a feature, so its kernel
    has a row per step: the same weights (rows for the extra padded steps dropped) give
    the same predictions at both lengths only if padded steps contribute nothing."""
    ss = make_set(lengths=LENGTHS, seed=6)
    model = {"family": "lstm_fcn", **TINY_CONV}
    outs, weights = [], None
    for t in (14, 7):  # the longer model first: its weights are sliced for the shorter
        cfg = make_cfg(model, data={"max_length": t, "padding": padding})
        m, prep = build(cfg, ss)
        if weights is None:
            weights = m.get_weights()
        else:
            steps = slice(None, t) if padding == "post" else slice(-t, None)  # the real ones
            m.set_weights([w if w.shape == v.shape else w[steps]
                           for w, v in zip(weights, m.get_weights())])
        x, _ = prep.transform(ss)
        outs.append(np.asarray(m(x, training=False)))
    np.testing.assert_allclose(outs[0], outs[1], atol=1e-5)


def test_masked_max_pooling_by_hand(keras):
    from seqclf.models.layers import MaskedMaxPooling1D

    x = np.array([[1, 9, 3, 2, 8, -5, 0]], dtype="float32")[..., None]
    mask = np.array([[1, 1, 1, 1, 1, 0, 0]], dtype=bool)  # 5 real steps, post padded
    post = MaskedMaxPooling1D(2)
    np.testing.assert_array_equal(np.asarray(post(x, mask=mask))[0, :, 0], [9, 3, 8, 0])
    np.testing.assert_array_equal(np.asarray(post.compute_mask(x, mask)), [[1, 1, 1, 0]])
    pre = MaskedMaxPooling1D(2, align="end")  # windows from the end: [0 pad][1 9][3 2][8 -5 ...
    xr, mr = x[:, ::-1], mask[:, ::-1]  # the same sequence, pre padded and reversed
    np.testing.assert_array_equal(np.asarray(pre(xr, mask=mr))[0, :, 0], [0, 8, 3, 9])
    np.testing.assert_array_equal(np.asarray(pre.compute_mask(xr, mr)), [[0, 1, 1, 1]])
    negative = np.array([[-4, -7, -1, -2]], dtype="float32")[..., None]
    np.testing.assert_array_equal(  # the maximum of the real steps, not of a zero fill
        np.asarray(post(negative, mask=np.array([[1, 1, 1, 0]], bool)))[0, :, 0], [-4, -1])


def test_lstm_fcn_layout(keras):
    cfg = make_cfg({"family": "lstm_fcn", "units": 4})
    model, _ = build(cfg, make_set(lengths=(20, 30)))
    convs = [model.get_layer(f"conv_{i}") for i in (1, 2, 3)]
    assert [(c.filters, c.kernel_size) for c in convs] == [(128, (8,)), (256, (5,)), (128, (3,))]
    assert model.get_layer("branch_dropout").rate == pytest.approx(0.8)
    assert tuple(model.get_layer("dimension_shuffle").output.shape) == (None, 2, 30)
    assert tuple(model.get_layer("concatenate").output.shape) == (None, 4 + 128)


def test_conv_recurrent_downsamples_before_the_stack(keras):
    model, _ = build(make_cfg({"family": "conv_recurrent"}), make_set(lengths=(100, 45)))
    assert tuple(model.get_layer("pool_3").output.shape) == (None, 2, 64)  # 100/4/4/4, ceil


def test_cudnn_reasons_know_the_dimension_shuffle_has_no_mask():
    from seqclf.compute import cudnn_reasons

    shuffled = make_cfg({"family": "lstm_fcn"}, data={"padding": "pre"})
    assert not any("padding" in r for r in cudnn_reasons(shuffled))
    conv = make_cfg({"family": "conv_recurrent"}, data={"padding": "pre"})
    assert any("padding" in r for r in cudnn_reasons(conv))


# --- random crop (window slicing) ----------------------------------------------------


def test_random_crop_config_is_validated():
    assert make_cfg().training.random_crop == 1.0  # off unless asked for
    for bad in (0.0, 1.5):
        with pytest.raises(SeqclfError) as info:
            make_cfg(training={"random_crop": bad})
        assert str(info.value) == (f"config: training.random_crop must be > 0 and <= 1. "
                                   f"Got {bad} instead.")
    with pytest.raises(SeqclfError) as info:
        make_cfg({"embedding": {"input_dim": 5, "output_dim": 2}}, training={"random_crop": 0.5})
    assert str(info.value) == ("config: training.random_crop must be 1.0 (off) when "
                               "model.embedding is set (it crops numeric series only). "
                               "Got 0.5 instead.")


@pytest.mark.parametrize("padding", ["post", "pre"])
def test_random_crop_takes_a_window_of_the_real_steps_in_training_only(keras, padding):
    from seqclf.models.layers import RandomCrop

    lengths, t = (10, 7, 1, 4), 12
    x = np.full((len(lengths), t, 2), MASK_VALUE, dtype="float32")
    for i, n in enumerate(lengths):  # step j holds (j + 1, 0): a real step may hold a 0
        real = np.c_[np.arange(1.0, n + 1), np.zeros(n)]
        x[i, slice(None, n) if padding == "post" else slice(t - n, None)] = real
    layer = RandomCrop(0.5, MASK_VALUE, padding, seed=3)
    assert np.array_equal(np.asarray(layer(x, training=False)), x)  # evaluation, prediction
    assert np.array_equal(np.asarray(layer(x)), x)
    draws = [np.asarray(layer(x, training=True)) for _ in range(8)]
    for out in draws:
        for i, n in enumerate(lengths):
            window = -(-n // 2)  # ceil(0.5 * n) steps kept, where the real steps start
            kept = out[i, :window] if padding == "post" else out[i, t - window:]
            rest = out[i, window:] if padding == "post" else out[i, : t - window]
            assert (rest == MASK_VALUE).all()  # everything else is padding, so masked
            assert (kept[:, 1] == 0).all()
            start = kept[0, 0]  # a contiguous run of the sequence's own steps
            np.testing.assert_array_equal(kept[:, 0], np.arange(start, start + window))
            assert 1 <= start <= n - window + 1
    starts = {tuple(out[0, :5, 0] if padding == "post" else out[0, t - 5:, 0]) for out in draws}
    assert len(starts) > 1  # new windows each batch


def test_random_crop_changes_training_inputs_only(keras, tmp_path):
    """The crop layer is in the model and saved with it; outside training the model
    predicts exactly as the same weights without it, whatever the padded length."""
    from seqclf.runs import save_model

    ss = make_set(lengths=LENGTHS, seed=7)
    model_cfg = FAMILIES["conv_recurrent"]
    plain, prep = build(make_cfg(model_cfg, data={"max_length": 9}), ss)
    cropped, _ = build(make_cfg(model_cfg, data={"max_length": 9},
                                training={"random_crop": 0.6}), ss)
    assert cropped.get_layer("random_crop").fraction == pytest.approx(0.6)
    cropped.set_weights(plain.get_weights())  # the crop layer has no weights
    x, _ = prep.transform(ss)
    expected = np.asarray(plain(x, training=False))
    np.testing.assert_allclose(np.asarray(cropped(x, training=False)), expected, atol=1e-6)
    np.testing.assert_allclose(cropped.predict(x, verbose=0), expected, atol=1e-6)
    save_model(tmp_path / "model.keras", cropped)
    loaded = keras.saving.load_model(tmp_path / "model.keras", compile=False, safe_mode=True)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, atol=1e-6)
    # in training the inputs differ (last: a training call moves batch norm's averages)
    assert not np.allclose(np.asarray(cropped(x, training=True)),
                           np.asarray(plain(x, training=True)), atol=1e-4)


# --- save / load ---------------------------------------------------------------------


@pytest.mark.parametrize("name, model_cfg", [
    ("lstm_fcn_shuffle", {"family": "lstm_fcn", **TINY_CONV}),
    *FAMILIES.items(),
])
def test_family_save_load_round_trip(keras, tmp_path, name, model_cfg):
    from seqclf.runs import save_model

    ss = make_set(lengths=LENGTHS)
    model, prep = build(make_cfg(model_cfg, data={"padding": "pre"}), ss)
    x, _ = prep.transform(ss)
    save_model(tmp_path / "model.keras", model)
    loaded = keras.saving.load_model(tmp_path / "model.keras", compile=False, safe_mode=True)
    np.testing.assert_allclose(model.predict(x, verbose=0), loaded.predict(x, verbose=0),
                               atol=1e-6)
    assert json.dumps(loaded.get_config(), default=str) == \
        json.dumps(model.get_config(), default=str)


# --- training ------------------------------------------------------------------------


@pytest.mark.slow
def test_train_a_family_with_learning_rate_reduction_and_evaluate_it(long_data, tmp_path):
    from seqclf.config import load_config
    from seqclf.evaluate import evaluate
    from seqclf.train import train

    path = write_config(tmp_path / "ts.yaml", {
        "data": {"train": str(long_data / "train.csv"), "format": "long",
                 "scaling": "per_sequence", "test_split": 0.25},
        "model": {"family": "conv_recurrent", "units": 4, **TINY_CONV,
                  "conv_pool_sizes": [2, 1]},
        "training": {"epochs": 3, "batch_size": 32, "validation_split": 0.2,
                     "tensorboard": False,
                     "reduce_lr_on_plateau": {"monitor": "val_loss", "factor": 0.5,
                                              "patience": 0, "min_delta": 100.0,
                                              "min_lr": 0.0}}})
    result = train(load_config(path), tmp_path / "runs")
    history = pd.read_csv(result.run_dir / "history.csv")
    # The first epoch sets the best; with min_delta 100 no later one improves on it, so
    # the rate halves after epochs 2 and 3. history.csv has the rate each epoch ran with.
    np.testing.assert_allclose(history["learning_rate"], [0.001, 0.001, 0.0005], rtol=1e-6)
    again = evaluate(result.run_dir)  # loads the model with safe_mode=True
    assert again.accuracy == pytest.approx(result.evaluation.accuracy)


# --- synthetic data ------------------------------------------------------------------


def test_synthetic_series_are_seeded_balanced_and_sized():
    from seqclf.datasets import MOTIFS, synthetic_series

    series, labels = synthetic_series(30, classes=3, channels=2, length=(50, 80), seed=1)
    again, labels_again = synthetic_series(30, classes=3, channels=2, length=(50, 80), seed=1)
    assert labels == labels_again and all(np.array_equal(a, b) for a, b in zip(series, again))
    assert sorted(set(labels)) == sorted(MOTIFS[:3])
    assert pd.Series(labels).value_counts().tolist() == [10, 10, 10]
    assert all(s.shape[1] == 2 and 50 <= len(s) <= 80 for s in series)
    _, order = synthetic_series(8, problem="order", classes=2, length=(60, 60))
    assert set(order) == {"bump_then_square", "square_then_bump"}


def test_seqclf_data_synthetic_writes_readable_files(tmp_path):
    from typer.testing import CliRunner

    from seqclf.cli import app
    from seqclf.data import read_sequences

    out = tmp_path / "ts"
    result = CliRunner().invoke(app, ["data", "synthetic", "--output", str(out), "--train", "12",
                                      "--test", "6", "--channels", "2", "--min-length", "30",
                                      "--max-length", "40"])
    assert result.exit_code == 0, result.output
    cfg = validate_config({"data": {"train": str(out / "train.csv"), "format": "long"}}).data
    train = read_sequences(out / "train.csv", cfg)
    assert len(train) == 12 and train.feature_names == ["x0", "x1"]
    bad = CliRunner().invoke(app, ["data", "synthetic", "--output", str(out), "--classes", "1"])
    assert bad.exit_code == 2
    assert "--classes must be from 2 to 10 for --problem shapes. Got 1 instead." in bad.output


@pytest.mark.parametrize("name", sorted(p.stem for p in
                                         (ROOT / "configs" / "timeseries").glob("*.yaml")))
def test_shipped_timeseries_configs_use_the_generated_data(tmp_path, name):
    from seqclf.config import load_config
    from seqclf.datasets import synthetic

    cfg = load_config(ROOT / "configs" / "timeseries" / f"{name}.yaml")
    written = synthetic(tmp_path)  # the defaults of `seqclf data synthetic`
    for split, path in written.items():
        shipped = Path(getattr(cfg.data, split))
        assert shipped.parent == ROOT / "data" / "timeseries"
        assert path.read_text() == shipped.read_text()
        assert shipped.stat().st_size < 1_000_000

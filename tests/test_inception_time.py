"""The inception_time family: config, the published layout, masking through its modules
(post and pre padding, odd and even kernels, with and without bottleneck and shortcuts),
the masked stride-1 max pooling, save/load, and a tiny fit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from seqclf.config import validate_config
from seqclf.data import MASK_VALUE
from seqclf.errors import SeqclfError
from seqclf.models.inception_time import Config
from test_model import build, make_set

# Tiny versions (the defaults are for real data): odd and even kernel and pool widths.
TINY = {"family": "inception_time", "filters": 4, "kernel_sizes": [5, 3, 2],
        "bottleneck_size": 3}
VARIANTS = {  # name: (model keys, features per step)
    "univariate": ({**TINY, "depth": 3}, 1),  # no bottleneck in the first module
    "multivariate_depth_6": ({**TINY, "depth": 6, "kernel_sizes": [4, 3], "pool_size": 2}, 2),
    "depth_4_one_shortcut": ({**TINY, "depth": 4, "kernel_sizes": [6], "pool_size": 4}, 2),
    "plain": ({**TINY, "depth": 2, "use_residual": False, "use_bottleneck": False}, 2),
}
# Lengths that end mid-window of every kernel (and one shorter than all of them).
LENGTHS = (3, 5, 7, 2, 1, 6, 11)


def make_cfg(model=None, data=None):
    """A config of the inception_time family (test_model's make_cfg adds recurrent keys)."""
    return validate_config({"data": {"train": "mem.csv", **(data or {})},
                            "model": {"family": "inception_time", **(model or {})}})


def outputs_at_two_lengths(model_cfg, padding, ss, extra=7):
    """Predictions (inference, then training mode) of the same weights with the data
    padded to its longest sequence and to that + extra steps."""
    longest = max(len(s) for s in ss.sequences)
    built = []
    for t in (longest, longest + extra):
        model, prep = build(make_cfg(model_cfg, data={"max_length": t, "padding": padding}), ss)
        x, _ = prep.transform(ss)
        if prep.pad_value == MASK_VALUE:  # there really are padded steps, all masked
            assert (x[..., 0] == MASK_VALUE).sum() == sum(t - len(s) for s in ss.sequences)
        built.append((model, x))
    built[1][0].set_weights(built[0][0].get_weights())  # before a training-mode call moves them
    infer = [np.asarray(m(x, training=False)) for m, x in built]
    # Training mode: batch norm normalises by this batch's statistics over real steps only.
    train = [np.asarray(m(x, training=True)) for m, x in built]
    return infer, train


# --- config --------------------------------------------------------------------------


def test_defaults_are_the_published_settings():
    m = make_cfg().model
    assert isinstance(m, Config)
    assert (m.filters, m.depth, m.kernel_sizes) == (32, 6, [40, 20, 10])  # kernel_size 41
    assert (m.bottleneck_size, m.use_bottleneck, m.use_residual, m.pool_size) == (32, True,
                                                                                  True, 3)
    assert m.masking is True


@pytest.mark.parametrize("key, value, message", [
    ("kernel_sizes", [], "model.kernel_sizes must be a non-empty list of integers >= 1. "
                         "Got [] instead."),
    ("kernel_sizes", [3, 0], "model.kernel_sizes must be a non-empty list of integers >= 1. "
                             "Got [3, 0] instead."),
    ("filters", 0, "model.filters must be >= 1. Got 0 instead."),
    ("depth", True, "model.depth must be an integer >= 1. Got True instead."),
])
def test_bad_values_are_rejected(key, value, message):
    with pytest.raises(SeqclfError) as info:
        make_cfg({key: value})
    assert str(info.value) == f"config: {message}"


def test_recurrent_keys_are_not_inception_time_keys():
    with pytest.raises(SeqclfError, match=r"model\.units is not a valid key for model\.family "
                       r"'inception_time'.*bottleneck_size, depth, family, filters, "
                       r"kernel_sizes, masking, pool_size, use_bottleneck, use_residual\."):
        make_cfg({"units": 4})


# --- the masked stride-1 max pooling -------------------------------------------------


def test_masked_same_max_pooling_by_hand(keras):
    from seqclf.models.inception_layers import MaskedSameMaxPooling1D

    x = np.array([[-4, -7, 9, -1, -2, 5, 6]], dtype="float32")[..., None]
    post = np.array([[1, 1, 1, 1, 1, 0, 0]], dtype=bool)  # 5 real steps, then padding
    pool = MaskedSameMaxPooling1D(3)
    out = np.asarray(pool(x, mask=post))[0, :, 0]
    # windows [t-1, t+1] over real steps only: the padded 5 and 6 never count, and the
    # last real step is the maximum of -1 and -2, not of a zero fill
    np.testing.assert_array_equal(out, [-4, 9, 9, 9, -1, 0, 0])
    assert np.array_equal(np.asarray(pool.compute_mask(x, post)), post)
    pre = np.array([[0, 0, 1, 1, 1, 1, 1]], dtype=bool)
    np.testing.assert_array_equal(np.asarray(pool(x, mask=pre))[0, :, 0],
                                  [0, 0, 9, 9, 5, 6, 6])
    even = MaskedSameMaxPooling1D(2)  # window [t, t+1], as Keras places it
    np.testing.assert_array_equal(np.asarray(even(x, mask=post))[0, :, 0],
                                  [-4, 9, 9, -1, -2, 0, 0])


@pytest.mark.parametrize("pool_size", [1, 2, 3, 4, 5])
def test_masked_same_max_pooling_without_a_mask_is_keras_max_pooling(keras, pool_size):
    from seqclf.models.inception_layers import MaskedSameMaxPooling1D

    x = np.random.default_rng(pool_size).normal(size=(3, 8, 2)).astype("float32") - 2.0
    keras_pool = keras.layers.MaxPooling1D(pool_size, strides=1, padding="same")
    np.testing.assert_array_equal(np.asarray(MaskedSameMaxPooling1D(pool_size)(x)),
                                  np.asarray(keras_pool(x)))


# --- masking through the modules -----------------------------------------------------


@pytest.mark.parametrize("padding", ["post", "pre"])
@pytest.mark.parametrize("name", list(VARIANTS))
def test_padding_does_not_change_predictions(keras, name, padding):
    model_cfg, features = VARIANTS[name]
    ss = make_set(lengths=LENGTHS, features=features, seed=5)
    infer, train = outputs_at_two_lengths(model_cfg, padding, ss)
    np.testing.assert_allclose(infer[0], infer[1], atol=1e-5)
    np.testing.assert_allclose(train[0], train[1], atol=1e-5)


def test_without_masking_padding_changes_predictions(keras):
    """The control: the comparison above can fail."""
    model_cfg, features = VARIANTS["univariate"]
    ss = make_set(lengths=LENGTHS, features=features, seed=5)
    infer, _ = outputs_at_two_lengths({**model_cfg, "masking": False}, "post", ss)
    assert not np.allclose(infer[0], infer[1], atol=1e-4)


def test_unmasked_max_pooling_would_let_padding_in(keras, monkeypatch):
    """The pooling branch needs its masked pooling: Keras's, which reads padded steps as
    values, changes predictions with the padded length."""
    from seqclf.models import inception_layers

    class UnmaskedPooling(keras.layers.MaxPooling1D):
        def __init__(self, pool_size, name=None):
            super().__init__(pool_size, strides=1, padding="same", name=name)
            self.supports_masking = True  # passes the mask on, ignores it

    monkeypatch.setattr(inception_layers, "MaskedSameMaxPooling1D", UnmaskedPooling)
    ss = make_set(lengths=LENGTHS, features=1, seed=5)
    ss.sequences = [s - 3.0 for s in ss.sequences]  # below the zeros at padded steps
    infer, _ = outputs_at_two_lengths({**TINY, "depth": 1}, "post", ss)
    assert not np.allclose(infer[0], infer[1], atol=1e-4)


# --- the published layout ------------------------------------------------------------


def test_default_layout_is_the_papers(keras):
    ss = make_set(lengths=(251, 120), features=1)  # two classes
    model, _ = build(make_cfg(), ss)
    f, channels = 32, 4 * 32  # 3 convolutional branches + the pooling branch
    for d in range(1, 7):
        convs = [model.get_layer(f"inception_{d}_conv_{j}") for j in (1, 2, 3)]
        assert [(c.filters, c.kernel_size) for c in convs] == [(f, (40,)), (f, (20,)), (f, (10,))]
        pool_conv = model.get_layer(f"inception_{d}_pool_conv")
        assert (pool_conv.filters, pool_conv.kernel_size) == (f, (1,))
        assert model.get_layer(f"inception_{d}_max_pool").pool_size == 3
        assert not any(c.use_bias for c in convs + [pool_conv])
        assert tuple(model.get_layer(f"inception_{d}_relu").output.shape) == (None, 251, channels)
        assert model.get_layer(f"inception_{d}_batch_norm").momentum == pytest.approx(0.9)
        if d > 1:  # a univariate series gets no bottleneck
            neck = model.get_layer(f"inception_{d}_bottleneck")
            assert (neck.filters, neck.kernel_size, neck.use_bias) == (32, (1,), False)
    names = {layer.name for layer in model.layers}
    assert "inception_1_bottleneck" not in names
    assert {n for n in names if n.startswith("residual_")} == {
        f"residual_{r}_{part}" for r in (1, 2) for part in ("conv", "batch_norm", "add", "relu")}
    # shortcuts: series -> after module 3, that -> after module 6
    def reads(name, source):  # a layer's input (its mask rides along as a second one)
        return keras.tree.flatten(model.get_layer(name).input)[0] is \
            model.get_layer(source).output

    assert reads("residual_1_conv", "masking") and reads("residual_1_add", "residual_1_batch_norm")
    assert reads("inception_4_bottleneck", "residual_1_relu")
    assert reads("inception_4_max_pool", "residual_1_relu")
    assert reads("residual_2_conv", "residual_1_relu")
    assert model.get_layer("residual_2_conv").filters == channels
    assert tuple(model.get_layer("global_average_pooling").output.shape) == (None, channels)
    # every weight accounted for (batch norm: 4 per channel, moving statistics included)
    bn = 4 * channels
    first = 1 * f * (40 + 20 + 10) + 1 * f + bn
    later = channels * 32 + 32 * f * (40 + 20 + 10) + channels * f + bn
    shortcuts = (1 * channels + bn) + (channels * channels + bn)
    assert model.count_params() == first + 5 * later + shortcuts + (channels * 2 + 2)


def test_multivariate_input_gets_a_bottleneck_first(keras):
    ss = make_set(lengths=(9, 4), features=2)
    model, _ = build(make_cfg({**TINY, "depth": 1}), ss)
    assert model.get_layer("inception_1_bottleneck").filters == 3
    model, _ = build(make_cfg({**TINY, "depth": 1, "use_bottleneck": False}), ss)
    assert "inception_1_bottleneck" not in {layer.name for layer in model.layers}


# --- save/load, training -------------------------------------------------------------


def test_save_load_round_trip(keras, tmp_path):
    from seqclf.runs import save_model

    ss = make_set(lengths=LENGTHS, features=2)
    model, prep = build(make_cfg(VARIANTS["multivariate_depth_6"][0], data={"padding": "pre"}), ss)
    x, _ = prep.transform(ss)
    save_model(tmp_path / "model.keras", model)
    loaded = keras.saving.load_model(tmp_path / "model.keras", compile=False, safe_mode=True)
    np.testing.assert_allclose(np.asarray(model(x, training=False)),
                               np.asarray(loaded(x, training=False)), atol=1e-6)
    assert json.dumps(loaded.get_config(), default=str) == \
        json.dumps(model.get_config(), default=str)


@pytest.mark.slow
def test_a_tiny_model_learns_a_shape(keras):
    """Class: a bump or a dip at a random place in noise of random length; global average
    pooling cannot tell them apart from the mean alone (both classes are centred)."""
    rng = np.random.default_rng(0)
    seqs, labels = [], []
    for i in range(48):
        n = int(rng.integers(12, 25))
        s = rng.normal(0.0, 0.3, n)
        at = int(rng.integers(0, n - 3))
        s[at:at + 3] += (1.5 if i % 2 else -1.5) * np.array([0.5, 1.0, 0.5])
        seqs.append((s - s.mean())[:, None])
        labels.append("bump" if i % 2 else "dip")
    ss = make_set(lengths=[len(s) for s in seqs], features=1, labels=labels)
    ss.sequences = seqs
    model, prep = build(make_cfg({**TINY, "depth": 2}), ss)
    x, _ = prep.transform(ss)
    y = prep.encode_labels(ss.labels)
    model.optimizer.learning_rate.assign(0.01)
    history = model.fit(x, y, epochs=8, batch_size=16, verbose=0).history
    assert history["loss"][-1] < history["loss"][0] / 2
    accuracy = (np.asarray(model(x, training=False)).argmax(axis=1) == y).mean()
    assert accuracy >= 0.9

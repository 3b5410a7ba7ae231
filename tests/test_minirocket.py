"""The minirocket family: config, the paper's kernels, dilations and bias levels, the
transform against a plain NumPy version of the same features (univariate and
multivariate, post and pre padding, raw and z-normalised), biases as quantiles of their
example's output, padding invariance with its control, the view ``normalise: auto``
chooses, the ridge head (the ridge's predictions and leave-one-out accuracy, a
temperature), the logistic head, determinism, save/load, a tiny fit and the errors."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest

from seqclf.config import validate_config
from seqclf.data import MASK_VALUE
from seqclf.errors import SeqclfError
from seqclf.models import minirocket, registry
from seqclf.models.minirocket import (Config, fit, fit_dilations, fit_ridge, fit_temperature,
                                      fit_transform, kernel_weights, predict_proba,
                                      quantiles, transform)
from test_model import build, make_set

TINY = {"family": "minirocket", "num_features": 84 * 8}  # 4 dilations at 40 steps
# Lengths around the kernel's reach (4 x dilation at each end): shorter than a kernel,
# no central steps at some dilations, exactly 8 x dilation + 1, and longer.
LENGTHS = (40, 12, 9, 25, 3, 17, 33, 8)


def make_cfg(model=None, data=None, training=None):
    raw = {"data": {"train": "mem.csv", **(data or {})},
           "model": {**TINY, **(model or {})}, "training": {"seed": 0, **(training or {})}}
    return validate_config(raw)


def fitted(ss, model=None, data=None, training=None, seed=0):
    """A model of the family built and fitted on ``ss``: (model, prep, x, y, history)."""
    cfg = make_cfg(model, data, training)
    net, prep = build(cfg, ss, seed)
    x, _ = prep.transform(ss)
    y = prep.encode_labels(ss.labels)
    net, history = fit(rebuild(net, cfg, prep), x, y, None, None, cfg)
    return net, prep, x, y, history


def rebuild(net, cfg, prep):
    """``fit``'s ``build``: ``net`` itself, or the model built again with other keys."""
    from seqclf.model import build_model

    def build(**model):
        if not model:
            return net
        return build_model(cfg.model_copy(update={"model": cfg.model.model_copy(
            update=model)}), prep)
    return build


def real_of(x):
    return np.any(x != MASK_VALUE, axis=-1)


def reference_features(x, real, kernels, biases, dilations, per_dilation, mipv=False):
    """The features computed plainly: per sequence (its real steps on their own, zero
    beyond its ends), kernel and bias; the reference code's PPVs, with the padded PPV
    for an unpadded feature of a sequence without central steps; with ``mipv``, then
    the MIPVs: the mean index of the steps above the bias within the counted ones, over
    their number (-1 when none is)."""
    channels = x.shape[2]
    n_biases = 84 * sum(per_dilation)
    out = np.zeros((len(x), n_biases * (2 if mipv else 1)))
    for i in range(len(x)):
        seq = x[i, real[i]].astype(np.float64)
        length, f, start = len(seq), 0, 0
        for j, (d, n_biases) in enumerate(zip(dilations, per_dilation)):
            r = 4 * d
            block = biases[start:start + 84 * n_biases].reshape(n_biases, 84)
            start += 84 * n_biases
            padded = np.concatenate([np.zeros((r, channels)), seq, np.zeros((r, channels))])
            for k in range(84):
                w = kernels[j, k].reshape(9, channels).astype(np.float64)
                conv = np.array([sum(w[t] @ padded[s + t * d] for t in range(9))
                                 for s in range(length)])
                if (j + k) % 2 == 1 and length > 2 * r:
                    conv = conv[r:length - r]
                for b in range(n_biases):
                    above = np.flatnonzero(conv > block[b, k])
                    out[i, f] = len(above) / len(conv)
                    if mipv:
                        out[i, len(out[i]) // 2 + f] = (above.mean() / len(conv)
                                                         if len(above) else -1.0)
                    f += 1
    return out


def shape_set(n, seed, lengths=(30, 60)):
    """Learnable: class 'slow' is a slow sine, 'fast' a fast one, at random phases,
    with noise and random lengths."""
    rng = np.random.default_rng(seed)
    seqs, labels = [], []
    for i in range(n):
        length = int(rng.integers(*lengths))
        freq = 0.1 if i % 2 else 0.45
        t = np.arange(length)
        seqs.append((np.sin(freq * t + rng.uniform(0, 6)) + 0.3 * rng.normal(size=length))[:, None])
        labels.append("slow" if i % 2 else "fast")
    ss = make_set(lengths=[len(s) for s in seqs], features=1, seed=seed, labels=labels)
    ss.sequences = seqs
    return ss


# --- config and the paper's constants ------------------------------------------------


def test_defaults_are_the_published_settings():
    m = make_cfg({"num_features": 10_000}).model
    assert isinstance(m, Config)
    assert (m.num_features, m.max_dilations_per_kernel, m.classifier) == (10_000, 32, "auto")
    assert m.normalise is False  # the paper reads the values as they are
    assert minirocket.describe(m) == "MiniRocket: 9996 features, auto classifier"
    assert minirocket.describe(make_cfg({"normalise": "auto"}).model).endswith(
        "auto classifier, normalise auto")
    assert m.pooling == "ppv"  # the paper's
    assert minirocket.describe(make_cfg({"pooling": "ppv_mipv"}).model).endswith(
        "auto classifier, PPV and MIPV")
    assert m.masking is True
    assert registry.get("minirocket") is minirocket


@pytest.mark.parametrize("key, value, message", [
    ("num_features", 83, "model.num_features must be >= 84. Got 83 instead."),
    ("max_dilations_per_kernel", 0, "model.max_dilations_per_kernel must be >= 1. Got 0 "
                                    "instead."),
    ("classifier", "svm", "model.classifier must be one of: 'auto', 'ridge', 'logistic'. "
                          "Got 'svm' instead."),
    ("normalise", "yes", "model.normalise must be true, false or 'auto'. Got 'yes' instead."),
    ("pooling", "max", "model.pooling must be one of: 'ppv', 'ppv_mipv', 'auto'. Got 'max' "
                       "instead."),
])
def test_bad_values_are_rejected(key, value, message):
    with pytest.raises(SeqclfError) as info:
        make_cfg({key: value})
    assert str(info.value) == f"config: {message}"


@pytest.mark.parametrize("training, message", [
    ({"early_stopping": {"patience": 3}}, "training.early_stopping must be null for "
     "model.family 'minirocket' (it is fitted in closed form, not by gradient descent over "
     "epochs). Got {'monitor': 'val_loss', 'patience': 3"),
    ({"reduce_lr_on_plateau": {}}, "training.reduce_lr_on_plateau must be null for "
     "model.family 'minirocket'"),
    ({"random_crop": 0.9}, "training.random_crop must be 1.0 for model.family 'minirocket' "
     "(it is fitted in closed form, not by gradient descent over epochs). Got 0.9 instead."),
    ({"loss": "focal"}, "training.loss must be 'crossentropy' for model.family 'minirocket'"),
    ({"sampling": "oversample"}, "training.sampling must be 'none' for model.family "
     "'minirocket'"),
])
def test_training_keys_of_gradient_descent_are_refused(training, message):
    with pytest.raises(SeqclfError) as info:
        make_cfg(training={"validation_split": 0.2, **training})
    assert str(info.value).startswith(f"config: {message}")
    validate_config({"data": {"train": "mem.csv"},  # a family trained by gradient descent
                     "training": {"validation_split": 0.2, **training}})


def test_kernels_are_the_papers():
    w = kernel_weights()
    assert w.shape == (84, 9) and w.dtype == np.float32
    # -1 everywhere but 2 at three positions: each choice of three, once, in order
    assert [tuple(np.flatnonzero(row == 2)) for row in w] == list(combinations(range(9), 3))
    assert set(np.unique(w)) == {-1.0, 2.0}
    np.testing.assert_array_equal(w.sum(axis=1), 0.0)  # a constant series gives 0


def test_dilations_and_features_per_dilation():
    # the reference's values (aeon's _fit_dilations gives the same)
    d, f = fit_dilations(286, 10_000, 32)
    assert d.tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 14, 15, 17, 20, 22, 25, 28,
                          31, 35]
    assert f.tolist() == [27, 12, 12, 4, 8, 4, 8, 4, 4, 4, 4, 4, 3, 3, 3, 3, 3, 3, 3, 3]
    d, f = fit_dilations(100, 1000, 5)
    assert (d.tolist(), f.tolist()) == ([1, 3, 6, 12], [5, 2, 2, 2])
    for length in (9, 10, 40, 251, 2000):
        for num_features, most in ((84, 32), (1000, 5), (10_000, 32), (20_000, 100)):
            d, f = fit_dilations(length, num_features, most)
            assert 84 * f.sum() == 84 * (num_features // 84)  # rounded down to 84s
            assert d[0] == 1 and (np.diff(d) > 0).all() and len(d) <= most
            assert 8 * d[-1] <= length - 1  # the longest kernel fits the reference length
            assert f.min() >= 1


def test_bias_levels_are_golden_ratio_fractions():
    q = quantiles(5)
    golden = (1 + np.sqrt(5)) / 2
    np.testing.assert_allclose(q, [(i * golden) % 1 for i in range(1, 6)], rtol=1e-6)
    assert q.dtype == np.float32


# --- the transform -------------------------------------------------------------------


@pytest.mark.parametrize("padding, pooling", [("post", "ppv"), ("pre", "ppv"),
                                             ("post", "ppv_mipv"), ("pre", "ppv_mipv")])
@pytest.mark.parametrize("features", [1, 3])
def test_transform_is_the_reference_computation(keras, monkeypatch, features, padding,
                                                pooling):
    train = make_set(lengths=LENGTHS, features=features, seed=1)
    net, prep, _, _, _ = fitted(train, {"pooling": pooling}, {"padding": padding})
    layer = net.get_layer("minirocket")
    assert layer.pooling == pooling
    kernels, biases = (np.asarray(w) for w in layer.get_weights())
    # fresh sequences: a training sequence may equal its own bias exactly, where float
    # rounding decides
    x, _ = prep.transform(make_set(lengths=LENGTHS, features=features, seed=2))
    want = reference_features(x, real_of(x), kernels, biases, layer.dilations,
                              layer.features_per_dilation, pooling == "ppv_mipv")
    np.testing.assert_allclose(transform(net, x), want, atol=1e-6)
    monkeypatch.setattr(minirocket, "BLOCK_BYTES", 1)  # a block per sequence
    np.testing.assert_allclose(transform(net, x), want, atol=1e-6)
    sub = keras.Model(net.input, layer.output)  # the model's own graph, padded length
    np.testing.assert_allclose(np.asarray(sub(x)), want, atol=1e-6)


def test_normalised_transform_reads_each_sequence_z_normalised(keras):
    """normalise: true is the reference computation on each sequence's real steps
    z-normalised per channel (float64 here), in the layer and in NumPy; a constant
    channel reads as zeros."""
    from seqclf.data.preprocess import z_normalise as z_one

    train = make_set(lengths=LENGTHS, features=2, seed=1)
    net, prep, _, _, _ = fitted(train, {"normalise": True})
    layer = net.get_layer("minirocket")
    assert layer.normalise is True
    test = make_set(lengths=LENGTHS, features=2, seed=2)
    test.sequences[1][:, 1] = 7.5  # constant
    x, _ = prep.transform(test)
    real = real_of(x)
    z = np.zeros_like(x)
    for i in range(len(x)):
        z[i, real[i]] = z_one(x[i, real[i]].astype(np.float64))
    kernels, biases = (np.asarray(w) for w in layer.get_weights())
    want = reference_features(z, real, kernels, biases, layer.dilations,
                              layer.features_per_dilation)
    # float32 against float64 normalisation: an output at a bias may round either way
    for got in (transform(net, x), np.asarray(keras.Model(net.input, layer.output)(x))):
        assert np.mean(np.abs(got - want) > 1e-6) < 1e-3
    np.testing.assert_allclose(minirocket.z_normalise(x, real)[real], z[real], atol=1e-5)
    assert not minirocket.z_normalise(x, real)[~real].any()  # padding stays zero


def level_set(n, seed, informative):
    """Sequences whose class is their shape (a sine of one of two frequencies, in as much
    noise) under a random gain and offset per sequence (``informative`` 'shape'), or
    whose class is their scale alone (white noise of standard deviation 1 or 4:
    'scale')."""
    rng = np.random.default_rng(seed)
    seqs, labels = [], []
    for i in range(n):
        t = np.arange(60)
        if informative == "shape":
            wave = np.sin((0.3 if i % 2 else 0.4) * t + rng.uniform(0, 6))
            seq = np.exp(rng.normal(0, 2.0)) * (wave + rng.normal(size=60)) + rng.normal(0, 20)
        else:
            seq = (4.0 if i % 2 else 1.0) * rng.normal(size=60)
        seqs.append(seq[:, None])
        labels.append("b" if i % 2 else "a")
    ss = make_set(lengths=[60] * n, features=1, seed=seed, labels=labels)
    ss.sequences = seqs
    return ss


@pytest.mark.parametrize("informative, chosen", [("shape", True), ("scale", False)])
def test_normalise_auto_normalises_where_the_data_says_so(keras, informative, chosen):
    net, prep, x, y, history = fitted(level_set(60, 0, informative), {"normalise": "auto"})
    raw, normalised = history["raw_loo_accuracy"][0], history["normalised_loo_accuracy"][0]
    assert (normalised > raw) is chosen and abs(normalised - raw) > 0.2
    assert net.get_layer("minirocket").normalise is chosen
    # the model is the one that view fits on its own (same draws), not a mix of the two
    alone, *_ = fitted(level_set(60, 0, informative), {"normalise": chosen})
    for a, b in zip(net.get_weights(), alone.get_weights()):
        np.testing.assert_array_equal(a, b)
    test = level_set(40, 1, informative)
    xt, _ = prep.transform(test)
    assert (predict_proba(net, xt).argmax(axis=1) == prep.encode_labels(test.labels)).mean() > 0.85


@pytest.mark.parametrize("right, wrong, better", [
    (0, 0, False),    # no disagreement: a tie keeps the raw values
    (1, 0, False),    # one sequence: rounding can do that
    (4, 0, False),    # gain 4, not above 2 x sqrt(4)
    (5, 0, True),     # gain 5 > 2 x sqrt(5) = 4.47
    (6, 1, False),    # gain 5, not above 2 x sqrt(7) = 5.29
    (9, 2, True),     # gain 7 > 2 x sqrt(11) = 6.63
])
def test_clearly_better_is_mcnemars_test(right, wrong, better):
    """``right``: sequences only the new view gets right; ``wrong``: only the old one."""
    n = 40
    new = np.zeros(n, dtype=bool)
    old = np.zeros(n, dtype=bool)
    new[:right] = True
    old[right:right + wrong] = True
    new[30:], old[30:] = True, True  # agreeing rows never count
    assert minirocket.clearly_better(new, old) is better


def test_normalise_auto_keeps_raw_values_unless_clearly_better(keras, monkeypatch):
    """The views' leave-one-out predictions differ by one sequence: raw is kept."""
    real_fit_ridge = minirocket.fit_ridge
    calls = []

    def one_apart(*args, **kwargs):
        fit = real_fit_ridge(*args, **kwargs)
        correct = np.ones(len(fit.loo_correct), dtype=bool)
        correct[0] = bool(calls)  # the second (normalised) view is right on one more
        calls.append(1)
        return fit._replace(loo_correct=correct, loo_accuracy=float(correct.mean()))

    monkeypatch.setattr(minirocket, "fit_ridge", one_apart)
    net, *_, history = fitted(level_set(30, 0, "shape"), {"normalise": "auto"})
    assert history["normalised_loo_accuracy"][0] > history["raw_loo_accuracy"][0]
    assert net.get_layer("minirocket").normalise is False


def test_a_choice_says_when_a_higher_accuracy_was_not_clearly_better():
    class Notes(list):
        note = list.append

    def ridge(right):
        correct = np.arange(40) < right
        return minirocket.RidgeFit(None, None, correct, float(correct.mean()))

    notes = Notes()
    history = minirocket._chose(notes, "pooling", ("ppv", "ppv_mipv"), False,
                                [ridge(30), ridge(32)])
    minirocket._chose(notes, "pooling", ("ppv", "ppv_mipv"), True, [ridge(20), ridge(32)])
    assert notes == ["pooling auto: kept ppv (the ridge's leave-one-out accuracy: ppv 0.750, "
                     "ppv_mipv 0.800; not clearly better)",
                     "pooling auto: kept ppv_mipv (the ridge's leave-one-out accuracy: ppv "
                     "0.500, ppv_mipv 0.800)"]
    assert history == {"ppv_loo_accuracy": [0.75], "ppv_mipv_loo_accuracy": [0.8]}


def test_normalise_auto_with_the_logistic_classifier_chooses_on_a_sample(keras, monkeypatch):
    monkeypatch.setattr(minirocket, "VIEW_SAMPLE", 40)
    rows = []
    real_fit_ridge = minirocket.fit_ridge
    monkeypatch.setattr(minirocket, "fit_ridge",
                        lambda f, *a, **k: rows.append(len(f)) or real_fit_ridge(f, *a, **k))
    net, *_, history = fitted(level_set(60, 0, "shape"),
                              {"normalise": "auto", "classifier": "logistic"},
                              training={"epochs": 3, "batch_size": 16})
    assert rows == [40, 40]  # one ridge per view, on the sample only
    assert net.get_layer("minirocket").normalise is True
    assert len(history["loss"]) == 3 and "normalised_loo_accuracy" in history


def order_set(n, seed, steps=200):
    """Sequences whose class is which of two short motifs comes first (a spike up, a
    spike down), at random positions far apart in noise: the same motifs in both
    classes, so nearly the same PPVs."""
    rng = np.random.default_rng(seed)
    seqs, labels = [], []
    for i in range(n):
        seq = 0.3 * rng.normal(size=steps)
        early = int(rng.integers(5, steps // 3))
        late = int(rng.integers(2 * steps // 3, steps - 5))
        seq[[early, late]] += (3.0, -3.0) if i % 2 else (-3.0, 3.0)
        seqs.append(seq[:, None])
        labels.append("up first" if i % 2 else "down first")
    ss = make_set(lengths=[steps] * n, features=1, seed=seed, labels=labels)
    ss.sequences = seqs
    return ss


@pytest.mark.parametrize("make, kept", [(order_set, "ppv_mipv"),
                                        (lambda n, seed: level_set(n, seed, "scale"), "ppv")])
def test_pooling_auto_keeps_mipv_where_the_data_says_so(keras, make, kept):
    net, prep, x, y, history = fitted(make(60, 0), {"pooling": "auto"})
    ppv, both = history["ppv_loo_accuracy"][0], history["ppv_mipv_loo_accuracy"][0]
    layer = net.get_layer("minirocket")
    assert layer.pooling == kept and (both > ppv if kept == "ppv_mipv" else True)
    assert net.get_layer("classes").get_weights()[0].shape[0] == layer.n_features
    # the model is the one that pooling fits on its own (same draws)
    alone, *_ = fitted(make(60, 0), {"pooling": kept})
    for a, b in zip(net.get_weights(), alone.get_weights()):
        np.testing.assert_array_equal(a, b)
    test = make(40, 1)
    xt, _ = prep.transform(test)
    np.testing.assert_allclose(predict_proba(net, xt), np.asarray(net(xt)), atol=1e-5)
    assert (predict_proba(net, xt).argmax(axis=1) == prep.encode_labels(test.labels)).mean() > 0.8


@pytest.mark.parametrize("steps", [8, 2040, 2048, 4104])  # 255 words and beyond
def test_hits_are_counted_eight_per_word(steps):
    flags = np.random.default_rng(steps).random((3, 5, steps)) < 0.7
    flags[0, 0] = True  # a row of only hits: every byte of every word at its largest
    np.testing.assert_array_equal(minirocket._count(flags), flags.sum(axis=-1))
    count, index = minirocket._count(flags, index=True)
    np.testing.assert_array_equal(count, flags.sum(axis=-1))
    np.testing.assert_allclose(index, flags @ np.arange(steps), rtol=1e-6)


def test_biases_are_quantiles_of_their_example(keras):
    ss = make_set(lengths=LENGTHS, features=2, seed=3)
    cfg = make_cfg()
    net, prep = build(cfg, ss)
    x, _ = prep.transform(ss)
    layer = net.get_layer("minirocket")
    real = real_of(x)
    kernels, biases, examples = fit_transform(x, real, layer.dilations,
                                              layer.features_per_dilation,
                                              np.random.default_rng(0))
    levels = quantiles(len(biases))
    start = 0
    for j, (d, n_biases) in enumerate(zip(layer.dilations, layer.features_per_dilation)):
        block = biases[start:start + 84 * n_biases].reshape(n_biases, 84)
        for k in (0, 41, 83):
            e = examples[j * 84 + k]
            seq = x[e, real[e]].astype(np.float64)
            w = kernels[j, k].reshape(9, 2)
            for c in range(2):  # the kernel on the channels it reads, zeros elsewhere
                assert not w[:, c].any() or (w[:, c] == kernel_weights()[k]).all()
            padded = np.pad(seq, [(4 * d, 4 * d), (0, 0)])
            conv = [sum(w[t] @ padded[s + t * d] for t in range(9)) for s in range(len(seq))]
            want = np.quantile(conv, levels[start + k * n_biases:start + (k + 1) * n_biases])
            np.testing.assert_allclose(block[:, k], want, rtol=1e-5, atol=1e-6)
        start += 84 * n_biases
    # channel subsets: 1 or 2 of the 2 channels, each kernel's weights on them alike
    per_pair = (kernels.reshape(-1, 9, 2) != 0).any(axis=1).sum(axis=1)
    assert set(per_pair) == {1, 2}


def outputs_at_two_lengths(keras, padding, masking=True, extra=7, normalise=False,
                           pooling="ppv"):
    """Class probabilities of a fitted model for new sequences, and of the same layers
    for them padded with ``extra`` more steps. (Not the training sequences: one may
    equal its own bias exactly, and the two paddings round its convolution apart.)"""
    net, prep, _, _, _ = fitted(make_set(lengths=LENGTHS, features=2, seed=5),
                                {"masking": masking, "normalise": normalise,
                                 "pooling": pooling},
                                {"padding": padding})
    x, _ = prep.transform(make_set(lengths=LENGTHS, features=2, seed=6))
    fill = np.full((len(x), extra, 2), prep.pad_value, dtype=np.float32)
    longer = np.concatenate([x, fill] if padding == "post" else [fill, x], axis=1)
    inputs = keras.Input((x.shape[1] + extra, 2))
    h = keras.layers.Masking(prep.pad_value)(inputs) if masking else inputs
    out = net.get_layer("classes")(net.get_layer("minirocket")(h))
    return np.asarray(net(x)), np.asarray(keras.Model(inputs, out)(longer))


@pytest.mark.parametrize("padding, normalise, pooling", [
    ("post", False, "ppv"), ("pre", False, "ppv"), ("post", True, "ppv"),
    ("post", False, "ppv_mipv"), ("pre", True, "ppv_mipv")])
def test_padding_does_not_change_predictions(keras, padding, normalise, pooling):
    short, long = outputs_at_two_lengths(keras, padding, normalise=normalise, pooling=pooling)
    np.testing.assert_allclose(short, long, atol=1e-5)


def test_without_masking_padding_changes_predictions(keras):
    """The control: the comparison above can fail."""
    short, long = outputs_at_two_lengths(keras, "post", masking=False)
    assert not np.allclose(short, long, atol=1e-4)


# --- the classifier ------------------------------------------------------------------


@pytest.mark.parametrize("n_classes", [2, 3])
def test_ridge_head_predicts_as_the_ridge(n_classes):
    from sklearn.linear_model import RidgeClassifier, RidgeClassifierCV
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(n_classes)
    y = np.arange(40) % n_classes
    f = (rng.random((40, 200)) + 0.15 * y[:, None] * (np.arange(200) < 20)).astype(np.float32)
    kernel, bias, loo_correct, loo_accuracy = fit_ridge(f, y, n_classes + 1)  # last class unseen
    scaler = StandardScaler(with_mean=False).fit(f)
    paper = RidgeClassifierCV(alphas=np.logspace(-3, 3, 10)).fit(scaler.transform(f), y)
    # the leave-one-out accuracy is that of the ridge refitted without each row in turn
    scaled = scaler.transform(f)
    held_out = [RidgeClassifier(alpha=paper.alpha_).fit(np.delete(scaled, i, axis=0),
                                                         np.delete(y, i)).predict(scaled[i:i + 1])[0]
                for i in range(len(y))]
    np.testing.assert_array_equal(loo_correct, np.array(held_out) == y)
    assert loo_accuracy == pytest.approx(np.mean(loo_correct))
    assert 0.3 < loo_accuracy < 1.0  # neither trivial nor perfect: the check can fail
    new = rng.random((30, 200)).astype(np.float32) + 0.1
    logits = new.astype(np.float64) @ kernel + bias
    np.testing.assert_array_equal(logits.argmax(axis=1), paper.predict(scaler.transform(new)))
    assert (logits[:, n_classes] < logits[:, :n_classes].min(axis=1)).all()
    assert kernel.shape == (200, n_classes + 1) and kernel.dtype == np.float32


def test_temperature_calibrates_and_stays_finite():
    y = np.arange(20) % 2
    separated = np.stack([-(2 * y - 1.0), 2 * y - 1.0], axis=1)
    t = fit_temperature(separated, y)
    p = np.exp(t) / (np.exp(t) + np.exp(-t))
    assert np.isfinite(t) and 0.9 < p < 1 - 1e-4  # confident, not certain, with 20
    noisy = separated + np.random.default_rng(0).normal(0, 2.0, separated.shape)
    assert 0 < fit_temperature(noisy, y) < t


def test_a_tiny_model_learns_frequencies(keras):
    cfg = make_cfg({"classifier": "ridge"})
    train, test = shape_set(40, seed=0), shape_set(30, seed=1)
    net, prep = build(cfg, train)
    x, _ = prep.transform(train)
    xt, _ = prep.transform(test)
    net, history = fit(rebuild(net, cfg, prep), x, prep.encode_labels(train.labels), xt,
                       prep.encode_labels(test.labels), cfg)
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(history["loss"]) == 1 and history["val_accuracy"][0] >= 0.9
    proba = np.asarray(net.predict(xt, verbose=0))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(predict_proba(net, xt), proba, atol=1e-5)
    assert (proba.argmax(axis=1) == prep.encode_labels(test.labels)).mean() >= 0.9
    assert 0.5 < proba.max(axis=1).mean() < 1.0  # a temperature, not certainty


def test_seqclf_predicts_through_the_family_hook_and_averages_an_ensemble(keras, monkeypatch):
    from seqclf import model as model_module
    from seqclf.models import ensemble

    train, test = shape_set(30, seed=0), shape_set(12, seed=1)
    nets = [fitted(train, seed=seed)[0] for seed in (0, 1)]
    _, prep, *_ = fitted(train)
    xt, _ = prep.transform(test)
    calls = []
    monkeypatch.setattr(minirocket, "predict_proba",
                        lambda net, x: calls.append(net.name) or predict_proba(net, x))
    one = model_module.predict_proba(nets[0], xt, make_cfg())
    assert calls == [nets[0].name]  # the hook, not model.predict
    np.testing.assert_allclose(one, nets[0].predict(xt, verbose=0), atol=1e-5)
    combined = ensemble.combine(keras, nets)
    cfg = validate_config({"data": {"train": "mem.csv"}, "training": {"seed": 0},
                           "model": {"family": "ensemble", "members": [TINY], "copies": 2}})
    proba = model_module.predict_proba(combined, xt, cfg)
    assert calls[1:] == ["member_1", "member_2"]  # each member by its own family's rule
    np.testing.assert_allclose(proba, combined.predict(xt, verbose=0), atol=1e-5)
    assert proba.dtype == np.float64


def test_logistic_classifier_trains_the_softmax_layer(keras):
    net, prep, x, y, history = fitted(shape_set(40, seed=0), {"classifier": "logistic"},
                                      training={"epochs": 5, "batch_size": 8})
    assert len(history["loss"]) == 5 and history["loss"][-1] < history["loss"][0]
    test = shape_set(30, seed=1)
    xt, _ = prep.transform(test)
    assert (net.predict(xt, verbose=0).argmax(axis=1)
            == prep.encode_labels(test.labels)).mean() >= 0.8


def test_fit_is_deterministic_for_a_seed(keras):
    ss = make_set(lengths=LENGTHS, features=3, seed=4)
    weights = [fitted(ss, training={"seed": s})[0].get_weights() for s in (3, 3, 4)]
    for a, b in zip(weights[0], weights[1]):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(weights[0][1], weights[2][1])  # other biases


@pytest.mark.parametrize("ss, model", [
    (make_set(lengths=LENGTHS, features=2, seed=6), {}),
    (level_set(40, 0, "shape"), {"normalise": "auto"}),  # the view fit chose travels too
    (order_set(40, 0), {"pooling": "auto"}),  # and the pooling
])
def test_save_load_round_trip(keras, tmp_path, ss, model):
    net, prep, x, _, _ = fitted(ss, model)
    net.save(tmp_path / "model.keras")
    registry.load_layers()
    loaded = keras.saving.load_model(tmp_path / "model.keras", compile=False, safe_mode=True)
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(net(x)))
    for layer in (loaded.get_layer("minirocket"), net.get_layer("minirocket")):
        assert layer.normalise is (model == {"normalise": "auto"})
        assert layer.pooling == ("ppv_mipv" if model == {"pooling": "auto"} else "ppv")
    assert loaded.get_layer("minirocket").dilations == net.get_layer("minirocket").dilations


@pytest.mark.slow
@pytest.mark.parametrize("normalise, pooling", [(False, "ppv"), (True, "ppv"),
                                               (False, "ppv_mipv")])
def test_onnx_export_matches_keras(keras, tmp_path, normalise, pooling):
    pytest.importorskip("tf2onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    net, prep, _, _, _ = fitted(make_set(lengths=LENGTHS, features=2, seed=7),
                                {"normalise": normalise, "pooling": pooling})
    x, _ = prep.transform(make_set(lengths=LENGTHS, features=2, seed=8))
    want = np.asarray(net.predict(x, verbose=0))
    net.export(str(tmp_path / "model.onnx"), format="onnx", verbose=False)
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"),
                                           providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, want, atol=1e-5)


# --- errors --------------------------------------------------------------------------


def test_sequences_shorter_than_a_kernel_are_rejected(keras):
    with pytest.raises(SeqclfError, match=r"^data: the padded length \(data.max_length, else "
                       r"the longest training sequence\) must be >= 9 for model.family "
                       r"'minirocket' \(its kernels are 9 steps long\). Got 8 instead.$"):
        build(make_cfg(), make_set(lengths=(8, 3, 5), features=1))


def test_one_class_is_rejected(keras):
    ss = make_set(lengths=LENGTHS, features=1)
    cfg = make_cfg(data={"classes": ["a", "b"]})
    ss.labels = ["a"] * len(LENGTHS)
    net, prep = build(cfg, ss)
    x, _ = prep.transform(ss)
    with pytest.raises(SeqclfError, match="needs training sequences of at least two classes"):
        fit(rebuild(net, cfg, prep), x, prep.encode_labels(ss.labels), None, None, cfg)

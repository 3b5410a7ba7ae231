"""Model building: shapes, Keras arguments reaching the layers, masking, save/load."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest

from seqclf.config import CELLS, RECURRENT_LAYER_ARGS, validate_config
from seqclf.data import MASK_VALUE, Preprocessor, SequenceSet
from seqclf.errors import SeqclfError


def make_set(lengths=(3, 5, 7, 2), features=2, seed=0, labels=None, tokens=None):
    rng = np.random.default_rng(seed)
    if tokens:
        seqs = [rng.integers(1, tokens, size=(n, 1)).astype(np.float64) for n in lengths]
        features = 1
    else:
        seqs = [rng.normal(size=(n, features)) for n in lengths]
    labels = labels or ["a", "b", "c"] * len(lengths)
    return SequenceSet(ids=[f"s{i}" for i in range(len(seqs))], sequences=seqs,
                       labels=list(labels[: len(seqs)]),
                       feature_names=[f"f{j}" for j in range(features)], source="mem.csv",
                       lines=list(range(2, len(seqs) + 2)))


def make_cfg(model=None, data=None, training=None, optimizer=None):
    raw = {"data": {"train": "mem.csv", **(data or {})},
           "model": {"units": 4, **(model or {})}}
    if training:
        raw["training"] = training
    if optimizer:
        raw["optimizer"] = optimizer
    return validate_config(raw)


def build(cfg, ss, seed=0):
    from seqclf.backend import set_seed
    from seqclf.model import build_model

    prep = Preprocessor.fit(ss, cfg)
    set_seed(seed)
    return build_model(cfg, prep), prep


# --- shapes --------------------------------------------------------------------------


def test_single_lstm_shapes(keras):
    ss = make_set()
    model, prep = build(make_cfg(), ss)
    assert tuple(model.input_shape) == (None, 7, 2)
    assert tuple(model.output_shape) == (None, 3)
    assert model.get_layer("masking").mask_value == MASK_VALUE
    lstm = model.get_layer("lstm_1")
    assert isinstance(lstm, keras.layers.LSTM)
    assert lstm.units == 4 and lstm.return_sequences is False
    x, _ = prep.transform(ss)
    proba = model.predict(x, verbose=0)
    assert proba.shape == (4, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert model.loss == "sparse_categorical_crossentropy"


def test_stacked_lstm_shapes(keras):
    model, _ = build(make_cfg({"units": [8, 8]}), make_set())
    first, second = model.get_layer("lstm_1"), model.get_layer("lstm_2")
    assert first.return_sequences is True and second.return_sequences is False
    assert tuple(first.output.shape) == (None, 7, 8)
    assert tuple(second.output.shape) == (None, 8)
    assert tuple(model.output_shape) == (None, 3)
    assert [l.name for l in model.layers if isinstance(l, keras.layers.RNN)] == \
        ["lstm_1", "lstm_2"]


def test_depth_repeats_units(keras):
    model, _ = build(make_cfg({"units": 5, "depth": 3}), make_set())
    units = [l.units for l in model.layers if isinstance(l, keras.layers.LSTM)]
    assert units == [5, 5, 5]


@pytest.mark.parametrize("merge_mode, width", [("concat", 12), ("sum", 6), ("ave", 6)])
def test_bidirectional_gru_shapes(keras, merge_mode, width):
    cfg = make_cfg({"cell": "gru", "units": [6, 6], "bidirectional": True,
                    "merge_mode": merge_mode, "head_units": [5], "head_dropout": 0.2})
    model, prep = build(cfg, make_set())
    bi1, bi2 = model.get_layer("bidirectional_1"), model.get_layer("bidirectional_2")
    assert isinstance(bi1, keras.layers.Bidirectional)
    assert isinstance(bi1.forward_layer, keras.layers.GRU)
    assert bi1.merge_mode == merge_mode
    assert tuple(bi1.output.shape) == (None, 7, width)
    assert tuple(bi2.output.shape) == (None, width)
    assert model.get_layer("dense_1").units == 5
    assert model.get_layer("dropout_1").rate == pytest.approx(0.2)
    assert tuple(model.output_shape) == (None, 3)
    x, _ = prep.transform(make_set())
    assert model.predict(x, verbose=0).shape == (4, 3)


def test_embedding_model_shapes(keras):
    ss = make_set(tokens=10)
    cfg = make_cfg({"embedding": {"input_dim": 10, "output_dim": 3}})
    model, prep = build(cfg, ss)
    assert tuple(model.input_shape) == (None, 7)
    emb = model.get_layer("embedding")
    assert emb.input_dim == 10 and emb.output_dim == 3 and emb.mask_zero is True
    x, _ = prep.transform(ss)
    assert x.dtype == np.int32
    assert model.predict(x, verbose=0).shape == (4, 3)


def test_no_masking_layer_when_masking_is_off(keras):
    model, _ = build(make_cfg({"masking": False}), make_set())
    assert not any(isinstance(l, keras.layers.Masking) for l in model.layers)


# --- Keras arguments reach the layers ------------------------------------------------

FULL_ARGS = dict(
    activation="relu", use_bias=True, kernel_initializer="he_normal",
    recurrent_initializer="glorot_normal", bias_initializer="ones",
    kernel_regularizer={"l2": 0.01}, recurrent_regularizer={"l1": 0.02},
    bias_regularizer={"l1": 0.005, "l2": 0.03}, activity_regularizer={"l1": 0.04},
    kernel_constraint="max_norm", recurrent_constraint="unit_norm", bias_constraint="non_neg",
    dropout=0.1, recurrent_dropout=0.2, seed=7, go_backwards=True, stateful=True, unroll=True,
    use_cudnn=False)
CELL_EXTRA = {"lstm": dict(recurrent_activation="hard_sigmoid", unit_forget_bias=False),
              "gru": dict(recurrent_activation="hard_sigmoid", reset_after=False),
              "rnn": {}}


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_every_recurrent_argument_reaches_the_layer(keras, cell):
    args = {**FULL_ARGS, **CELL_EXTRA[cell]}
    assert set(args) == {k for k in RECURRENT_LAYER_ARGS
                         if k not in {"recurrent_activation", "unit_forget_bias",
                                      "reset_after"}} | set(CELL_EXTRA[cell])
    cfg = make_cfg({"cell": cell, **args}, training={"batch_size": 2})
    model, prep = build(cfg, make_set())
    layer = model.get_layer(f"{cell}_1")
    conf = layer.get_config()
    assert conf["activation"] == "relu"
    assert conf["recurrent_activation"] == "hard_sigmoid"
    assert conf["use_bias"] is True
    assert conf["kernel_initializer"]["class_name"] == "HeNormal"
    assert conf["recurrent_initializer"]["class_name"] == "GlorotNormal"
    assert conf["bias_initializer"]["class_name"] == "Ones"
    for key, expected in (("kernel_regularizer", (0.0, 0.01)),
                          ("recurrent_regularizer", (0.02, 0.0)),
                          ("bias_regularizer", (0.005, 0.03)),
                          ("activity_regularizer", (0.04, 0.0))):
        assert conf[key]["class_name"] == "L1L2", key
        got = conf[key]["config"]
        assert (got["l1"], got["l2"]) == pytest.approx(expected), key
    assert conf["kernel_constraint"]["class_name"] == "MaxNorm"
    assert conf["recurrent_constraint"]["class_name"] == "UnitNorm"
    assert conf["bias_constraint"]["class_name"] == "NonNeg"
    assert conf["dropout"] == pytest.approx(0.1)
    assert conf["recurrent_dropout"] == pytest.approx(0.2)
    assert conf["seed"] == 7
    assert conf["go_backwards"] is True
    assert conf["stateful"] is True
    assert conf["unroll"] is True
    assert layer.use_cudnn is False
    if cell == "lstm":
        assert conf["unit_forget_bias"] is False
    else:
        assert conf["reset_after"] is False
    # a stateful layer needs the batch size up front
    assert tuple(model.input_shape) == (2, 7, 2)
    # regularizers really add losses
    x, _ = prep.transform(make_set(lengths=(3, 5)))
    model(x)
    assert len(model.losses) >= 4


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_layer_kwargs_are_arguments_of_the_keras_class(keras, cell):
    cfg = make_cfg({"cell": cell})
    cls = getattr(keras.layers, CELLS[cell])
    params = set(inspect.signature(cls.__init__).parameters)
    assert set(cfg.model.layer_kwargs()) <= params


def test_simple_rnn_model_builds(keras):
    model, prep = build(make_cfg({"cell": "rnn", "units": [4, 4]}), make_set())
    assert isinstance(model.get_layer("rnn_1"), keras.layers.SimpleRNN)
    x, _ = prep.transform(make_set())
    assert model.predict(x, verbose=0).shape == (4, 3)


def test_stateful_model_predicts_every_row(keras):
    from seqclf.model import predict_proba

    cfg = make_cfg({"stateful": True}, training={"batch_size": 3})
    ss = make_set(lengths=(3, 5, 7, 2, 4))
    model, prep = build(cfg, ss)
    x, _ = prep.transform(ss)
    proba = predict_proba(model, x, cfg)
    assert proba.shape == (5, 3)
    again = predict_proba(model, x, cfg)
    np.testing.assert_allclose(proba, again, atol=1e-6)  # state is reset between calls


def test_optimizer_from_config_is_compiled_in(keras):
    cfg = make_cfg(optimizer={"name": "adamw", "learning_rate": 0.01, "weight_decay": 0.02})
    model, _ = build(cfg, make_set())
    assert isinstance(model.optimizer, keras.optimizers.AdamW)
    assert model.optimizer.weight_decay == pytest.approx(0.02)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01)


def test_bad_optimizer_argument_fails_at_build_with_a_seqclf_error(keras):
    from seqclf.model import build_model

    cfg = make_cfg(optimizer={"name": "sgd", "nesterov_": True})
    prep = Preprocessor.fit(make_set(), cfg)
    with pytest.raises(SeqclfError, match=r"optimizer\.nesterov_ is not an argument of "
                       r"keras\.optimizers\.SGD \(did you mean 'nesterov'\?\)"):
        build_model(cfg, prep)


# --- masking: padded steps never change a prediction ---------------------------------


def _outputs_at_two_lengths(cfg_model, padding, ss, extra=5, tokens=False):
    """Predictions of the same weights with data padded to T and to T + extra."""
    outs, first = [], None
    lengths = [len(s) for s in ss.sequences]
    for t in (max(lengths), max(lengths) + extra):
        cfg = make_cfg(cfg_model, data={"max_length": t, "padding": padding})
        model, prep = build(cfg, ss)
        if first is None:
            first = model
        else:
            model.set_weights(first.get_weights())
        x, _ = prep.transform(ss)
        if prep.pad_value == MASK_VALUE:  # there really are padded steps, all masked
            assert (x[..., 0] == MASK_VALUE).sum() == sum(t - n for n in lengths)
        outs.append(np.asarray(model(x, training=False)))
    return outs


MASKED_MODELS = {
    "lstm": {},
    "gru": {"cell": "gru"},
    "rnn": {"cell": "rnn"},
    "stacked": {"units": [4, 4]},
    "bilstm": {"bidirectional": True},
    "bigru_stack_head": {"cell": "gru", "units": [4, 4], "bidirectional": True,
                         "head_units": [4]},
    "unroll": {"unroll": True},
    "go_backwards": {"go_backwards": True},
}


@pytest.mark.parametrize("padding", ["post", "pre"])
@pytest.mark.parametrize("name", list(MASKED_MODELS))
def test_padding_does_not_change_predictions(keras, name, padding):
    ss = make_set(lengths=(3, 5, 7, 2), seed=1)
    short, longer = _outputs_at_two_lengths(MASKED_MODELS[name], padding, ss)
    np.testing.assert_allclose(short, longer, atol=1e-6)


@pytest.mark.parametrize("padding", ["post", "pre"])
def test_padding_does_not_change_embedding_predictions(keras, padding):
    ss = make_set(lengths=(3, 5, 7, 2), tokens=12, seed=2)
    model = {"embedding": {"input_dim": 12, "output_dim": 3}}
    short, longer = _outputs_at_two_lengths(model, padding, ss, tokens=True)
    np.testing.assert_allclose(short, longer, atol=1e-6)


def test_without_masking_padding_does_change_predictions(keras):
    """The control: the comparison above can fail."""
    ss = make_set(lengths=(3, 5, 7, 2), seed=1)
    short, longer = _outputs_at_two_lengths({"masking": False}, "post", ss)
    assert not np.allclose(short, longer, atol=1e-4)


def test_prediction_of_a_sequence_does_not_depend_on_its_batch(keras):
    ss = make_set(lengths=(3, 7), seed=3)
    model, prep = build(make_cfg({"cell": "gru"}), ss)
    x, _ = prep.transform(ss)
    both = model.predict(x, verbose=0)
    alone = model.predict(x[:1], verbose=0)
    np.testing.assert_allclose(both[:1], alone, atol=1e-6)


# --- save / load ---------------------------------------------------------------------


@pytest.mark.parametrize("name, model_cfg", [
    ("lstm_regularized", {"units": [4, 4], "kernel_regularizer": {"l2": 0.01},
                          "kernel_constraint": "max_norm", "dropout": 0.1}),
    ("bigru_head", {"cell": "gru", "bidirectional": True, "head_units": [3],
                    "head_dropout": 0.1}),
    ("embedding", {"embedding": {"input_dim": 9, "output_dim": 2}}),
])
def test_save_load_round_trip(keras, tmp_path, name, model_cfg):
    from seqclf.runs import save_model

    tokens = 9 if "embedding" in model_cfg else None
    ss = make_set(tokens=tokens)
    model, prep = build(make_cfg(model_cfg), ss)
    x, _ = prep.transform(ss)
    path = tmp_path / "model.keras"
    save_model(path, model)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]  # no temp files left
    loaded = keras.saving.load_model(path, compile=False)
    np.testing.assert_allclose(model.predict(x, verbose=0), loaded.predict(x, verbose=0),
                               atol=1e-6)
    assert json.dumps(loaded.get_config(), default=str) == \
        json.dumps(model.get_config(), default=str)


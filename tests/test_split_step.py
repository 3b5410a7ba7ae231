"""The split training step (seqclf.split_step) and the plan's ``batch_parts``."""

from __future__ import annotations

import numpy as np
import pytest

from seqclf.backend import compile_model
from seqclf.compute import Work, batch_parts, intra_op_threads, plan
from seqclf.config import validate_config
from seqclf.errors import SeqclfError

pytestmark = pytest.mark.usefixtures("tensorflow_backend")


@pytest.fixture
def tensorflow_backend(keras):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the split step is TensorFlow's")


def _cfg(training=None, model=None):
    return validate_config({"data": {"train": "x.csv"}, "model": model or {},
                            "training": training or {}})


def _model(keras, *layers, regularizer=None):
    inputs = keras.Input((7, 3))
    x = keras.layers.LSTM(6, return_sequences=bool(layers), kernel_regularizer=regularizer)(inputs)
    for layer in layers:
        x = layer(x)
    model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(x))
    # as seqclf compiles: XLA kept under the deterministic ops an earlier test set
    compile_model(model, optimizer=keras.optimizers.Adam(0.01),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  jit_compile=True, steps_per_execution=4)
    return model


def _batches(rows, batches=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows * batches, 7, 3)).astype("float32")
    y = rng.integers(0, 4, rows * batches)
    w = rng.uniform(0.5, 2.0, rows * batches).astype("float32")
    return x, y, w


def _fit(keras, x, y, w, rows, parts):
    """Weights and history after two epochs in batches of ``rows``, unshuffled."""
    import tensorflow as tf

    from seqclf import split_step

    keras.utils.set_random_seed(1)
    model = _model(keras)
    assert split_step.install(model, parts) is (parts > 1)
    data = tf.data.Dataset.from_tensor_slices((x, y, w)).batch(rows)
    history = model.fit(data, epochs=2, shuffle=False, verbose=0).history
    return [np.asarray(v) for v in model.get_weights()], history


@pytest.mark.parametrize("rows, parts", [(8, 2), (9, 3), (1, 2)])
def test_a_split_batch_trains_as_the_whole_batch(keras, rows, parts):
    """Parts of even and uneven sizes, and a batch with fewer rows than parts, give the
    whole batch's weighted loss, update and metrics, up to rounding."""
    x, y, w = _batches(rows)
    whole, whole_history = _fit(keras, x, y, w, rows, parts=1)
    split, split_history = _fit(keras, x, y, w, rows, parts=parts)
    for a, b in zip(whole, split, strict=True):
        np.testing.assert_allclose(a, b, atol=2e-5)
    for key in ("loss", "accuracy"):
        np.testing.assert_allclose(whole_history[key], split_history[key], rtol=1e-5)


def test_a_split_fit_is_reproducible_and_draws_dropout_per_part(keras, monkeypatch):
    """The same seed gives the same weights again; the parts draw their own dropout
    masks: without the seed offset, two parts of the same rows would train as one of
    them alone."""
    import tensorflow as tf

    from seqclf import split_step

    row = np.random.default_rng(0).normal(size=(1, 7, 3)).astype("float32")

    def fit(rows: int, parts: int) -> list:
        keras.utils.set_random_seed(3)
        model = _model(keras, keras.layers.LSTM(6, dropout=0.5))
        split_step.install(model, parts)
        x, y = np.repeat(row, rows, axis=0), np.zeros(rows, dtype="int64")
        model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(rows), epochs=1,
                  shuffle=False, verbose=0)
        return [np.asarray(v) for v in model.get_weights()]

    def same(a: list, b: list) -> bool:
        return all(np.allclose(u, v, atol=1e-6) for u, v in zip(a, b, strict=True))

    split = fit(8, 2)
    assert all(np.array_equal(u, v) for u, v in zip(split, fit(8, 2), strict=True))
    one_part = fit(4, 1)
    assert not same(split, one_part)
    monkeypatch.setattr(split_step, "PART_SEED_OFFSET", 0)
    assert same(fit(8, 2), one_part)


def test_only_models_of_weights_and_seeds_without_penalties_split(keras):
    from seqclf import split_step

    assert split_step.eligible(_model(keras)) is None
    assert split_step.eligible(_model(keras, keras.layers.Dropout(0.2))) is None
    assert "batch normalization" in split_step.eligible(
        _model(keras, keras.layers.BatchNormalization(), keras.layers.LSTM(6)))
    assert "regularization" in split_step.eligible(
        _model(keras, regularizer=keras.regularizers.L2(0.1)))
    model = _model(keras)
    model.jit_compile = False
    assert split_step.eligible(model) == "it trains without XLA"
    assert split_step.install(model, 2) is False and model.train_function is None


@pytest.mark.parametrize("training, backend, gpus, cores, xla, expected", [
    ({}, "tensorflow", 0, 2, True, 2),
    ({}, "tensorflow", 0, 16, True, 2),
    ({}, "tensorflow", 0, 1, True, 1),  # one core: nothing to run side by side
    ({}, "tensorflow", 0, 2, False, 1),  # parts are XLA programs
    ({}, "tensorflow", 1, 2, True, 1),  # a GPU: unmeasured
    ({}, "jax", 0, 2, True, 1),
    ({"batch_size": 16}, "tensorflow", 0, 2, True, 1),  # parts of 8 rows: unmeasured
    ({"batch_size": 32}, "tensorflow", 0, 2, True, 2),
    ({"batch_parts": 1}, "tensorflow", 0, 2, True, 1),
    ({"batch_parts": 3, "jit_compile": True}, "tensorflow", 0, 2, True, 3),
])
def test_batch_parts_auto_splits_xla_batches_on_a_multi_core_cpu(training, backend, gpus,
                                                                  cores, xla, expected):
    assert batch_parts(_cfg(training), backend, gpus, cores, xla) == expected


def test_a_split_plan_leaves_threads_per_op_to_tensorflow_and_says_so():
    unknown_work = plan(_cfg(), "tensorflow", 0, 2)  # no XLA without known work: whole
    assert (unknown_work.jit_compile, unknown_work.batch_parts) == (False, 1)
    p = plan(_cfg(), "tensorflow", 0, 2, Work(batch_steps=10**6))
    assert (p.jit_compile, p.batch_parts, p.intra_op_threads) == (True, 2, None)
    assert p.line() == ("compute: tensorflow on CPU, XLA, 32 batches per call, each batch in 2 "
                        "parts side by side")
    whole = plan(_cfg({"batch_parts": 1}), "tensorflow", 0, 2, Work(batch_steps=10**6))
    assert (whole.batch_parts, whole.intra_op_threads) == (1, 1)
    assert intra_op_threads("auto", "tensorflow", 0, 2, split=True) is None


@pytest.mark.parametrize("training, expected", [
    ({"batch_parts": 0}, r"training\.batch_parts must be an integer >= 1 or 'auto'\. Got 0 "
     r"instead\."),
    ({"batch_parts": "two"}, r"training\.batch_parts must be an integer >= 1 or 'auto'"),
    ({"batch_parts": 2}, r"training\.batch_parts must be 1 or 'auto' unless "
     r"training\.jit_compile is true on the TensorFlow backend without training\.distribute"),
    ({"batch_parts": 2, "jit_compile": True, "backend": "jax"},
     r"training\.batch_parts must be 1 or 'auto' unless"),
])
def test_batch_parts_is_validated(training, expected):
    with pytest.raises(SeqclfError, match=expected):
        _cfg(training)


def test_batch_parts_on_a_backend_chosen_after_validation_is_refused():
    cfg = _cfg({"batch_parts": 2, "jit_compile": True})
    with pytest.raises(SeqclfError, match=r"training\.batch_parts must be 1 or 'auto' without "
                                          r"XLA on TensorFlow \(each part is an XLA program\)\. "
                                          r"Got 2 instead\."):
        batch_parts(cfg, "jax", 0, 2, xla=True)

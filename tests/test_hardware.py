"""cuDNN eligibility (a pure function of the config), device and precision settings."""

from __future__ import annotations

import pytest

from seqclf.config import validate_config
from seqclf.errors import SeqclfError
from seqclf.model import cudnn_line, cudnn_reasons


def _cfg(model=None, data=None, training=None):
    return validate_config({"data": {"train": "x.csv", **(data or {})}, "model": model or {},
                            "training": training or {}})


@pytest.mark.parametrize("model, data, expected", [
    ({}, {}, []),
    ({"cell": "gru"}, {}, []),
    ({"units": [8, 8], "bidirectional": True, "dropout": 0.3}, {}, []),
    ({"cell": "rnn"}, {}, ["model.cell is 'rnn'"]),
    ({"activation": "relu"}, {}, ["model.activation is 'relu', not 'tanh'"]),
    ({"recurrent_activation": "hard_sigmoid"}, {}, ["model.recurrent_activation is 'hard_sigmoid'"]),
    ({"recurrent_dropout": 0.2}, {}, ["model.recurrent_dropout is 0.2, not 0"]),
    ({"unroll": True}, {}, ["model.unroll is true"]),
    ({"use_bias": False}, {}, ["model.use_bias is false"]),
    ({"cell": "gru", "reset_after": False}, {}, ["model.reset_after is false"]),
    ({"use_cudnn": False}, {}, ["model.use_cudnn is false"]),
    ({}, {"padding": "pre"}, ["data.padding is 'pre'"]),
    ({"masking": False}, {"padding": "pre"}, []),  # no mask: padding side does not matter
    ({"activation": "relu", "unroll": True}, {}, ["model.activation", "model.unroll"]),
])
def test_cudnn_eligibility(model, data, expected):
    reasons = cudnn_reasons(_cfg(model, data))
    assert len(reasons) == len(expected)
    for reason, start in zip(reasons, expected):
        assert reason.startswith(start)


def test_cudnn_line_names_the_reasons_or_the_missing_gpu():
    assert cudnn_line(_cfg(), gpus=1, backend="tensorflow") == "cuDNN kernel: yes"
    assert cudnn_line(_cfg(), gpus=0, backend="tensorflow") == "cuDNN kernel: no GPU"
    assert cudnn_line(_cfg({"unroll": True}), 1, "tensorflow") == "cuDNN kernel: no: model.unroll is true"
    assert cudnn_line(_cfg(), 1, "jax").startswith("cuDNN kernel: no: the Keras backend is 'jax'")


def test_require_cudnn_fails_before_training_without_a_gpu(tmp_path):
    from seqclf.train import setup_hardware

    with pytest.raises(SeqclfError, match="training.require_cudnn is true but the cuDNN kernel "
                                          "would not be used: there is no GPU"):
        setup_hardware(_cfg(training={"require_cudnn": True}))


def test_device_gpu_without_one_is_an_error_and_cpu_is_fine():
    from seqclf.train import setup_hardware

    with pytest.raises(SeqclfError, match="training.device is 'gpu' but no GPU is visible"):
        setup_hardware(_cfg(training={"device": "gpu"}))
    hw = setup_hardware(_cfg(training={"device": "cpu", "mixed_precision": True}))
    assert hw.device == "CPU" and hw.cudnn == "cuDNN kernel: no GPU"
    assert hw.warnings == ["config: training.mixed_precision needs a GPU; training in float32."]


@pytest.mark.parametrize("value", ["yes", 2])
def test_jit_compile_takes_true_false_or_auto(value):
    with pytest.raises(SeqclfError, match="training.jit_compile must be true, false or 'auto'"):
        _cfg(training={"jit_compile": value})

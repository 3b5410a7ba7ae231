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


MIRRORED = """
import json, sys
import tensorflow as tf
if sys.argv[1] == "mirrored":
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from seqclf.config import load_config
from seqclf.train import train
cfg = load_config(sys.argv[2], [f"training.distribute={sys.argv[1]}", "model.units=8",
                                "training.epochs=2", "training.batch_size=64",
                                "training.tensorboard=false"])
result = train(cfg, sys.argv[3])
manifest = json.loads((result.run_dir / "manifest.json").read_text())
print(json.dumps({"replicas": manifest["replicas"], "accuracy": result.evaluation.accuracy,
                  "history": (result.run_dir / "history.csv").read_text()}))
"""


def test_mirrored_over_two_logical_cpus_matches_a_single_device_run(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    config = Path(__file__).resolve().parent.parent / "configs" / "quickstart.yaml"
    out = {}
    for kind in ("none", "mirrored"):
        done = subprocess.run([sys.executable, "-c", MIRRORED, kind, str(config),
                               str(tmp_path / kind)], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        out[kind] = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["none"]["replicas"] == 1 and out["mirrored"]["replicas"] == 2
    import io

    import pandas as pd

    single, mirrored = (pd.read_csv(io.StringIO(out[k]["history"])) for k in ("none", "mirrored"))
    assert single["loss"].to_numpy() == pytest.approx(mirrored["loss"].to_numpy(), rel=1e-4)
    assert out["none"]["accuracy"] == pytest.approx(out["mirrored"]["accuracy"], abs=0.01)


def test_distribute_needs_the_tensorflow_backend():
    from seqclf.backend import distribution

    with pytest.raises(SeqclfError, match="training.distribute is 'mirrored', which runs on "
                                          "TensorFlow's tf.distribute"):
        import unittest.mock as mock

        with mock.patch("seqclf.backend.keras") as k:
            k.return_value.backend.backend.return_value = "jax"
            distribution("mirrored", "config")

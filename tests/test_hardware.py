"""cuDNN eligibility (a pure function of the config), device and precision settings."""

from __future__ import annotations

import dataclasses
import os

import pytest

from seqclf.config import validate_config
from seqclf.errors import SeqclfError
from seqclf.compute import Work, cudnn_reasons, plan


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


def cudnn_line(cfg, gpus, backend):
    return plan(cfg, backend, gpus, cores=2).cudnn_line()


def test_cudnn_line_names_the_reasons_or_the_missing_gpu():
    assert cudnn_line(_cfg(), gpus=1, backend="tensorflow") == "cuDNN kernel: yes"
    assert cudnn_line(_cfg(), gpus=0, backend="tensorflow") == "cuDNN kernel: no GPU"
    assert cudnn_line(_cfg({"unroll": True}), 1, "tensorflow") == "cuDNN kernel: no: model.unroll is true"
    assert cudnn_line(_cfg(), 1, "jax").startswith("cuDNN kernel: no: the Keras backend is 'jax'")
    # training.device: cpu hides the GPU from the plan
    assert cudnn_line(_cfg(training={"device": "cpu"}), 1, "tensorflow") == "cuDNN kernel: no GPU"


def _gpus() -> int:
    from seqclf.backend import devices

    return len(devices())


def test_require_cudnn_fails_before_training_when_cudnn_would_not_run(tmp_path):
    """Without a GPU, for want of one; on a GPU machine, for a config cuDNN cannot run."""
    from seqclf.compute import setup as setup_hardware

    why = "model.unroll is true" if _gpus() else "there is no GPU"
    with pytest.raises(SeqclfError, match="training.require_cudnn is true but the cuDNN kernel "
                                          f"would not be used: {why}"):
        setup_hardware(_cfg({"unroll": True}, training={"require_cudnn": True}))


def test_device_gpu_needs_one_and_cpu_is_always_fine():
    from seqclf.compute import setup as setup_hardware

    if _gpus():
        assert setup_hardware(_cfg(training={"device": "gpu"})).device == "GPU"
    else:
        with pytest.raises(SeqclfError, match="training.device is 'gpu' but no GPU is visible"):
            setup_hardware(_cfg(training={"device": "gpu"}))
    hw = setup_hardware(_cfg(training={"device": "cpu", "mixed_precision": True}))
    assert hw.device == "CPU" and hw.cudnn == "cuDNN kernel: no GPU"
    assert hw.warnings == ["config: training.mixed_precision needs a GPU; training in float32."]


@pytest.mark.parametrize("value", ["yes", 2])
def test_jit_compile_takes_true_false_or_auto(value):
    with pytest.raises(SeqclfError, match="training.jit_compile must be true, false or 'auto'"):
        _cfg(training={"jit_compile": value})



TUTORIAL_30_EPOCHS = 30 * 28 * 49  # epochs x batches of 50 of 1395 sequences x steps


@pytest.mark.parametrize("model, training, backend, gpu, work, expected", [
    ({"units": 50}, {}, "tensorflow", False, (TUTORIAL_30_EPOCHS, False), True),
    ({"units": [50, 50]}, {}, "tensorflow", False, (20_000, False), True),
    ({"units": 50}, {}, "tensorflow", False, (19_999, False), False),  # does not repay XLA
    ({"units": 50}, {}, "tensorflow", False, (5_000, True), True),  # compiled before: cheap
    ({"units": 50}, {}, "tensorflow", False, (4_999, True), False),
    ({"units": 50}, {}, "tensorflow", False, None, False),  # no data: no work known
    ({"units": [64, 128]}, {}, "tensorflow", False, (10**6, False), False),  # a wide layer
    ({"units": 50}, {}, "tensorflow", True, (10**6, False), "auto"),  # GPU: Keras decides
    ({"units": 50}, {}, "jax", False, (10**6, False), "auto"),
    ({"units": 50, "family": "conv_recurrent"}, {}, "tensorflow", False, (10**6, False), False),
    ({"units": 50}, {"distribute": "mirrored"}, "tensorflow", False, (10**6, False), False),
    ({"units": 50}, {"jit_compile": False}, "tensorflow", False, (10**6, False), False),
    ({"units": 256}, {"jit_compile": True}, "tensorflow", False, None, True),
])
def test_jit_compile_auto_is_xla_where_the_work_repays_the_compile_on_a_tensorflow_cpu(
        model, training, backend, gpu, work, expected):
    from seqclf.compute import jit_compile

    work = Work(*work) if work else None
    assert jit_compile(_cfg(model=model, training=training), backend, gpu, work) is expected


def test_workload_counts_batch_steps_and_finds_a_model_compiled_before(tmp_path, monkeypatch):
    from seqclf.compute import Plan, remember_compiled, workload
    from seqclf.data import Preprocessor

    monkeypatch.setenv("SEQCLF_CACHE_DIR", str(tmp_path / "cache"))
    cfg = _cfg(model={"units": 50}, training={"epochs": 30, "batch_size": 50})
    prep = Preprocessor(feature_names=["x"], classes=list(range(46)), majority_class=3,
                        max_length=49)
    assert workload(cfg, prep, 1395) == Work(TUTORIAL_30_EPOCHS, False)
    ran = Plan("tensorflow", 0, 2, True, 32, 1, ())
    remember_compiled(dataclasses.replace(ran, jit_compile=False), cfg, prep)  # no XLA
    assert not workload(cfg, prep, 1395).compiled_before
    remember_compiled(ran, cfg, prep)
    assert workload(cfg, prep, 1395).compiled_before
    assert workload(cfg, prep, 10).compiled_before  # data size does not change the program
    other = _cfg(model={"units": 50}, training={"epochs": 30, "batch_size": 32})
    assert not workload(other, prep, 1395).compiled_before  # another batch shape
    monkeypatch.setenv("SEQCLF_CACHE_DIR", "")  # no cache: never compiled before
    remember_compiled(ran, cfg, prep)
    assert not workload(cfg, prep, 1395).compiled_before


def test_cache_dir_is_per_backend_version_and_cpu_and_off_when_set_empty(tmp_path, monkeypatch):
    from seqclf.backend import cache_dir

    monkeypatch.delenv("SEQCLF_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = cache_dir("tensorflow")
    assert folder.startswith(str(tmp_path / "seqclf" / "tensorflow-2."))
    assert cache_dir("torch") is None  # no persistent compile cache seqclf uses
    monkeypatch.setenv("SEQCLF_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_dir("tensorflow").startswith(str(tmp_path / "mine" / "tensorflow-"))
    monkeypatch.setenv("SEQCLF_CACHE_DIR", "")
    assert cache_dir("tensorflow") is None


def test_tensorflow_gets_the_xla_cache_flag_unless_the_user_set_one(tmp_path, monkeypatch):
    from seqclf.backend import XLA_CACHE_FLAG, _use_compile_cache, cache_dir

    monkeypatch.setenv("SEQCLF_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("TF_XLA_FLAGS", "--tf_xla_auto_jit=0")
    _use_compile_cache("tensorflow")
    assert os.environ["TF_XLA_FLAGS"] == (f"--tf_xla_auto_jit=0 {XLA_CACHE_FLAG}="
                                          f"{cache_dir('tensorflow')}")
    assert os.path.isdir(cache_dir("tensorflow"))
    mine = f"{XLA_CACHE_FLAG}=/elsewhere"
    monkeypatch.setenv("TF_XLA_FLAGS", mine)
    _use_compile_cache("tensorflow")
    assert os.environ["TF_XLA_FLAGS"] == mine
    monkeypatch.delenv("TF_XLA_FLAGS")
    monkeypatch.setenv("SEQCLF_CACHE_DIR", "")
    _use_compile_cache("tensorflow")
    assert "TF_XLA_FLAGS" not in os.environ


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


@pytest.mark.slow
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


@pytest.mark.parametrize("kind", ["mirrored", "multi_worker"])
def test_distribute_needs_the_tensorflow_backend(kind):
    import unittest.mock as mock

    from seqclf.distributed import distribution

    with mock.patch("seqclf.backend.keras") as k:
        k.return_value.backend.backend.return_value = "jax"
        with pytest.raises(SeqclfError) as info:
            distribution(kind, "c.yaml")
    assert str(info.value) == (
        "c.yaml: training.distribute must be 'none' on the 'jax' Keras backend (it runs on "
        "TensorFlow's tf.distribute; use training.backend: tensorflow). "
        f"Got {kind!r} instead.")


# --- training.distribute: multi_worker ----------------------------------------------------

def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tf_config(workers: list[str], index: int, kind: str = "worker") -> str:
    import json

    return json.dumps({"cluster": {"worker": workers}, "task": {"type": kind, "index": index}})


@pytest.mark.slow
def test_multi_worker_two_local_processes_train_like_one_process(tmp_path):
    """Two `seqclf train` processes on 127.0.0.1 form a MultiWorkerMirroredStrategy
    cluster and train like a single process with the same global batch: the same loss
    history (no shuffling, so the batches are the same), one complete run directory
    written by the chief and nothing left by the other worker."""
    import json
    import os
    import subprocess
    import sys

    import pandas as pd

    from conftest import long_frame, write_config, write_csv

    write_csv(tmp_path / "train.csv", long_frame(60, seed=0))
    config = write_config(tmp_path / "mw.yaml", {
        "data": {"train": "train.csv", "format": "long", "test_split": 0.25},
        "model": {"units": 4},
        "training": {"epochs": 2, "batch_size": 8, "seed": 1, "shuffle": False,
                     "validation_split": 0.2, "class_weight": "balanced",
                     "early_stopping": {"monitor": "val_loss", "patience": 5},
                     "tensorboard": False}})
    addresses = [f"127.0.0.1:{_free_port()}" for _ in range(2)]
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", "SEQCLF_DEBUG")}
    scratch = tmp_path / "worker-tmp"  # the non-chief's temporary directory lives here
    scratch.mkdir()
    commands = {
        "chief": ({**env, "TF_CONFIG": _tf_config(addresses, 0)}, "multi_worker"),
        "worker": ({**env, "TF_CONFIG": _tf_config(addresses, 1), "TMPDIR": str(scratch)},
                   "multi_worker"),
        "single": (env, "none"),
    }
    procs = {name: subprocess.Popen(
        [sys.executable, "-m", "seqclf.cli", "train", str(config), "--quiet",
         "--output-dir", str(tmp_path / name), "--set", f"training.distribute={kind}"],
        env=run_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, (run_env, kind) in commands.items()}
    out = {}
    try:
        for name, proc in procs.items():
            out[name] = proc.communicate(timeout=240)  # a hung collective fails the test
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    for name, proc in procs.items():
        assert proc.returncode == 0, f"{name}: {out[name][1][-3000:]}"

    chief_runs = list((tmp_path / "chief").iterdir())
    assert len(chief_runs) == 1
    run = chief_runs[0]
    assert not (run / "INCOMPLETE").exists() and not (run / "backup").exists()
    for name in ("model.keras", "history.csv", "metrics.json", "preprocessing.json",
                 "config.yaml", "confusion_matrix.png", "training_curves.png"):
        assert (run / name).is_file(), name
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["distribute"] == "multi_worker"
    assert manifest["workers"] == 2 and manifest["replicas"] == 2
    assert not (tmp_path / "worker").exists() and list(scratch.iterdir()) == []
    assert "not the chief: the chief writes the run directory" in out["worker"][1]
    assert "run directory: none on this worker" in out["worker"][0]
    assert f"run directory: {run}" in out["chief"][0]

    single_run = next((tmp_path / "single").iterdir())
    assert json.loads((single_run / "manifest.json").read_text())["workers"] == 1
    multi, single = (pd.read_csv(r / "history.csv") for r in (run, single_run))
    assert list(multi["epoch"]) == [1, 2]
    for column in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert multi[column].to_numpy() == pytest.approx(single[column].to_numpy(), rel=1e-4)
    # The chief's saved model is the trained one: it scores the same as the worker's copy.
    accuracy = json.loads((run / "metrics.json").read_text())["test"]["accuracy"]
    assert f"test accuracy {accuracy:.4f}" in out["worker"][0]


@pytest.mark.parametrize("value, expected", [
    (None, "TF_CONFIG environment variable must be JSON such as {\"cluster\": {\"worker\": "
     "[\"host1:12345\", \"host2:12345\"]}, \"task\": {\"type\": \"worker\", \"index\": 0}} "
     "when training.distribute is 'multi_worker'. Got nothing instead."),
    ("", "Got '' instead."),
    ("{cluster: 1}", "(valid JSON). Got '{cluster: 1}' instead."),
    ('{"task": {"type": "worker", "index": 0}}', "TF_CONFIG environment variable's 'cluster' "
     "must be a mapping of task types to lists of 'host:port' addresses. Got None instead."),
    ('{"cluster": {"worker": ["a:1"], "ps": ["b:2"]}, "task": {"type": "worker", "index": 0}}',
     "cluster task type must be 'chief' or 'worker'"),
    ('{"cluster": {"worker": ["a:1", "b"]}, "task": {"type": "worker", "index": 0}}',
     "cluster.worker must be a non-empty list of 'host:port' addresses. Got ['a:1', 'b'] "
     "instead."),
    ('{"cluster": {"worker": ["a:1", "b:2"]}}', "task.type must be one of the cluster's task "
     "types, ['worker']. Got None instead."),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}',
     "task.index must be an integer from 0 to 1 (a position in cluster.worker). Got 2 "
     "instead."),
    ('{"cluster": {"chief": ["a:1", "c:3"], "worker": ["b:2"]}, "task": {"type": "worker", '
     '"index": 0}}', "cluster.chief must be a list of one address."),
])
def test_tf_config_errors_name_the_variable(monkeypatch, value, expected):
    from seqclf.distributed import cluster_spec

    if value is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", value)
    with pytest.raises(SeqclfError) as info:
        cluster_spec("c.yaml")
    message = str(info.value)
    assert message.startswith("c.yaml: the TF_CONFIG environment variable") and "\n" not in message
    assert expected in message and message.endswith(" instead.")


@pytest.mark.parametrize("cluster, task, chief", [
    ({"worker": ["a:1", "b:2"]}, ("worker", 0), True),
    ({"worker": ["a:1", "b:2"]}, ("worker", 1), False),
    ({"chief": ["c:3"], "worker": ["a:1", "b:2"]}, ("worker", 0), False),
    ({"chief": ["c:3"], "worker": ["a:1"]}, ("chief", 0), True),
])
def test_the_chief_is_task_chief_or_else_worker_0(monkeypatch, cluster, task, chief):
    import json

    from seqclf.distributed import cluster_spec

    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {
        "type": task[0], "index": task[1]}}))
    spec = cluster_spec()
    assert spec["chief"] is chief
    assert spec["workers"] == sum(len(a) for a in cluster.values())


@pytest.mark.parametrize("training, model, expected", [
    ({"repeats": 3}, {}, "training.repeats must be 1 when training.distribute is "
     "'multi_worker' (run each seed as its own command). Got 3 instead."),
    ({"steps_per_execution": 4}, {}, "training.steps_per_execution must be 1 or 'auto' when "
     "training.distribute is 'multi_worker'"),
    ({}, {"stateful": True}, "model.stateful must be false when training.distribute is "
     "'multi_worker'. Got True instead."),
])
def test_multi_worker_config_conflicts(training, model, expected):
    with pytest.raises(SeqclfError) as info:
        _cfg(model, training={"distribute": "multi_worker", **training})
    assert expected in str(info.value)


def test_distribute_lists_its_values():
    with pytest.raises(SeqclfError, match="training.distribute must be one of: 'none', "
                                          "'mirrored', 'multi_worker'"):
        _cfg(training={"distribute": "multiworker"})


def test_train_without_tf_config_is_a_one_line_error(monkeypatch, long_data):
    from typer.testing import CliRunner

    from seqclf.cli import app

    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.delenv("SEQCLF_DEBUG", raising=False)
    result = CliRunner().invoke(app, ["train", str(long_data / "tiny.yaml"), "--quiet",
                                      "--set", "training.distribute=multi_worker"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith(f"error: {long_data / 'tiny.yaml'}: the TF_CONFIG environment "
                                "variable must be JSON")
    assert lines[-1].endswith("Got nothing instead.")


def test_a_multi_worker_run_is_not_resumed(tmp_path):
    from seqclf.config import validate_config
    from seqclf.train import resume

    run = tmp_path / "run"
    run.mkdir()
    (run / "INCOMPLETE").write_text("")
    (run / "preprocessing.json").write_text("{}")
    cfg = validate_config({"data": {"train": "x.csv"},
                           "training": {"distribute": "multi_worker"}})
    (run / "config.yaml").write_text(cfg.to_yaml())
    with pytest.raises(SeqclfError, match=f"^{run}: a training.distribute 'multi_worker' run "
                                          "cannot be resumed"):
        resume(run)


SHARDS = """
import json, sys
import numpy as np
from seqclf.backend import set_seed
from seqclf.distributed import _distributed, strategy
strat = strategy()
set_seed(0)
ds = _distributed(strat, np.zeros((20, 1, 1), np.float32), np.arange(20), None, 8, True, 0)
print(json.dumps([[int(v) for batch in ds for part in strat.experimental_local_results(batch[1])
                   for v in part.numpy()] for epoch in range(2)]))
"""


@pytest.mark.slow
def test_multi_worker_shuffled_epochs_split_the_data_between_workers(tmp_path):
    """Each epoch, the workers' shares of the (reshuffled) data are disjoint and together
    hold every sequence once: both draw the same order and keep different elements."""
    import json
    import os
    import subprocess
    import sys

    addresses = [f"127.0.0.1:{_free_port()}" for _ in range(2)]
    env = {k: v for k, v in os.environ.items() if k != "SEQCLF_DEBUG"}
    procs = [subprocess.Popen([sys.executable, "-c", SHARDS], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              env={**env, "TF_CONFIG": _tf_config(addresses, i)})
             for i in range(2)]
    out = []
    try:
        out = [proc.communicate(timeout=120) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert all(proc.returncode == 0 for proc in procs), [err[-2000:] for _, err in out]
    seen = [json.loads(stdout.strip().splitlines()[-1]) for stdout, _ in out]
    for epoch in range(2):
        assert sorted(seen[0][epoch] + seen[1][epoch]) == list(range(20))
    assert seen[0][0] != seen[0][1]  # reshuffled each epoch



@pytest.mark.parametrize("training, backend, xla, expected", [
    ({}, "tensorflow", True, 32),
    ({}, "tensorflow", False, 1),  # slower at 2 x LSTM(128) without XLA
    ({}, "jax", True, 32),
    ({}, "torch", False, 1),
    ({"distribute": "mirrored"}, "tensorflow", False, 1),
    ({"steps_per_execution": 8}, "tensorflow", False, 8),
])
def test_steps_per_execution_auto_follows_the_backend_and_xla(training, backend, xla, expected):
    from seqclf.compute import steps_per_execution

    assert steps_per_execution(_cfg(training=training), backend, xla) == expected


@pytest.mark.slow
def test_xla_model_compiles_with_xla_and_trains_reproducibly(long_data):
    """Under seqclf's deterministic ops a model still compiles with XLA, its short last
    batch is padded to full size (one batch shape, one compile), and the same seed gives
    the same losses."""
    from seqclf.config import load_config
    from seqclf.compute import setup as setup_hardware
    from seqclf.fitting import fit_model
    from seqclf.prepare import prepare

    cfg = load_config(long_data / "tiny.yaml", ["training.jit_compile=true",
                                                "training.batch_size=16", "training.epochs=2"])
    d = prepare(cfg)
    hardware = setup_hardware(cfg, d.work())
    assert len(d.x_train) % 16
    losses = []
    for _ in range(2):
        record = {}
        model, _, _ = fit_model(cfg, d, hardware, record=record)
        assert model.jit_compile is True  # after the prediction step was made without XLA
        assert record["last_batch_padding"] == (-len(d.x_train)) % 16
        losses.append(model.history.history["loss"])
    assert losses[0] == losses[1]


@pytest.mark.parametrize("epochs, made_while_training", [(1, False), (3, True)])
def test_prediction_step_is_made_while_training_from_the_second_epoch(
        long_data, epochs, made_while_training):
    """From the second epoch a background thread traces the prediction step in the
    batches predictions come in, so predicting after the fit traces nothing more and
    gives what the model computes; the first epoch runs alone."""
    import numpy as np

    from seqclf.compute import setup as setup_hardware
    from seqclf.config import load_config
    from seqclf.fitting import fit_model
    from seqclf.model import predict_proba
    from seqclf.prepare import prepare

    cfg = load_config(long_data / "tiny.yaml", [f"training.epochs={epochs}",
                                                "training.batch_size=16"])
    d = prepare(cfg)
    model, _, _ = fit_model(cfg, d, setup_hardware(cfg, d.work()))
    assert (model.predict_function is not None) is made_while_training
    proba = predict_proba(model, d.x_train, cfg)
    assert model.predict_function.experimental_get_tracing_count() == 1
    np.testing.assert_allclose(proba, np.asarray(model(d.x_train, training=False)), atol=1e-6)


def test_the_prediction_warm_up_leaves_training_as_it_is(long_data, monkeypatch):
    """Tracing the prediction step during training draws no random numbers: the same
    seed gives the same weights with the warm-up as without it (running the step would
    advance the LSTM's dropout seed at a point that depends on the threads' timing)."""
    import numpy as np

    from seqclf import fitting
    from seqclf.compute import setup as setup_hardware
    from seqclf.config import load_config
    from seqclf.prepare import prepare

    cfg = load_config(long_data / "tiny.yaml", ["training.epochs=3", "training.batch_size=16",
                                                "model.dropout=0.3"])
    d = prepare(cfg)

    def weights() -> list:
        model, _, _ = fitting.fit_model(cfg, d, setup_hardware(cfg, d.work()))
        return [np.asarray(w) for w in model.get_weights()]

    with_warm_up = weights()
    monkeypatch.setattr(fitting, "prediction_warmup",
                        lambda k, batch: k.callbacks.Callback())
    for a, b in zip(with_warm_up, weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def _batches(source):
    """One epoch of ``full_batches``'s batches as NumPy tuples: a tf.data dataset's, or a
    PyDataset's (then its epoch ends, as Keras ends it)."""
    import numpy as np

    if not hasattr(source, "on_epoch_end"):
        return [tuple(t.numpy() for t in batch) for batch in source]
    batches = [tuple(np.asarray(t) for t in source[i]) for i in range(len(source))]
    source.on_epoch_end()
    return batches


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])  # tf.data; a PyDataset
def test_full_batches_hold_every_row_once_an_epoch_in_full_batches(keras, backend):
    import numpy as np

    from seqclf.fitting import full_batches

    def make(**kwargs):
        return full_batches(x, y, None, 5, seed=1, backend=backend, **kwargs)

    x = np.arange(23, dtype=np.float32).reshape(23, 1, 1)
    y = np.arange(23) % 3
    dataset = make(shuffle=True)
    epochs = [_batches(dataset) for _ in range(2)]
    for batches in epochs:
        assert [len(b[0]) for b in batches] == [5] * 5
        real = np.concatenate([b[0][b[2] > 0, 0, 0] for b in batches])
        assert sorted(real.tolist()) == list(range(23))  # every row once, none twice
        assert [int((b[2] == 0).sum()) for b in batches] == [0, 0, 0, 0, 2]
        assert all(np.array_equal(b[1], b[0][:, 0, 0].astype(int) % 3) for b in batches)
    assert not np.array_equal(epochs[0][0][0], epochs[1][0][0])  # reshuffled each epoch
    again = _batches(make(shuffle=True))
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(again, epochs[0]))  # seeded
    ordered = _batches(make(shuffle=False))
    assert ordered[0][0][:, 0, 0].tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
@pytest.mark.parametrize("class_weights", [None, [1.0, 3.0, 0.5]])
def test_a_padded_last_batch_has_the_loss_of_the_unpadded_one(keras, class_weights, backend):
    """Keras divides a batch's weighted loss by its size: the real rows' weights are
    scaled so that the padded batch's loss (and gradient) is the short batch's."""
    import numpy as np

    from seqclf.fitting import full_batches

    rng = np.random.default_rng(0)
    x = rng.normal(size=(13, 4, 2)).astype(np.float32)
    y = rng.integers(0, 3, size=13)
    w = None if class_weights is None else np.array(class_weights)[y]
    *_, (xb, yb, wb) = _batches(full_batches(x, y, w, 8, shuffle=False, seed=0,
                                             backend=backend))
    assert (len(xb), int((wb > 0).sum())) == (8, 5)
    proba = keras.ops.softmax(rng.normal(size=(8, 3)).astype(np.float32))
    loss = keras.losses.SparseCategoricalCrossentropy()
    short = loss(yb[:5], proba[:5], sample_weight=None if w is None else w[8:])
    assert float(loss(yb, proba, sample_weight=wb)) == pytest.approx(float(short), rel=1e-6)


@pytest.mark.parametrize("backend, jit, model, training, n, expected", [
    ("tensorflow", True, {}, {"batch_size": 50}, 1395, 5),
    ("jax", True, {}, {"batch_size": 50}, 1395, 5),
    ("torch", True, {}, {"batch_size": 50}, 1395, 0),  # not measured there
    ("tensorflow", True, {}, {"batch_size": 50}, 1400, 0),  # whole batches already
    ("tensorflow", True, {}, {"batch_size": 50}, 45, 0),  # one batch: one shape
    ("tensorflow", False, {}, {"batch_size": 50}, 1395, 0),  # without XLA a new shape costs little
    ("tensorflow", True, {"stateful": True}, {"batch_size": 50, "shuffle": False}, 1395, 0),
])
def test_the_last_batch_is_padded_under_xla_only(keras, monkeypatch, backend, jit, model,
                                                  training, n, expected):
    from types import SimpleNamespace

    from seqclf.fitting import last_batch_padding

    monkeypatch.setattr(keras.backend, "backend", lambda: backend)
    cfg = _cfg(model=model, training=training)
    assert last_batch_padding(SimpleNamespace(jit_compile=jit), cfg, n) == expected


INTRA_OP = """
import sys
import tensorflow as tf
from seqclf.backend import cpu_cores
from seqclf.compute import intra_op_threads, setup as setup_hardware
from seqclf.config import load_config
from seqclf.errors import SeqclfError
print(setup_hardware(load_config(sys.argv[1])).plan.intra_op_threads,  # auto, the default
      intra_op_threads("auto", "tensorflow", 0, cpu_cores()))
cfg = load_config(sys.argv[1], ["training.intra_op_threads=1"])
setup_hardware(cfg)
print(setup_hardware(cfg).plan.intra_op_threads)  # a second run with the same setting is fine
tf.constant(1.0) + 1.0  # TensorFlow's runtime starts
setup_hardware(load_config(sys.argv[1]))  # auto keeps what runs
try:
    setup_hardware(load_config(sys.argv[1], ["training.intra_op_threads=2"]))
except SeqclfError as exc:
    print(exc)
"""


@pytest.mark.slow
def test_intra_op_threads_is_set_before_tensorflow_starts_and_refused_after(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    config = Path(__file__).resolve().parent.parent / "configs" / "quickstart.yaml"
    done = subprocess.run([sys.executable, "-c", INTRA_OP, str(config)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert done.returncode == 0, done.stderr[-2000:]
    auto, expected = done.stdout.strip().splitlines()[-3].split()
    assert auto == expected
    assert done.stdout.strip().splitlines()[-2:] == [
        "1", f"{config}: training.intra_op_threads can only be set before TensorFlow starts "
             "in a process, and it runs with 1 already. Run it in a new process."]


@pytest.mark.parametrize("backend, gpus, cores, expected", [
    ("tensorflow", 0, 1, 1), ("tensorflow", 0, 2, 1), ("tensorflow", 0, 3, None),
    ("tensorflow", 1, 2, None), ("jax", 0, 2, None), ("torch", 0, 2, None),
])
def test_intra_op_threads_auto_is_one_only_for_tensorflow_on_few_cpu_cores(
        backend, gpus, cores, expected):
    from seqclf.compute import intra_op_threads

    assert intra_op_threads("auto", backend, gpus, cores) == expected
    assert intra_op_threads(3, backend, gpus, cores) == 3  # a count as it is
    assert intra_op_threads(None, backend, gpus, cores) is None


@pytest.mark.parametrize("training, expected", [
    ({"intra_op_threads": 0}, r"training\.intra_op_threads must be an integer >= 1, 'auto' or "
     r"null\. Got 0 instead\."),
    ({"intra_op_threads": True}, r"training\.intra_op_threads must be an integer >= 1"),
    ({"intra_op_threads": "many"}, r"training\.intra_op_threads must be an integer >= 1"),
    ({"intra_op_threads": 2, "backend": "jax"}, r"training\.intra_op_threads must be 'auto' or "
     r"null when training\.backend is 'jax' \(a TensorFlow setting\)\. Got 2 instead\."),
])
def test_intra_op_threads_is_validated(training, expected):
    with pytest.raises(SeqclfError, match=expected):
        _cfg(training=training)

"""Training on the other Keras 3 backends (training.backend), in fresh processes."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from seqclf.errors import SeqclfError

ROOT = Path(__file__).resolve().parent.parent
TINY = ["model.units=8", "training.epochs=2", "training.batch_size=128"]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_train_and_evaluate_on_another_backend(tmp_path, backend):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed (pip install {backend})")
    args = [sys.executable, "-m", "seqclf", "train", str(ROOT / "configs/quickstart.yaml"),
            "--output-dir", str(tmp_path), "-q", f"--set=training.backend={backend}",
            *[f"--set={s}" for s in TINY]]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    run_dir = next(tmp_path.iterdir())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["backend"] == backend
    accuracy = json.loads((run_dir / "metrics.json").read_text())["test"]["accuracy"]
    done = subprocess.run([sys.executable, "-m", "seqclf", "evaluate", str(run_dir), "--json"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["accuracy"] == pytest.approx(accuracy)


@pytest.mark.slow
def test_a_second_backend_in_one_process_is_a_clear_error():
    from seqclf.backend import keras

    active = keras().backend.backend()
    other = "jax" if active != "jax" else "torch"
    with pytest.raises(SeqclfError, match=f"training.backend is '{other}' but Keras already "
                                          f"runs on '{active}' in this process"):
        keras(other)


JAX_WITHOUT_TENSORFLOW = """
import json, sys
from seqclf.config import load_config
from seqclf.evaluate import evaluate
from seqclf.train import train
overrides = ["training.backend=jax", *sys.argv[3:]]
first = train(load_config(sys.argv[1], overrides), sys.argv[2])
evaluate(first.run_dir)
loaded = "tensorflow" in sys.modules
second = train(load_config(sys.argv[1], overrides), sys.argv[2])
manifest = json.loads((first.run_dir / "manifest.json").read_text())
print(json.dumps({"tensorflow": loaded, "logs": (first.run_dir / "tensorboard").exists(),
                  "padded": manifest["compute"]["last_batch_padding"] > 0,
                  "same": first.evaluation.accuracy == second.evaluation.accuracy and
                          [line.split(",")[:3] for line in
                           (first.run_dir / "history.csv").read_text().splitlines()] ==
                          [line.split(",")[:3] for line in
                           (second.run_dir / "history.csv").read_text().splitlines()]}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("tensorboard", ["auto", "true"])
def test_a_jax_run_imports_tensorflow_only_for_tensorboard_logs_asked_for(tmp_path, tensorboard):
    """Keras imports TensorFlow (7-10 s) on JAX to seed it and to save a model whenever it
    is installed; seqclf keeps it out unless TensorBoard logs are asked for (the padded
    last batch included), and the same seed still gives the same training."""
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed (pip install jax)")
    done = subprocess.run([sys.executable, "-c", JAX_WITHOUT_TENSORFLOW,
                           str(ROOT / "configs/quickstart.yaml"), str(tmp_path),
                           *TINY, f"training.tensorboard={tensorboard}"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    # "padded": the short last batch topped up (a PyDataset on JAX: no TensorFlow import)
    assert out == {"tensorflow": tensorboard == "true", "logs": tensorboard == "true",
                   "padded": True, "same": True}


JAX_BUILD_TWICE = """
import time
from seqclf.backend import keras
k = keras("jax")
started = time.perf_counter()
inputs = k.Input((49, 1))
hidden = k.layers.LSTM(50)(k.layers.Masking()(inputs))
k.Model(inputs, k.layers.Dense(46, activation="softmax")(hidden))
print(time.perf_counter() - started)
"""


@pytest.mark.slow
def test_jax_keeps_even_quick_compiles_in_the_cache(tmp_path):
    """A model's build on JAX compiles a program per initializer op, each under JAX's own
    one-second threshold for caching: seqclf keeps them, so the next process builds
    from the cache."""
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed (pip install jax)")
    env = {**os.environ, "SEQCLF_CACHE_DIR": str(tmp_path)}
    env.pop("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", None)
    seconds = []
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", JAX_BUILD_TWICE], capture_output=True,
                              text=True, timeout=300, env=env)
        assert done.returncode == 0, done.stderr
        seconds.append(float(done.stdout.strip().splitlines()[-1]))
    (folder,) = [p for p in tmp_path.iterdir() if p.name.startswith("jax-")]
    assert len(list(folder.iterdir())) >= 10  # the initializers' programs, not just fit's
    assert seconds[1] < seconds[0]

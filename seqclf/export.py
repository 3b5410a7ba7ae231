"""``seqclf export``: a trained run as an inference artifact, checked before it is kept.

The export directory holds the model (``model.onnx`` for ONNX, ``saved_model/`` for a
TensorFlow SavedModel) and ``preprocessing.json``: the run's preprocessing state (label
list, padding length and side, pad value, scaling statistics), the model's input and
output, the run's decision threshold (``decision``; null: the most probable class), the
steps that turn raw sequences into the input and the output into a label
(``how_to_apply``), and the parity measured at export. Applying it needs numpy and the model's runtime alone (see
README, "Deploy").

Right after writing the model, the exported model (onnxruntime, or TensorFlow for a
SavedModel) and the Keras model both run on the run's test data (or ``--data``): the
predicted labels (by the run's decision rule) must be identical and the probabilities within ``TOLERANCE``, or
nothing is written.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seqclf import __version__, outputs, probability, runs
from seqclf.errors import SeqclfError, must_be

MODEL_FILES = {"onnx": "model.onnx", "savedmodel": "saved_model"}
SIDECAR = "preprocessing.json"
TOLERANCE = 1e-4  # largest allowed |exported - Keras| class probability
ONNX_PACKAGES = ("onnx", "onnxruntime", "tf2onnx")
BATCH = 256
HOW_TO_APPLY = [  # in the order of seqclf.data.Preprocessor.transform
    "Start from each sequence as a (steps, features) array, features in the order of "
    "preprocessing.feature_names.",
    "A sequence longer than preprocessing.max_length keeps its first max_length steps "
    "when truncating is 'post', its last when 'pre'.",
    "When scaling is 'per_sequence', bring each feature of the sequence to mean 0 and "
    "standard deviation 1 over its steps (a feature whose standard deviation is at most "
    "1e-10 times its largest absolute value becomes 0).",
    "Then every step becomes (value - preprocessing.center) / preprocessing.scale, per "
    "feature (center 0 and scale 1 unless scaling is 'standard' or 'minmax').",
    "Pad to max_length steps with preprocessing.pad_value in every feature, after the "
    "sequence when padding is 'post', before it when 'pre'. The model masks steps whose "
    "features all equal pad_value, so padding never changes a prediction.",
    "Token input (preprocessing.vocab_size set): one feature of whole token ids from 1 "
    "to vocab_size - 1, no scaling, padded with 0; the input is (sequences, max_length).",
    "Stack the sequences into an array of input.dtype and input.shape and run the model: "
    "row i of the output holds the probability of each class in classes, in that order.",
    "The predicted label: when decision is null, classes[argmax]; else (two classes, a "
    "training.threshold chosen on validation data) decision.positive_class (classes[1]) "
    "where its probability is at least decision.threshold, else decision.negative_class "
    "(classes[0]).",
]


@dataclass
class ExportResult:
    """What ``export`` wrote and the parity it measured.

    Attributes:
        path: The export directory.
        model_path: The model file (ONNX) or SavedModel directory in it.
        source: The data parity was measured on.
        n: Sequences in that data.
        max_abs_diff: Largest |exported - Keras| class probability.
    """

    path: Path
    model_path: Path
    source: str
    n: int
    max_abs_diff: float


def export(run_dir: str | Path, fmt: str, output: str | Path,
           data: str | Path | None = None) -> ExportResult:
    """Export a finished run as ONNX or a SavedModel, with its preprocessing beside it.

    Args:
        run_dir: A finished run directory (``seqclf train`` or ``SequenceClassifier.save``).
        fmt: ``onnx`` or ``savedmodel``.
        output: The export directory to create (it must not exist).
        data: A CSV in the run's layout to check parity on; default: the run's test data.

    Raises:
        SeqclfError: A bad format or output, missing packages, a stateful or mixed-
            precision model (ONNX), unreadable data, or parity beyond ``TOLERANCE``.
    """
    from seqclf.evaluate import read_data
    from seqclf.model import predict_proba

    if fmt not in MODEL_FILES:
        raise must_be("seqclf export", "--format", "one of: onnx, savedmodel", fmt)
    run = runs.open_run(run_dir)
    output = Path(output)
    if outputs.is_stdout(output):
        raise must_be("seqclf export", "--output", "a directory to create (standard output "
                      "cannot hold one)", str(output))
    if output.exists() or output.is_symlink():
        raise SeqclfError(f"{output}: already exists; an export never overwrites. Choose a "
                          "new --output.")
    if fmt == "onnx":
        missing = [p for p in ONNX_PACKAGES if importlib.util.find_spec(p) is None]
        if missing:
            raise SeqclfError(f"seqclf export --format onnx needs the {', '.join(missing)} "
                              "package(s): pip install 'seqclf[export]'.")
        if run.manifest.get("mixed_precision"):
            raise SeqclfError(f"{run.path}: was trained with training.mixed_precision; ONNX "
                              "export needs a float32 model. Use --format savedmodel.")
    if run.config.model.is_stateful():
        raise SeqclfError(f"{run.path}: model.stateful is true: the model carries its state "
                          "from one batch to the next, which an exported model cannot. "
                          "Export a stateless model.")
    dataset = read_data(run, data, require_labels=False)
    x, _ = run.preprocessor.transform(dataset)
    model = run.load_model()
    decision = run.decision  # the labels' rule: parity and the sidecar use it
    expected = predict_proba(model, x, run.config)
    _generic_kernels(model)
    # Keras exports only a model that has run; predict_proba may have run only its parts
    # (an ensemble's members, a family's own features)
    model.predict_on_batch(x[:1])
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        staging = outputs.staging_directory(output)  # mode as mkdir gives (mkdtemp: 0700)
    except OSError as exc:
        raise SeqclfError(f"{output}: cannot create the export directory "
                          f"({exc.strerror or exc}).") from None
    try:
        target = staging / MODEL_FILES[fmt]
        if fmt == "onnx":
            with warnings.catch_warnings():  # Keras's own tf2onnx patch for numpy 2
                warnings.filterwarnings("ignore", message=".*np.object", category=FutureWarning)
                model.export(str(target), format="onnx", verbose=False)
            got, io = _run_onnx(target, x)
        else:
            model.export(str(target), format="tf_saved_model", verbose=False)
            got, io = _run_saved_model(target, x)
        diff = float(np.abs(got - expected).max())
        threshold = None if decision is None else decision["threshold"]
        differ = int((probability.decide(got, threshold)
                      != probability.decide(expected, threshold)).sum())
        if differ or not diff < TOLERANCE:
            raise SeqclfError(
                f"{run.path}: the exported {fmt} model disagrees with the Keras model on "
                f"{dataset.source}: {differ} of {len(x)} predicted labels differ, max abs "
                f"probability difference {diff:.3g} (must be < {TOLERANCE:g}). Nothing was "
                "written.")
        prep = run.preprocessor
        runs.write_json(staging / SIDECAR, {
            "format": fmt, "model": MODEL_FILES[fmt], **io,
            "classes": prep.classes, "preprocessing": asdict(prep),
            "decision": _decision(decision), "how_to_apply": HOW_TO_APPLY,
            "parity": {"data": dataset.source, "sequences": len(x), "labels_identical": True,
                       "max_abs_diff": diff, "tolerance": TOLERANCE},
            "run": str(run.path), "seqclf": __version__,
        })
        os.rename(staging, output)
    except OSError as exc:
        raise SeqclfError(f"{output}: cannot write the export ({exc.strerror or exc}).") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExportResult(output, output / MODEL_FILES[fmt], dataset.source, len(x), diff)


def _decision(decision: dict[str, Any] | None) -> dict[str, Any] | None:
    """The sidecar's ``decision``: the run's threshold on ``positive_class``'s probability
    (``decision.json``), with the rule it came from; None: the most probable class."""
    if decision is None:
        return None
    return {"threshold": float(decision["threshold"]),
            "positive_class": decision.get("positive_class"),
            "negative_class": decision.get("negative_class"),
            "rule": decision.get("rule")}


def _generic_kernels(model: Any) -> None:
    """Trace the recurrent layers with their generic kernels (a no-op on a CPU).

    On a GPU, Keras runs LSTM/GRU layers as cuDNN ops (CudnnRNNV3), which tf2onnx does
    not convert and a CPU-only server cannot run; the parity check still compares the
    export with the model as it ran before.
    """
    for layer in model._flatten_layers(include_self=False):
        if getattr(layer, "use_cudnn", None) in (True, "auto"):
            layer.use_cudnn = False


def _run_onnx(path: Path, x: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """Probabilities from the ONNX model under onnxruntime, and its input/output names."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    out = session.get_outputs()[0].name
    proba = np.concatenate([session.run([out], {name: x[i:i + BATCH]})[0]
                            for i in range(0, len(x), BATCH)])
    return proba.astype(np.float64), _io(name, out, x, proba)


def _run_saved_model(path: Path, x: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """Probabilities from the SavedModel's ``serve`` endpoint, and its signature names."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    signature = loaded.signatures["serving_default"]
    name = next(iter(signature.structured_input_signature[1]))
    out = next(iter(signature.structured_outputs))
    proba = np.concatenate([np.asarray(loaded.serve(x[i:i + BATCH]))
                            for i in range(0, len(x), BATCH)])
    return proba.astype(np.float64), _io(name, out, x, proba, signature="serving_default")


def _io(name: str, out: str, x: np.ndarray, proba: np.ndarray, **extra: str) -> dict[str, Any]:
    """The sidecar's description of the model's input and output (None: any batch size)."""
    return {"input": {"name": name, "dtype": str(x.dtype), "shape": [None, *x.shape[1:]],
                      **extra},
            "output": {"name": out, "shape": [None, proba.shape[1]],
                       "meaning": "class probabilities, in the order of classes"}}

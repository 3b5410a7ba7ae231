"""What a server runs: a run's model (Keras, or its ONNX export under onnxruntime), loaded
once, with the run's own preprocessing and data layout; and the one place a label is
decided from the class probabilities.

Both engines take the model input ``Preprocessor.transform`` makes and return class
probabilities in the order of the run's classes, so the rest of the server (and every
response) is the same whichever runs. The Keras engine calls ``seqclf.model.predict_proba``
(the rule ``seqclf predict`` uses); the ONNX engine runs ``model.onnx`` as the export's
``preprocessing.json`` describes it, after checking that the export's preprocessing is
the run's.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from seqclf import __version__, probability
from seqclf.data import Preprocessor
from seqclf.errors import SeqclfError
from seqclf.export import MODEL_FILES, SIDECAR
from seqclf.runs import MANIFEST, METRICS, Run, open_run
from seqclf.serving.settings import Settings

# The run manifest's keys /metadata repeats (the rest is the training machine's detail).
MANIFEST_SUMMARY = ("name", "seed", "started", "seconds", "status", "backend", "device",
                    "mixed_precision", "saved_by")
TRAINED_WITH = ("python", "keras", "tensorflow", "numpy", "scikit-learn")
# onnxruntime runs each operator on one thread on machines of at most this many cores.
# Measured on 2 shared cores (the quickstart LSTM, batches of 1, 16 and 256): its default
# pool (a spinning thread per core) took 1.5-2.5x the wall time and twice the CPU, which
# the server's event loop needs for the requests.
ORT_SINGLE_THREAD_MAX_CORES = 2


@dataclass
class Engine:
    """A loaded model and what it needs to answer requests.

    Attributes:
        name: ``keras`` or ``onnx``.
        path: What is served: the run directory, or the ONNX export directory.
        run: The run (config: the data layout; preprocessing; manifest).
        predict: Model input (from ``Preprocessor.transform``) → class probabilities,
            float64, one row per sequence, columns in the order of the run's classes.
            Called from one thread at a time.
        versions: The packages the answers depend on, as installed where it serves.
    """

    name: str
    path: Path
    run: Run
    predict: Callable[[np.ndarray], np.ndarray]
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def preprocessor(self) -> Preprocessor:
        return self.run.preprocessor

    @property
    def decision(self) -> dict[str, Any] | None:
        """The run's binary decision threshold (``decision.json``), or None: argmax."""
        if not hasattr(self, "_decision"):
            self._decision = self.run.decision
        return self._decision

    def warm_up(self, max_batch: int) -> None:
        """Run the model once on 1 sequence and once on a full batch: the first calls
        trace the model (seconds on Keras), which no request should wait for."""
        prep = self.preprocessor
        shape = (prep.max_length,) if prep.vocab_size is not None else (
            prep.max_length, prep.n_features)
        dtype = np.int32 if prep.vocab_size is not None else np.float32
        batch = min(max_batch, self.run.config.training.batch_size + 1)
        for n in sorted({1, batch}):
            proba = self.predict(np.ones((n, *shape), dtype=dtype))
            if proba.shape != (n, len(prep.classes)):
                raise SeqclfError(f"{self.path}: the model returned probabilities of shape "
                                  f"{proba.shape} for {n} sequences of {len(prep.classes)} "
                                  "classes. It is not the run's model.")


def decide(proba: np.ndarray, classes: list[Any], decision: dict[str, Any] | None = None
           ) -> list[Any]:
    """The label of each row of class probabilities: the most probable class, or, for a
    run with a decision threshold (``Engine.decision``, the run's ``decision.json``), the
    second class where its probability reaches the threshold (the rule ``seqclf
    predict`` applies, ``seqclf.probability.decide``).

    This is the one place a label is chosen, so /predict, /predict/csv and both engines
    change together. Calibration needs nothing here: ``training.calibration`` is folded
    into the model's weights, so both engines' probabilities are already calibrated.
    """
    threshold = None if decision is None else decision["threshold"]
    return [classes[i] for i in probability.decide(proba, threshold)]


DECISION = "argmax: the class of highest probability"


def describe_decision(engine: "Engine") -> str:
    """How labels are chosen, in words (GET /metadata's ``decision``)."""
    d = engine.decision
    text = DECISION if d is None else (
        f"threshold: {d['positive_class']!r} where its probability >= {d['threshold']:.6g} "
        f"(training.threshold {d['rule']!r}), else {d.get('negative_class')!r}")
    calibration = engine.run.manifest.get("calibration")
    if isinstance(calibration, dict):
        text += (f"; probabilities calibrated by temperature scaling (logits x "
                 f"{calibration['temperature']}), folded into the model")
    return text


def load(settings: Settings) -> Engine:
    """Open what ``settings`` serves and load its model (once).

    Raises:
        SeqclfError: Not a run (or export) directory, missing packages, a stateful model,
            an export that is not the run's.
    """
    run = inspect(settings)
    path = Path(settings.target)
    if settings.engine == "keras":
        engine = _keras(run)
    else:
        engine = _onnx(path, run)
    engine.warm_up(settings.max_batch)
    return engine


def inspect(settings: Settings) -> Run:
    """Every check ``load`` makes that needs no model: the run (and export) to serve."""
    path = Path(settings.target)
    if settings.engine == "keras":
        if (path / SIDECAR).is_file() and not (path / MANIFEST).exists():
            raise SeqclfError(f"{path}: is an export directory (it has {SIDECAR} and no "
                              f"{MANIFEST}), not a run. Serve it with --engine onnx, or pass "
                              "the run directory.")
        run = open_run(path)
    else:
        run = _export_run(path, settings.run)
    if run.config.model.is_stateful():
        raise SeqclfError(f"{run.path}: model.stateful is true: a prediction depends on the "
                          "sequences batched before it, so concurrent requests would change "
                          "each other's answers. Serve a stateless model.")
    return run


def _keras(run: Run) -> Engine:
    from seqclf.backend import versions
    from seqclf.model import predict_proba

    model = run.load_model()
    config = run.config

    def predict(x: np.ndarray) -> np.ndarray:
        return predict_proba(model, x, config)

    found = versions()
    return Engine("keras", run.path, run, predict,
                  {k: found[k] for k in ("python", "seqclf", "keras", "tensorflow", "numpy")})


def _sidecar(path: Path) -> dict[str, Any]:
    if not path.is_dir():
        raise SeqclfError(f"{path}: export directory not found. Pass the --output of "
                          "`seqclf export RUN --format onnx`.")
    if (path / MANIFEST).exists():
        raise SeqclfError(f"{path}: is a run directory. --engine onnx serves its ONNX export: "
                          f"run `seqclf export {path} --format onnx --output DIR` and serve DIR.")
    try:
        meta = json.loads((path / SIDECAR).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SeqclfError(f"{path}: has no {SIDECAR}; it is not a directory written by "
                          "`seqclf export`.") from None
    except (OSError, ValueError) as exc:
        raise SeqclfError(f"{path / SIDECAR}: cannot be read ({exc}). Export the run "
                          "again.") from None
    if not isinstance(meta, dict) or meta.get("format") != "onnx":
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise SeqclfError(f"{path}: is not an ONNX export (format {got!r} in {SIDECAR}). "
                          "Export with --format onnx.")
    for key in ("input", "output", "preprocessing", "classes"):
        if not isinstance(meta.get(key), (dict, list)):
            raise SeqclfError(f"{path / SIDECAR}: has no {key!r}; the file is damaged. Export "
                              "the run again.")
    if not (path / MODEL_FILES["onnx"]).is_file():
        raise SeqclfError(f"{path}: has no {MODEL_FILES['onnx']}. Export the run again.")
    return meta


def _export_run(path: Path, run_dir: str | None) -> Run:
    """The run an ONNX export was made from (its config: the layout requests come in)."""
    meta = _sidecar(path)
    if run_dir is None:
        named = Path(str(meta.get("run", "")))
        candidates = [named] if named.is_absolute() else [named, path.parent / named]
        found = next((c for c in candidates if (c / MANIFEST).is_file()), None)
        if found is None:
            raise SeqclfError(f"{path / SIDECAR}: names run {str(named)!r}, which is not "
                              "here. Pass the run it was exported from with --run RUN_DIR "
                              "(its config gives the data layout).")
        run_dir = str(found)
    run = open_run(run_dir)
    if meta["preprocessing"] != json.loads(json.dumps(asdict(run.preprocessor))):
        raise SeqclfError(f"{path}: was not exported from {run.path} (their "
                          f"{SIDECAR} preprocessing differs). Pass the run it was exported "
                          "from with --run.")
    return run


def _onnx(path: Path, run: Run) -> Engine:
    if importlib.util.find_spec("onnxruntime") is None:
        raise SeqclfError("seqclf serve --engine onnx needs the onnxruntime package: pip "
                          "install 'seqclf[export]'.")
    import onnxruntime

    from seqclf.backend import cpu_cores

    meta = _sidecar(path)
    options = onnxruntime.SessionOptions()
    if cpu_cores() <= ORT_SINGLE_THREAD_MAX_CORES:
        options.intra_op_num_threads = 1
    try:
        session = onnxruntime.InferenceSession(str(path / MODEL_FILES["onnx"]), options,
                                               providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own error types, for a damaged file
        raise SeqclfError(f"{path / MODEL_FILES['onnx']}: cannot be loaded by onnxruntime "
                          f"({type(exc).__name__}). Export the run again.") from None
    name, out = meta["input"]["name"], meta["output"]["name"]
    dtype = np.dtype(meta["input"]["dtype"])

    def predict(x: np.ndarray) -> np.ndarray:
        return np.asarray(session.run([out], {name: x.astype(dtype, copy=False)})[0],
                          dtype=np.float64)

    from seqclf.backend import versions

    found = {**versions(), "onnxruntime": onnxruntime.__version__}
    return Engine("onnx", path, run, predict,
                  {k: found[k] for k in ("python", "seqclf", "onnxruntime", "numpy")})


def metadata(engine: Engine, settings: Settings) -> dict[str, Any]:
    """What GET /metadata answers: the model's classes and inputs, how requests are read
    and preprocessed, the versions serving, and a summary of the run."""
    run, prep = engine.run, engine.preprocessor
    data = run.config.data
    layout: dict[str, Any] = {"format": data.format, "id_column": data.id_column,
                              "label_column": data.label_column}
    if data.format == "long":
        layout["step_column"] = data.step_column
    manifest = {k: run.manifest[k] for k in MANIFEST_SUMMARY if k in run.manifest}
    trained_with = run.manifest.get("versions", {})
    manifest["versions"] = {k: trained_with[k] for k in TRAINED_WITH if k in trained_with}
    try:
        test = json.loads((run.path / METRICS).read_text(encoding="utf-8"))["test"]
        manifest["test"] = {k: test[k] for k in ("source", "n", "accuracy", "macro_f1")}
    except (OSError, ValueError, KeyError, TypeError):
        pass  # a run saved from Python has no test scores
    return {
        "seqclf": __version__,
        "engine": engine.name,
        "served": str(engine.path),
        "run": str(run.path),
        "model_family": run.config.model.family,
        "classes": prep.classes,
        "features": prep.feature_names,
        "layout": layout,
        "max_length": prep.max_length,
        "padding": prep.padding,
        "truncating": prep.truncating,
        "pad_value": prep.pad_value,
        "scaling": {"method": prep.scaling, "center": prep.center, "scale": prep.scale},
        "missing_values": data.missing_values,
        "token_input": None if prep.vocab_size is None else {"vocab_size": prep.vocab_size},
        "decision": describe_decision(engine),
        "versions": engine.versions,
        "manifest": manifest,
        "limits": {"max_batch": settings.max_batch, "batch_wait_ms": settings.batch_wait_ms,
                   "max_body_bytes": settings.max_body_bytes,
                   "max_steps": settings.steps_limit(prep.max_length)},
    }

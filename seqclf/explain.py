"""``seqclf explain``: which steps and channels drove a run's predictions.

Two views, both in the model's input space (after scaling and padding):

* **Step attributions** for chosen sequences, for the class the run predicts (its decision
  rule: the most probable class, or a binary threshold). Integrated gradients (Sundararajan,
  Taly and Yan, 2017): the gradient of that class's probability, averaged along the straight
  path from a baseline to the input (midpoint rule, ``IG_STEPS`` points), times (input -
  baseline), averaged over ``BASELINES`` baselines drawn from the data (expected gradients,
  Erion et al., 2021). A baseline is the input with its real steps replaced by another
  sequence's real values (repeated or cut to the length) and its padded steps left as they
  are: padded steps are then the same in input and baseline, so their attribution is zero
  by construction (and set to exactly zero); the model masks them anyway. One constant
  baseline (each channel's mean) is itself classified, often confidently, and sequences of
  that class then get almost nothing; data baselines average that away. A sequence's
  attributions add up to its probability minus its baselines' mean probability (the JSON
  reports both, a check of the path integral). Token input (an embedding): the same on
  the embedding outputs (the baselines' tokens embedded), summed over the embedding
  dimension: one number per token.
  A family whose probabilities are not the Keras graph's (a ``predict_proba`` hook:
  minirocket's PPV counts, no gradient) and token input of an ensemble use **occlusion**:
  windows of ``1/OCCLUSION_WINDOWS`` of a sequence's real steps, one channel at a time, set
  to the baseline (tokens: masked out); the drop in the class's probability, spread evenly
  over the window's steps. The output names the method used.
* **Permutation importance** per channel over the whole data: the accuracy lost when one
  channel's values are shuffled across sequences (each sequence gets another's real values
  on its own real steps; padding untouched), ``REPEATS`` times from ``seed``. Without
  labels in the data, "accuracy" is agreement with the model's own unshuffled labels.

Gradients come from the TensorFlow (``tf.GradientTape``) or JAX (``jax.grad``) backend;
the torch backend is refused in one line.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seqclf import outputs, probability, report, runs
from seqclf.errors import SeqclfError, must_be

# Points on each integrated-gradients path: a confident model's probability turns within a
# short stretch of it (32 points gave sums 60-90% off). A path whose attributions miss
# probability - baseline probability by more than COMPLETENESS of it is integrated again
# with 4x the points, up to MAX_IG_STEPS.
IG_STEPS = 256
MAX_IG_STEPS = 4096
COMPLETENESS = 0.02
BASELINES = 8  # data sequences used as baselines (expected gradients)
OCCLUSION_WINDOWS = 20  # windows per sequence for occlusion
REPEATS = 5  # shuffles per channel for permutation importance
DEFAULT_SEQUENCES = 4  # sequences explained when no --ids are given: the first ones
BATCH = 256
GRADIENT_BATCH = 1024  # path points per gradient call

EXPLANATION = "explanation.json"
ATTRIBUTIONS = "attributions.csv"
IMPORTANCE = "permutation_importance.csv"
HEATMAP = "attributions.png"
IMPORTANCE_PLOT = "permutation_importance.png"


@dataclass
class Explanation:
    """What ``explain`` wrote.

    Attributes:
        path: The output directory.
        method: ``integrated_gradients`` or ``occlusion``.
        ids: The sequences whose steps were attributed.
        attributions: (sequences, steps, channels) attributions of those sequences (tokens:
            one channel), zero at padded steps.
        real: (sequences, steps) which of those steps are real (not padding).
        importance: One record per channel, most important first: ``channel``,
            ``accuracy_drop`` (mean), ``std``, ``drops`` (each repeat's).
        record: Everything written to ``explanation.json``.
        files: The files written.
    """

    path: Path
    method: str
    ids: list[str]
    attributions: np.ndarray
    real: np.ndarray
    importance: list[dict[str, Any]]
    record: dict[str, Any]
    files: list[Path]


def explain(run_dir: str | Path, data: str | Path, ids: list[str] | None = None,
            output: str | Path | None = None, repeats: int = REPEATS, seed: int = 0,
            ig_steps: int = IG_STEPS) -> Explanation:
    """Attribute a run's predictions on ``data`` to steps and channels; write the results.

    Args:
        run_dir: A finished run directory.
        data: A CSV (or other data file) in the run's layout; labels optional.
        ids: The sequences whose steps to attribute (default: the first
            ``DEFAULT_SEQUENCES``).
        output: The directory to write into (created; files in it are replaced);
            default ``<run_dir>/explain``.
        repeats: Shuffles per channel for permutation importance.
        seed: Seed of the shuffles.
        ig_steps: Points on the integrated-gradients path.

    Raises:
        SeqclfError: An unknown id, a bad output, unreadable data, a stateful model, or the
            torch backend where gradients are needed.
    """
    from seqclf.evaluate import read_data

    run = runs.open_run(run_dir)
    out = Path(output) if output is not None else run.path / "explain"
    if outputs.is_stdout(out):
        raise must_be("seqclf explain", "--output", "a directory (standard output cannot "
                      "hold one)", str(out))
    for name, value, low in (("--repeats", repeats, 1), ("ig_steps", ig_steps, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise must_be("seqclf explain", name, f"a whole number >= {low}", value)
    if run.config.model.is_stateful():
        raise SeqclfError(f"{run.path}: model.stateful is true: the model carries its state "
                          "from one batch to the next, so a sequence cannot be explained "
                          "alone. Explain a stateless model.")
    dataset = read_data(run, data, require_labels=False)
    chosen = choose(dataset.ids, ids, str(data))
    _make_directory(out)
    prep = run.preprocessor
    x, _ = prep.transform(dataset)
    model = run.load_model()
    cfg = run.config
    decision = run.decision
    threshold = None if decision is None else decision["threshold"]

    from seqclf.model import predict_proba

    proba = predict_proba(model, x, cfg)
    predicted = probability.decide(proba, threshold)
    real = real_steps(model, x, dataset, prep)
    tokens = prep.vocab_size is not None
    channels = ["token"] if tokens else list(prep.feature_names)
    baseline = None if tokens else channel_means(x, real)

    picked = np.asarray(chosen, dtype=np.int64)
    xs, targets, real_chosen = x[picked], predicted[picked], real[picked]
    method = attribution_method(cfg, tokens)
    if method == "integrated_gradients":
        origins = data_baselines(x[..., None] if tokens else x, real, picked, BASELINES, seed)
        attributions, base_p = integrated_gradients(
            model, xs, real_chosen, targets, origins[..., 0] if tokens else origins, ig_steps,
            tokens)
        details: dict[str, Any] = {"steps": ig_steps, "baseline": (
            f"{origins.shape[1]} sequences of the data on each sequence's real steps "
            "(expected gradients" + ("; tokens: their embeddings)" if tokens else ")"))}
    else:
        attributions, base_p, window = occlusion(
            lambda batch: predict_proba(model, batch, cfg), xs, real_chosen, targets,
            baseline, prep.vocab_size is not None)
        details = {"windows": OCCLUSION_WINDOWS, "window_steps": window, "baseline": (
            "token 0 (masked out)" if tokens else
            {c: float(v) for c, v in zip(channels, baseline)})}
    attributions = np.where(real_chosen[..., None], attributions, 0.0)  # exactly zero

    labels = _label_indices(dataset.labels, prep.classes)
    importance = permutation_importance(
        lambda batch: probability.decide(predict_proba(model, batch, cfg), threshold),
        x if not tokens else x[..., None], real, labels if labels is not None else predicted,
        channels, repeats, seed)

    record = {
        "run": str(run.path), "data": str(data), "sequences": len(dataset),
        "target": "the predicted class (" + ("argmax" if decision is None else
                                             f"threshold {threshold:.6g}") + ")",
        "method": method, **details,
        "channels": channels,
        "explained": [_sequence_record(dataset.ids[i], prep.classes, proba[i], predicted[i],
                                       attributions[j], real_chosen[j], base_p[j], channels,
                                       method)
                      for j, i in enumerate(chosen)],
        "permutation_importance": {
            "metric": "accuracy", "target": "labels" if labels is not None else
            "the model's own predictions (the data has no labels)", "repeats": repeats,
            "seed": seed, "accuracy": float(np.mean(
                predicted == (labels if labels is not None else predicted))),
            "channels": importance},
    }
    files = _write(out, record, [dataset.ids[i] for i in chosen], attributions, real_chosen,
                   xs, channels, importance, method)
    return Explanation(out, method, [dataset.ids[i] for i in chosen], attributions,
                       real_chosen, importance, record, files)


# --- which sequences, steps and method -------------------------------------------------


def choose(all_ids: list[str], ids: list[str] | None, source: str) -> list[int]:
    """Row numbers of ``ids`` in the data (default: the first ``DEFAULT_SEQUENCES``).

    Raises:
        SeqclfError: An id that is not in the data, or the same id twice.
    """
    if not ids:
        return list(range(min(DEFAULT_SEQUENCES, len(all_ids))))
    where = {str(i): n for n, i in enumerate(all_ids)}
    missing = [i for i in ids if str(i) not in where]
    if missing:
        shown = ", ".join(repr(i) for i in all_ids[:3]) + (", ..." if len(all_ids) > 3 else "")
        raise must_be("seqclf explain", "--ids", f"ids of sequences in {source} ({shown})",
                      missing[0] if len(missing) == 1 else missing)
    if len(set(map(str, ids))) != len(ids):
        dup = next(i for i in ids if list(map(str, ids)).count(str(i)) > 1)
        raise must_be("seqclf explain", "--ids", "distinct ids", f"{dup!r} twice")
    return [where[str(i)] for i in ids]


def real_steps(model: Any, x: np.ndarray, dataset: Any, prep: Any) -> np.ndarray:
    """(sequences, steps): the steps the model reads. With masking, the model's own
    Masking (or Embedding ``mask_zero``) layer's mask; without, the steps that hold the
    sequence (its length, on the side ``data.padding`` leaves)."""
    layer = _mask_layer(model)
    if layer is not None:
        from seqclf.backend import keras

        ops = keras().ops
        return np.concatenate([ops.convert_to_numpy(layer.compute_mask(x[i:i + BATCH]))
                               for i in range(0, len(x), BATCH)]).astype(bool)
    t = prep.max_length
    lengths = np.array([min(len(s), t) for s in dataset.sequences])
    real = np.arange(t)[None, :] < lengths[:, None]
    return real[:, ::-1] if prep.padding == "pre" else real


def _mask_layer(model: Any) -> Any:
    """The model's (or its first ensemble member's) Masking or masking Embedding layer."""
    from seqclf.backend import keras

    layers = keras().layers
    for layer in model.layers:
        if isinstance(layer, layers.Masking) or (isinstance(layer, layers.Embedding)
                                                 and layer.mask_zero):
            return layer
        if hasattr(layer, "layers"):  # an ensemble's member
            found = _mask_layer(layer)
            if found is not None:
                return found
    return None


def attribution_method(cfg: Any, tokens: bool) -> str:
    """``integrated_gradients``, or ``occlusion`` for a family (or ensemble member) whose
    probabilities are not computed by the Keras graph (a ``predict_proba`` hook), and for
    token input of an ensemble (each member has its own embedding)."""
    from seqclf.models import registry

    family = cfg.model.family
    if registry.hook(family, "combine") is not None:
        if tokens:
            return "occlusion"
        families = {section.get("family") for section, _ in
                    cfg.model.member_sections(cfg.training.seed)}
    else:
        families = {family}
    if any(registry.hook(f, "predict_proba") is not None for f in families):
        return "occlusion"
    return "integrated_gradients"


def data_baselines(x: np.ndarray, real: np.ndarray, rows: np.ndarray, k: int, seed: int
                   ) -> np.ndarray:
    """(rows, k, steps, channels): for each of ``rows``, ``k`` baselines: the row with its
    real steps holding the real values of ``k`` sequences drawn from ``x`` (the same for
    every row; repeated or cut to the row's length), its padded steps unchanged."""
    donors = np.random.default_rng(seed).choice(len(x), size=min(k, len(x)), replace=False)
    out = np.repeat(x[rows][:, None], len(donors), axis=1)
    for j, row in enumerate(rows):
        steps = np.flatnonzero(real[row])
        for m, donor in enumerate(donors):
            values = x[donor][real[donor]]
            if len(values) and len(steps):
                out[j, m, steps] = values[np.arange(len(steps)) % len(values)]
    return out


def channel_means(x: np.ndarray, real: np.ndarray) -> np.ndarray:
    """Each channel's mean over the real steps of ``x``: occlusion's baseline."""
    values = x[real]
    return values.mean(axis=0) if len(values) else np.zeros(x.shape[-1], dtype=x.dtype)


# --- integrated gradients ---------------------------------------------------------------


def integrated_gradients(model: Any, x: np.ndarray, real: np.ndarray, targets: np.ndarray,
                         origins: np.ndarray, steps: int, tokens: bool = False
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Integrated gradients of ``targets``' probabilities for each row of ``x``, averaged
    over each row's baselines (``origins``: (rows, baselines, steps[, channels])).

    Numeric input: (rows, steps, channels). Token input: on the embedding outputs (the
    baselines' tokens embedded), summed over the embedding dimension: (rows, steps, 1).

    Returns:
        (attributions, each row's mean target probability at its baselines).
    """
    from seqclf.backend import keras

    ops = keras().ops
    if tokens:
        probe, embed = _embedding_probe(model)

        def call(e: Any, tokens: Any) -> Any:
            return probe([tokens, e], training=False)
    else:
        def call(a: Any, _: Any) -> Any:
            return model(a, training=False)
    gradient = _gradient_function(call, int(model.outputs[0].shape[-1]))
    out, base_p = [], []
    for j, (row, mask, target) in enumerate(zip(x, real, targets)):
        if tokens:  # the path runs over the embedding outputs
            end, start = embed(row[None])[0], embed(origins[j])
        else:
            end, start = row, origins[j]
        diff = (end[None] - start).astype(np.float32)  # (baselines, steps, channels)
        context = (np.repeat(row[None], max(len(start) + 1, GRADIENT_BATCH), axis=0)
                   if tokens else np.zeros(1, dtype=np.float32))
        both = np.concatenate([start, end[None]]).astype(np.float32)
        p = ops.convert_to_numpy(call(ops.convert_to_tensor(both), ops.convert_to_tensor(
            context[: len(both)] if tokens else context)))[:, target]
        wanted = float(p[-1] - np.mean(p[:-1]))
        n = steps
        while True:
            attr = _path_integral(gradient, start, diff, n, context, int(target), tokens)
            if (abs(attr.sum() - wanted) <= COMPLETENESS * max(abs(wanted), 0.01)
                    or n >= MAX_IG_STEPS):
                break
            n *= 4
        out.append(attr.sum(axis=-1)[..., None] if tokens else attr)
        base_p.append(float(np.mean(p[:-1])))
    return np.asarray(out, dtype=np.float64), np.asarray(base_p, dtype=np.float64)


def _path_integral(gradient: Any, start: np.ndarray, diff: np.ndarray, steps: int,
                   context: np.ndarray, target: int, tokens: bool) -> np.ndarray:
    """The midpoint-rule integral of the gradient along each baseline's path, times the
    path's difference, averaged over the baselines: (steps, channels)."""
    alphas = (np.arange(steps, dtype=np.float32) + 0.5) / steps
    total = np.zeros(diff.shape[1:], dtype=np.float64)
    for b, d in zip(start, diff):
        grads = 0.0
        for i in range(0, steps, GRADIENT_BATCH):
            path = b[None] + alphas[i:i + GRADIENT_BATCH, None, None] * d[None]
            grads = grads + gradient(path, context[: len(path)] if tokens else context,
                                     target).sum(axis=0)
        total += grads / steps * d
    return total / len(diff)


def _embedding_probe(model: Any) -> tuple[Any, Any]:
    """For token input: a model from (tokens, embedding outputs) to the classes, whose
    layers after the embedding take the given vectors (the tokens still give the mask),
    and the embedding lookup itself."""
    from seqclf.backend import keras

    k = keras()
    embedding = model.get_layer("embedding")
    probe = k.Model([model.inputs[0], embedding.output], model.outputs[0])

    def embed(tokens: np.ndarray) -> np.ndarray:
        return k.ops.convert_to_numpy(k.ops.take(embedding.embeddings, tokens, axis=0))

    return probe, embed


def _gradient_function(call: Any, n_classes: int) -> Any:
    """``(inputs, context, target) -> d p[target] / d inputs`` for each row of ``inputs``,
    compiled once on the running Keras backend (``call(inputs, context)``: probabilities).

    Raises:
        SeqclfError: A backend other than TensorFlow and JAX.
    """
    from seqclf.backend import keras

    backend = keras().backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(reduce_retracing=True)
        def compiled(inputs: Any, context: Any, onehot: Any) -> Any:
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                picked = tf.reduce_sum(call(inputs, context) * onehot)
            return tape.gradient(picked, inputs)
    elif backend == "jax":
        import jax
        import jax.numpy as jnp

        compiled = jax.jit(jax.grad(lambda a, c, onehot: jnp.sum(call(a, c) * onehot)))
    else:
        raise SeqclfError(f"seqclf explain: integrated gradients need the tensorflow or jax "
                          f"backend; Keras runs on {backend!r} here. Run it with "
                          "KERAS_BACKEND=tensorflow (a run's model loads on any backend).")
    eye = np.eye(n_classes, dtype=np.float32)

    def gradient(inputs: np.ndarray, context: np.ndarray, target: int) -> np.ndarray:
        return np.asarray(compiled(inputs, context, eye[target]), dtype=np.float64)

    return gradient


# --- occlusion ------------------------------------------------------------------------


def occlusion(proba: Any, x: np.ndarray, real: np.ndarray, targets: np.ndarray,
              baseline: np.ndarray | None, tokens: bool
              ) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Occlusion attributions (a gradient-free fallback): for each window of a row's real
    steps and each channel, the drop in the target's probability when that window of that
    channel is set to the baseline (tokens: to 0, masked out), spread evenly over its steps.

    Returns:
        (attributions as (rows, steps, channels), each row's target probability with every
        real step at the baseline, the window length of each row).
    """
    channels = 1 if tokens else x.shape[-1]
    out = np.zeros((*real.shape, channels), dtype=np.float64)
    base_p, windows = [], []
    for j, (row, mask, target) in enumerate(zip(x, real, targets)):
        steps = np.flatnonzero(mask)
        width = max(1, math.ceil(len(steps) / OCCLUSION_WINDOWS))
        windows.append(width)
        spans = [steps[i:i + width] for i in range(0, len(steps), width)]
        variants, where = [row], []
        for c in range(channels):
            for span in spans:
                v = row.copy()
                if tokens:
                    v[span] = 0
                else:
                    v[span, c] = baseline[c]
                variants.append(v)
                where.append((c, span))
        flat = row.copy()
        if tokens:
            flat[steps] = 0
        else:
            flat[steps] = baseline
        variants.append(flat)
        p = np.concatenate([proba(np.asarray(variants[i:i + BATCH]))
                            for i in range(0, len(variants), BATCH)])[:, target]
        for (c, span), pv in zip(where, p[1:-1]):
            out[j, span, c] = (p[0] - pv) / len(span)
        base_p.append(float(p[-1]))
    return out, np.asarray(base_p), windows


# --- permutation importance -------------------------------------------------------------


def permutation_importance(decide: Any, x: np.ndarray, real: np.ndarray, y: np.ndarray,
                           channels: list[str], repeats: int, seed: int
                           ) -> list[dict[str, Any]]:
    """Accuracy lost when one channel is shuffled across sequences, per channel.

    Each shuffle gives sequence i the real values of channel c of sequence perm(i),
    repeated or cut to i's real steps; every other channel and all padding stay. ``x``:
    (sequences, steps, channels); ``decide``: labels (class indices) for such an array
    (tokens: given without the channel axis).

    Returns:
        One record per channel, most important first: ``channel``, ``accuracy_drop``
        (mean over repeats), ``std``, ``drops``.
    """
    rng = np.random.default_rng(seed)
    squeeze = len(channels) == 1 and channels == ["token"]

    def accuracy(a: np.ndarray) -> float:
        return float(np.mean(decide(a[..., 0] if squeeze else a) == y))

    reference = accuracy(x)
    positions = [np.flatnonzero(m) for m in real]
    records = []
    for c, name in enumerate(channels):
        drops = []
        for _ in range(repeats):
            perm = rng.permutation(len(x))
            shuffled = x.copy()
            for i, donor in enumerate(perm):
                if len(positions[i]) and len(positions[donor]):
                    values = x[donor, positions[donor], c]
                    shuffled[i, positions[i], c] = np.resize(values, len(positions[i]))
            drops.append(reference - accuracy(shuffled))
        records.append({"channel": name, "accuracy_drop": float(np.mean(drops)),
                        "std": float(np.std(drops)), "drops": [float(d) for d in drops]})
    records.sort(key=lambda r: -r["accuracy_drop"])
    for rank, r in enumerate(records, start=1):
        r["rank"] = rank
    return records


def _label_indices(labels: list[Any] | None, classes: list[Any]) -> np.ndarray | None:
    """Class indices of ``labels`` (matched as text, as evaluate does); -1 for a label the
    run never saw (always wrong); None without labels."""
    if labels is None:
        return None
    index = {str(c): i for i, c in enumerate(classes)}
    return np.array([index.get(str(v), -1) for v in labels], dtype=np.int64)


# --- the files --------------------------------------------------------------------------


def _sequence_record(seq_id: str, classes: list[Any], proba: np.ndarray, predicted: int,
                     attr: np.ndarray, real: np.ndarray, base_p: float, channels: list[str],
                     method: str) -> dict[str, Any]:
    mass = np.abs(attr).sum(axis=0)
    record = {"id": seq_id, "predicted": classes[int(predicted)],
              "probability": float(proba[int(predicted)]),
              "baseline_probability": float(base_p), "attribution_sum": float(attr.sum()),
              "real_steps": int(real.sum()),
              "abs_attribution_by_channel": {c: float(m) for c, m in zip(channels, mass)}}
    if method == "integrated_gradients":  # the sum should be probability - baseline's
        record["completeness_gap"] = float(attr.sum() - (record["probability"] - base_p))
    return record


def _make_directory(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SeqclfError(f"{out}: cannot create the output directory "
                          f"({exc.strerror or exc}). Choose another with --output.") from None
    if not out.is_dir():
        raise must_be("seqclf explain", "--output", "a directory", str(out))


def _write(out: Path, record: dict[str, Any], ids: list[str], attributions: np.ndarray,
           real: np.ndarray, xs: np.ndarray, channels: list[str],
           importance: list[dict[str, Any]], method: str) -> list[Path]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "position", "padded", "channel", "input", "attribution"])
    for seq_id, attr, mask, row in zip(ids, attributions, real, xs):
        values = row if row.ndim == 2 else row[:, None]
        for t in range(attr.shape[0]):
            for c, name in enumerate(channels):
                writer.writerow([seq_id, t, not mask[t], name,
                                 repr(float(values[t, c])) if mask[t] else "",
                                 repr(float(attr[t, c]))])
    runs.write_text(out / ATTRIBUTIONS, buffer.getvalue())
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["rank", "channel", "accuracy_drop", "std"])
    for r in importance:
        writer.writerow([r["rank"], r["channel"], repr(r["accuracy_drop"]), repr(r["std"])])
    runs.write_text(out / IMPORTANCE, buffer.getvalue())
    runs.write_json(out / EXPLANATION, record)
    runs.save_figure(out / HEATMAP,
                     report.attribution_figure(ids, attributions, real, channels, method))
    runs.save_figure(out / IMPORTANCE_PLOT, report.importance_figure(importance))
    return [out / n for n in (EXPLANATION, ATTRIBUTIONS, IMPORTANCE, HEATMAP, IMPORTANCE_PLOT)]

"""MiniRocket (Dempster, Schmidt and Webb, 2021, "MINIROCKET: A Very Fast (Almost)
Deterministic Transform for Time Series Classification"): a fixed convolutional
transform and a linear classifier fitted in closed form, without gradient descent.

The transform (``minirocket_layers.MiniRocketTransform``), as in the reference code:

* 84 kernels of length 9, weights -1 and 2: every choice of the 3 positions that hold 2.
* Dilations spaced exponentially up to the longest training sequence (``fit_dilations``:
  at most ``max_dilations_per_kernel`` of them), each with its share of the
  ``num_features`` (rounded down to a multiple of 84) features.
* Per (dilation, kernel) pair, a random training example (and, on multivariate data, a
  random subset of channels, whose outputs are summed, as in aeon's multivariate
  MiniRocket); the pair's biases are quantiles of that example's convolution output at
  a low-discrepancy sequence of levels (``quantiles``).
* The features are proportions of positive values (PPV: the share of steps where the
  output exceeds a bias), with 'same' zero padding, alternately over every step or over
  the central steps only (those a kernel computes without padding).

Normalising (``normalise``, not in the paper): each sequence's channels z-normalised
over its real steps before the convolution. ``auto`` fits the transform and a ridge on
both views and normalises only where the ridge's leave-one-out predictions are then
right clearly more often than on the raw values (``clearly_better``):
measured on the development problems (docs/results/ucr.md), normalising helps where each
series has a random gain and offset and hurts where its level carries the class.

Pooling (``pooling``, from MultiRocket, Tan et al., 2022): ``ppv_mipv`` adds to each PPV
the mean position of the steps where the output exceeds the bias (MIPV), which sees
where and in which order patterns occur; PPV alone cannot tell which of two motifs came
first. ``auto`` weighs both on the view kept, by the same rule: on the development
problems MIPV lifted the order problem from chance to 0.86 and was noise, or worse,
everywhere else.

Variable length: padded steps never change a prediction. They are zeroed before the
convolution, PPVs are means over real steps (the central ones: those at least 4 x
dilation steps inside the real ones), and biases come from the real part of their
example's output. An unpadded feature of a sequence too short to have central steps is
its padded PPV instead (the reference's variable-length code makes every feature
padded). Without masking (``masking: false``) the zeros of the padding are data, as in
the fixed-length reference run on zero-padded series.

The classifier, folded into the model's softmax layer (``classes``) so that a saved run
predicts, evaluates and exports like any other:

* ``ridge`` (the paper's): ``StandardScaler(with_mean=False)`` then
  ``RidgeClassifierCV(alphas=np.logspace(-3, 3, 10))``; its decision values times a
  temperature fitted on their leave-one-out values become the logits, so the predicted
  class is the ridge's and the probabilities are calibrated on data each value was not
  fitted on (see ``fit_temperature``).
* ``logistic`` (the paper's choice for large training sets): the softmax layer trained
  with the configured optimizer on the fixed, standardised features for
  ``training.epochs`` epochs of ``training.batch_size``.
* ``auto``: ridge up to LOGISTIC_ABOVE training sequences, else logistic.

``fit`` is deterministic for a ``training.seed``.
"""

from __future__ import annotations

import os
from itertools import combinations
from typing import Any, Callable, Literal, NamedTuple

import numpy as np
from pydantic import Field

from seqclf.errors import SeqclfError
from seqclf.sections import BoolOrAuto, FamilyConfig

__all__ = ["Config", "features", "fit", "describe", "fit_dilations", "quantiles",
           "kernel_weights", "fit_transform", "transform", "predict_proba", "fit_ridge",
           "fit_temperature", "fit_view", "z_normalise", "RidgeFit", "clearly_better"]

KERNEL_LENGTH = 9
N_KERNELS = 84  # 9 choose 3
RIDGE_ALPHAS = np.logspace(-3, 3, 10)
# The paper fits logistic regression rather than ridge from about 10,000 training series:
# the ridge's cross-validation needs an n x n (or features x features) decomposition.
LOGISTIC_ABOVE = 10_000
LAYER_NAME = "minirocket"
LOWEST = np.float32(np.finfo(np.float32).min)  # as minirocket_layers.LOWEST
# The logit of a class absent from the training data (data.classes lists it): never
# predicted, probability 0.
ABSENT_CLASS_LOGIT = -1.0e4
POOLINGS = ("ppv", "ppv_mipv")  # minirocket_layers.POOLINGS; pooling 'auto' weighs both
# normalise and pooling 'auto' compare their candidates on at most this many sequences
VIEW_SAMPLE = 2_000
# pool's blocks: (sequences x kernels x steps) x 5 bytes (the convolution output and its
# hits); on 2 cores 4 MiB ran 1.1-1.4x faster than 0.5-2 MiB (fewer, larger NumPy calls).
BLOCK_BYTES = 2**22


class Config(FamilyConfig):
    """MiniRocket's transform and classifier; the defaults are the published settings."""

    family: Literal["minirocket"] = "minirocket"
    num_features: int = Field(10_000, ge=N_KERNELS, description="features of the "
                              "transform, rounded down to a multiple of 84 (the kernels)")
    max_dilations_per_kernel: int = Field(32, ge=1, description="dilations of each "
                                          "kernel at most, spaced exponentially up to the "
                                          "longest training sequence")
    classifier: Literal["auto", "ridge", "logistic"] = Field(
        "auto", description="ridge regression with cross-validated regularisation (the "
        "paper's), logistic regression trained on the features (for large data), or auto: "
        f"ridge up to {LOGISTIC_ABOVE:,} training sequences")
    normalise: BoolOrAuto = Field(
        False, description="z-normalise each sequence and channel over its real steps "
        "inside the transform (true), read the values as they are (false, the paper's), "
        "or auto: fit both and normalise only if the ridge's leave-one-out predictions "
        "are then right clearly more often (McNemar's test)")
    pooling: Literal["ppv", "ppv_mipv", "auto"] = Field(
        "ppv", description="the features of each kernel and bias: the proportion of "
        "steps where the output exceeds the bias (ppv, the paper's); that and the mean "
        "position of those steps (ppv_mipv, MultiRocket's MIPV: sees where and in which "
        "order patterns occur; twice the features, the transform about twice as long); "
        "or auto: weigh both and keep MIPV only if the ridge's leave-one-out predictions "
        "are then right clearly more often")


# --- the transform's parameters (NumPy; what the paper fixes) -------------------------


def kernel_weights() -> np.ndarray:
    """The 84 kernels as an (84, 9) float32 array: -1 everywhere but 2 at three
    positions, one kernel per choice of those positions, in lexicographic order."""
    weights = np.full((N_KERNELS, KERNEL_LENGTH), -1.0, dtype=np.float32)
    for k, chosen in enumerate(combinations(range(KERNEL_LENGTH), 3)):
        weights[k, list(chosen)] = 2.0
    return weights


def fit_dilations(reference_length: int, num_features: int,
                  max_dilations_per_kernel: int) -> tuple[np.ndarray, np.ndarray]:
    """The reference's dilations and features (biases) per kernel at each.

    Up to ``max_dilations_per_kernel`` dilations (and at most one bias each), spaced
    exponentially from 1 to (reference_length - 1) / 8, the largest whose kernel still
    fits in the reference length; equal ones merge and keep all their features.
    ``num_features // 84`` features per kernel are spread over the dilations, the
    remainder going to the smallest dilations first.

    Returns:
        (dilations, features per dilation), int32 arrays of the same length.
    """
    per_kernel = num_features // N_KERNELS
    n_dilations = min(per_kernel, max_dilations_per_kernel)
    multiplier = per_kernel / n_dilations
    max_exponent = np.log2((reference_length - 1) / (KERNEL_LENGTH - 1))
    dilations, counts = np.unique(
        np.logspace(0, max_exponent, n_dilations, base=2).astype(np.int32), return_counts=True)
    per_dilation = (counts * multiplier).astype(np.int32)
    remainder = per_kernel - int(per_dilation.sum())
    for i in range(remainder):
        per_dilation[i % len(per_dilation)] += 1
    return dilations.astype(np.int32), per_dilation


def quantiles(n: int) -> np.ndarray:
    """Quantile levels of the n biases: the fractional parts of i x golden ratio,
    i = 1..n (a low-discrepancy sequence), as float32."""
    return np.array([(i * ((np.sqrt(5) + 1) / 2)) % 1 for i in range(1, n + 1)],
                    dtype=np.float32)


def fit_transform(x: np.ndarray, real: np.ndarray, dilations: list[int],
                  features_per_dilation: list[int], rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw the channel subsets and fit the biases, as the reference does.

    Per (dilation, kernel) pair, in the transform's order: the number of channels,
    2 ** uniform(0, log2(min(channels, 9) + 1)) rounded down, and which (aeon's
    multivariate MiniRocket); a training example. The pair's biases are quantiles of
    that example's convolution output over its real steps (the sequence on its own,
    zero-padded: its padded steps are zeroed first).

    Args:
        x: (n, steps, channels) sequences.
        real: (n, steps) bool, which steps are real (not padding).
        dilations: From ``fit_dilations``.
        features_per_dilation: From ``fit_dilations``.
        rng: Draws the channels and examples.

    Returns:
        (kernels, biases), float32, in ``MiniRocketTransform``'s layout; and the index
        of each pair's example, (dilations x 84,).
    """
    n, steps, channels = x.shape
    n_pairs = len(dilations) * N_KERNELS
    max_exponent = np.log2(min(channels, KERNEL_LENGTH) + 1)
    per_pair = (2 ** rng.uniform(0, max_exponent, n_pairs)).astype(np.int64)
    selected = np.zeros((n_pairs, channels), dtype=np.float32)
    for pair, count in enumerate(per_pair):
        selected[pair, rng.choice(channels, count, replace=False)] = 1.0
    candidates = np.flatnonzero(real.any(axis=1))  # sequences with real steps
    examples = candidates[rng.integers(len(candidates), size=n_pairs)]
    weights = kernel_weights()
    selected = selected.reshape(len(dilations), N_KERNELS, channels)
    kernels = (weights[None, :, :, None] * selected[:, :, None, :]).reshape(
        len(dilations), N_KERNELS, KERNEL_LENGTH * channels)

    levels = quantiles(N_KERNELS * int(np.sum(features_per_dilation)))
    biases, start = [], 0
    for j, (dilation, n_biases) in enumerate(zip(dilations, features_per_dilation)):
        chosen = examples[j * N_KERNELS:(j + 1) * N_KERNELS]
        zeroed = np.where(real[chosen, :, None], x[chosen], 0.0).astype(np.float64)
        # A kernel sums its channels' outputs, so it convolves the sum of its channels.
        series = np.einsum("ktc,kc->kt", zeroed, selected[j])
        reach = (KERNEL_LENGTH // 2) * dilation
        padded = np.pad(series, [(0, 0), (reach, reach)])
        out = sum(weights[:, i, None] * padded[:, i * dilation:i * dilation + steps]
                  for i in range(KERNEL_LENGTH))
        mask = real[chosen]
        length = mask.sum(axis=1)
        ordered = np.sort(np.where(mask, out, np.inf), axis=1)  # real values first
        q = levels[start:start + N_KERNELS * n_biases].reshape(N_KERNELS, n_biases)
        values = _quantile_sorted(ordered, length, q.astype(np.float64))
        biases.append(values.T.ravel())  # the layer's (biases, kernels) block
        start += N_KERNELS * n_biases
    return kernels.astype(np.float32), np.concatenate(biases).astype(np.float32), examples


def _quantile_sorted(ordered: np.ndarray, length: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Row-wise ``np.quantile`` (linear) of the first ``length`` values of each sorted row,
    at that row's levels ``q`` (rows, levels)."""
    pos = q * (length[:, None] - 1)
    low = np.floor(pos).astype(np.int64)
    high = np.minimum(low + 1, length[:, None] - 1)
    a = np.take_along_axis(ordered, low, axis=1)
    b = np.take_along_axis(ordered, high, axis=1)
    return a + (b - a) * (pos - low)


# --- building and fitting the model ---------------------------------------------------


def features(k: Any, m: Config, prep: Any, x: Any) -> Any:
    """The MiniRocket transform of the masked input: (batch, 84 x features per kernel).

    The dilations scale with ``prep.max_length`` (the longest training sequence, or
    ``data.max_length``); the layer's kernels and biases are zeros until ``fit``.

    Raises:
        SeqclfError: Sequences shorter than a kernel (9 steps).
    """
    from seqclf.models.minirocket_layers import MiniRocketTransform

    if prep.max_length < KERNEL_LENGTH:
        raise SeqclfError(
            "data: the padded length (data.max_length, else the longest training sequence) "
            f"must be >= {KERNEL_LENGTH} for model.family 'minirocket' (its kernels are "
            f"{KERNEL_LENGTH} steps long). Got {prep.max_length} instead.")
    dilations, per_dilation = fit_dilations(prep.max_length, m.num_features,
                                            m.max_dilations_per_kernel)
    # normalise and pooling 'auto': decided by ``fit``, which sets the layer's view
    # before first use and builds the model again if it keeps MIPV
    return MiniRocketTransform(dilations.tolist(), per_dilation.tolist(),
                               normalise=m.normalise is True,
                               pooling="ppv" if m.pooling == "auto" else m.pooling,
                               dtype="float32", name=LAYER_NAME)(x)


def fit(build: Callable[..., Any], x: np.ndarray, y: np.ndarray, x_val: np.ndarray | None,
        y_val: np.ndarray | None, cfg: Any, sample_weight: np.ndarray | None = None,
        progress: Any = None) -> tuple[Any, dict[str, list[float]]]:
    """Build the model and fit its transform and classifier.

    The choices left to the data are made first, each by the ridge's leave-one-out
    predictions and kept only when ``clearly_better``: the view (``normalise: auto``:
    raw values, else each sequence z-normalised), on the first pooling to weigh; then
    the pooling (``pooling: auto``: PPV, else PPV and MIPV), on the view kept. MIPV
    doubles the transform's output, so the model is built again when it is kept.

    Args:
        build: Builds the compiled Keras model from the config; keyword arguments
            replace ``model`` keys (here ``pooling``). Its ``minirocket`` and ``classes``
            layers are set here; a Masking layer in it says which steps are padding.
        x: (n, steps, channels) float32 training sequences, padded.
        y: Class indices.
        x_val: Validation sequences, or None.
        y_val: Their class indices, or None.
        cfg: The config (``model``, ``training.seed``; ``training.epochs`` and
            ``batch_size`` for the logistic classifier).
        sample_weight: Per training sequence (``training.class_weight``), for the
            classifier's fit; None: equal.
        progress: Told what ``normalise: auto`` and ``pooling: auto`` chose and why;
            None: silent.

    Returns:
        The fitted model, and history columns: ``loss`` and ``accuracy`` on the training
        data (and ``val_`` ones), one entry for ridge, one per epoch for logistic; with
        ``normalise: auto`` also ``raw_loo_accuracy`` and ``normalised_loo_accuracy``,
        with ``pooling: auto`` ``ppv_loo_accuracy`` and ``ppv_mipv_loo_accuracy``: the
        ridge's leave-one-out accuracies that chose (on a random VIEW_SAMPLE of the
        training sequences for the logistic classifier).
    """
    m = cfg.model
    model = build()
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    if len(np.unique(y)) < 2:
        raise SeqclfError("model.family 'minirocket' needs training sequences of at least "
                          "two classes.")
    seed = cfg.training.seed
    real = real_steps(model, x)
    classifier = m.classifier
    if classifier == "auto":
        classifier = "ridge" if len(x) <= LOGISTIC_ABOVE else "logistic"
    views = (False, True) if m.normalise == "auto" else (bool(m.normalise),)
    poolings = POOLINGS if m.pooling == "auto" else (m.pooling,)
    n_classes = model.get_layer("classes").units
    history: dict[str, list[float]] = {}
    ridges: dict[tuple[bool, str], tuple[np.ndarray, RidgeFit]] = {}
    computed: dict[bool, np.ndarray] = {}  # view -> features, with MIPV if weighed
    normalise, pooling = views[0], poolings[0]
    layer = model.get_layer(LAYER_NAME)
    if classifier == "ridge" or len(views) > 1 or len(poolings) > 1:
        # A ridge on each candidate; its leave-one-out predictions choose. When it only
        # chooses (logistic), on a sample: its cost grows with the square of rows.
        rows = np.arange(len(x))
        if classifier == "logistic" and len(x) > VIEW_SAMPLE:
            rows = np.sort(np.random.default_rng(seed).choice(len(x), VIEW_SAMPLE,
                                                              replace=False))
        weight = None if sample_weight is None else sample_weight[rows]

        def ridge(view: bool, pooled: str) -> RidgeFit:
            if view not in computed:
                fit_view(layer, x, real, view, seed)
                computed[view] = _pooled(layer, x[rows], real[rows], "ppv_mipv" in poolings)
            if (view, pooled) not in ridges:
                f = computed[view][:, :layer.n_biases] if pooled == "ppv" else computed[view]
                ridges[view, pooled] = f, fit_ridge(f, y[rows], n_classes, weight)
            return ridges[view, pooled][1]

        by_view = [ridge(view, pooling) for view in views]  # raw first
        if len(views) > 1:
            normalise = clearly_better(by_view[1].loo_correct, by_view[0].loo_correct)
            history.update(_chose(progress, "normalise", ("raw", "normalised"), normalise,
                                  by_view))
        by_pooling = [ridge(normalise, p) for p in poolings]  # PPV first
        if len(poolings) > 1:
            kept = clearly_better(by_pooling[1].loo_correct, by_pooling[0].loo_correct)
            pooling = poolings[int(kept)]
            history.update(_chose(progress, "pooling", poolings, kept, by_pooling))
    holds = list(computed)[-1] if computed else None  # the view the layer was fitted on
    if pooling != layer.pooling:
        model, holds = build(pooling=pooling), None
        layer = model.get_layer(LAYER_NAME)
    if holds is not normalise:
        fit_view(layer, x, real, normalise, seed)
    head = model.get_layer("classes")
    f_val = None if x_val is None else transform(model, x_val)
    if classifier == "logistic":
        return model, {**fit_logistic(model, transform(model, x), y, f_val, y_val,
                                      cfg.training.epochs, cfg.training.batch_size,
                                      sample_weight), **history}
    f, (kernel, bias, *_) = ridges[normalise, pooling]
    head.set_weights([kernel, bias])
    history.update(_scores(f, y, kernel, bias, ""))
    if f_val is not None:
        history.update(_scores(f_val, y_val, kernel, bias, "val_"))
    return model, history


def _chose(progress: Any, key: str, names: tuple[str, str], second: bool,
           fits: list[RidgeFit]) -> dict[str, list[float]]:
    """Tell ``progress`` which of two candidates ``key: auto`` kept and on what
    leave-one-out accuracies; return those as history columns."""
    if progress is not None:
        why = ("; not clearly better" if not second and fits[1].loo_accuracy
               > fits[0].loo_accuracy else "")
        progress.note(f"{key} auto: kept {names[int(second)]} (the ridge's leave-one-out "
                      f"accuracy: {names[0]} {fits[0].loo_accuracy:.3f}, {names[1]} "
                      f"{fits[1].loo_accuracy:.3f}{why})")
    return {f"{name}_loo_accuracy": [fit.loo_accuracy] for name, fit in zip(names, fits)}


def clearly_better(new: np.ndarray, old: np.ndarray) -> bool:
    """Whether the classifier right on ``new`` (bool per sequence, leave-one-out) beats
    the one right on ``old`` by more than chance would: the sequences only it gets right
    outnumber those only the other gets right by more than twice the standard deviation
    of that difference were each disagreement a coin flip (McNemar's test, about 5 %
    one-sided). Two views of nearly the same data disagree on a few sequences by
    rounding alone; that never decides."""
    gain = int(np.sum(new & ~old)) - int(np.sum(old & ~new))
    return bool(gain > 2 * np.sqrt(np.sum(new != old)))


def fit_view(layer: Any, x: np.ndarray, real: np.ndarray, normalise: bool, seed: int) -> None:
    """Set the transform ``layer``'s view of the values (raw, or each sequence's
    channels z-normalised) and fit its kernels and biases on ``x`` read that way, drawing
    from the generator of ``seed`` (so each view draws the same examples and channels)."""
    layer.normalise = bool(normalise)
    if normalise:
        x = z_normalise(x, real)
    kernels, biases, _ = fit_transform(x, real, layer.dilations, layer.features_per_dilation,
                                       np.random.default_rng(seed))
    layer.kernels.assign(kernels)
    layer.biases.assign(biases)


def describe(m: Config) -> str:
    view = {False: "", True: ", each sequence z-normalised", "auto": ", normalise auto"}
    pooling = {"ppv": "", "ppv_mipv": ", PPV and MIPV", "auto": ", pooling auto"}
    return (f"MiniRocket: {N_KERNELS * (m.num_features // N_KERNELS)} features, "
            f"{m.classifier} classifier{view[m.normalise]}{pooling[m.pooling]}")


def real_steps(model: Any, x: np.ndarray) -> np.ndarray:
    """Which steps of ``x`` the model reads as real: all of them, unless it has a Masking
    layer; then those not equal to its mask value in every channel."""
    from seqclf.backend import keras

    masking = [lyr for lyr in model.layers if isinstance(lyr, keras().layers.Masking)]
    if not masking:
        return np.ones(x.shape[:2], dtype=bool)
    return np.any(x != np.float32(masking[0].mask_value), axis=-1)


def transform(model: Any, x: np.ndarray) -> np.ndarray:
    """The transform's features of ``x`` (n, steps, channels), as the model's
    ``minirocket`` layer computes them, but in NumPy: see ``pool``."""
    layer = model.get_layer(LAYER_NAME)
    return _pooled(layer, x, real_steps(model, x), layer.pooling == "ppv_mipv")


def _pooled(layer: Any, x: np.ndarray, real: np.ndarray, mipv: bool) -> np.ndarray:
    """``pool`` with a transform layer's view and weights."""
    if layer.normalise:
        x = z_normalise(x, real)
    return pool(x, real, *_parameters(layer), mipv=mipv)


def _parameters(layer: Any) -> tuple[np.ndarray, np.ndarray, list[int], list[int]]:
    """A transform layer's kernels, biases, dilations and features per dilation."""
    kernels, biases = (np.asarray(w) for w in layer.get_weights())
    return kernels, biases, layer.dilations, layer.features_per_dilation


def z_normalise(x: np.ndarray, real: np.ndarray) -> np.ndarray:
    """Each sequence's channels of ``x`` (n, steps, channels) at mean 0 and standard
    deviation 1 over its ``real`` steps (n, steps), padded steps 0; a channel whose
    standard deviation is at most 1e-10 times its largest magnitude (constant, up to
    rounding) becomes 0. The transform layer's ``_z_normalise``, in the same float32
    operations."""
    weight = real[..., None].astype(np.float32)
    x = np.where(real[..., None], x, np.float32(0)).astype(np.float32)
    n = np.maximum(weight.sum(axis=1, keepdims=True), np.float32(1))
    centred = (x - x.sum(axis=1, keepdims=True) / n) * weight
    std = np.sqrt((centred * centred).sum(axis=1, keepdims=True) / n)
    constant = std <= np.float32(1e-10) * np.abs(x).max(axis=1, keepdims=True)
    return np.where(constant, np.float32(0), centred / np.where(constant, np.float32(1), std))


def pool(x: np.ndarray, real: np.ndarray, kernels: np.ndarray, biases: np.ndarray,
         dilations: list[int], features_per_dilation: list[int], mipv: bool = False
         ) -> np.ndarray:
    """MiniRocket's features of ``x`` (n, steps, channels) with the real steps ``real``
    (n, steps), the weights laid out as ``MiniRocketTransform``'s, computed as that layer
    does (same values; the layer is what a saved model runs, this is what ``fit`` and
    ``predict_proba`` run): the PPVs, then, with ``mipv``, the MIPVs (the layer's
    ``pooling: ppv_mipv``).

    Why not the layer: it spends most of its time in one compare, one cast and one sum
    over the whole (batch, kernels, steps) output per bias, and tracing it takes seconds.
    Here sequences go in order of length, in blocks cut to their real steps (a sequence's
    features do not depend on the padding around it; PLAID's series, 324 steps on
    average, are padded to 1344) and small enough for the CPU's caches, blocks on all
    cores; each bias is one compare against a contiguous plane and a count that adds 8
    of them per 64-bit word (``_count``). On 2 cores: 3-5x faster than the layer run
    eagerly (benchmarks/ucr.py's fit and predict seconds).
    """
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits  # scikit-learn's dependency

    n, steps, _ = x.shape
    has_real = real.any(axis=1)
    first = np.where(has_real, np.argmax(real, axis=1), 0)
    last = np.where(has_real, steps - 1 - np.argmax(real[:, ::-1], axis=1), 0)
    order = np.argsort(last - first, kind="stable")
    width = _words(last[order] - first[order] + 1) * 8
    blocks, i = [], 0
    while i < n:  # rows in length order; a block's longest row sets its width
        m = max(1, BLOCK_BYTES // (5 * N_KERNELS * int(width[i])))
        while m > 1 and m * 5 * N_KERNELS * int(width[min(i + m, n) - 1]) > BLOCK_BYTES:
            m //= 2
        blocks.append(order[i:i + m])
        i += m

    def one(rows: np.ndarray) -> np.ndarray:
        lo, hi = int(first[rows].min()), int(last[rows].max()) + 1
        return _pool_block(x[rows, lo:hi], real[rows, lo:hi], kernels, biases, dilations,
                           features_per_dilation, mipv)

    n_biases = N_KERNELS * int(np.sum(features_per_dilation))
    out = np.empty((n, n_biases * (2 if mipv else 1)), dtype=np.float32)
    # NumPy releases the GIL in its loops: threads share the work without copies. BLAS
    # stays on one thread in each: OpenBLAS's own threads, spinning beside ours, made
    # this 8x slower on 2 cores.
    with threadpool_limits(1, user_api="blas"), \
            ThreadPoolExecutor(min(len(blocks), _cores())) as pool:
        for rows, values in zip(blocks, pool.map(one, blocks)):
            out[rows] = values
    return out


def _pool_block(x: np.ndarray, real: np.ndarray, kernels: np.ndarray, biases: np.ndarray,
                dilations: list[int], features_per_dilation: list[int], mipv: bool
                ) -> np.ndarray:
    """``pool`` of one block of sequences, cut to its real steps."""
    n, steps, _ = x.shape
    dense = bool(real.all())  # every step real: regions are slices, no masks
    if not dense:
        x = np.where(real[..., None], x, np.float32(0))
    x = np.ascontiguousarray(x.transpose(0, 2, 1), dtype=np.float32)  # steps last
    reach = (KERNEL_LENGTH // 2) * max(dilations)
    x = np.pad(x, [(0, 0), (0, 0), (reach, reach)])  # zeros: 'same' padding
    # Steps left out of a PPV hold LOWEST, which never exceeds a bias; so do the steps
    # that round the width up to whole 64-bit words of hits.
    conv = np.full((n, N_KERNELS, int(_words(steps)) * 8), LOWEST, dtype=np.float32)
    hits = np.empty(conv.shape, dtype=bool)
    n_real = real.sum(axis=1).astype(np.float32)
    if not dense:
        position = np.arange(steps)
        has_real = n_real > 0
        first = np.where(has_real, np.argmax(real, axis=1), steps)
        last = np.where(has_real, steps - 1 - np.argmax(real[:, ::-1], axis=1), -1)
    total = N_KERNELS * int(np.sum(features_per_dilation))
    out = np.empty((n, total * (2 if mipv else 1)), dtype=np.float32)
    start = 0
    for j, (dilation, n_biases) in enumerate(zip(dilations, features_per_dilation)):
        r = (KERNEL_LENGTH // 2) * dilation
        skip = reach - r
        taps = np.concatenate([x[:, :, skip + i * dilation:skip + i * dilation + steps]
                               for i in range(KERNEL_LENGTH)], axis=1)
        np.matmul(kernels[j], taps, out=conv[:, :, :steps])
        padded = slice(j % 2, None, 2)  # the kernels k with j + k even
        unpadded = slice(1 - j % 2, None, 2)
        counted = np.empty((n, N_KERNELS), dtype=np.float32)
        counted[:, padded] = n_real[:, None]
        begins = np.zeros((n, N_KERNELS), dtype=np.float32)  # each count's first step
        if dense and steps > 2 * r:  # central steps: all but r at each end
            conv[:, unpadded, :r] = LOWEST
            conv[:, unpadded, steps - r:steps] = LOWEST
            counted[:, unpadded] = steps - 2 * r
            begins[:, unpadded] = r
        elif dense:  # none: the padded PPV instead
            counted[:, unpadded] = n_real[:, None]
        else:
            inner = real & (position >= (first + r)[:, None]) & (position <= (last - r)[:, None])
            n_inner = inner.sum(axis=1).astype(np.float32)
            has_inner = n_inner > 0
            inner = np.where(has_inner[:, None], inner, real)
            counted[:, unpadded] = np.where(has_inner, n_inner, n_real)[:, None]
            begins[:, padded] = first[:, None]
            begins[:, unpadded] = np.where(has_inner, first + r, first)[:, None]
            np.copyto(conv[:, padded, :steps], LOWEST, where=~real[:, None, :])
            np.copyto(conv[:, unpadded, :steps], LOWEST, where=~inner[:, None, :])
        np.maximum(counted, 1.0, out=counted)
        block = biases[start:start + N_KERNELS * n_biases].reshape(n_biases, N_KERNELS)
        values = np.empty((n, N_KERNELS, n_biases), dtype=np.float32)
        positions = np.empty((n, N_KERNELS, n_biases), dtype=np.float32) if mipv else None
        for b in range(n_biases):
            # against a plane of the bias: 2.4x faster than broadcasting it along steps
            plane = np.repeat(block[b][:, None], conv.shape[2], axis=1)
            np.greater(conv, plane[None], out=hits)
            if mipv:
                count, index = _count(hits, index=True)
                mean = index / np.maximum(count, 1) - begins
                positions[:, :, b] = np.where(count > 0, mean / counted, np.float32(-1))
            else:
                count = _count(hits)
            values[:, :, b] = count / counted
        out[:, start:start + N_KERNELS * n_biases] = values.reshape(n, -1)
        if mipv:
            out[:, total + start:total + start + N_KERNELS * n_biases] = positions.reshape(n, -1)
        start += N_KERNELS * n_biases
    return out


def _words(steps: Any) -> Any:
    """64-bit words that hold ``steps`` one-byte flags."""
    return -(-np.asarray(steps) // 8)


def _count(flags: np.ndarray, index: bool = False) -> Any:
    """The True values along the last axis of a bool array (its length a multiple of 8),
    as int32: the flags are added 8 at a time as the bytes of 64-bit words (a byte
    holds a count of at most 255 words, so at most 255 words at a time).

    With ``index``, also the sum of their positions (float32): a flag at 8w + b adds
    b to its byte's count (byte b of each word) and 8w to its word's, which is the sum
    of the word's bytes, read off the top byte of the word times 0x0101010101010101."""
    words = flags.view(np.uint64)
    lanes = np.zeros((*flags.shape[:-1], 8), dtype=np.int32)
    for s in range(0, words.shape[-1], 255):
        summed = words[..., s:s + 255].sum(axis=-1).view(np.uint8)
        lanes += summed.reshape(*flags.shape[:-1], 8)
    total = lanes.sum(axis=-1, dtype=np.int32)
    if not index:
        return total
    per_word = (words * np.uint64(0x0101010101010101)) >> np.uint64(56)
    at = np.arange(words.shape[-1], dtype=np.float32) * 8
    return total, per_word.astype(np.float32) @ at + lanes @ np.arange(8, dtype=np.float32)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def predict_proba(model: Any, x: np.ndarray) -> np.ndarray:
    """Class probabilities of a fitted model for ``x``: the model's own prediction, its
    features computed by ``transform`` rather than by ``model.predict`` (which traces
    the whole model and computes every padded step)."""
    from scipy.special import softmax

    kernel, bias = model.get_layer("classes").get_weights()
    return softmax(transform(model, x).astype(np.float64) @ kernel + bias, axis=1)


class RidgeFit(NamedTuple):
    """``fit_ridge``'s result: the softmax layer's weights and which training sequences
    the ridge predicts right when left out of its fit."""

    kernel: np.ndarray
    bias: np.ndarray
    loo_correct: np.ndarray  # bool, one per training sequence
    loo_accuracy: float  # their share (weighted by the fit's sample weights)


def fit_ridge(f: np.ndarray, y: np.ndarray, n_classes: int,
              sample_weight: np.ndarray | None = None) -> RidgeFit:
    """The paper's classifier on features ``f``, as the softmax layer's weights.

    ``StandardScaler(with_mean=False)`` then ``RidgeClassifierCV`` over RIDGE_ALPHAS,
    the regularisation chosen by leave-one-out squared error (scikit-learn's default;
    here through a scorer that computes it, so that the leave-one-out decision values
    are kept for the temperature). Logits are temperature x decision values (for two
    classes, -d/2 and d/2), so the predicted class is the ridge's.

    Returns:
        kernel (features, n_classes) and bias (n_classes,), float32, a class absent from
        ``y`` with zero weights and ABSENT_CLASS_LOGIT; which sequences the leave-one-out
        predictions at the chosen penalty get right, and their weighted share.
    """
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.preprocessing import LabelBinarizer, StandardScaler

    scaler = StandardScaler(with_mean=False).fit(f, sample_weight=sample_weight)
    # RidgeClassifierCV's own targets, for the scorer
    targets = LabelBinarizer(pos_label=1, neg_label=-1).fit_transform(y).astype(np.float64)

    def neg_mse(_: Any, predictions: np.ndarray, __: Any, **___: Any) -> float:
        # scikit-learn's selection without a scorer: the mean squared leave-one-out error
        return -float(np.mean((np.reshape(predictions, targets.shape) - targets) ** 2))

    ridge = RidgeClassifierCV(alphas=RIDGE_ALPHAS, scoring=neg_mse, store_cv_results=True)
    ridge.fit(scaler.transform(f), y, sample_weight=sample_weight)
    best = int(np.flatnonzero(RIDGE_ALPHAS == ridge.alpha_)[0])
    loo = np.reshape(ridge.cv_results_[..., best], targets.shape)
    coef = np.atleast_2d(ridge.coef_) / scaler.scale_  # (targets, features), unscaled
    intercept = np.atleast_1d(ridge.intercept_)
    if targets.shape[1] == 1:  # two classes: one decision value d, logits -d/2 and d/2
        coef = np.concatenate([-coef, coef]) / 2
        intercept = np.concatenate([-intercept, intercept]) / 2
        loo = np.concatenate([-loo, loo], axis=1) / 2
    present = ridge.classes_.astype(np.int64)
    index = np.searchsorted(present, y)
    correct = np.argmax(loo, axis=1) == index
    t = fit_temperature(loo, index)
    kernel = np.zeros((f.shape[1], n_classes), dtype=np.float64)
    bias = np.full(n_classes, ABSENT_CLASS_LOGIT, dtype=np.float64)
    kernel[:, present] = t * coef.T
    bias[present] = t * intercept
    return RidgeFit(kernel.astype(np.float32), bias.astype(np.float32), correct,
                    float(np.average(correct, weights=sample_weight)))


def fit_temperature(scores: np.ndarray, y: np.ndarray) -> float:
    """The t > 0 for which softmax(t x scores) best predicts ``y`` (log loss).

    ``scores`` are held-out decision values (leave-one-out), so t calibrates the
    probabilities for new data. The targets are smoothed, (n x one-hot + uniform) /
    (n + 1), as if one more example of unknown class had been seen: with n examples
    that the scores all separate, the fit would otherwise send t to infinity and claim
    certainty that n examples cannot support.
    """
    from scipy.optimize import minimize_scalar
    from scipy.special import log_softmax

    n, n_classes = scores.shape
    target = (n * np.eye(n_classes)[y] + 1.0 / n_classes) / (n + 1)
    spread = float(np.std(scores)) or 1.0
    z = scores / spread

    def loss(log_t: float) -> float:
        return -float(np.mean(np.sum(target * log_softmax(np.exp(log_t) * z, axis=1), axis=1)))

    best = minimize_scalar(loss, bounds=(-10.0, 10.0), method="bounded")
    return float(np.exp(best.x) / spread)


def fit_logistic(model: Any, f: np.ndarray, y: np.ndarray, f_val: np.ndarray | None,
                 y_val: np.ndarray | None, epochs: int, batch_size: int,
                 sample_weight: np.ndarray | None = None) -> dict[str, list[float]]:
    """Train the softmax layer on standardised features with the model's optimizer (the
    paper's logistic regression: zero initial weights, features standardised by the
    training mean and standard deviation + 1e-8), then fold the standardisation into it.

    Returns:
        Keras's history: loss and accuracy per epoch (and val_ ones).
    """
    from seqclf.backend import keras

    k = keras()
    head = model.get_layer("classes")
    mean = f.mean(axis=0)
    std = f.std(axis=0) + 1e-8
    inputs = k.Input(shape=(f.shape[1],))
    trainer = k.Model(inputs, head(inputs))  # shares the model's softmax layer
    head.set_weights([np.zeros_like(w) for w in head.get_weights()])
    trainer.compile(optimizer=model.optimizer, loss="sparse_categorical_crossentropy",
                    metrics=["accuracy"])
    val = None if f_val is None else ((f_val - mean) / std, y_val)
    fitted = trainer.fit((f - mean) / std, y, sample_weight=sample_weight, epochs=epochs,
                         batch_size=batch_size, validation_data=val, verbose=0)
    kernel, bias = head.get_weights()
    head.set_weights([(kernel / std[:, None]).astype(np.float32),
                      (bias - (mean / std) @ kernel).astype(np.float32)])
    return {key: [float(v) for v in values] for key, values in fitted.history.items()}


def _scores(f: np.ndarray, y: np.ndarray, kernel: np.ndarray, bias: np.ndarray,
            prefix: str) -> dict[str, list[float]]:
    """Log loss and accuracy of the folded classifier on features ``f``."""
    from scipy.special import log_softmax

    logp = log_softmax(f.astype(np.float64) @ kernel + bias, axis=1)
    return {f"{prefix}loss": [float(-np.mean(logp[np.arange(len(y)), y]))],
            f"{prefix}accuracy": [float(np.mean(np.argmax(logp, axis=1) == y))]}

"""Building the Keras model described by the config, and running it on arrays.

Layout: input -> Masking (numeric input) or Embedding(mask_zero) (token input) -> the
``model.family``'s features (``seqclf/models/<family>.py``) -> optional Dense head ->
Dense(n_classes, softmax). Padded steps carry a mask, so they never influence the
prediction.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from seqclf import compute
from seqclf.backend import compile_model, cpu_cores, devices, keras
from seqclf.config import Config, OptimizerConfig, validate_config
from seqclf.data import Preprocessor
from seqclf.errors import SeqclfError, did_you_mean
from seqclf.models import registry
from seqclf.sections import DenseHead

OPTIMIZER_CLASSES = {
    "adadelta": "Adadelta", "adafactor": "Adafactor", "adagrad": "Adagrad", "adam": "Adam",
    "adamax": "Adamax", "adamw": "AdamW", "ftrl": "Ftrl", "lion": "Lion", "nadam": "Nadam",
    "rmsprop": "RMSprop", "sgd": "SGD",
}


def build_model(cfg: Config, prep: Preprocessor, work: compute.Work | None = None) -> Any:
    """Build and compile the classifier for data shaped as ``prep`` describes, compiled
    as the compute plan decides for ``work`` (the training to come; None: none known)."""
    k = keras(cfg.training.backend)
    registry.load_layers()  # only now: they define Keras layers, so the backend is chosen
    combine = registry.hook(cfg.model.family, "combine")
    if combine is not None:  # an ensemble, untrained (seqclf check)
        return combine(k, [build_model(member_config(cfg, section, seed), prep, work)
                           for section, seed in cfg.model.member_sections(cfg.training.seed)])
    layers = k.layers
    m = cfg.model
    # A stateful layer keeps state per batch row, so Keras needs the batch size up front.
    batch_size = cfg.training.batch_size if m.is_stateful() else None
    if prep.vocab_size is not None:
        inputs = k.Input(shape=(prep.max_length,), batch_size=batch_size, dtype="int32",
                         name="tokens")
        x = layers.Embedding(prep.vocab_size, m.token_input().output_dim, mask_zero=m.masking,
                             name="embedding")(inputs)
    else:
        inputs = k.Input(shape=(prep.max_length, prep.n_features), batch_size=batch_size,
                         name="sequences")
        x = inputs
        if cfg.training.random_crop < 1.0:  # a training-only augmentation, before masking
            from seqclf.models.layers import RandomCrop

            x = RandomCrop(cfg.training.random_crop, prep.pad_value, prep.padding,
                           seed=cfg.training.seed, name="random_crop")(x)
        x = layers.Masking(mask_value=prep.pad_value, name="masking")(x) if m.masking else x
    x = registry.get(m.family).features(k, m, prep, x)
    if isinstance(m, DenseHead):
        for j, n in enumerate(m.head_units):
            x = layers.Dense(n, activation=m.head_activation, name=f"dense_{j + 1}")(x)
            if m.head_dropout:
                x = layers.Dropout(m.head_dropout, name=f"dropout_{j + 1}")(x)
    # float32 softmax keeps probabilities exact even under a mixed-precision policy.
    outputs = layers.Dense(len(prep.classes), activation="softmax", dtype="float32",
                           name="classes")(x)
    model = k.Model(inputs, outputs, name="seqclf")
    p = compute.plan(cfg, k.backend.backend(), len(devices()), cpu_cores(), work)
    compile_model(model, optimizer=make_optimizer(cfg.optimizer, cfg.source),
                  loss=make_loss(cfg), metrics=["accuracy"],
                  jit_compile=p.jit_compile, steps_per_execution=p.steps_per_execution)
    return model


def make_loss(cfg: Config) -> Any:
    """``training.loss``: sparse crossentropy (class-index targets), or Keras's categorical
    focal crossentropy with ``training.focal_gamma`` (one-hot targets: ``fit_model``
    makes them)."""
    if cfg.training.loss == "focal":
        return keras().losses.CategoricalFocalCrossentropy(gamma=cfg.training.focal_gamma)
    return "sparse_categorical_crossentropy"


def member_config(cfg: Config, section: dict[str, Any], seed: int) -> Config:
    """The config of one ensemble member: ``cfg`` with the member's model section and
    training seed."""
    raw = cfg.to_dict()
    raw["model"] = section
    raw["training"]["seed"] = seed
    return validate_config(raw, where=cfg.source)


def make_optimizer(opt: OptimizerConfig, where: str) -> Any:
    """A Keras optimizer from the config, its extra keys checked against the constructor."""
    cls = getattr(keras().optimizers, OPTIMIZER_CLASSES[opt.name])
    params = {n: p for n, p in inspect.signature(cls.__init__).parameters.items()
              if n not in ("self", "kwargs", "name")}
    valid = list(params)
    kwargs = opt.kwargs()
    for key, value in kwargs.items():
        if key not in params:
            raise SeqclfError(
                f"{where}: optimizer.{key} is not an argument of keras.optimizers."
                f"{cls.__name__}{did_you_mean(key, valid)}. Valid keys: name, {', '.join(valid)}.")
        _check_optimizer_value(where, key, value, params[key].default)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise SeqclfError(f"{where}: optimizer: keras.optimizers.{cls.__name__} rejected the "
                          f"arguments {kwargs}: {exc}") from None


def _check_optimizer_value(where: str, key: str, value: Any, default: Any) -> None:
    """Type-check an optimizer argument by its Keras default, so that a wrong value fails
    here, named, instead of inside the first training step."""
    if isinstance(default, bool):
        ok, wanted = isinstance(value, bool), "true or false"
    elif isinstance(default, (int, float)) or default is None:
        # None defaults (weight_decay, clipnorm, clipvalue, ...) are all optional numbers.
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        wanted = "a number" + (" or null" if default is None else "")
        ok = ok or (default is None and value is None)
    else:  # strings and callables: leave to Keras
        return
    if not ok:
        raise SeqclfError(f"{where}: optimizer.{key} must be {wanted}. Got {value!r} "
                          f"({type(value).__name__}) instead.")


def fixed_batch_padding(n: int, batch_size: int, full_batches: bool) -> int:
    """Rows to append to ``n`` so that every batch is full (a stateful model needs it);
    0 when ``full_batches`` is false."""
    return (-n) % batch_size if full_batches else 0


def predict_proba(model: Any, x: np.ndarray, cfg: Config) -> np.ndarray:
    """Class probabilities of a model built from ``cfg`` for ``x``, as float64.

    A family with a ``predict_proba(model, x)`` hook computes them itself (minirocket:
    its features in length order, cut to the real steps, instead of tracing the whole
    model); an ensemble averages its members' (each by its own family's rule), as its
    ``Average`` layer does; other models run batch by batch (``training.batch_size``;
    stateful ones from a clean state, on full batches) through ``predict_on_batch``:
    Keras's compiled step without ``model.predict``'s data pipeline, which cost 0.1-0.2 s
    a call on 2 CPU cores, a hundred times a one-sequence prediction. A distributed
    model goes through ``model.predict``, which splits batches over its replicas.
    """
    family = cfg.model.family
    if registry.hook(family, "combine") is not None:
        members = [predict_proba(model.get_layer(f"member_{i}"), x,
                                 member_config(cfg, section, seed))
                   for i, (section, seed) in enumerate(
                       cfg.model.member_sections(cfg.training.seed), start=1)]
        return members[0] if len(members) == 1 else np.mean(members, axis=0)
    own = registry.hook(family, "predict_proba")
    if own is not None:
        return np.asarray(own(model, x), dtype=np.float64)
    batch_size, stateful = cfg.training.batch_size, cfg.model.is_stateful()
    # More than one batch: the last one padded to full size, so one compiled step serves
    # them all (a second shape would trace, or compile with XLA, again).
    pad = fixed_batch_padding(len(x), batch_size, stateful or len(x) > batch_size)
    if pad:
        x = np.concatenate([x, np.repeat(x[-1:], pad, axis=0)])
    if stateful:
        for layer in model.layers:
            if hasattr(layer, "reset_states"):
                layer.reset_states()
    if cfg.training.distribute != "none":  # predict_on_batch gives every replica the batch
        proba = model.predict(x, batch_size=batch_size, verbose=0)
    else:
        parts = [model.predict_on_batch(x[i:i + batch_size])
                 for i in range(0, len(x), batch_size)]
        proba = np.concatenate(parts) if parts else np.zeros((0, model.output_shape[-1]))
    return np.asarray(proba[: len(proba) - pad], dtype=np.float64)

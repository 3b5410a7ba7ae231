"""A run's data, made ready to fit: read, split (test, then validation), the
preprocessing fitted on the training part alone, arrays; and ``model.family: auto``
resolved from the training data. With ``data.streaming`` on (``seqclf.data.stream``
decides), the same without the arrays: the splits are ``stream.Part``s read chunk by
chunk while fitting (``seqclf.streaming``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from seqclf import compute
from seqclf.config import Config
from seqclf.data import Preprocessor, SequenceSet, load_splits, split
from seqclf.data.stream import decide


@dataclass
class Prepared:
    """The data of a run, read, split and turned into arrays, and the config it is
    trained with (``model.family: auto`` resolved from the training data).

    Streamed (``streamed``): ``train``, ``val`` and ``test`` are ``stream.Part``s
    (labels and lengths, no steps), the ``x_`` arrays None, ``y_train``/``y_val`` the
    encoded labels.
    """

    config: Config
    train: SequenceSet
    val: SequenceSet | None
    test: SequenceSet
    prep: Preprocessor
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    x_test: np.ndarray | None  # None (and test None) when fitting on given data alone
    test_truncated: int = 0
    warnings: list[str] = field(default_factory=list)
    chosen: list[str] = field(default_factory=list)  # why the autos chose (family, streaming)
    streamed: bool = False

    def work(self) -> compute.Work:
        """The training work ahead (the compute plan's ``auto`` rules weigh it)."""
        return compute.workload(self.config, self.prep, len(self.train))


def prepare(cfg: Config) -> Prepared:
    """Read the config's data, split off test and validation sets, and make arrays (or,
    streaming, count and split it)."""
    decision = decide(cfg.data)
    if decision.stream:
        return _prepare_stream(cfg, decision.line)
    train_set, test_set = load_splits(cfg)
    return prepare_sets(cfg, train_set, test_set)  # in memory, as ever: nothing to say


def _prepare_stream(cfg: Config, line: str) -> Prepared:
    """``prepare`` for streamed data: one pass counts and checks every file; the splits
    and the preprocessing are the in-memory path's, from labels and lengths."""
    from seqclf import streaming

    streaming.check(cfg)
    tokens = cfg.model.family == "auto" and bool(getattr(cfg.model, "tokens", False))
    train, test = streaming.read_parts(cfg, tokens=tokens)
    chosen = []
    if cfg.model.family == "auto":
        cfg, chosen = resolve_profile(cfg, streaming.profile(train, tokens))
        streaming.check(cfg)
    train, val = streaming.split_validation(cfg, train)
    prep = streaming.preprocessor(cfg, train)
    warnings = []
    if cfg.data.max_length is not None:
        cut = int((train.lengths > prep.max_length).sum())
        if cut:
            warnings.append(f"{train.source}: {cut} training sequences are longer than "
                            f"data.max_length ({prep.max_length}) and were truncated.")
    return Prepared(cfg, train, val, test, prep, None, prep.encode_labels(train.labels),
                    None, None if val is None else prep.encode_labels(val.labels), None,
                    int((test.lengths > prep.max_length).sum()), warnings, [line] + chosen,
                    streamed=True)


def prepare_sets(cfg: Config, train_set: SequenceSet,
                 test_set: SequenceSet | None = None) -> Prepared:
    """Split the validation set off ``train_set``, fit the preprocessing on the rest alone,
    and make arrays (of ``test_set`` too, when given)."""
    cfg, chosen = resolve_family(cfg, train_set)
    val_set = None
    if cfg.training.validation_split > 0:
        train_set, val_set = split(train_set, cfg.training.validation_split, cfg.training.seed,
                                   cfg.data.stratify, "training.validation_split")
    prep = Preprocessor.fit(train_set, cfg)
    x_train, _ = prep.transform(train_set)
    x_val = y_val = None
    if val_set is not None:
        x_val, _ = prep.transform(val_set)
        y_val = prep.encode_labels(val_set.labels)
    x_test, truncated = prep.transform(test_set) if test_set is not None else (None, 0)
    warnings = []
    if cfg.data.max_length is not None:
        cut = sum(len(s) > prep.max_length for s in train_set.sequences)
        if cut:
            warnings.append(f"{train_set.source}: {cut} training sequences are longer than "
                            f"data.max_length ({prep.max_length}) and were truncated.")
    return Prepared(cfg, train_set, val_set, test_set, prep, x_train,
                    prep.encode_labels(train_set.labels), x_val, y_val, x_test, truncated,
                    warnings, chosen)


def resolve_family(cfg: Config, train_set: SequenceSet) -> tuple[Config, list[str]]:
    """``cfg`` with ``model.family: auto`` replaced by the family ``seqclf.models.auto``
    recommends for ``train_set``, and the reasons (any other config: as it is, no
    reasons). The recommendation's training and data keys apply where the config does
    not set them. The resolved config is what the run records, so its ``config.yaml``
    says what ``auto`` chose."""
    from seqclf.models import auto

    if cfg.model.family != "auto":
        return cfg, []
    return resolve_profile(cfg, auto.DataProfile.of(train_set.sequences, train_set.labels,
                                                    tokens=cfg.model.tokens))


def resolve_profile(cfg: Config, profile: Any) -> tuple[Config, list[str]]:
    """``resolve_family`` from the data's ``auto.DataProfile``."""
    from seqclf.config import validate_config
    from seqclf.models import auto

    choice = auto.recommend(profile)
    raw = cfg.to_dict()
    raw["model"] = {"masking": cfg.model.masking, **choice.model}
    # the choice's training and data keys, where the config leaves them at their defaults
    for section, keys in (("training", choice.training), ("data", choice.data)):
        given = getattr(cfg, section).model_fields_set
        raw[section].update({k: v for k, v in keys.items() if k not in given})
    return validate_config(raw, where=cfg.source), [f"model.family auto: {reason}"
                                                    for reason in choice.reasons]

"""Which sequences train and which test: the config's files, or a split of the training
data (stratified by label when asked)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from seqclf.config import Config
from seqclf.data.readers import read_sequences
from seqclf.data.sets import SequenceSet, check_same_features
from seqclf.errors import SeqclfError, must_be


def load_splits(cfg: Config) -> tuple[SequenceSet, SequenceSet]:
    """Read the training data and the test data (or split it off the training file)."""
    data = cfg.data
    train = read_sequences(data.train, data, missing_values=data.missing_values)
    if data.test is not None:
        test = read_sequences(data.test, data, missing_values=data.missing_values)
        check_same_features(train, test)
        return train, test
    return split(train, data.test_split, cfg.training.seed, data.stratify, "data.test_split")


def split(dataset: SequenceSet, fraction: float, seed: int, stratify: bool,
          key: str) -> tuple[SequenceSet, SequenceSet]:
    """Split off ``fraction`` of the sequences, stratified by label when asked.

    Returns:
        (the rest, the split-off part).
    """
    from sklearn.model_selection import train_test_split

    index = np.arange(len(dataset))
    labels = [str(v) for v in dataset.labels] if dataset.labels is not None else None
    if stratify and labels is not None:
        counts = pd.Series(labels).value_counts()
        n_test = int(np.ceil(fraction * len(index)))
        if counts.min() < 2:
            raise SeqclfError(
                f"{dataset.source}: a stratified split ({key}) needs at least 2 sequences "
                f"of each class; class {counts.idxmin()!r} has 1. Add data, or set "
                "data.stratify: false.")
        if n_test < len(counts) or len(index) - n_test < len(counts):
            raise must_be(dataset.source, key, f"large enough for one sequence of each of "
                          f"the {len(counts)} classes on both sides of a stratified split", fraction)
    try:
        rest, part = train_test_split(index, test_size=fraction, random_state=seed,
                                      stratify=labels if stratify else None)
    except ValueError as exc:
        raise must_be(dataset.source, key, f"a fraction that leaves sequences on both sides "
                      f"({exc})", fraction) from None
    return dataset.subset(np.sort(rest)), dataset.subset(np.sort(part))

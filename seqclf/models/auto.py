"""``model.family: auto``: a family chosen from the training data when training starts.

``recommend`` is a pure rule from a few facts about the training data (how many
sequences and classes, lengths, channels, the smallest class) to a model section, the
training keys it needs, and the reasons, in words. ``seqclf train`` resolves ``auto``
with it after reading the data, and the run's ``config.yaml`` records the family it chose;
``seqclf init`` writes the same choice into a config file, with the reasons as comments.

The rule, and the evidence for it (docs/results/ucr.md, measured on the public
development problems and synthetic data only; never tuned per data set):

* Numeric series of any length, any number of channels, equal or variable length:
  ``minirocket``, the random-convolutional-kernel transform with a ridge classifier
  (logistic regression beyond RIDGE_MAX_SEQUENCES sequences, as its authors advise). It
  was the most accurate family seqclf measured on real series, fits in seconds on a CPU,
  needs no validation split (the ridge picks its penalty by leave-one-out), and so works
  with two sequences per class. Its dilations scale with the longest training sequence,
  so no length shrinks a series below its kernel. ``normalise: auto`` lets the data say
  whether to z-normalise each sequence first (the ridge's leave-one-out predictions on
  both views; docs/results/ucr.md); ``pooling: auto`` whether to add MIPV, the mean
  position of each kernel's hits, by the same test. The neural families (``inception_time``,
  ``lstm_fcn``, ``conv_recurrent``) need a GPU and many epochs to compete; set them by name.
* Integer tokens (words, event codes; ``model.tokens: true``, ``seqclf init --tokens``):
  an Embedding over the tokens seen in training, then a bidirectional LSTM, as
  configs/reuters/embedding_lstm.yaml (the most accurate config on the Reuters tutorial
  split, docs/results/reuters.md). ``auto`` never guesses that numbers are tokens: an
  integer sensor reading looks the same.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from pydantic import Field

from seqclf.sections import FamilyConfig

# MiniROCKET's kernels are 9 steps long: shorter data is padded (masked) to this length.
KERNEL_LENGTH = 9
# MiniROCKET's authors fit a ridge classifier below about 10,000 training examples and
# logistic regression above (its cost grows with the square of the examples).
RIDGE_MAX_SEQUENCES = 10_000


class Config(FamilyConfig):
    """A family chosen from the training data when training starts (see seqclf/models/auto.py)."""

    family: Literal["auto"] = "auto"
    tokens: bool = Field(False, description="the one feature holds integer tokens (words, "
                         "event codes; 0 is padding): auto then chooses an embedding and a "
                         "recurrent network")


@dataclass(frozen=True)
class DataProfile:
    """What the choice depends on, from the training data."""

    sequences: int
    classes: int
    min_length: int
    max_length: int
    channels: int
    smallest_class: int
    tokens: int | None = None  # integer tokens: the vocabulary size (largest token + 1)

    @classmethod
    def of(cls, sequences: list[Any], labels: list[Any], tokens: bool = False
           ) -> "DataProfile":
        """The profile of training sequences (arrays of steps x channels) and labels;
        ``tokens``: their values are integer tokens."""
        lengths = [len(s) for s in sequences]
        counts = Counter(str(label) for label in labels)
        vocabulary = None
        if tokens:
            vocabulary = int(max(float(np.nanmax(s)) for s in sequences if len(s))) + 1
        return cls(len(sequences), len(counts), min(lengths), max(lengths),
                   int(sequences[0].shape[1]), min(counts.values()), vocabulary)


@dataclass
class Recommendation:
    """A model section, the data and training keys it needs, and why."""

    model: dict[str, Any]
    training: dict[str, Any] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


def recommend(p: DataProfile) -> Recommendation:
    """The family (and sizes) ``auto`` trains for data like ``p``."""
    shape = (f"{p.sequences} sequences of {p.min_length}" +
             (f"-{p.max_length}" if p.max_length != p.min_length else "") +
             f" steps, {p.channels} channel{'s' if p.channels > 1 else ''}, "
             f"{p.classes} classes")
    if p.tokens is not None:
        return _for_tokens(p, shape)
    reasons = [f"{shape}: minirocket (random convolutional kernels + a linear classifier) "
               "was the most accurate family on real series in docs/results/ucr.md and fits "
               "in seconds on a CPU"]
    model: dict[str, Any] = {"family": "minirocket"}
    if p.sequences > RIDGE_MAX_SEQUENCES:
        model["classifier"] = "logistic"
        reasons.append(f"more than {RIDGE_MAX_SEQUENCES} sequences: logistic regression on "
                       "the features instead of ridge (ridge's cost grows with the square "
                       "of the sequences)")
    else:
        model["classifier"] = "ridge"
        reasons.append("ridge classifier, its penalty chosen by leave-one-out on the "
                       "training data: no validation split needed"
                       + (f" (the smallest class has {p.smallest_class} sequences)"
                          if p.smallest_class < 5 else ""))
    model["normalise"] = "auto"
    reasons.append("normalise auto: the transform is fitted on the raw values and on each "
                   "sequence z-normalised, and normalises only if the ridge's leave-one-out "
                   "predictions are then clearly better (it helps where each series has its "
                   "own gain and offset, hurts where its level or scale is the class)")
    model["pooling"] = "auto"
    reasons.append("pooling auto: MultiRocket's MIPV (where in the series each kernel fires) "
                   "is added to the PPV features only if the ridge's leave-one-out "
                   "predictions are then clearly better (it helps where the order or place "
                   "of patterns is the class, costs accuracy where it is noise)")
    data: dict[str, Any] = {}
    if p.max_length < KERNEL_LENGTH:
        data["max_length"] = KERNEL_LENGTH
        reasons.append(f"the longest sequence has {p.max_length} steps: padded (masked) to "
                       f"{KERNEL_LENGTH}, the kernels' length; features count real steps only")
    else:
        reasons.append(f"dilations scale with the longest training sequence ({p.max_length} "
                       "steps); shorter ones are read over their real steps only")
    return Recommendation(model, {"validation_split": 0.0}, reasons, data)


def _for_tokens(p: DataProfile, shape: str) -> Recommendation:
    """Integer tokens: configs/reuters/embedding_lstm.yaml's model, its vocabulary the
    training data's."""
    model = {"family": "recurrent", "embedding": {"input_dim": p.tokens, "output_dim": 64},
             "cell": "lstm", "units": 64, "bidirectional": True, "dropout": 0.3}
    return Recommendation(model, {"epochs": 30}, [
        f"{shape}, integer tokens up to {p.tokens - 1}: an Embedding (64 dimensions, token 0 "
        "is padding) and a bidirectional LSTM(64) with dropout 0.3, 30 epochs: "
        "configs/reuters/embedding_lstm.yaml, the most accurate config on the Reuters "
        "tutorial split (docs/results/reuters.md)"])


def describe(m: Config) -> str:
    return "auto: a family chosen from the training data"


def features(k: Any, m: Config, prep: Any, x: Any) -> Any:
    raise RuntimeError("model.family 'auto' is resolved from the data before a model is "
                       "built (seqclf.prepare.resolve_family)")

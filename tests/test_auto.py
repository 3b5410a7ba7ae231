"""model.family: auto: the rule from the training data's shape to a family, and a run
that resolves it (config.yaml records the choice)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import yaml

from conftest import write_config
from seqclf.config import validate_config
from seqclf.models.auto import RIDGE_MAX_SEQUENCES, DataProfile, recommend


def profile(sequences=100, classes=3, lengths=(50, 50), channels=1, smallest=10):
    return DataProfile(sequences, classes, lengths[0], lengths[1], channels, smallest)


@pytest.mark.parametrize("shape", [
    profile(lengths=(7, 29), channels=12),          # short, multivariate, variable length
    profile(lengths=(2000, 2000)),                  # long, univariate
    profile(lengths=(100, 1344)),                   # variable length
    profile(sequences=104, classes=52, smallest=2),  # two sequences per class
])
def test_numeric_series_get_minirocket_with_ridge_and_no_validation_split(shape):
    choice = recommend(shape)
    assert choice.model == {"family": "minirocket", "classifier": "ridge", "normalise": "auto",
                            "pooling": "auto"}
    assert choice.training == {"validation_split": 0.0}
    assert any(f"{shape.max_length} steps" in r for r in choice.reasons)
    assert choice.data == {}
    # what it recommends is a valid config
    cfg = validate_config({"data": {"train": "x.csv"}, "model": choice.model,
                           "training": choice.training})
    assert cfg.model.family == "minirocket"


def test_sequences_shorter_than_a_kernel_are_padded_to_one():
    choice = recommend(profile(lengths=(3, 7), channels=2))
    assert choice.data == {"max_length": 9} and choice.model["family"] == "minirocket"
    assert recommend(profile(lengths=(3, 9))).data == {}


def test_many_sequences_get_logistic_regression():
    choice = recommend(profile(sequences=RIDGE_MAX_SEQUENCES + 1))
    assert choice.model["classifier"] == "logistic"
    assert any("logistic regression" in r for r in choice.reasons)


def test_few_per_class_is_said():
    reasons = " ".join(recommend(profile(classes=52, smallest=2)).reasons)
    assert "the smallest class has 2 sequences" in reasons


def test_profile_of_sequences():
    seqs = [np.zeros((n, 2)) for n in (3, 9, 5, 5)]
    p = DataProfile.of(seqs, ["a", "b", "a", "a"])
    assert p == DataProfile(4, 2, 3, 9, 2, 1)


@pytest.mark.slow
def test_a_run_with_family_auto_records_what_it_chose(long_data, tmp_path):
    import io

    from seqclf.config import load_config
    from seqclf.evaluate import evaluate
    from seqclf.progress import Progress
    from seqclf.train import train

    path = write_config(long_data / "auto.yaml", {
        "data": {"train": "train.csv", "format": "long"},
        "model": {"family": "auto"},
        "training": {"validation_split": 0.2, "seed": 1}})
    stream = io.StringIO()
    result = train(load_config(path), tmp_path, progress=Progress(stream, live=False))
    recorded = yaml.safe_load((result.run_dir / "config.yaml").read_text())
    assert recorded["model"]["family"] == "minirocket"
    assert recorded["model"]["normalise"] == "auto" and recorded["model"]["pooling"] == "auto"
    assert recorded["training"]["validation_split"] == 0.2  # the config's, not auto's 0
    assert "model.family auto: " in stream.getvalue()
    # which view the data chose, and on what evidence
    unclear = "(; not clearly better)?"
    assert re.search(r"normalise auto: kept (raw|normalised) \(the ridge's leave-one-out "
                     rf"accuracy: raw 0\.\d{{3}}, normalised 0\.\d{{3}}{unclear}\)",
                     stream.getvalue())
    assert re.search(r"pooling auto: kept (ppv|ppv_mipv) \(the ridge's leave-one-out "
                     rf"accuracy: ppv 0\.\d{{3}}, ppv_mipv 0\.\d{{3}}{unclear}\)",
                     stream.getvalue())
    history = (result.run_dir / "history.csv").read_text().splitlines()[0].split(",")
    assert {"raw_loo_accuracy", "normalised_loo_accuracy", "ppv_loo_accuracy",
            "ppv_mipv_loo_accuracy"} <= set(history)
    assert result.evaluation.accuracy > result.evaluation.baseline
    assert evaluate(result.run_dir).accuracy == pytest.approx(result.evaluation.accuracy)


def test_integer_tokens_get_an_embedding_and_a_bidirectional_lstm():
    p = DataProfile(sequences=500, classes=4, min_length=5, max_length=80, channels=1,
                    smallest_class=20, tokens=3000)
    choice = recommend(p)
    assert choice.model == {"family": "recurrent", "embedding": {"input_dim": 3000,
                                                                "output_dim": 64},
                            "cell": "lstm", "units": 64, "bidirectional": True, "dropout": 0.3}
    assert choice.training == {"epochs": 30} and "integer tokens up to 2999" in choice.reasons[0]
    # the vocabulary comes from the training data, only when asked for
    seqs = [np.array([[3.0], [7.0]]), np.array([[41.0]])]
    assert DataProfile.of(seqs, ["a", "b"], tokens=True).tokens == 42
    assert DataProfile.of(seqs, ["a", "b"]).tokens is None


@pytest.mark.slow
def test_auto_with_tokens_trains_an_embedding(tmp_path):
    from conftest import write_csv
    from seqclf.config import load_config
    from seqclf.train import train

    rng = np.random.default_rng(0)
    rows = []
    for i in range(60):  # class 1's sequences hold token 9, class 0's never
        label = i % 2
        tokens = rng.integers(1, 9, size=rng.integers(4, 9))
        if label:
            tokens[rng.integers(len(tokens))] = 9
        rows += [{"id": i, "step": j, "token": int(t), "label": label}
                 for j, t in enumerate(tokens)]
    write_csv(tmp_path / "train.csv", rows)
    path = write_config(tmp_path / "tokens.yaml", {
        "data": {"train": "train.csv", "format": "long"},
        "model": {"family": "auto", "tokens": True}, "training": {"epochs": 3}})
    result = train(load_config(path), tmp_path / "runs")
    recorded = yaml.safe_load((result.run_dir / "config.yaml").read_text())
    assert recorded["model"]["family"] == "recurrent"
    assert recorded["model"]["embedding"] == {"input_dim": 10, "output_dim": 64}
    assert recorded["training"]["epochs"] == 3  # the config's, not auto's 30


def test_auto_on_series_shorter_than_a_kernel(tmp_path):
    from conftest import long_frame, write_csv
    from seqclf.config import load_config
    from seqclf.train import train

    write_csv(tmp_path / "train.csv", long_frame(60, seed=3, min_len=2, max_len=6))
    path = write_config(tmp_path / "short.yaml", {
        "data": {"train": "train.csv", "format": "long"}, "model": {"family": "auto"}})
    result = train(load_config(path), tmp_path / "runs")
    recorded = yaml.safe_load((result.run_dir / "config.yaml").read_text())
    assert recorded["data"]["max_length"] == 9 and recorded["model"]["family"] == "minirocket"
    assert recorded["training"]["validation_split"] == 0.0  # left to auto
    assert result.evaluation.accuracy > result.evaluation.baseline

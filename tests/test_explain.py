"""seqclf explain: integrated gradients (occlusion for minirocket, per token for token
input), exact zeros on padding, permutation importance, the files and the CLI's refusals.

The synthetic problem: three channels of small noise (0.1); only steps WINDOW of channel ``a``
decide the class (+1.5 for ``up``, -1.5 for ``down``); lengths vary, so there is padding.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import write_config, write_csv
from seqclf.cli import app

WINDOW = slice(10, 15)
FILES = ["attributions.csv", "attributions.png", "explanation.json",
         "permutation_importance.csv", "permutation_importance.png"]


def window_frame(n: int, seed: int, shuffle_labels: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    if shuffle_labels:
        labels = rng.permutation(labels)
    rows = []
    for i in range(n):
        values = rng.normal(0.0, 0.1, (int(rng.integers(20, 31)), 3))
        values[WINDOW, 0] += 1.5 if i % 2 else -1.5  # the class is i % 2, whatever the label
        for s, (a, b, c) in enumerate(values):
            rows.append({"id": f"s{i:03d}", "step": s, "a": round(a, 4), "b": round(b, 4),
                         "c": round(c, 4), "label": "up" if labels[i] else "down"})
    return pd.DataFrame(rows)


def train_on(folder, name, model, frame, epochs=6):
    from seqclf.config import load_config
    from seqclf.train import train

    write_csv(folder / f"{name}.csv", frame)
    write_config(folder / f"{name}.yaml", {
        "name": name,
        "data": {"train": f"{name}.csv", "test": "test.csv", "format": "long",
                 "scaling": "standard"},
        "model": model, "optimizer": {"name": "adam", "learning_rate": 0.03},
        "training": {"epochs": epochs, "batch_size": 32, "seed": 0, "tensorboard": False}})
    return train(load_config(folder / f"{name}.yaml"), folder / "runs").run_dir


@pytest.fixture(scope="module")
def window_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("window")
    write_csv(folder / "test.csv", window_frame(40, seed=1))
    return folder


@pytest.fixture(scope="module")
def gru_run(window_data):
    return train_on(window_data, "gru", {"cell": "gru", "units": 8}, window_frame(240, seed=0))


def window_share(attributions: np.ndarray) -> float:
    """The share of the sequences' |attribution| (each scaled to a total of 1) in channel
    a's deciding window."""
    mass = np.abs(attributions)
    mass = mass / mass.sum(axis=(1, 2), keepdims=True)
    return float(mass[:, WINDOW, 0].sum() / len(mass))


@pytest.mark.slow
def test_attributions_fall_in_the_deciding_window_and_its_channel_ranks_first(
        gru_run, window_data, tmp_path):
    from seqclf.explain import explain

    ids = ["s000", "s001", "s002", "s003"]  # both classes
    result = explain(gru_run, window_data / "test.csv", ids, tmp_path / "out")
    assert result.method == "integrated_gradients" and result.ids == ids
    assert window_share(result.attributions) >= 0.7
    for seq in result.record["explained"]:  # the path integral adds up
        assert abs(seq["completeness_gap"]) < 0.05, seq
    ranking = [r["channel"] for r in result.importance]
    assert ranking[0] == "a" and result.importance[0]["accuracy_drop"] > 0.2
    assert all(abs(r["accuracy_drop"]) < 0.1 for r in result.importance[1:])

    # The control: a model trained on shuffled labels learns nothing of the window.
    control = train_on(window_data, "control", {"cell": "gru", "units": 8},
                       window_frame(240, seed=0, shuffle_labels=True))
    result = explain(control, window_data / "test.csv", ids, tmp_path / "control")
    assert window_share(result.attributions) < 0.7
    drop = {r["channel"]: r["accuracy_drop"] for r in result.importance}
    assert drop["a"] < 0.15


@pytest.mark.slow
def test_padded_steps_get_exactly_zero_and_real_steps_are_the_masking_layers(
        gru_run, window_data, tmp_path):
    from seqclf.explain import explain

    result = explain(gru_run, window_data / "test.csv", ["s000", "s005"], tmp_path)
    lengths = window_frame(40, seed=1).groupby("id", sort=False).size()
    expected = np.arange(30)[None, :] < lengths[["s000", "s005"]].to_numpy()[:, None]
    np.testing.assert_array_equal(result.real, expected)  # post padding, masked
    assert (~result.real).any() and (result.attributions[~result.real] == 0.0).all()
    assert (result.attributions[result.real] != 0.0).all()
    with open(tmp_path / "attributions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    padded = [r for r in rows if r["padded"] == "True"]
    assert len(padded) == 3 * (~result.real).sum()
    assert all(float(r["attribution"]) == 0.0 and r["input"] == "" for r in padded)


@pytest.mark.slow
def test_minirocket_is_explained_by_occlusion(window_data, tmp_path):
    from seqclf.explain import explain

    run = train_on(window_data, "rocket", {"family": "minirocket", "num_features": 840},
                   window_frame(240, seed=0))
    result = explain(run, window_data / "test.csv", ["s000", "s001"], tmp_path)
    record = json.loads((tmp_path / "explanation.json").read_text())
    assert result.method == record["method"] == "occlusion"
    assert record["window_steps"] == [2, 2] and "completeness_gap" not in record["explained"][0]
    assert window_share(result.attributions) >= 0.7
    assert (result.attributions[~result.real] == 0.0).all()
    assert result.importance[0]["channel"] == "a"


def test_the_cli_writes_the_files_and_refuses_bad_ids_and_missing_data(long_run, tmp_path):
    out = tmp_path / "explain"
    result = CliRunner().invoke(app, ["explain", str(long_run.run_dir), "--data",
                                      str(long_run.predict_csv), "--ids", "p003", "--ids",
                                      "p000", "--output", str(out), "--repeats", "2"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == FILES
    record = json.loads((out / "explanation.json").read_text())
    assert [s["id"] for s in record["explained"]] == ["p003", "p000"]
    assert record["method"] == "integrated_gradients" and record["channels"] == ["x", "y"]
    importance = record["permutation_importance"]
    assert importance["target"].startswith("the model's own predictions")  # no labels
    assert importance["accuracy"] == 1.0 and len(importance["channels"]) == 2
    assert all(len(c["drops"]) == 2 for c in importance["channels"])
    frame = pd.read_csv(out / "attributions.csv")
    assert set(frame["id"]) == {"p003", "p000"} and len(frame) == 2 * 9 * 2
    assert (frame.loc[frame["padded"], "attribution"] == 0).all()
    assert f"wrote 5 files to {out}" in result.stdout

    first = ", ".join(repr(i) for i in pd.read_csv(long_run.predict_csv)["id"].unique()[:3])
    for args, message in [
        (["--ids", "p000", "--ids", "nope"], "error: seqclf explain: --ids must be ids of "
         f"sequences in {long_run.predict_csv} ({first}, ...). Got 'nope' instead."),
        (["--repeats", "0"], "error: seqclf explain: --repeats must be a whole number >= 1. "
         "Got 0 instead."),
    ]:
        result = CliRunner().invoke(app, ["explain", str(long_run.run_dir), "--data",
                                          str(long_run.predict_csv), "--output",
                                          str(tmp_path / "bad"), *args])
        assert result.exit_code == 2 and result.stderr == message + "\n", result.stderr
        assert not (tmp_path / "bad").exists()
    result = CliRunner().invoke(app, ["explain", str(long_run.run_dir), "--data",
                                      str(tmp_path / "missing.csv")])
    assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(f"error: {tmp_path / 'missing.csv'}: file not found.")
    result = CliRunner().invoke(app, ["explain", str(long_run.run_dir)])
    assert result.exit_code == 2 and "Missing option '--data'" in result.stderr


@pytest.mark.slow
def test_token_input_gets_one_attribution_per_token(tmp_path):
    """Tokens 1-7 at random; the token at position 2 (8 or 9) decides the class."""
    from seqclf.config import load_config
    from seqclf.explain import explain
    from seqclf.train import train

    rng = np.random.default_rng(0)
    rows = []
    for i in range(120):
        tokens = rng.integers(1, 8, int(rng.integers(5, 11)))
        tokens[2] = 9 if i % 2 else 8
        rows.append({"id": f"t{i:03d}", **{f"s{k}": int(tokens[k]) if k < len(tokens) else None
                                            for k in range(10)}, "label": i % 2})
    write_csv(tmp_path / "tok.csv", pd.DataFrame(rows))
    write_config(tmp_path / "tok.yaml", {
        "data": {"train": "tok.csv", "format": "wide", "test_split": 0.3},
        "model": {"embedding": {"input_dim": 10, "output_dim": 4}, "cell": "gru", "units": 8},
        "optimizer": {"name": "adam", "learning_rate": 0.03},
        "training": {"epochs": 8, "batch_size": 16, "seed": 0, "tensorboard": False}})
    run = train(load_config(tmp_path / "tok.yaml"), tmp_path / "runs").run_dir
    ids = [f"t{i:03d}" for i in range(6)]
    result = explain(run, tmp_path / "tok.csv", ids, tmp_path / "out")
    assert result.method == "integrated_gradients" and result.attributions.shape == (6, 10, 1)
    assert (~result.real).any() and (result.attributions[~result.real] == 0.0).all()
    mass = np.abs(result.attributions[..., 0])
    assert (mass[:, 2] / mass.sum(axis=1)).mean() >= 0.7
    assert [r["channel"] for r in result.importance] == ["token"]
    assert result.importance[0]["accuracy_drop"] > 0.2

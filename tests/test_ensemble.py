"""model.family: ensemble: members checked like model sections, trained separately,
saved as one model whose probabilities are the members' mean."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import write_config
from seqclf.config import validate_config
from seqclf.errors import SeqclfError

TINY_CONV = {"family": "conv_recurrent", "units": 3, "conv_filters": [4],
             "conv_kernel_sizes": [3], "conv_pool_sizes": [2]}


def ensemble(**model):
    return validate_config({"data": {"train": "x.csv"},
                            "model": {"family": "ensemble", **model}})


def test_members_are_validated_and_filled_with_their_defaults():
    m = ensemble(members=[{"units": 4}, {"family": "lstm_fcn"}], copies=2).model
    assert m.members[0]["family"] == "recurrent" and m.members[0]["cell"] == "lstm"
    assert m.members[1]["conv_filters"] == [128, 256, 128]
    assert m.member_sections(seed=7) == [(m.members[0], 7), (m.members[0], 8),
                                         (m.members[1], 7), (m.members[1], 8)]


@pytest.mark.parametrize("model, message", [
    ({"members": []}, "model.members must be a non-empty list of model sections. Got [] instead."),
    ({"members": [{"units": 0}]}, "model.members[0].units must be an integer >= 1 or a "
     "non-empty list of them. Got 0 instead."),
    ({"members": [{"family": "ensemble", "members": [{}]}]}, "model.members[0].family must "
     "be one of: 'recurrent', "),
    ({"members": [{"family": "lstm_fcn", "cells": 3}]}, "model.members[0].cells must be "
     "absent: it is not a key of that member's family. Got 3 instead."),
    ({"members": [{}], "copies": 0}, "model.copies must be >= 1. Got 0 instead."),
])
def test_bad_members_name_the_member_and_key(model, message):
    with pytest.raises(SeqclfError) as info:
        ensemble(**model)
    assert str(info.value).startswith("config: " + message)


@pytest.mark.slow
def test_an_ensemble_trains_saves_and_averages_its_members(long_data, tmp_path, keras):
    from seqclf.config import load_config
    from seqclf.evaluate import evaluate
    from seqclf.runs import open_run
    from seqclf.prepare import prepare
    from seqclf.train import train

    path = write_config(long_data / "ensemble.yaml", {
        "data": {"train": "train.csv", "format": "long", "scaling": "standard"},
        "model": {"family": "ensemble", "members": [{"units": 4}, TINY_CONV], "copies": 2},
        "training": {"epochs": 2, "batch_size": 16, "seed": 5}})
    cfg = load_config(path)
    result = train(cfg, tmp_path)
    run = open_run(result.run_dir)
    model = run.load_model()
    names = [layer.name for layer in model.layers]
    assert names[1:5] == ["member_1", "member_2", "member_3", "member_4"]
    x = prepare(cfg).x_test
    members = [np.asarray(model.get_layer(f"member_{i}")(x)) for i in range(1, 5)]
    np.testing.assert_allclose(model.predict(x, verbose=0), np.mean(members, axis=0),
                               atol=1e-6)
    assert not np.allclose(members[0], members[1])  # copies differ by their seed
    import pandas as pd

    history = pd.read_csv(result.run_dir / "history.csv")  # each member's epochs
    assert {"member_1_loss", "member_1_accuracy", "member_4_loss"} <= set(history.columns)
    assert len(history) == 2
    again = evaluate(result.run_dir)
    assert again.accuracy == pytest.approx(result.evaluation.accuracy)
    # one model to export too: ONNX, kept only if it agrees with Keras on the test data
    from seqclf.export import export

    exported = export(result.run_dir, "onnx", tmp_path / "deploy")
    assert exported.model_path.is_file() and exported.n == len(x)
    assert exported.max_abs_diff < 1e-4


def test_history_of_members_that_ran_different_epochs():
    from seqclf.callbacks import history_rows
    from seqclf.report import curves_figure

    columns = {"member_1_loss": [0.9, 0.5, 0.4], "member_2_loss": [0.8],
               "member_2_val_accuracy": [0.6]}
    rows = history_rows(columns)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[2] == {"epoch": 3, "member_1_loss": 0.4, "member_2_loss": None,
                       "member_2_val_accuracy": None}
    figure = curves_figure(columns, baseline=0.5)
    loss_ax, acc_ax = figure.axes
    assert sorted(line.get_label() for line in loss_ax.lines) == ["member_1_loss",
                                                                 "member_2_loss"]
    assert [len(line.get_xdata()) for line in loss_ax.lines] == [3, 1]
    assert "member_2_val_accuracy" in [line.get_label() for line in acc_ax.lines]

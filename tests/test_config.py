"""Config loading and validation: shipped configs, defaults, every error path by message."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, write_config, write_text
from seqclf.config import (ACTIVATIONS, CONSTRAINTS, INITIALIZERS, OPTIMIZERS, Config,
                           load_config, validate_config)
from seqclf.errors import SeqclfError

SHIPPED = sorted(p for p in (ROOT / "configs").glob("**/*.yaml")
                 if "experiments" not in p.relative_to(ROOT / "configs").parts)


def test_there_are_shipped_configs():
    names = {p.name for p in SHIPPED}
    assert {"quickstart.yaml", "lstm.yaml", "stacked_lstm.yaml", "bigru.yaml"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_config_loads_and_its_data_exists_or_is_generated(path):
    cfg = load_config(path)
    assert isinstance(cfg, Config)
    assert cfg.name == path.stem
    assert cfg.source == str(path)
    for data_file in (cfg.data.train, cfg.data.test):
        if data_file is None:
            continue
        assert Path(data_file).is_absolute()
        if not Path(data_file).is_file():
            # generated data (not in git) must say how to make it
            assert re.search(r"seqclf data \w+", path.read_text()), data_file


@pytest.mark.parametrize("name", ["quickstart", "lstm", "stacked_lstm", "bigru"])
def test_readme_configs_use_the_bundled_data(name):
    cfg = load_config(ROOT / "configs" / f"{name}.yaml")
    for data_file in (cfg.data.train, cfg.data.test):
        assert Path(data_file).is_file(), data_file
        assert Path(data_file).parent == ROOT / "data" / "digits"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_config_round_trips_through_resolved_yaml(path):
    cfg = load_config(path)
    text = cfg.to_yaml()
    again = validate_config(yaml.safe_load(text), where=cfg.source)
    assert again == cfg
    assert again.to_dict() == cfg.to_dict()
    assert again.to_yaml() == text


def test_resolved_config_fills_every_default(tmp_path):
    path = write_config(tmp_path / "mini.yaml", {"data": {"train": "t.csv"}})
    cfg = load_config(path)
    d = cfg.to_dict()
    assert set(d) == {"name", "data", "model", "optimizer", "training"}
    assert d["name"] == "mini"
    assert d["model"]["cell"] == "lstm" and d["model"]["units"] == 64
    # cell-only arguments get the Keras default for the chosen cell
    assert d["model"]["recurrent_activation"] == "sigmoid"
    assert d["model"]["unit_forget_bias"] is True
    assert d["model"]["reset_after"] is None
    assert d["optimizer"] == {"name": "adam", "learning_rate": 0.001}
    assert d["training"]["epochs"] == 20 and d["training"]["batch_size"] == 32
    gru = load_config(path, ["model.cell=gru"])
    assert gru.model.reset_after is True and gru.model.unit_forget_bias is None


def test_empty_yaml_file_needs_a_data_section(tmp_path):
    path = write_text(tmp_path / "empty.yaml", "")
    with pytest.raises(SeqclfError, match=r"empty\.yaml: data must be given\. Got nothing"):
        load_config(path)


# --- paths ---------------------------------------------------------------------------


def test_relative_paths_are_relative_to_the_config_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_config(tmp_path / "configs" / "sub" / "c.yaml",
                        {"data": {"train": "../../data/train.csv", "test": "test.csv"}})
    cfg = load_config(path)
    assert Path(cfg.data.train) == (tmp_path / "data" / "train.csv").resolve()
    assert Path(cfg.data.test) == (tmp_path / "configs" / "sub" / "test.csv").resolve()


def test_absolute_paths_are_kept(tmp_path):
    target = tmp_path / "elsewhere" / "train.csv"
    path = write_config(tmp_path / "c.yaml", {"data": {"train": str(target)}})
    assert Path(load_config(path).data.train) == target


def test_set_paths_are_relative_to_the_current_directory(tmp_path, monkeypatch):
    path = write_config(tmp_path / "configs" / "c.yaml", {"data": {"train": "a.csv"}})
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    cfg = load_config(path, ["data.train=mine.csv", "data.test=sub/test.csv"])
    assert Path(cfg.data.train) == (workdir / "mine.csv").resolve()
    assert Path(cfg.data.test) == (workdir / "sub" / "test.csv").resolve()


# --- --set overrides -----------------------------------------------------------------


def test_set_overrides_parse_values_as_yaml(tmp_path):
    path = write_config(tmp_path / "c.yaml", {"data": {"train": "t.csv"}})
    cfg = load_config(path, ["model.units=[8, 4]", "model.bidirectional=true",
                             "optimizer.learning_rate=0.01", "training.epochs=3",
                             "model.cell=gru", "optimizer.weight_decay=0.5"])
    assert cfg.model.units == [8, 4]
    assert cfg.model.layer_units() == [8, 4]
    assert cfg.model.bidirectional is True
    assert cfg.optimizer.learning_rate == 0.01
    assert cfg.training.epochs == 3
    assert cfg.model.cell == "gru"
    assert cfg.optimizer.kwargs() == {"learning_rate": 0.01, "weight_decay": 0.5}


def test_set_can_create_a_section(tmp_path):
    path = write_config(tmp_path / "c.yaml", {"data": {"train": "t.csv"}})
    cfg = load_config(path, ["training.early_stopping.monitor=loss"])
    assert cfg.training.early_stopping.monitor == "loss"
    assert cfg.training.early_stopping.patience == 10


def test_units_with_depth_stacks_layers(tmp_path):
    path = write_config(tmp_path / "c.yaml", {"data": {"train": "t.csv"},
                                              "model": {"units": 16, "depth": 3}})
    assert load_config(path).model.layer_units() == [16, 16, 16]


# --- error paths, asserted by message ------------------------------------------------


def _config_error(tmp_path: Path, body: dict | str, overrides: list[str] = ()) -> str:
    path = tmp_path / "bad.yaml"
    if isinstance(body, str):
        write_text(path, body)
    else:
        write_config(path, body)
    with pytest.raises(SeqclfError) as info:
        load_config(path, list(overrides))
    message = str(info.value)
    assert "\n" not in message, "error messages are one line"
    return message


def data(**extra):
    return {"train": "t.csv", **extra}


def test_unknown_key_suggests_and_lists_valid_keys(tmp_path):
    msg = _config_error(tmp_path, {"data": data(), "model": {"unitz": 8}})
    assert msg.startswith(f"{tmp_path / 'bad.yaml'}: model.unitz is not a valid key")
    assert "(did you mean 'units'?)" in msg
    assert "Valid keys under model for that family:" in msg
    for key in ("cell", "units", "depth", "dropout", "recurrent_dropout", "bidirectional"):
        assert re.search(rf"\b{key}\b", msg.split("Valid keys under model for that family:")[1])


def test_unknown_top_level_section(tmp_path):
    msg = _config_error(tmp_path, {"data": data(), "trainig": {"epochs": 1}})
    assert "trainig is not a valid key (did you mean 'training'?)" in msg
    assert "Valid keys under the top level: data, model, name, optimizer, training." in msg


def test_unknown_nested_key(tmp_path):
    msg = _config_error(tmp_path, {"data": data(), "model": {"kernel_regularizer": {"l3": 1}}})
    assert "model.kernel_regularizer.l3 is not a valid key" in msg
    assert "Valid keys under model.kernel_regularizer: l1, l2." in msg


@pytest.mark.parametrize("section, key, value, expected", [
    ("model", "units", "abc",
     "model.units must be an integer >= 1 or a non-empty list of them. Got 'abc' instead."),
    ("model", "units", 0,
     "model.units must be an integer >= 1 or a non-empty list of them. Got 0 instead."),
    ("model", "units", [8, 0],
     "model.units must be an integer >= 1 or a non-empty list of them. Got [8, 0] instead."),
    ("model", "units", [], "model.units must be an integer >= 1 or a non-empty list"),
    ("model", "units", True, "model.units must be an integer >= 1"),
    ("model", "dropout", 1.5, "model.dropout must be >= 0 and < 1. Got 1.5 instead."),
    ("model", "dropout", -0.1, "model.dropout must be >= 0 and < 1. Got -0.1 instead."),
    ("model", "recurrent_dropout", 1.0, "model.recurrent_dropout must be >= 0 and < 1."),
    ("model", "dropout", "0.1", "model.dropout must be a number >= 0 and < 1. Got '0.1'"),
    ("model", "depth", 0, "model.depth must be >= 1. Got 0 instead."),
    ("model", "bidirectional", "yes", "model.bidirectional must be true or false."),
    ("model", "head_units", [0], "model.head_units must be a list of integers >= 1."),
    ("model", "use_cudnn", "yes", "model.use_cudnn must be true, false or 'auto'."),
    ("model", "kernel_regularizer", 0.01, "model.kernel_regularizer must be a mapping."),
    ("training", "epochs", -1, "training.epochs must be >= 1. Got -1 instead."),
    ("training", "epochs", 0, "training.epochs must be >= 1. Got 0 instead."),
    ("training", "epochs", 2.5, "training.epochs must be an integer >= 1. Got 2.5 instead."),
    ("training", "batch_size", 0, "training.batch_size must be >= 1. Got 0 instead."),
    ("training", "seed", -1, "training.seed must be >= 0. Got -1 instead."),
    ("training", "validation_split", 1.0, "training.validation_split must be >= 0 and < 1."),
    ("training", "class_weight", "auto", "training.class_weight must be one of: 'none', "
     "'balanced'"),
    ("optimizer", "learning_rate", 0, "optimizer.learning_rate must be > 0. Got 0 instead."),
    ("optimizer", "learning_rate", -0.1, "optimizer.learning_rate must be > 0."),
])
def test_bad_values(tmp_path, section, key, value, expected):
    body = {"data": data(), section: {key: value}}
    msg = _config_error(tmp_path, body)
    assert msg.startswith(f"{tmp_path / 'bad.yaml'}: ")
    assert expected in msg


@pytest.mark.parametrize("key, value, expected", [
    ("test_split", 0, "data.test_split must be > 0 and < 1. Got 0 instead."),
    ("test_split", 1.0, "data.test_split must be > 0 and < 1. Got 1.0 instead."),
    ("max_length", 0, "data.max_length must be >= 1. Got 0 instead."),
    ("format", "tall", "data.format must be one of: 'wide', 'long'"),
    ("padding", "middle", "data.padding must be one of: 'post', 'pre'"),
    ("scaling", "zscore", "data.scaling must be one of: 'none', 'standard', 'minmax'"),
    ("missing_values", "drop", "data.missing_values must be one of: 'error', 'zero', 'ffill'"),
    ("feature_columns", [], "data.feature_columns must be a non-empty list of column names"),
    ("train", 5, "data.train must be a string. Got 5 instead."),
])
def test_bad_data_values(tmp_path, key, value, expected):
    msg = _config_error(tmp_path, {"data": data(**{key: value})})
    assert expected in msg


@pytest.mark.parametrize("section, key, value, suggestion", [
    ("model", "cell", "lstn", "lstm"),
    ("model", "activation", "relux", "relu"),
    ("model", "recurrent_activation", "sigmod", "sigmoid"),
    ("model", "head_activation", "softmx", "softmax"),
    ("model", "kernel_initializer", "glorot", "glorot_normal"),
    ("model", "kernel_constraint", "maxnorm", "max_norm"),
    ("optimizer", "name", "adamm", "adam"),
])
def test_unknown_names_list_choices_and_suggest(tmp_path, section, key, value, suggestion):
    msg = _config_error(tmp_path, {"data": data(), section: {key: value}})
    assert f"{section}.{key} must be one of: " in msg
    assert f"(did you mean '{suggestion}'?)" in msg
    assert f"Got '{value}' instead." in msg


def test_unknown_optimizer_lists_all_names(tmp_path):
    msg = _config_error(tmp_path, {"data": data(), "optimizer": {"name": "bogus"}})
    for name in OPTIMIZERS:
        assert f"'{name}'" in msg


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    text = "data:\n  train: t.csv\nmodel:\n  units: [8, 4\n  cell: lstm\n"
    msg = _config_error(tmp_path, text)
    assert re.match(rf"{re.escape(str(tmp_path / 'bad.yaml'))}:\d+:\d+: invalid YAML: ", msg)
    line = int(msg.split(":")[1])
    assert 4 <= line <= 6
    assert "Fix the syntax there." in msg


def test_yaml_bad_indentation_names_line(tmp_path):
    msg = _config_error(tmp_path, "data:\n  train: t.csv\n   test: x\n")
    assert re.match(rf"{re.escape(str(tmp_path / 'bad.yaml'))}:3:\d+: invalid YAML", msg)


@pytest.mark.parametrize("text, got", [("- data\n- model\n", "'list'"), ("just text\n", "'str'"),
                                       ("42\n", "'int'")])
def test_non_mapping_yaml(tmp_path, text, got):
    msg = _config_error(tmp_path, text)
    assert msg == (f"{tmp_path / 'bad.yaml'}: the config must be a mapping of sections "
                   f"(data, model, optimizer, training). Got {got} instead.")


def test_missing_file(tmp_path):
    with pytest.raises(SeqclfError, match=r"nope\.yaml: file not found\. Check the path\."):
        load_config(tmp_path / "nope.yaml")


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(SeqclfError, match=r"is a directory, not a YAML file"):
        load_config(tmp_path)


def test_missing_data_section(tmp_path):
    msg = _config_error(tmp_path, {"model": {"units": 8}})
    assert msg == f"{tmp_path / 'bad.yaml'}: data must be given. Got nothing instead."


def test_missing_train_file_key(tmp_path):
    msg = _config_error(tmp_path, {"data": {"format": "long"}})
    assert "data.train must be given. Got nothing instead." in msg


def test_set_bad_value_is_attributed_to_set(tmp_path):
    msg = _config_error(tmp_path, {"data": data()}, ["model.units=abc"])
    assert msg.startswith("--set model.units=abc: ")
    assert "model.units must be an integer >= 1 or a non-empty list of them. Got 'abc'" in msg


def test_set_bad_range_is_attributed_to_set(tmp_path):
    msg = _config_error(tmp_path, {"data": data()}, ["model.dropout=1.5"])
    assert msg == "--set model.dropout=1.5: model.dropout must be >= 0 and < 1. Got 1.5 instead."


def test_set_unknown_key(tmp_path):
    msg = _config_error(tmp_path, {"data": data()}, ["model.unitz=8"])
    assert msg.startswith("--set model.unitz=8: model.unitz is not a valid key for "
                          "model.family 'recurrent' (did you mean 'units'?)")
    assert "Valid keys under model for that family:" in msg


@pytest.mark.parametrize("item", ["model.units", "=3", "model..units=3", ".units=3"])
def test_set_malformed(tmp_path, item):
    msg = _config_error(tmp_path, {"data": data()}, [item])
    assert msg == (f"--set: the override must be of the form section.key=value. "
                   f"Got {item!r} instead.")


def test_set_into_a_non_section(tmp_path):
    msg = _config_error(tmp_path, {"data": data(), "model": {"units": 8}}, ["model.units.x=3"])
    assert msg == "--set model.units.x=3: model.units must be a section to set keys in. Got 8 instead."


def test_error_in_file_is_not_blamed_on_unrelated_set(tmp_path):
    msg = _config_error(tmp_path, {"data": data(), "model": {"dropout": 2.0}},
                        ["training.epochs=2"])
    assert msg.startswith(f"{tmp_path / 'bad.yaml'}: model.dropout")


# --- cross-field checks --------------------------------------------------------------


def test_units_list_and_depth_must_agree(tmp_path):
    msg = _config_error(tmp_path, {"data": data(), "model": {"units": [8, 4], "depth": 3}})
    assert ("model.depth must be null or 2 (the length of model.units) when units is a "
            "list. Got 3 instead.") in msg


def test_units_list_with_matching_depth_is_fine(tmp_path):
    path = write_config(tmp_path / "c.yaml",
                        {"data": data(), "model": {"units": [8, 4], "depth": 2}})
    assert load_config(path).model.layer_units() == [8, 4]


@pytest.mark.parametrize("cell, key, value", [
    ("rnn", "recurrent_activation", "sigmoid"),
    ("rnn", "unit_forget_bias", True),
    ("gru", "unit_forget_bias", False),
    ("rnn", "reset_after", True),
    ("lstm", "reset_after", False),
])
def test_cell_only_arguments(tmp_path, cell, key, value):
    msg = _config_error(tmp_path, {"data": data(), "model": {"cell": cell, key: value}})
    assert f"model.{key} must be null for cell '{cell}'" in msg
    assert f"Got {value!r} instead." in msg


def test_early_stopping_on_validation_needs_a_validation_split(tmp_path):
    body = {"data": data(), "training": {"early_stopping": {"monitor": "val_loss"}}}
    msg = _config_error(tmp_path, body)
    assert ("training.early_stopping.monitor must be 'loss' or 'accuracy' when "
            "training.validation_split is 0") in msg
    assert "Got 'val_loss' instead." in msg
    body["training"]["validation_split"] = 0.2
    path = write_config(tmp_path / "ok.yaml", body)
    assert load_config(path).training.early_stopping.monitor == "val_loss"


def test_early_stopping_default_monitor_is_checked_too(tmp_path):
    msg = _config_error(tmp_path, {"data": data(), "training": {"early_stopping": {}}})
    assert "training.early_stopping.monitor must be 'loss' or 'accuracy'" in msg


def test_embedding_forbids_scaling(tmp_path):
    body = {"data": data(scaling="standard"),
            "model": {"embedding": {"input_dim": 10, "output_dim": 4}}}
    msg = _config_error(tmp_path, body)
    assert "data.scaling must be 'none' when model.embedding is set" in msg


def test_embedding_input_dim_range(tmp_path):
    body = {"data": data(), "model": {"embedding": {"input_dim": 1, "output_dim": 4}}}
    msg = _config_error(tmp_path, body)
    assert "model.embedding.input_dim must be >= 2. Got 1 instead." in msg


@pytest.mark.parametrize("key", ["return_sequences", "return_state"])
def test_managed_keys_cannot_be_set(tmp_path, key):
    msg = _config_error(tmp_path, {"data": data(), "model": {key: True}})
    assert msg.startswith(f"{tmp_path / 'bad.yaml'}: model.{key} cannot be set: seqclf ")


def test_scientific_notation_learning_rate(tmp_path):
    path = write_config(tmp_path / "c.yaml", {"data": data()})
    write_text(path, "data:\n  train: t.csv\noptimizer:\n  learning_rate: 1e-3\n")
    assert load_config(path).optimizer.learning_rate == pytest.approx(1e-3)
    assert load_config(path, ["optimizer.learning_rate=5e-4"]).optimizer.learning_rate == \
        pytest.approx(5e-4)


# --- the static Keras name lists stay in step with Keras ----------------------------


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_names_resolve_in_keras(keras, name):
    assert callable(keras.activations.get(name))


@pytest.mark.parametrize("name", INITIALIZERS)
def test_initializer_names_resolve_in_keras(keras, name):
    assert isinstance(keras.initializers.get(name), keras.initializers.Initializer)


@pytest.mark.parametrize("name", CONSTRAINTS)
def test_constraint_names_resolve_in_keras(keras, name):
    assert isinstance(keras.constraints.get(name), keras.constraints.Constraint)


def test_optimizer_names_map_to_keras_classes(keras):
    from seqclf.model import OPTIMIZER_CLASSES

    assert set(OPTIMIZER_CLASSES) == set(OPTIMIZERS)
    for name in OPTIMIZERS:
        cls = getattr(keras.optimizers, OPTIMIZER_CLASSES[name])
        assert issubclass(cls, keras.optimizers.Optimizer)
        assert keras.optimizers.get(name).__class__.__name__.lower() == \
            OPTIMIZER_CLASSES[name].lower()


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_builds_with_its_learning_rate(keras, name):
    from seqclf.config import OptimizerConfig
    from seqclf.model import make_optimizer

    opt = make_optimizer(OptimizerConfig(name=name, learning_rate=0.0123), "c.yaml")
    assert float(opt.learning_rate) == pytest.approx(0.0123)


def test_unknown_optimizer_argument_is_named_when_built(tmp_path, keras):
    from seqclf.model import make_optimizer

    path = write_config(tmp_path / "c.yaml", {"data": data(),
                                              "optimizer": {"name": "adam", "beta3": 0.9}})
    cfg = load_config(path)  # extra optimizer keys are only checked against Keras
    with pytest.raises(SeqclfError) as info:
        make_optimizer(cfg.optimizer, cfg.source)
    msg = str(info.value)
    assert msg.startswith(f"{path}: optimizer.beta3 is not an argument of "
                          "keras.optimizers.Adam")
    assert "did you mean 'beta_" in msg
    assert "weight_decay" in msg and "\n" not in msg


def test_optimizer_argument_rejected_by_keras_is_a_seqclf_error(keras):
    from seqclf.config import OptimizerConfig
    from seqclf.model import make_optimizer

    opt = OptimizerConfig.model_validate({"name": "sgd", "momentum": -1.0})
    with pytest.raises(SeqclfError, match=r"^c\.yaml: optimizer: keras\.optimizers\.SGD "
                       r"rejected the arguments .*momentum"):
        make_optimizer(opt, "c.yaml")


@pytest.mark.parametrize("name, key, value, wanted", [
    ("adam", "beta_1", "x", "a number. Got 'x' (str)"),
    ("adam", "amsgrad", 1, "true or false. Got 1 (int)"),
    ("adam", "clipnorm", "big", "a number or null. Got 'big' (str)"),
    ("sgd", "momentum", True, "a number. Got True (bool)"),
])
def test_optimizer_argument_of_the_wrong_type_is_named(keras, name, key, value, wanted):
    from seqclf.config import OptimizerConfig
    from seqclf.model import make_optimizer

    opt = OptimizerConfig.model_validate({"name": name, key: value})
    with pytest.raises(SeqclfError) as info:
        make_optimizer(opt, "c.yaml")
    assert str(info.value) == f"c.yaml: optimizer.{key} must be {wanted} instead."


def test_valid_optimizer_argument_reaches_the_optimizer(tmp_path, keras):
    from seqclf.model import make_optimizer

    path = write_config(tmp_path / "c.yaml", {"data": data(), "optimizer": {
        "name": "adamw", "learning_rate": 0.002, "weight_decay": 0.03, "beta_1": 0.8,
        "clipnorm": 1.5}})
    opt = make_optimizer(load_config(path).optimizer, "c.yaml")
    assert isinstance(opt, keras.optimizers.AdamW)
    assert opt.weight_decay == pytest.approx(0.03)
    assert opt.beta_1 == pytest.approx(0.8)
    assert opt.clipnorm == pytest.approx(1.5)
    assert float(opt.learning_rate) == pytest.approx(0.002)

"""Fuzzing the two doors user input comes through: CSV files and config mappings.

Hypothesis generates CSV text for both layouts (random headers, empty/text/number/inf/nan
cells, quotes, ragged rows, blank lines, unicode, BOMs, CRLF) and random nested config
mappings (valid and invalid keys, values of every type). The properties: reading (and,
when that works, fitting and applying the preprocessing) and config validation either
give a valid result or raise :class:`SeqclfError` with a one-line message. Never any
other exception.

The budget here is small so the file runs in seconds; ``SEQCLF_FUZZ_EXAMPLES`` raises it,
and ``benchmarks/fuzz.py`` runs the same properties for minutes and counts failures.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqclf.config import (ACTIVATIONS, OPTIMIZERS, Config, DataConfig, EarlyStoppingConfig,
                           TrainingConfig, load_config, validate_config)
from seqclf.models import registry
from seqclf.data import Preprocessor, SequenceSet, read_sequences
from seqclf.errors import SeqclfError

EXAMPLES = int(os.environ.get("SEQCLF_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))

# --- CSV text ------------------------------------------------------------------------

KNOWN_COLUMNS = ["id", "step", "label", "x", "y", "t0", "t1", "t2"]
ODD_CELLS = ["", " ", "nan", "NaN", "NA", "N/A", "None", "null", "inf", "-inf", "Infinity",
             "+inf", "1e39", "-1e400", "1e-320", "0x10", "1_000", "+.5", "-0", "007",
             "True", "False", "#N/A", "-1e9", "-1000000000.0", '"', '""', "a,b", "line\nbreak",
             "é", "\u200b", "\ufeff", "🙂", "\x00", "\r", "1.5.2", "--1"]
numbers = st.one_of(
    st.integers(-5, 5).map(str),
    st.integers(-10**9, 10**9).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(-100, 100).map(lambda v: f"{v:.3g}"),
)
texts = st.text(max_size=6)
any_cell = st.one_of(numbers, numbers, numbers, st.sampled_from(ODD_CELLS), texts)
cells_for = {
    "id": st.one_of(st.sampled_from(["a", "b", "c", "d", "007", "7", ""]), texts),
    "step": st.one_of(st.integers(0, 4).map(str), st.integers(0, 4).map(str),
                      st.sampled_from(["0.5", "-1", "", "x", "1e3", "nan", "inf"])),
    "label": st.one_of(st.sampled_from(["p", "q", "r", "1", "2", "NA", "", " "]), texts),
}
column_names = st.one_of(st.sampled_from(KNOWN_COLUMNS), st.sampled_from(KNOWN_COLUMNS),
                         texts, numbers, st.sampled_from(ODD_CELLS))


def hostile_rows(draw, header: list[str]) -> list[list[str] | None]:
    """Rows of any width and any cells, ids from a small pool so sequences form."""
    rows: list[list[str] | None] = []
    ids = draw(st.lists(cells_for["id"], min_size=1, max_size=4))
    for _ in range(draw(st.integers(0, 14))):
        shape = draw(st.integers(0, 9))
        if shape == 0:
            rows.append(None)  # a blank line
            continue
        width = len(header) if shape > 2 else draw(st.integers(0, len(header) + 2))
        row = []
        for i in range(width):
            name = header[i] if i < len(header) else "x"
            if name == "id":
                row.append(draw(st.sampled_from(ids)))
            else:
                row.append(draw(cells_for.get(name, any_cell)))
        rows.append(row)
    return rows


def plausible(draw, layout: str) -> tuple[list[str], list[list[str] | None]]:
    """A mostly valid file of the layout, with a few mutations: odd cells, gaps, blank
    lines, a dropped or extra field, a shuffled row order."""
    n_features = draw(st.integers(1, 3))
    labels = draw(st.lists(st.sampled_from(["p", "q", "r", "1", "2", "NA"]), min_size=1,
                           max_size=3, unique=True))
    labels = labels if len(labels) > 1 or draw(st.integers(0, 9)) == 0 else labels + ["z"]
    rows: list[list[str] | None] = []
    value = st.floats(-50, 50).map(lambda v: f"{v:.4g}")
    if layout == "long":
        header = ["id", "step", *["x", "y", "z"][:n_features], "label"]
        for i in range(draw(st.integers(1, 8))):
            label = labels[i % len(labels)]
            for step in range(draw(st.integers(1, 4))):
                rows.append([f"s{i}", str(step), *[draw(value) for _ in range(n_features)],
                             label])
        if rows and draw(st.booleans()):
            order = draw(st.permutations(range(len(rows))))
            rows = [rows[k] for k in order]
    else:
        steps = draw(st.integers(1, 5))
        header = ["id", *[f"t{k}" for k in range(steps)], "label"]
        for i in range(draw(st.integers(1, 8))):
            length = draw(st.integers(1, steps))
            rows.append([f"w{i}", *[draw(value) if k < length else "" for k in range(steps)],
                         labels[i % len(labels)]])
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2, 3]))):  # mutations
        if not rows:
            break
        k = draw(st.integers(0, len(rows) - 1))
        what = draw(st.integers(0, 5))
        if what == 0:
            rows.insert(k, None)
        elif rows[k] is not None and what == 1:
            rows[k] = rows[k][:-1] if draw(st.booleans()) else rows[k] + [draw(any_cell)]
        elif rows[k] is not None:
            j = draw(st.integers(0, len(rows[k]) - 1))
            rows[k][j] = draw(st.one_of(any_cell, cells_for.get(header[min(j, len(header) - 1)],
                                                                  any_cell)))
    if draw(st.integers(0, 3)) == 0:  # columns in another order (the label first, ...)
        order = draw(st.permutations(range(len(header))))
        header = [header[k] for k in order]
        rows = [None if row is None else [row[k] for k in order if k < len(row)]
                for row in rows]
    if draw(st.integers(0, 7)) == 0:  # a column renamed, dropped or doubled
        header[draw(st.integers(0, len(header) - 1))] = draw(column_names)
    return header, rows


@st.composite
def csv_texts(draw) -> str:
    """CSV text: anything at all, hostile rows under a random header, or a plausible file
    of either layout with a few mutations."""
    mode = draw(st.integers(0, 19))
    if mode == 0:
        return draw(st.text(max_size=60))
    if mode < 7:
        header = draw(st.lists(column_names, min_size=1, max_size=6))
        rows = hostile_rows(draw, header)
    else:
        header, rows = plausible(draw, draw(st.sampled_from(["wide", "long"])))
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_MINIMAL, csv.QUOTE_ALL,
                                    csv.QUOTE_NONNUMERIC, None]))
    end = draw(st.sampled_from(["\n", "\n", "\r\n"]))
    out = io.StringIO()
    if quoting is None:  # no quoting at all: commas and quotes inside cells break rows
        out.write(",".join(header) + end)
        for row in rows:
            out.write("" if row is None else ",".join(row))
            out.write(end)
    else:
        writer = csv.writer(out, quoting=quoting, lineterminator=end)
        writer.writerow(header)
        for row in rows:
            if row is None:
                out.write(end)
            else:
                writer.writerow(row)
    text = out.getvalue()
    if draw(st.integers(0, 9)) == 0:
        text = "\ufeff" + text
    if draw(st.integers(0, 9)) == 0:
        text = text.rstrip("\r\n")  # no final newline
    return text


data_sections = st.fixed_dictionaries({
    "format": st.sampled_from(["wide", "long"]),
    "missing_values": st.sampled_from(["error", "zero", "ffill"]),
    "step_gaps": st.sampled_from(["error", "allow"]),
    "scaling": st.sampled_from(["none", "standard", "minmax"]),
    "padding": st.sampled_from(["post", "pre"]),
    "truncating": st.sampled_from(["post", "pre"]),
}, optional={
    "max_length": st.integers(1, 6),
    "step_column": st.sampled_from([None, "step", "x"]),
    "feature_columns": st.lists(st.sampled_from(["x", "y", "t0", "t1"]), min_size=1,
                                max_size=2, unique=True),
    "id_column": st.sampled_from(["id", "key"]),
})
model_sections = st.one_of(
    st.fixed_dictionaries({"units": st.just(2), "masking": st.booleans()}),
    st.just({"units": 2, "embedding": {"input_dim": 8, "output_dim": 2}}))


def one_line(exc: SeqclfError) -> None:
    message = str(exc)
    assert message and "\n" not in message and "\r" not in message, repr(message)


def check_sequences(ss: SequenceSet, require_labels: bool) -> None:
    n = len(ss.sequences)
    assert n > 0
    assert len(ss.ids) == len(ss.lines) == n
    if ss.labels is not None:
        assert len(ss.labels) == n
        assert all(isinstance(v, (int, str)) for v in ss.labels)
        assert all(str(v).strip() for v in ss.labels)
    elif require_labels:
        raise AssertionError("labels were required but none came back")
    for seq in ss.sequences:
        assert seq.ndim == 2 and seq.shape[0] >= 1 and seq.shape[1] == len(ss.feature_names)
        assert seq.dtype == np.float64
        assert np.isfinite(seq).all()
    assert all(isinstance(line, int) and line >= 2 for line in ss.lines)


def check_csv(folder: Path, text: str, data: dict[str, Any], model: dict[str, Any],
              require_labels: bool) -> str:
    """The CSV property; returns the outcome (for the long-run statistics)."""
    path = folder / "fuzz.csv"
    path.write_bytes(text.encode("utf-8"))
    if "embedding" in model:
        data = {**data, "scaling": "none"}  # the one setting embeddings take
    try:
        config = validate_config({"data": {"train": str(path), **data}, "model": model},
                                 where="fuzz.yaml")
    except SeqclfError as exc:
        one_line(exc)
        return "config error"
    try:
        ss = read_sequences(path, config.data, require_labels=require_labels,
                            missing_values=config.data.missing_values)
    except SeqclfError as exc:
        one_line(exc)
        assert str(exc).startswith(str(path)), str(exc)
        return "read error"
    check_sequences(ss, require_labels)
    if ss.labels is None:
        return "read"
    try:
        prep = Preprocessor.fit(ss, config)
        x, truncated = prep.transform(ss)
    except SeqclfError as exc:
        one_line(exc)
        return "preprocess error"
    lengths = [len(s) for s in ss.sequences]
    assert prep.max_length == (config.data.max_length or max(lengths))
    assert truncated == sum(n > prep.max_length for n in lengths)
    if config.model.embedding is not None:
        assert x.shape == (len(ss), prep.max_length) and x.dtype == np.int32
        assert x.min() >= 0 and x.max() < config.model.embedding.input_dim
    else:
        assert x.shape == (len(ss), prep.max_length, len(ss.feature_names))
        assert x.dtype == np.float32 and np.isfinite(x).all()
    y = prep.encode_labels(ss.labels)
    assert (y >= 0).all() and (y < len(prep.classes)).all()
    again = Preprocessor.from_json(prep.to_json())
    assert again.max_length == prep.max_length and len(again.classes) == len(prep.classes)
    return "ok"


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory(prefix="seqclf-fuzz-") as name:
        yield Path(name)


@FUZZ
@given(text=csv_texts(), data=data_sections, model=model_sections,
       require_labels=st.booleans())
def test_csv_reading_never_crashes(folder, text, data, model, require_labels):
    check_csv(folder, text, data, model, require_labels)


# --- config mappings -----------------------------------------------------------------

SECTIONS = {"data": DataConfig, "model": registry.get("recurrent").Config, "training": TrainingConfig,
            "optimizer": None, "early_stopping": EarlyStoppingConfig}
scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 200), st.integers(),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
                    st.sampled_from(["lstm", "gru", "rnn", "wide", "long", "adam", "sgd",
                                     "tanh", "relu", "auto", "val_loss", "balanced", "zeros"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=6)


VALID = {
    "data": st.fixed_dictionaries({"train": st.just("train.csv")}, optional={
        "format": st.sampled_from(["wide", "long"]), "max_length": st.integers(1, 50),
        "scaling": st.sampled_from(["none", "standard", "minmax"]),
        "classes": st.lists(st.one_of(st.integers(0, 5), st.sampled_from("abc")),
                            min_size=2, max_size=3, unique_by=str),
        "feature_columns": st.lists(st.sampled_from(["x", "y"]), min_size=1, unique=True),
        "test_split": st.floats(0.05, 0.5), "step_column": st.none()}),
    "model": st.fixed_dictionaries({}, optional={
        "cell": st.sampled_from(["lstm", "gru", "rnn"]),
        "units": st.one_of(st.integers(1, 64), st.lists(st.integers(1, 8), min_size=1,
                                                        max_size=3)),
        "depth": st.integers(1, 3), "bidirectional": st.booleans(),
        "dropout": st.floats(0, 0.9), "activation": st.sampled_from(ACTIVATIONS),
        "head_units": st.lists(st.integers(1, 8), max_size=2),
        "kernel_regularizer": st.fixed_dictionaries({"l2": st.floats(0, 0.1)}),
        "unit_forget_bias": st.booleans(), "reset_after": st.booleans(),
        "embedding": st.fixed_dictionaries({"input_dim": st.integers(2, 100),
                                            "output_dim": st.integers(1, 8)})}),
    "optimizer": st.fixed_dictionaries({}, optional={
        "name": st.sampled_from(OPTIMIZERS), "learning_rate": st.floats(1e-5, 1.0),
        "beta_1": st.floats(0, 0.99), "clipnorm": st.floats(0.1, 5)}),
    "training": st.fixed_dictionaries({}, optional={
        "epochs": st.integers(1, 100), "batch_size": st.integers(1, 256),
        "seed": st.integers(0, 2**31), "validation_split": st.floats(0, 0.5),
        "early_stopping": st.fixed_dictionaries({}, optional={
            "monitor": st.sampled_from(["loss", "val_loss", "accuracy"]),
            "patience": st.integers(0, 10)}),
        "class_weight": st.sampled_from(["none", "balanced"]),
        "jit_compile": st.sampled_from([True, False, "auto"])}),
}


@st.composite
def config_mappings(draw) -> Any:
    """A valid-looking config with 0-3 mutations (a key removed, renamed or set to a
    value of any type, a section replaced), or rarely anything at all."""
    if draw(st.integers(0, 14)) == 0:
        return draw(values)  # not even a mapping
    raw: dict[Any, Any] = {name: draw(strategy) for name, strategy in VALID.items()
                           if name == "data" or draw(st.booleans())}
    for _ in range(draw(st.integers(0, 3))):
        what = draw(st.integers(0, 5))
        name = draw(st.sampled_from(sorted(VALID)))
        if what == 0:
            raw[name] = draw(values)  # a section of the wrong type, or an odd mapping
            continue
        if not isinstance(raw.get(name), dict):
            continue
        section = raw[name]
        if what == 1 and section:
            del section[draw(st.sampled_from(sorted(section)))]
        elif what == 2:
            section[draw(st.text(max_size=8))] = draw(values)
        else:
            cls = SECTIONS[name]
            keys = sorted(cls.model_fields) if cls else ["name", "learning_rate", "momentum"]
            section[draw(st.sampled_from(keys))] = draw(values)
    if draw(st.integers(0, 9)) == 0:
        raw[draw(st.one_of(st.text(max_size=6), st.integers(), st.none()))] = draw(values)
    if draw(st.integers(0, 3)) == 0:
        raw["name"] = draw(st.one_of(st.text(max_size=8), values))
    return raw


overrides = st.lists(st.builds(
    lambda key, text: f"{key}={text}" if text is not None else key,
    st.one_of(st.sampled_from(["model.units", "model.cell", "training.epochs", "data.format",
                               "optimizer.name", "optimizer.beta_1", "model.dropout",
                               "training.early_stopping.patience", "model", "data.train.x"]),
              st.text(max_size=10)),
    st.one_of(st.none(), st.text(max_size=10), st.sampled_from(
        ["4", "[1, 2]", "{a: 1}", "null", "1e-3", "gru", "[", "'x", "- a", "!!python/int 3"])),
), max_size=3)


def check_config(folder: Path, raw: Any, sets: list[str]) -> str:
    """The config property, on the mapping itself and through a YAML file with ``--set``
    overrides; returns the outcome."""
    outcomes = []
    if isinstance(raw, dict):
        try:
            config = validate_config(raw, where="fuzz.yaml")
        except SeqclfError as exc:
            one_line(exc)
            outcomes.append("error")
        else:
            check_resolved(config)
            outcomes.append("ok")
    path = folder / "fuzz.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    try:
        config = load_config(path, sets)
    except SeqclfError as exc:
        one_line(exc)
        outcomes.append("error")
    else:
        check_resolved(config)
        outcomes.append("ok")
    return "ok" if "ok" in outcomes else "error"


def check_resolved(config: Config) -> None:
    """A valid config resolves to YAML that validates to the same YAML."""
    assert isinstance(config, Config)
    text = config.to_yaml()
    again = validate_config(yaml.safe_load(text), where="resolved.yaml")
    assert again.to_yaml() == text


@FUZZ
@given(raw=config_mappings(), sets=overrides)
def test_config_validation_never_crashes(folder, raw, sets):
    check_config(folder, raw, sets)


@FUZZ
@given(text=st.one_of(st.text(max_size=80), st.builds(
    yaml.safe_dump, config_mappings().filter(lambda r: not isinstance(r, float)))))
def test_yaml_files_never_crash(folder, text):
    check_yaml(folder, text)


def check_yaml(folder: Path, text: str) -> str:
    """Any text as a config file: a config, or a one-line error."""
    path = folder / "any.yaml"
    path.write_bytes(text.encode("utf-8"))
    try:
        config = load_config(path)
    except SeqclfError as exc:
        one_line(exc)
        return "error"
    check_resolved(config)
    return "ok"


def test_the_budget_is_honoured():
    assert FUZZ.max_examples == EXAMPLES and FUZZ.deadline is None

"""Request bodies → the run's model input, or a one-line 4xx reason.

A ``POST /predict`` body is a JSON object in one of the run's layouts:

- ``{"sequences": [[[x, y], [x, y], ...], ...], "ids": ["a", ...]}``: each sequence a
  list of steps, each step a list of the run's feature values in its feature order (a
  bare number per step when the run has one feature, as in the wide layout); ``ids`` is
  optional (default ``"0"``, ``"1"``, ...).
- ``{"records": [{"id": "a", "step": 0, "x": 0.1, "y": 2.0}, ...]}``: the rows of a
  long-layout CSV as objects (the run's id, step and feature columns; a label is
  ignored). Long-layout runs only.

``null`` is an empty cell: the run's ``data.missing_values`` decides (an error by
default). A ``POST /predict/csv`` body is read exactly as ``seqclf predict`` reads a file.

Everything after parsing is the data module's own code (``from_arrays``, ``from_frame``,
``read_sequences``, ``Preprocessor.transform``), so a request is read, filled, scaled,
padded and truncated exactly as the run's data was. What this module adds are the checks
a file never needed (JSON types, unknown fields, size limits), each naming the sequence
(or record) and step at fault.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from seqclf.config import DataConfig
from seqclf.data import Preprocessor, SequenceSet, from_arrays, from_frame, read_sequences
from seqclf.errors import SeqclfError, did_you_mean, one_line

SOURCE = "request"
CSV_SOURCE = "request CSV body"
FIELDS = ("sequences", "ids", "records")


class RequestError(Exception):
    """A request the server refuses: an HTTP status (4xx) and a one-line reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(one_line(message))
        self.status = status


def unprocessable(exc: SeqclfError | str) -> RequestError:
    return RequestError(422, str(exc))


def refuse(where: str, key: str, constraint: str, value: Any) -> RequestError:
    """422 in the project's template (``errors.must_be``), the value shown as JSON."""
    subject = f" {key} must be" if key else " must be"
    return unprocessable(f"{where}:{subject} {constraint}. Got {_kind(value)} instead.")


def read_json(body: bytes) -> Any:
    """The JSON value of a body; 400 when it is not JSON."""
    if not body.strip():
        raise RequestError(400, f"{SOURCE}: the body is empty. Send a JSON object with "
                                "'sequences' (or 'records'); see GET /docs.")
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise RequestError(400, f"{SOURCE}: the body is not UTF-8 text. Send JSON.") from None
    except RecursionError:
        raise RequestError(400, f"{SOURCE}: the body nests too deeply to be read. Send "
                                "sequences as lists of steps of feature values.") from None
    except ValueError as exc:  # json.JSONDecodeError, and ints of more than 4300 digits
        raise RequestError(400, f"{SOURCE}: the body is not valid JSON ({exc}).") from None


def from_json(obj: Any, prep: Preprocessor, data: DataConfig, max_steps: int) -> SequenceSet:
    """The sequences of a ``/predict`` body (already parsed JSON), in the run's layout.

    Raises:
        RequestError: 422, naming the field, sequence/record, step and feature at fault.
    """
    if not isinstance(obj, dict):
        raise refuse(SOURCE, "the body", "a JSON object with 'sequences' (or 'records')", obj)
    for key in obj:
        if key not in FIELDS:
            raise unprocessable(f"{SOURCE}: unknown field {key!r}{did_you_mean(key, FIELDS)}. "
                                f"Fields: {', '.join(FIELDS)}.")
    if ("sequences" in obj) == ("records" in obj):
        raise unprocessable(f"{SOURCE}: give either 'sequences' or 'records'"
                            f"{' (not both)' if 'records' in obj else ''}. See GET /docs.")
    if "records" in obj:
        if "ids" in obj:
            raise unprocessable(f"{SOURCE}: 'ids' goes with 'sequences'; records carry their "
                                f"id in the {data.id_column!r} field.")
        dataset = _from_records(obj["records"], prep, data)
    else:
        dataset = _from_sequences(obj["sequences"], obj.get("ids"), prep, data, max_steps)
    _check_steps(dataset, max_steps, prep.max_length)
    _check_tokens(dataset, prep)
    dataset.lines = list(range(len(dataset)))  # what model_input's messages map back
    return dataset


def from_csv(body: bytes, data: DataConfig, prep: Preprocessor, max_steps: int) -> SequenceSet:
    """The sequences of a ``/predict/csv`` body, read as ``seqclf predict`` reads a file.

    Raises:
        RequestError: 422 with the reader's message (lines numbered as in the body).
    """
    if not body.strip():
        raise RequestError(400, f"{CSV_SOURCE}: is empty. Send a CSV in the run's layout "
                                "(see GET /metadata).")
    with tempfile.TemporaryDirectory(prefix="seqclf-serve-") as folder:
        path = Path(folder) / "body.csv"
        path.write_bytes(body)
        try:
            dataset = read_sequences(path, data, require_labels=False,
                                     missing_values=data.missing_values)
        except SeqclfError as exc:
            raise unprocessable(str(exc).replace(str(path), CSV_SOURCE)) from None
    dataset.source = CSV_SOURCE
    if dataset.feature_names != prep.feature_names:
        raise unprocessable(f"{CSV_SOURCE}: feature columns {dataset.feature_names} differ "
                            f"from the run's {prep.feature_names}. Send the same columns.")
    _check_steps(dataset, max_steps, prep.max_length, lines=True)
    return dataset


def model_input(dataset: SequenceSet, prep: Preprocessor) -> tuple[np.ndarray, list[bool]]:
    """The run's preprocessing (``Preprocessor.transform``) on the request's sequences.

    Returns:
        (the model input, whether each sequence was truncated to ``max_length``).
    """
    try:
        x, _ = prep.transform(dataset)
    except SeqclfError as exc:
        message = str(exc)
        if dataset.source == SOURCE:  # JSON: 'line i' is sequence i (from_json numbers them)
            message = re.sub(r"\bline (\d+)", lambda m: _sequence(dataset, int(m[1])), message)
        raise unprocessable(message) from None
    return x, [len(s) > prep.max_length for s in dataset.sequences]


# --- the two JSON layouts ------------------------------------------------------------


def _from_sequences(sequences: Any, ids: Any, prep: Preprocessor, data: DataConfig,
                    max_steps: int) -> SequenceSet:
    names, n = prep.feature_names, prep.n_features
    if not isinstance(sequences, list) or not sequences:
        raise refuse(SOURCE, "sequences", "a non-empty list of sequences, each a list of "
                     "steps", sequences)
    if ids is not None:
        if not isinstance(ids, list) or len(ids) != len(sequences):
            raise refuse(SOURCE, "ids", f"a list of {len(sequences)} ids, one per sequence",
                         ids)
        for i, value in enumerate(ids):
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                raise refuse(SOURCE, f"ids[{i}]", "a string or a whole number", value)
    step_shape = f"a list of {n} feature values ({', '.join(names)})"
    if n == 1:
        step_shape = f"a number (the run's one feature, {names[0]!r}) or a list of 1"
    arrays = []
    for i, seq in enumerate(sequences):
        where = f"{SOURCE}: sequence {i}"
        if not isinstance(seq, list):
            raise refuse(where, "", "a list of steps", seq)
        if not seq:
            raise unprocessable(f"{where}: is empty. Every sequence needs at least one step.")
        if len(seq) > max_steps:
            raise unprocessable(_too_long(where, len(seq), max_steps, prep.max_length))
        values = np.empty((len(seq), n), dtype=np.float64)
        for s, step in enumerate(seq):
            if not isinstance(step, list):
                if n != 1 or isinstance(step, dict):
                    raise refuse(f"{where}, step {s}", "", step_shape, step)
                step = [step]  # one feature: the value itself (checked just below)
            if len(step) != n:
                raise unprocessable(f"{where}, step {s}: must be {step_shape}. Got "
                                    f"{len(step)} value{'s' if len(step) != 1 else ''} instead.")
            for j, value in enumerate(step):
                values[s, j] = _number(value, lambda: f"{where}, step {s}, feature {j} "
                                                      f"({names[j]!r})", data.missing_values)
        arrays.append(values)
    try:
        dataset = from_arrays(arrays, feature_names=names, missing_values=data.missing_values,
                              source=SOURCE)
    except SeqclfError as exc:  # a value beyond float32
        raise unprocessable(_name_features(str(exc), names)) from None
    if ids is not None:
        dataset.ids = [str(v) for v in ids]
    return dataset


def _from_records(records: Any, prep: Preprocessor, data: DataConfig) -> SequenceSet:
    if data.format != "long":
        raise unprocessable(f"{SOURCE}: 'records' are the rows of the long layout, but this "
                            "run reads the wide layout. Send 'sequences': [[v0, v1, ...], ...].")
    if not isinstance(records, list) or not records:
        raise refuse(SOURCE, "records", "a non-empty list of objects (rows of the long "
                     "layout)", records)
    id_key, step_key, names = data.id_column, data.step_column, prep.feature_names
    allowed = [id_key, *([step_key] if step_key else []), *names, data.label_column]
    ids: list[str] = []
    steps: list[float] = []
    values = np.empty((len(records), len(names)), dtype=np.float64)
    with_steps = isinstance(records[0], dict) and step_key in records[0]
    for r, record in enumerate(records):
        where = f"{SOURCE}: record {r}"
        if not isinstance(record, dict):
            raise refuse(where, "", "an object with fields " + ", ".join(allowed[:-1]),
                         record)
        for key in record:
            if key not in allowed:
                raise unprocessable(f"{where}: unknown field {key!r}{did_you_mean(key, allowed)}"
                                    f". Fields: {', '.join(allowed)}.")
        if id_key not in record:
            raise unprocessable(f"{where}: has no {id_key!r} (the sequence id).")
        value = record[id_key]
        if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
            raise refuse(where, id_key, "a non-empty string or a whole number", value)
        ids.append(str(value))
        if step_key:
            if (step_key in record) != with_steps:
                raise unprocessable(f"{where}: {'has no' if with_steps else 'has'} "
                                    f"{step_key!r} but record 0 {'has' if with_steps else 'has no'}"
                                    " step. Give the step in every record or in none (then "
                                    "records are in order).")
            if with_steps:
                steps.append(_number(record[step_key], lambda: f"{where}, {step_key!r}"))
        for j, name in enumerate(names):
            if name not in record:
                raise unprocessable(f"{where}: has no {name!r}. Every record needs the run's "
                                    f"features ({', '.join(names)}); null for an empty cell.")
            values[r, j] = _number(record[name], lambda: f"{where}, {name!r}",
                                   data.missing_values)
    import pandas as pd

    frame = pd.DataFrame({id_key: ids, **({step_key: steps} if steps else {}),
                          **{name: values[:, j] for j, name in enumerate(names)}})
    try:
        dataset = from_frame(frame, data, require_labels=False,
                             missing_values=data.missing_values, source=SOURCE)
    except SeqclfError as exc:  # a step twice, a gap in the steps, a missing value
        message = re.sub(r"\blines (\d+) and (\d+)",
                         lambda m: f"records {int(m[1]) - 1} and {int(m[2]) - 1}", str(exc))
        message = re.sub(r"\bline (\d+)", lambda m: f"record {int(m[1]) - 1}", message)
        raise unprocessable(message) from None
    return dataset


# --- checks --------------------------------------------------------------------------


def _number(value: Any, where: Callable[[], str], missing: str | None = None) -> float:
    """A JSON value as a float. With ``missing`` (the run's ``data.missing_values``) a
    feature value: null is NaN, an empty cell, unless that policy is ``error``."""
    if value is None and missing is not None:
        if missing != "error":
            return math.nan
        raise refuse(where(), "", "a number (null is an empty cell, and the run's "
                     "data.missing_values is 'error')", value)
    if type(value) is float:
        if math.isfinite(value):
            return value
        raise refuse(where(), "", "a finite number", value)
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:
            raise refuse(where(), "", "a finite number", value) from None
    wanted = "a number" if missing in (None, "error") else "a number (null for an empty cell)"
    raise refuse(where(), "", wanted, value)


def _check_steps(dataset: SequenceSet, max_steps: int, max_length: int,
                 lines: bool = False) -> None:
    for i, seq in enumerate(dataset.sequences):
        if len(seq) > max_steps:
            where = (f"{dataset.source}: line {dataset.lines[i]}" if lines
                     else f"{dataset.source}: sequence {i} (id {dataset.ids[i]!r})")
            raise unprocessable(_too_long(where, len(seq), max_steps, max_length))


def _too_long(where: str, steps: int, max_steps: int, max_length: int) -> str:
    return (f"{where}: steps must be at most {max_steps} (the server's --max-steps; the run "
            f"reads {max_length}, longer sequences are truncated to that). Got {steps} "
            "instead.")


def _check_tokens(dataset: SequenceSet, prep: Preprocessor) -> None:
    """Token input: whole numbers from 1 to vocab_size - 1, named by sequence and step."""
    if prep.vocab_size is None:
        return
    for i, seq in enumerate(dataset.sequences):
        tokens = seq[:, 0]
        bad = (tokens != np.round(tokens)) | (tokens < 1) | (tokens >= prep.vocab_size)
        if bad.any():
            s = int(np.flatnonzero(bad)[0])
            raise refuse(
                f"{SOURCE}: {_sequence(dataset, i)}, step {s}", "the token", "a whole number "
                f"from 1 to {prep.vocab_size - 1} (model.embedding.input_dim - 1; 0 is "
                "padding)", float(tokens[s]))


def _sequence(dataset: SequenceSet, i: int) -> str:
    return f"sequence {i} (id {dataset.ids[i]!r})"


def _name_features(message: str, names: list[str]) -> str:
    """from_arrays numbers features; a request names them too."""
    return re.sub(r"\bfeature (\d+)\b", lambda m: f"feature {m[1]} ({names[int(m[1])]!r})"
                  if int(m[1]) < len(names) else m[0], message)


def _kind(value: Any) -> str:
    """A JSON value for a message: short, with its JSON type."""
    kinds = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
             type(None): "null"}
    text = json.dumps(value, default=str) if not isinstance(value, float) else repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    kind = kinds.get(type(value))
    return f"{kind} {text}" if kind and value is not None else text

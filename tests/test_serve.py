"""seqclf serve: the HTTP server around a run (FastAPI's TestClient, and real processes).

The session's tiny LSTM run (conftest's ``long_run``: long layout, 2 features, standard
scaling, masked variable lengths) is loaded once per module and served in-process. Answers are checked against `seqclf predict`
on the same sequences (JSON in both layouts and CSV bodies), refusals by status and
message, the batcher on its own with a timed fake model (what it must do with its
queue), the request parser on hand-made preprocessing (wide layout, token input) and
at least 1,000 malformed bodies. The slow tests start `seqclf serve` as a process on
127.0.0.1 (one worker and two) and serve the run's ONNX export.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from conftest import ROOT
from seqclf.cli import app as cli
from seqclf.config import DataConfig
from seqclf.data import Preprocessor, read_sequences
from seqclf.serving import inputs
from seqclf.serving.batching import Batcher
from seqclf.serving.inputs import RequestError
from seqclf.serving.settings import MIB, Settings

pytest.importorskip("fastapi")
with warnings.catch_warnings():  # Starlette 1.x would rather have httpx2; httpx works
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402

FEATURES = ["x", "y"]
SMALL_BODY = 32 * 1024  # the fuzz client's --max-body-mb, so that 413s are cheap to send
MAX_STEPS = 30


# --- one tiny run, served in-process --------------------------------------------------


@pytest.fixture(scope="module")
def served(long_run):
    """The session's tiny LSTM run (conftest's long_run: long layout, features x and y,
    standard scaling, masked variable lengths) and its data folder (predict.csv)."""
    return long_run.run_dir, long_run.data_dir


@pytest.fixture(scope="module")
def engine(served):
    from seqclf.serving.engine import load

    return load(Settings(target=str(served[0])))


def client_for(engine, **limits) -> TestClient:
    from seqclf.serving.app import create_app

    return TestClient(create_app(engine, Settings(target=str(engine.path), **limits)))


@pytest.fixture(scope="module")
def client(engine):
    with client_for(engine, max_steps=MAX_STEPS) as c:
        yield c


def sequences_of(csv: Path, served_dir: Path) -> tuple[list[str], list[list[list[float]]]]:
    """The sequences of a CSV in the run's layout, raw (unscaled), as JSON lists."""
    from seqclf.runs import open_run

    data = read_sequences(csv, open_run(served_dir).config.data, require_labels=False)
    return data.ids, [s.tolist() for s in data.sequences]


def expected(served) -> pd.DataFrame:
    from seqclf.evaluate import predict

    frame, _ = predict(served[0], served[1] / "predict.csv")
    return frame


def assert_same(answer: dict, frame: pd.DataFrame, tolerance: float = 1e-6) -> None:
    """A /predict answer equals `seqclf predict`'s frame (ids, labels, probabilities)."""
    rows = answer["predictions"]
    assert [r["id"] for r in rows] == list(frame["id"])
    assert [r["label"] for r in rows] == list(frame["predicted"])
    got = np.array([[r["probabilities"][c] for c in ("down", "flat", "up")] for r in rows])
    want = frame[["prob_down", "prob_flat", "prob_up"]].to_numpy()
    np.testing.assert_allclose(got, want, atol=tolerance, rtol=0)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)


# --- answers -------------------------------------------------------------------------


def test_predict_json_sequences_answers_as_seqclf_predict_does(client, served):
    ids, sequences = sequences_of(served[1] / "predict.csv", served[0])
    response = client.post("/predict", json={"sequences": sequences, "ids": ids})
    assert response.status_code == 200, response.text
    assert_same(response.json(), expected(served))
    assert not any(r["truncated"] for r in response.json()["predictions"])


def test_predict_json_records_in_any_row_order(client, served):
    rows = pd.read_csv(served[1] / "predict.csv").sample(frac=1.0, random_state=0)
    records = rows.to_dict(orient="records")  # shuffled: the step column orders them
    response = client.post("/predict", json={"records": records})
    assert response.status_code == 200, response.text
    answer = response.json()
    order = {r["id"]: r for r in answer["predictions"]}
    frame = expected(served)
    assert_same({"predictions": [order[i] for i in frame["id"]]}, frame)


def test_predict_csv_body_as_seqclf_predict_reads_a_file(client, served):
    body = (served[1] / "predict.csv").read_bytes()
    response = client.post("/predict/csv", content=body, headers={"content-type": "text/csv"})
    assert response.status_code == 200, response.text
    assert_same(response.json(), expected(served))
    as_csv = client.post("/predict/csv", content=body, headers={"accept": "text/csv"})
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    frame = pd.read_csv(pd.io.common.StringIO(as_csv.text))
    want = expected(served)
    assert list(frame.columns) == list(want.columns)
    assert list(frame["predicted"]) == list(want["predicted"])
    np.testing.assert_allclose(frame.iloc[:, 2:].to_numpy(), want.iloc[:, 2:].to_numpy(),
                               atol=1e-6)


def test_a_long_sequence_is_truncated_as_in_training(client, engine):
    prep = engine.preprocessor
    rng = np.random.default_rng(0)
    long = rng.normal(size=(prep.max_length + 3, 2)).round(3).tolist()
    response = client.post("/predict", json={"sequences": [long, long[:prep.max_length]]})
    assert response.status_code == 200, response.text
    cut, kept = response.json()["predictions"]
    assert cut["truncated"] and not kept["truncated"]
    assert cut["label"] == kept["label"]  # truncating: post keeps the first max_length steps
    for c in cut["probabilities"]:
        assert cut["probabilities"][c] == pytest.approx(kept["probabilities"][c], abs=1e-6)


def test_one_feature_value_per_step_is_the_features_in_order(client):
    """Swapping a step's two values changes the answer: they are read as x, y."""
    steps = [[3.0, -3.0], [2.5, -2.0], [3.0, 0.0]]
    a, b = (client.post("/predict", json={"sequences": [s]}).json()["predictions"][0]
            for s in (steps, [v[::-1] for v in steps]))
    assert a["probabilities"] != b["probabilities"]


def test_health_metadata_and_openapi(client, served, engine):
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["engine"] == "keras"
    meta = client.get("/metadata").json()
    prep = engine.preprocessor
    assert meta["classes"] == ["down", "flat", "up"] and meta["features"] == FEATURES
    assert meta["layout"] == {"format": "long", "id_column": "id", "label_column": "label",
                              "step_column": "step"}
    assert meta["max_length"] == prep.max_length and meta["padding"] == "post"
    assert meta["scaling"] == {"method": "standard", "center": prep.center,
                               "scale": prep.scale}
    assert meta["model_family"] == "recurrent" and meta["token_input"] is None
    assert meta["run"] == str(served[0]) and meta["engine"] == "keras"
    for package in ("seqclf", "keras", "tensorflow", "numpy"):
        assert meta["versions"][package]
    assert meta["manifest"]["name"] == "tiny" and meta["manifest"]["seed"] == 3
    assert meta["manifest"]["status"] == "complete"
    assert 0 <= meta["manifest"]["test"]["accuracy"] <= 1
    assert meta["limits"]["max_steps"] == MAX_STEPS and meta["decision"].startswith("argmax")
    schema = client.get("/openapi.json").json()
    assert {"/predict", "/predict/csv", "/health", "/metadata"} <= set(schema["paths"])
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert {"sequences", "ids", "records"} <= set(body["schema"]["properties"])
    assert client.get("/docs").status_code == 200


# --- refusals ------------------------------------------------------------------------

GOOD_STEP = [0.1, 0.2]
BAD = [  # (body, status, the reason's pattern)
    (b"", 400, r"^request: the body is empty"),
    (b"{", 400, r"^request: the body is not valid JSON \(Expecting"),
    (b"\xff\xfe{", 400, r"not (UTF-8|valid JSON)"),
    (b"[" * 50_000, 400, r"nests too deeply"),
    (b"[]", 422, r"the body must be a JSON object .* Got a list \[\] instead\.$"),
    ({"sequence": [[GOOD_STEP]]}, 422, r"unknown field 'sequence' \(did you mean 'sequences'"),
    ({"sequences": [[GOOD_STEP]], "extra": 1}, 422, r"unknown field 'extra'"),
    ({}, 422, r"give either 'sequences' or 'records'"),
    ({"sequences": []}, 422, r"sequences must be a non-empty list"),
    ({"sequences": [[]]}, 422, r"^request: sequence 0: is empty"),
    ({"sequences": [[GOOD_STEP], "ab"]}, 422, r"^request: sequence 1: must be a list of steps\. Got a string \"ab\" instead\.$"),
    ({"sequences": [[GOOD_STEP, [0.1]]]}, 422,
     r"^request: sequence 0, step 1: must be a list of 2 feature values \(x, y\)\. Got 1 "
     r"value instead\.$"),
    ({"sequences": [[GOOD_STEP, [1, 2, 3]]]}, 422, r"sequence 0, step 1: .* Got 3 values"),
    ({"sequences": [[GOOD_STEP, 0.5]]}, 422, r"sequence 0, step 1: must be a list of 2 .* Got 0\.5 instead"),
    ({"sequences": [[GOOD_STEP], [GOOD_STEP, [0.3, "1.5"]]]}, 422,
     r"^request: sequence 1, step 1, feature 1 \('y'\): must be a number\. Got a string "
     r"\"1.5\" instead\.$"),
    ({"sequences": [[[True, 0.1]]]}, 422, r"feature 0 \('x'\): must be a number\. Got a boolean"),
    ({"sequences": [[GOOD_STEP, [0.1, None]]]}, 422,
     r"sequence 0, step 1, feature 1 \('y'\): must be a number \(null is an empty cell, and "
     r"the run's data.missing_values is 'error'\)"),
    (b'{"sequences": [[[0.1, NaN]]]}', 422, r"step 0, feature 1 \('y'\): must be a finite "
                                            r"number\. Got nan instead"),
    (b'{"sequences": [[[0.1, 0.2], [-Infinity, 1]]]}', 422, r"step 1, feature 0 .* Got -inf"),
    (b'{"sequences": [[[1e400, 0]]]}', 422, r"must be a finite number\. Got inf"),
    ({"sequences": [[[1e39, 0]]]}, 422, r"sequence 0, step 0, feature 0 \('x'\): 1e\+39 is too "
                                        r"large"),
    ({"sequences": [[GOOD_STEP] * (MAX_STEPS + 1)]}, 422,
     rf"^request: sequence 0: steps must be at most {MAX_STEPS} \(the server's --max-steps"),
    ({"sequences": [[GOOD_STEP]], "ids": ["a", "b"]}, 422, r"ids must be a list of 1 ids"),
    ({"sequences": [[GOOD_STEP]], "ids": [None]}, 422, r"ids\[0\] must be a string"),
    ({"records": [{"id": "a", "step": 0, "x": 1, "y": 2, "z": 3}]}, 422,
     r"^request: record 0: unknown field 'z'\. Fields: id, step, x, y, label\.$"),
    ({"records": [{"id": "a", "step": 0, "x": 1}]}, 422, r"record 0: has no 'y'"),
    ({"records": [{"step": 0, "x": 1, "y": 1}]}, 422, r"record 0: has no 'id'"),
    ({"records": [{"id": "a", "step": 0, "x": 1, "y": 1}, {"id": "a", "step": 0, "x": 1,
                                                           "y": 1}]}, 422,
     r"^request: records 0 and 1: id 'a' has step 0 twice"),
    ({"records": [{"id": "a", "step": 0, "x": 1, "y": 1}, {"id": "a", "x": 1, "y": 1}]}, 422,
     r"record 1: has no 'step' but record 0 has"),
    ({"records": [{"id": "a", "step": "0", "x": 1, "y": 1}]}, 422,
     r"record 0, 'step': must be a number\. Got a string"),
    ({"records": [{"id": "a", "step": 0, "x": 1, "y": 1}], "ids": ["a"]}, 422,
     r"'ids' goes with 'sequences'"),
]


@pytest.mark.parametrize("body,status,reason", BAD,
                         ids=[f"{n}-{b[2][:30]}" for n, b in enumerate(BAD)])
def test_bad_input_gets_a_4xx_with_a_one_line_reason(client, body, status, reason):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = client.post("/predict", content=content)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail
    assert re.search(reason, detail), detail


def test_a_step_that_scales_onto_the_padding_value_names_its_sequence(client, engine):
    """Preprocessor.transform's own refusal, told by sequence instead of file line."""
    prep = engine.preprocessor
    clash = (-1.0e9 * np.asarray(prep.scale) + np.asarray(prep.center)).tolist()
    response = client.post("/predict", json={"sequences": [[GOOD_STEP], [GOOD_STEP, clash]],
                                             "ids": ["ok", "odd"]})
    assert response.status_code == 422
    assert re.fullmatch(r"request: sequence 1 \(id 'odd'\): a step equals the padding value "
                        r".*", response.json()["detail"])


def test_csv_body_refusals_name_the_line(client):
    for body, reason in [
        (b"id,step,x\na,0,1\n", r"feature columns \['x'\] differ from the run's \['x', 'y'\]"),
        (b"id,step,x,y\na,0,1,zz\n", r"^request CSV body: line 2, column 'y': 'zz' is not a "),
        (b"id,step,x,y\na,0,1,2\na,0,1,2\n", r"request CSV body: lines 2 and 3: id 'a' has "
                                             r"step 0 twice"),
        (b"   ", r"request CSV body: is empty"),
        ("id,step,x,y\n" + "".join(f"a,{s},1,2\n" for s in range(MAX_STEPS + 1)),
         rf"request CSV body: line 2: steps must be at most {MAX_STEPS}"),
    ]:
        response = client.post("/predict/csv", content=body)
        assert 400 <= response.status_code < 500, response.text
        assert re.search(reason, response.json()["detail"]), response.json()["detail"]


def test_a_body_over_the_limit_is_413(engine):
    with client_for(engine, max_body_bytes=4096) as c:
        sequences = [[GOOD_STEP] * 5] * 100  # about 5 KiB of JSON
        response = c.post("/predict", json={"sequences": sequences})
        assert response.status_code == 413
        assert response.json()["detail"] == ("request: the body must be at most 4096 bytes (the "
                                              "server's --max-body-mb). Send fewer sequences "
                                              "per request.")
        chunked = c.post("/predict", content=iter([b" " * 3000, b" " * 3000]))  # no length
        assert chunked.status_code == 413
        assert c.post("/predict", json={"sequences": sequences[:10]}).status_code == 200


def test_wrong_paths_and_methods_are_4xx(client):
    assert client.get("/predict").status_code == 405
    assert client.post("/nothing").status_code == 404


# --- malformed bodies (1,000 of them in the real-server test) ------------------------


def valid_body(rng: random.Random) -> dict:
    steps = lambda: [[round(rng.gauss(0, 1), 3) for _ in FEATURES]  # noqa: E731
                     for _ in range(rng.randint(1, 8))]
    if rng.random() < 0.5:
        sequences = [steps() for _ in range(rng.randint(1, 3))]
        body = {"sequences": sequences}
        if rng.random() < 0.5:
            body["ids"] = [f"s{i}" for i in range(len(sequences))]
        return body
    records = []
    for n in range(rng.randint(1, 3)):
        records += [{"id": f"s{n}", "step": s, "x": v[0], "y": v[1]}
                    for s, v in enumerate(steps())]
    return {"records": records}


ODD_VALUES = ["1.5", "", "nan", True, False, {}, {"x": 1}, [], [1], "∞", 10 ** 400]
NOT_IDS = ["", True, False, None, 1.5, {}, [], ["a"]]


def malformed(rng: random.Random) -> bytes:
    """One body the server must refuse, by construction (a valid body with one defect,
    or not a JSON object at all)."""
    kind = rng.randrange(18)
    body = valid_body(rng)
    key = "sequences" if "sequences" in body else "records"
    items = body[key]
    if kind == 0:  # random bytes that are not a JSON object
        while True:
            raw = bytes(rng.randrange(256) for _ in range(rng.randint(0, 60)))
            try:
                if not isinstance(json.loads(raw), dict):
                    return raw
            except (ValueError, RecursionError):
                return raw
    if kind == 1:  # a valid body cut short
        text = json.dumps(body).encode()
        return text[:rng.randrange(len(text) - 1)]
    if kind == 2:  # not an object
        return json.dumps(rng.choice([items, 1, "sequences", None, True, [body]])).encode()
    if kind == 3:  # an unknown field
        body[rng.choice(["sequence", "data", "id", "X", "", "records " , "labels"])] = 1
    elif kind == 4:  # both layouts, or neither
        body = {} if rng.random() < 0.5 else {"sequences": [[[0.1, 0.2]]], "records": items}
    elif kind == 5:  # the list itself wrong
        body[key] = rng.choice([[], {}, "x", 3, None, [None], [[]] if key == "sequences" else [[]]])
    elif key == "sequences" and kind in (6, 7, 8):  # a step of the wrong width
        seq = rng.choice(items)
        seq[rng.randrange(len(seq))] = [0.5] * rng.choice([0, 1, 3, 7])
    elif kind in (9, 10):  # a value that is not a number
        value = rng.choice(ODD_VALUES)
        if key == "sequences":
            seq = rng.choice(items)
            seq[rng.randrange(len(seq))][rng.randrange(2)] = value
        else:
            field = rng.choice(["x", "y", "step", "id"])
            rng.choice(items)[field] = rng.choice(NOT_IDS) if field == "id" else value
    elif kind == 11:  # a value that is not finite, or beyond float32, or null
        token = rng.choice(["NaN", "Infinity", "-Infinity", "1e39", "-3.5e38", "1e999", "null"])
        marker = 12345.678
        if key == "sequences":
            rng.choice(items)[0][rng.randrange(2)] = marker
        else:
            rng.choice(items)[rng.choice(["x", "y"])] = marker
        return json.dumps(body).replace("12345.678", token, 1).encode()
    elif kind == 12:  # too many steps
        if key == "sequences":
            items[0] = [[0.1, 0.2]] * rng.randint(MAX_STEPS + 1, 3 * MAX_STEPS)
        else:
            body[key] = [{"id": "long", "step": s, "x": 0.1, "y": 0.2}
                         for s in range(rng.randint(MAX_STEPS + 1, 3 * MAX_STEPS))]
    elif kind == 13:  # an empty sequence, or records missing a field
        if key == "sequences":
            items[rng.randrange(len(items))] = []
        else:
            del rng.choice(items)[rng.choice(["x", "y", "id"])]
    elif kind == 14:  # ids that do not fit, or ids with records
        body["ids"] = rng.choice([["a"] * (len(items) + 1), [None] * len(items), "a", 7,
                                  [["a"]] * len(items)]) if key == "sequences" else ["a"]
    elif kind == 15:  # records: a repeated step, a gap, an unknown field
        if key == "records":
            record = dict(rng.choice(items))
            choice = rng.randrange(3)
            if choice == 0:
                items.append(record)
            elif choice == 1:
                items.append({**record, "step": record["step"] + 2 + rng.randrange(5)
                              + max(r["step"] for r in items if r["id"] == record["id"])})
            else:
                rng.choice(items)[rng.choice(["z", "Step", "ID", "label2"])] = 1
        else:
            items[0] = {"steps": items[0]}
    elif kind == 16:  # too large (413)
        return b'{"sequences": [' + b"[[0.1, 0.2]]," * (SMALL_BODY // 12) + b"[[0.1, 0.2]]]}"
    else:  # nested too deeply, or a sequence of numbers for a two-feature run
        if rng.random() < 0.5:
            return b'{"sequences": ' + b"[" * 3_000 + b"]" * 3_000 + b"}"
        items = body["sequences"] = [[0.1, 0.2, 0.3]]
    return json.dumps(body).encode()


def test_malformed_bodies_are_each_a_4xx_and_the_server_still_answers(engine):
    """300 here (seconds); the slow real-server test sends 1,000 more."""
    rng = random.Random(19)
    bodies = [malformed(rng) for _ in range(300)]
    statuses: dict[int, int] = {}
    with client_for(engine, max_steps=MAX_STEPS, max_body_bytes=SMALL_BODY) as c:
        for body in bodies:
            response = c.post("/predict", content=body)
            assert 400 <= response.status_code < 500, (body[:200], response.text)
            detail = response.json()["detail"]
            assert isinstance(detail, str) and "\n" not in detail and detail
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert c.get("/health").json()["status"] == "ok"
        ok = c.post("/predict", json={"sequences": [[GOOD_STEP]]})
        assert ok.status_code == 200
    assert set(statuses) == {400, 413, 422}, statuses  # every kind of refusal was reached


# --- the request parser on its own (no model) ----------------------------------------


def prep_for(n_features: int = 1, vocab_size: int | None = None, max_length: int = 4):
    names = ["value"] if n_features == 1 else [f"f{j}" for j in range(n_features)]
    return Preprocessor(feature_names=names, classes=[0, 1], majority_class=0,
                        max_length=max_length, pad_value=0.0, center=[0.0] * n_features,
                        scale=[1.0] * n_features, vocab_size=vocab_size)


WIDE = DataConfig(train="train.csv", format="wide")


def test_wide_runs_take_a_bare_number_per_step_and_refuse_records():
    prep = prep_for()
    dataset = inputs.from_json({"sequences": [[1, 2.5, 3], [[4], [5]]], "ids": [7, "b"]},
                               prep, WIDE, 40)
    assert dataset.ids == ["7", "b"]
    assert [s[:, 0].tolist() for s in dataset.sequences] == [[1, 2.5, 3], [4, 5]]
    x, truncated = inputs.model_input(dataset, prep)
    assert x.shape == (2, 4, 1) and truncated == [False, False]
    with pytest.raises(RequestError, match=r"'records' are the rows of the long layout, but "
                                           r"this run reads the wide layout"):
        inputs.from_json({"records": [{"id": "a", "t0": 1}]}, prep, WIDE, 40)


def test_missing_values_follow_the_runs_policy():
    prep = prep_for()
    for policy, want in (("zero", [1.0, 0.0, 3.0]), ("ffill", [1.0, 1.0, 3.0])):
        data = DataConfig(train="t.csv", format="wide", missing_values=policy)
        dataset = inputs.from_json({"sequences": [[1, None, 3]]}, prep, data, 40)
        assert dataset.sequences[0][:, 0].tolist() == want
        with pytest.raises(RequestError, match=r"step 1, feature 0 \('value'\): must be a "
                                               r"number \(null for an empty cell\)\. Got a "
                                               r"string"):
            inputs.from_json({"sequences": [[1, "2", 3]]}, prep, data, 40)


def test_token_input_is_whole_numbers_in_the_vocabulary():
    prep = prep_for(vocab_size=10)
    dataset = inputs.from_json({"sequences": [[1, 9, 4]]}, prep, WIDE, 40)
    x, _ = inputs.model_input(dataset, prep)
    assert x.dtype == np.int32 and x.tolist() == [[1, 9, 4, 0]]
    for bad, shown in ((0, "0.0"), (10, "10.0"), (2.5, "2.5")):
        with pytest.raises(RequestError, match=rf"^request: sequence 0 \(id '0'\), step 1: the "
                                               rf"token must be a whole number from 1 to 9 .*"
                                               rf"Got {re.escape(shown)} instead\.$"):
            inputs.from_json({"sequences": [[1, bad, 3]]}, prep, WIDE, 40)


json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["sequences", "ids", "records", "id", "step", "f0",
                                       "f1", "x"]) | st.text(max_size=3), children,
                      max_size=3),
    max_leaves=25)


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(json_values)
def test_any_json_value_is_read_or_refused_in_one_line(value):
    """The parser's contract on arbitrary JSON: a model input, or a RequestError (4xx)."""
    prep = prep_for(n_features=2, max_length=3)
    data = DataConfig(train="t.csv", format="long", feature_columns=["f0", "f1"])
    try:
        dataset = inputs.from_json(value, prep, data, 6)
        x, truncated = inputs.model_input(dataset, prep)
    except RequestError as exc:
        assert 400 <= exc.status < 500 and str(exc) and "\n" not in str(exc)
        return
    assert x.shape == (len(dataset), 3, 2) and np.isfinite(x).all()
    assert len(truncated) == len(dataset.ids) == len(dataset)


# --- the batcher, with a timed fake model --------------------------------------------


class SlowModel:
    """Takes `seconds` per call whatever the batch (as Keras's predict nearly does) and
    records each batch's size."""

    def __init__(self, seconds: float, fail_on: float | None = None) -> None:
        self.seconds, self.fail_on, self.calls = seconds, fail_on, []

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.calls.append(len(x))
        time.sleep(self.seconds)
        if self.fail_on is not None and (x == self.fail_on).any():
            raise ValueError("the model failed")
        return np.repeat(x[:, :1], 2, axis=1)  # row i answers with its own input


def run_batcher(model, max_batch, max_wait, requests):
    async def main():
        batcher = Batcher(model, max_batch, max_wait)
        await batcher.start()
        try:
            return await asyncio.gather(*(batcher.predict(x) for x in requests),
                                        return_exceptions=True), batcher
        finally:
            await batcher.stop()

    return asyncio.run(main())


def test_concurrent_requests_share_batches_and_each_gets_its_own_rows():
    model = SlowModel(0.05)
    requests = [np.full((1 + i % 3, 1), float(i)) for i in range(40)]
    answers, batcher = run_batcher(model, 16, 0.005, requests)
    for i, (x, answer) in enumerate(zip(requests, answers)):
        assert answer.shape == (len(x), 2) and (answer == i).all()
    assert sum(model.calls) == sum(len(x) for x in requests) == batcher.sequences
    assert max(model.calls) <= 16 and len(model.calls) <= 8  # 80 sequences, batches of <= 16
    assert batcher.batches == len(model.calls) and batcher.largest == max(model.calls)
    assert batcher.model_seconds >= 0.05 * len(model.calls)


def test_a_request_larger_than_a_batch_is_cut_into_batches():
    model = SlowModel(0.0)
    x = np.arange(25, dtype=float)[:, None]
    (answer,), _ = run_batcher(model, 10, 0.0, [x])
    assert model.calls == [10, 10, 5]
    assert answer[:, 0].tolist() == list(range(25))


def test_a_lone_request_waits_at_most_the_bounded_wait():
    model = SlowModel(0.0)

    async def main():
        batcher = Batcher(model, 64, 0.05)
        await batcher.start()
        try:
            start = time.perf_counter()
            await batcher.predict(np.ones((1, 1)))
            return time.perf_counter() - start
        finally:
            await batcher.stop()

    waited = asyncio.run(main())
    assert 0.04 <= waited < 0.5
    assert model.calls == [1]


def test_a_model_failure_fails_its_batch_only():
    model = SlowModel(0.0, fail_on=-1.0)
    answers, _ = run_batcher(model, 1, 0.0, [np.ones((1, 1)), -np.ones((1, 1)),
                                             np.full((1, 1), 2.0)])
    assert (answers[0] == 1).all() and (answers[2] == 2).all()
    assert isinstance(answers[1], ValueError)


def test_concurrent_http_requests_are_batched(engine):
    """Through the app: 24 requests at once take fewer model calls than requests."""
    with client_for(engine, batch_wait_ms=20) as c:
        before = c.get("/health").json()
        with ThreadPoolExecutor(24) as pool:
            responses = list(pool.map(lambda i: c.post("/predict", json={
                "sequences": [[[0.1 * i, -0.1 * i], GOOD_STEP]]}), range(24)))
        after = c.get("/health").json()
    assert all(r.status_code == 200 for r in responses)
    assert after["sequences"] - before["sequences"] == 24
    assert after["batches"] - before["batches"] < 24 and after["largest_batch"] > 1


# --- command line and settings -------------------------------------------------------


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_serve_refuses_what_it_cannot_serve_in_one_line(tmp_path, served):
    run_dir = served[0]
    assert "not found" in one_line_error(invoke("serve", tmp_path / "none", "--port", 0))
    assert "--engine must be one of: keras, onnx" in one_line_error(
        invoke("serve", run_dir, "--engine", "torch", "--port", 0))
    assert "is a run directory. --engine onnx serves its ONNX export" in one_line_error(
        invoke("serve", run_dir, "--engine", "onnx", "--port", 0))
    assert "--run must be given only with --engine onnx" in one_line_error(
        invoke("serve", run_dir, "--run", run_dir, "--port", 0))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert f"cannot listen on 127.0.0.1:{port}" in one_line_error(
            invoke("serve", run_dir, "--port", port))
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "preprocessing.json").write_text('{"format": "onnx"}')
    assert "is an export directory" in one_line_error(
        invoke("serve", tmp_path / "export", "--port", 0))


def test_settings_are_checked():
    for settings_, fragment in [
        (Settings(target="r", max_batch=0), "--max-batch must be a whole number >= 1"),
        (Settings(target="r", workers=0), "--workers must be"),
        (Settings(target="r", port=70000), "--port must be from 0 to 65535"),
        (Settings(target="r", batch_wait_ms=-1), "--batch-wait-ms must be from 0 to 1000"),
        (Settings(target="r", max_body_bytes=10), "--max-body-mb must be at least 1 KiB"),
        (Settings(target="r", max_steps=0), "--max-steps must be"),
    ]:
        with pytest.raises(Exception, match=re.escape(fragment)):
            settings_.check()
    assert Settings(target="r").steps_limit(9) == 90
    assert Settings.from_json(Settings(target="r", port=1).to_json()).port == 1


def test_serve_help_lists_the_options():
    result = invoke("serve", "--help")
    assert result.exit_code == 0
    for option in ("--host", "--port", "--workers", "--engine", "--run", "--max-batch",
                   "--batch-wait-ms", "--max-body-mb", "--max-steps"):
        assert option in result.stdout


# --- real processes (slow) -----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(log: Path, *args: str, timeout: float = 180) -> tuple[subprocess.Popen, str]:
    """`seqclf serve ...` on a free loopback port, its output in ``log``; returns once
    /health answers."""
    import httpx

    port = free_port()
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("SEQCLF_DEBUG", None)
    with open(log, "w") as out:  # a file, not a pipe: the access log never blocks the server
        proc = subprocess.Popen([sys.executable, "-m", "seqclf", "serve", *args, "--port",
                                 str(port)], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"seqclf serve exited {proc.returncode}: {log.read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise AssertionError(f"seqclf serve did not answer /health in {timeout} s")


def stop_server(proc: subprocess.Popen, log: Path) -> str:
    """SIGINT (Ctrl-C): the server must stop cleanly, exit code 0; returns its output."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    output = log.read_text()
    assert proc.returncode == 0, output
    assert "Traceback" not in output, output
    return output


@pytest.mark.slow
def test_a_real_server_batches_refuses_1000_bad_bodies_and_stops_cleanly(served, tmp_path):
    import httpx

    log = tmp_path / "serve.log"
    proc, url = start_server(log, str(served[0]), "--max-steps", str(MAX_STEPS),
                             "--max-body-mb", str(SMALL_BODY / MIB), "--batch-wait-ms", "10")
    try:
        ids, sequences = sequences_of(served[1] / "predict.csv", served[0])
        answer = httpx.post(f"{url}/predict", json={"sequences": sequences, "ids": ids},
                            timeout=60)
        assert answer.status_code == 200
        assert_same(answer.json(), expected(served))
        with httpx.Client(timeout=60) as http, ThreadPoolExecutor(16) as pool:
            before = http.get(f"{url}/health").json()
            responses = list(pool.map(lambda i: http.post(f"{url}/predict", json={
                "sequences": [sequences[i % len(sequences)]], "ids": [ids[i % len(ids)]]}),
                range(64)))
            after = http.get(f"{url}/health").json()
            assert all(r.status_code == 200 for r in responses)
            assert after["sequences"] - before["sequences"] == 64
            assert after["batches"] - before["batches"] < 64  # some requests shared a batch
            rng = random.Random(1019)
            statuses: set[int] = set()
            for _ in range(1000):
                body = malformed(rng)
                response = http.post(f"{url}/predict", content=body)
                assert 400 <= response.status_code < 500, (body[:200], response.text)
                assert "\n" not in response.json()["detail"]
                statuses.add(response.status_code)
            assert statuses == {400, 413, 422}
            assert http.get(f"{url}/health").json()["status"] == "ok"
            assert http.post(f"{url}/predict", json={"sequences": [[GOOD_STEP]]}
                             ).status_code == 200
        assert proc.poll() is None
    finally:
        output = stop_server(proc, log)
    assert f"serving {served[0]} (keras engine) on {url} with 1 worker" in output


@pytest.mark.slow
def test_two_worker_processes_answer_alike(served, tmp_path):
    import httpx

    log = tmp_path / "serve.log"
    proc, url = start_server(log, str(served[0]), "--workers", "2")
    try:
        ids, sequences = sequences_of(served[1] / "predict.csv", served[0])
        with httpx.Client(timeout=60) as http:
            for _ in range(6):  # connections land on either worker
                answer = http.post(f"{url}/predict", json={"sequences": sequences, "ids": ids},
                                   headers={"connection": "close"})
                assert answer.status_code == 200
                assert_same(answer.json(), expected(served))
    finally:
        output = stop_server(proc, log)
    assert output.count("Started server process") == 2, output  # each loaded the model


@pytest.mark.slow
def test_the_onnx_engine_gives_the_same_answers(served, client, tmp_path):
    pytest.importorskip("onnxruntime")
    from seqclf.export import export
    from seqclf.serving.engine import load

    run_dir, folder = served
    export(run_dir, "onnx", tmp_path / "onnx")
    onnx = load(Settings(target=str(tmp_path / "onnx"), engine="onnx"))
    ids, sequences = sequences_of(folder / "predict.csv", run_dir)
    body = {"sequences": sequences + [[GOOD_STEP] * 12], "ids": ids + ["long"]}
    with client_for(onnx) as c:
        got = c.post("/predict", json=body).json()["predictions"]
        meta = c.get("/metadata").json()
        csv = c.post("/predict/csv", content=(folder / "predict.csv").read_bytes()).json()
        bad = c.post("/predict", json={"sequences": [[[1.0]]]})
    want = client.post("/predict", json=body).json()["predictions"]
    assert [(r["id"], r["label"], r["truncated"]) for r in got] == [
        (r["id"], r["label"], r["truncated"]) for r in want]
    for g, w in zip(got, want):
        for c_ in w["probabilities"]:
            assert g["probabilities"][c_] == pytest.approx(w["probabilities"][c_], abs=1e-4)
    assert_same(csv, expected(served), tolerance=1e-4)
    assert meta["engine"] == "onnx" and meta["versions"]["onnxruntime"]
    assert meta["run"] == str(run_dir) and meta["served"] == str(tmp_path / "onnx")
    assert bad.status_code == 422 and "sequence 0, step 0" in bad.json()["detail"]
    # serving an export never imports TensorFlow or Keras (a fresh process)
    code = ("import sys; from seqclf.serving.engine import load; from seqclf.serving.settings "
            f"import Settings; load(Settings(target={str(tmp_path / 'onnx')!r}, engine='onnx'));"
            " print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr
    # the export names its run; another run with other preprocessing is refused
    other = json.loads((tmp_path / "onnx" / "preprocessing.json").read_text())
    other["preprocessing"]["center"] = [0.0, 0.0]
    (tmp_path / "onnx" / "preprocessing.json").write_text(json.dumps(other))
    with pytest.raises(Exception, match=r"was not exported from .* preprocessing differs"):
        load(Settings(target=str(tmp_path / "onnx"), engine="onnx"))

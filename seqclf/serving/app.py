"""The FastAPI application: ``/predict``, ``/predict/csv``, ``/health``, ``/metadata``.

Every request the server refuses gets a 4xx and ``{"detail": "<one line>"}``: 400 for a
body that is not JSON, 413 for one over the size limit, 422 for content the run cannot
read (the line names the sequence or record, step and feature), 404/405 for a wrong path
or method. Bodies are read and checked by ``inputs`` (the run's own readers and
preprocessing), the model runs through the ``Batcher``, and ``engine.decide`` picks the
labels.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any, Optional, Union

import numpy as np
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from seqclf import __version__
from seqclf.data import SequenceSet
from seqclf.serving import inputs
from seqclf.serving.batching import Batcher
from seqclf.serving.engine import Engine, decide, metadata
from seqclf.serving.inputs import RequestError
from seqclf.serving.settings import MIB, Settings

# Bodies up to this size are parsed on the event loop (faster than a thread hop);
# larger ones on a worker thread, so that one big request does not stall the others.
INLINE_BODY = 64 * 1024
# A body over the limit is still read (and dropped) up to this many times the limit, so
# the client gets the 413 instead of a connection reset; beyond, the connection closes.
DRAIN_FACTOR = 8


# --- the documented shapes (the OpenAPI schema; bodies are checked by `inputs`) ------

Number = Optional[float]


class PredictRequest(BaseModel):
    """Sequences in either of the run's layouts: ``sequences`` (with optional ``ids``) or
    ``records`` (long-layout runs). See GET /metadata for the features, in order."""

    model_config = ConfigDict(extra="forbid")
    sequences: Optional[list[list[Union[list[Number], Number]]]] = Field(
        None, description="Each sequence a list of steps; each step a list of the run's "
        "feature values in order (a bare number when the run has one feature). null is an "
        "empty cell, handled as the run's data.missing_values says.",
        examples=[[[[0.1, -1.2], [0.4, 0.3], [1.1, 0.0]]]])
    ids: Optional[list[Union[str, int]]] = Field(
        None, description="One id per sequence, echoed in the answer (default: 0, 1, ...).")
    records: Optional[list[dict[str, Union[str, float, None]]]] = Field(
        None, description="Long-layout rows as objects: the run's id, step and feature "
        "columns (a label is ignored).",
        examples=[[{"id": "a", "step": 0, "x": 0.1, "y": -1.2},
                   {"id": "a", "step": 1, "x": 0.4, "y": 0.3}]])


class Prediction(BaseModel):
    id: str = Field(description="The sequence's id.")
    label: Union[int, str] = Field(description="The predicted class.")
    probabilities: dict[str, float] = Field(description="Each class's probability.")
    truncated: bool = Field(description="Longer than the run's max_length: cut to it as in "
                                        "training (data.truncating).")


class PredictResponse(BaseModel):
    predictions: list[Prediction]


class Problem(BaseModel):
    detail: str = Field(description="One line: what is wrong, and where.")


PROBLEMS = {code: {"model": Problem, "description": text} for code, text in (
    (400, "The body is not JSON (or not UTF-8)."),
    (413, "The body is larger than the server's limit."),
    (422, "The body cannot be read in the run's layout; the line says where."))}


def create_app(engine: Engine, settings: Settings) -> FastAPI:
    """The application serving ``engine`` (already loaded) with ``settings``' limits."""
    prep = engine.preprocessor
    data = engine.run.config.data
    max_steps = settings.steps_limit(prep.max_length)
    batcher = Batcher(engine.predict, settings.max_batch, settings.batch_wait_ms / 1000)
    about = metadata(engine, settings)
    started = time.time()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI):
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPI(
        title="seqclf", version=__version__, lifespan=lifespan,
        description=f"Predictions of the {engine.run.config.model.family} model of "
                    f"`{engine.run.path}` ({engine.name} engine): classes "
                    f"{', '.join(map(str, prep.classes))}; features "
                    f"{', '.join(prep.feature_names)} ({data.format} layout).")

    @app.exception_handler(RequestError)
    async def refused(_: Request, exc: RequestError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    def as_json(dataset: SequenceSet, proba: np.ndarray, truncated: list[bool]
                ) -> JSONResponse:
        keys = [str(c) for c in prep.classes]
        labels, rows = decide(proba, prep.classes, engine.decision), proba.tolist()
        return JSONResponse({"predictions": [
            {"id": dataset.ids[i], "label": labels[i], "probabilities": dict(zip(keys, rows[i])),
             "truncated": truncated[i]} for i in range(len(rows))]})

    def read_json(body: bytes) -> tuple[SequenceSet, np.ndarray, list[bool]]:
        dataset = inputs.from_json(inputs.read_json(body), prep, data, max_steps)
        return (dataset, *inputs.model_input(dataset, prep))

    def read_csv(body: bytes) -> tuple[SequenceSet, np.ndarray, list[bool]]:
        dataset = inputs.from_csv(body, data, prep, max_steps)
        return (dataset, *inputs.model_input(dataset, prep))

    @app.post("/predict", response_model=PredictResponse, responses=PROBLEMS,
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": PredictRequest.model_json_schema(
                      ref_template="#/components/schemas/{model}")}}}})
    async def predict(request: Request) -> JSONResponse:
        """Predict sequences sent as JSON: per sequence its id, label, class probabilities
        and whether it was truncated."""
        body = await read_body(request, settings.max_body_bytes)
        if len(body) <= INLINE_BODY:
            dataset, x, truncated = read_json(body)
        else:
            dataset, x, truncated = await run_in_threadpool(read_json, body)
        return as_json(dataset, await batcher.predict(x), truncated)

    @app.post("/predict/csv", response_model=PredictResponse, responses={
        **PROBLEMS, 200: {"content": {"text/csv": {}}, "description": "With Accept: text/csv, "
                          "the CSV `seqclf predict` writes (id, predicted, prob_<class>)."}},
        openapi_extra={"requestBody": {"required": True, "content": {
            "text/csv": {"schema": {"type": "string"}}}}})
    async def predict_csv(request: Request) -> Response:
        """Predict the sequences of a CSV body in the run's layout, read as `seqclf predict`
        reads a file. Answers JSON as /predict does, or CSV with Accept: text/csv."""
        body = await read_body(request, settings.max_body_bytes)
        dataset, x, truncated = await run_in_threadpool(read_csv, body)
        proba = await batcher.predict(x)
        if "text/csv" not in request.headers.get("accept", ""):
            return as_json(dataset, proba, truncated)
        import pandas as pd

        frame = pd.DataFrame({"id": dataset.ids, "predicted": decide(proba, prep.classes, engine.decision)})
        for j, c in enumerate(prep.classes):
            frame[f"prob_{c}"] = proba[:, j]
        return Response(frame.to_csv(index=False), media_type="text/csv")

    @app.get("/health")
    async def health() -> dict[str, Any]:
        """Up, with the model loaded: the engine, this worker's process id, uptime and
        batching counters (per worker)."""
        return {"status": "ok", "engine": engine.name, "pid": os.getpid(),
                "uptime_seconds": time.time() - started,
                "batches": batcher.batches, "sequences": batcher.sequences,
                "largest_batch": batcher.largest, "queued": batcher.queued,
                "model_seconds": batcher.model_seconds}

    @app.get("/metadata")
    async def get_metadata() -> dict[str, Any]:
        """What the model takes and answers, how requests are read, versions, the run."""
        return about

    return app


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 beyond ``limit`` bytes (never held in memory)."""
    too_large = RequestError(413, f"{inputs.SOURCE}: the body must be at most "
                                  f"{_size(limit)} (the server's --max-body-mb). Send fewer "
                                  "sequences per request.")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > DRAIN_FACTOR * limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            chunks = []
            if size > DRAIN_FACTOR * limit:
                break
        else:
            chunks.append(chunk)
    if size > limit:
        raise too_large
    return b"".join(chunks)


def _size(n: int) -> str:
    return f"{n / MIB:g} MiB" if n >= MIB else f"{n} bytes"

"""``seqclf serve``: a trained run behind HTTP (FastAPI on uvicorn).

One job per module:

- ``settings``: what the server is told (engine, address, batching and request limits).
- ``engine``: loads what is served once (a run's Keras model, or its ONNX export under
  onnxruntime) with the run's own preprocessing, and the one place a label is decided.
- ``inputs``: request bodies (JSON in either layout, or CSV) to a ``SequenceSet`` and the
  model input, or a one-line 4xx reason naming the sequence and step.
- ``batching``: concurrent requests queued and run together (bounded wait, bounded batch).
- ``app``: the FastAPI application (``/predict``, ``/predict/csv``, ``/health``,
  ``/metadata``, the OpenAPI docs).
- ``server``: the process: checks, uvicorn, ``--workers``.

FastAPI and uvicorn come with the ``serve`` extra; nothing here is imported by
``seqclf --help``.
"""

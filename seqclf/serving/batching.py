"""Concurrent requests run through the model together: bounded wait, bounded batch.

A model call costs about the same for 1 sequence as for a few hundred (Keras's
``predict`` sets up a loop per call; the matrix work is small), so the server queues the
model inputs of concurrent requests and runs them as one batch. The first request in the
queue waits at most ``max_wait`` seconds for others (none when the queue already holds a
full batch); a batch holds at most ``max_batch`` sequences (a larger request is cut into
chunks of that size). While one batch runs, the next one gathers, so batches grow with
the load and a lone request pays only ``max_wait``.

The model runs on one thread of its own, one batch at a time: the event loop keeps
accepting and parsing requests meanwhile.
"""

from __future__ import annotations

import asyncio
import collections
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass
class _Item:
    x: np.ndarray
    future: asyncio.Future
    arrived: float


class Batcher:
    """Queues model inputs and runs ``predict`` on batches of them.

    Args:
        predict: Model input (n, ...) → probabilities (n, classes); called on the
            batcher's own thread, one call at a time.
        max_batch: Most sequences in one call.
        max_wait: Longest (seconds) the oldest queued input waits for company.
    """

    def __init__(self, predict: Callable[[np.ndarray], np.ndarray], max_batch: int,
                 max_wait: float) -> None:
        self._predict = predict
        self.max_batch = max_batch
        self.max_wait = max_wait
        self._pending: collections.deque[_Item] = collections.deque()
        self._queued = 0  # sequences in _pending
        self._arrived: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self.batches = 0  # model calls so far
        self.sequences = 0  # sequences through the model so far
        self.largest = 0  # most sequences in one call
        self.model_seconds = 0.0  # wall time inside the model calls

    async def start(self) -> None:
        """Start the batching loop on the running event loop."""
        self._arrived = asyncio.Event()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="seqclf-model")
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Stop the loop; requests still queued fail."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        while self._pending:
            item = self._pending.popleft()
            if not item.future.done():
                item.future.set_exception(RuntimeError("the server is shutting down"))
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    @property
    def queued(self) -> int:
        """Sequences waiting for the model."""
        return self._queued

    async def predict(self, x: np.ndarray) -> np.ndarray:
        """The model's output for ``x``, run in a batch with whatever else is queued."""
        if self._task is None or self._task.done():
            raise RuntimeError("the batcher is not running (start() it in the app's lifespan)")
        loop = asyncio.get_running_loop()
        futures = []
        for start in range(0, len(x), self.max_batch):
            future = loop.create_future()
            chunk = x[start:start + self.max_batch]
            self._pending.append(_Item(chunk, future, loop.time()))
            self._queued += len(chunk)
            futures.append(future)
        self._arrived.set()
        parts = await asyncio.gather(*futures)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._pending:
                self._arrived.clear()
                await self._arrived.wait()
            deadline = self._pending[0].arrived + self.max_wait
            while self._queued < self.max_batch:
                left = deadline - loop.time()
                if left <= 0:
                    break
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), left)
                except asyncio.TimeoutError:
                    break
            batch = self._take()
            if not batch:
                continue
            x = batch[0].x if len(batch) == 1 else np.concatenate([i.x for i in batch])
            try:
                proba = await loop.run_in_executor(self._executor, self._timed, x)
                if len(proba) != len(x):
                    raise RuntimeError(f"the model returned {len(proba)} rows for {len(x)} "
                                       "sequences")
            except Exception as exc:  # a model failure fails this batch's requests only
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(exc)
                continue
            self.batches += 1
            self.sequences += len(x)
            self.largest = max(self.largest, len(x))
            start = 0
            for item in batch:
                if not item.future.done():  # a client that left has a cancelled future
                    item.future.set_result(proba[start:start + len(item.x)])
                start += len(item.x)

    def _timed(self, x: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        try:
            return self._predict(x)
        finally:
            self.model_seconds += time.perf_counter() - start

    def _take(self) -> list[_Item]:
        """The oldest queued inputs, up to max_batch sequences (at least one input);
        inputs whose requests were cancelled are dropped."""
        batch: list[_Item] = []
        size = 0
        while self._pending:
            item = self._pending[0]
            if item.future.done():
                self._pending.popleft()
                self._queued -= len(item.x)
                continue
            if batch and size + len(item.x) > self.max_batch:
                break
            self._pending.popleft()
            self._queued -= len(item.x)
            batch.append(item)
            size += len(item.x)
        return batch

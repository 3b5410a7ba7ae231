"""What ``seqclf serve`` is told: what to serve, where, and its batching and request limits."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Optional

from seqclf.errors import must_be

ENGINES = ("keras", "onnx")
MIB = 1 << 20
STEPS_PER_MAX_LENGTH = 10  # default --max-steps: this many times the run's max_length


@dataclass
class Settings:
    """The server's settings (the ``seqclf serve`` options).

    Attributes:
        target: The run directory (engine ``keras``) or ONNX export directory (``onnx``).
        engine: ``keras`` (the run's model.keras) or ``onnx`` (onnxruntime).
        run: With ``onnx``: the run the export was made from (default: the one its
            preprocessing.json names); its config gives the data layout.
        host: The address to listen on.
        port: The TCP port.
        workers: Server processes, each with the model loaded once.
        max_batch: Most sequences the model is given at once.
        batch_wait_ms: Longest a request waits for others to join its batch.
        max_body_bytes: Largest request body accepted (413 beyond).
        max_steps: Most steps accepted in one sequence (422 beyond); None: 10 times the
            run's ``max_length``. Sequences longer than ``max_length`` (and not beyond this)
            are truncated as in training (``data.truncating``).
    """

    target: str
    engine: str = "keras"
    run: Optional[str] = None
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    max_batch: int = 256
    batch_wait_ms: float = 2.0
    max_body_bytes: int = 16 * MIB
    max_steps: Optional[int] = None

    def check(self) -> "Settings":
        """Raise SeqclfError on a value no server could run with."""
        where = "seqclf serve"
        if self.engine not in ENGINES:
            raise must_be(where, "--engine", "one of: " + ", ".join(ENGINES), self.engine)
        if self.run is not None and self.engine != "onnx":
            raise must_be(where, "--run", "given only with --engine onnx (a run directory is "
                          "served as itself)", self.run)
        if not 0 <= self.port <= 65535:
            raise must_be(where, "--port", "from 0 to 65535", self.port)
        for key, value in (("--workers", self.workers), ("--max-batch", self.max_batch)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise must_be(where, key, "a whole number >= 1", value)
        if not isinstance(self.max_body_bytes, int) or self.max_body_bytes < 1024:
            raise must_be(where, "--max-body-mb", "at least 1 KiB (0.001)",
                          self.max_body_bytes / MIB)
        if self.max_steps is not None and (not isinstance(self.max_steps, int)
                                           or self.max_steps < 1):
            raise must_be(where, "--max-steps", "a whole number >= 1", self.max_steps)
        if not 0 <= self.batch_wait_ms <= 1000:
            raise must_be(where, "--batch-wait-ms", "from 0 to 1000", self.batch_wait_ms)
        return self

    def steps_limit(self, max_length: int) -> int:
        """The most steps one sequence may have, for a run padded to ``max_length``."""
        return self.max_steps or STEPS_PER_MAX_LENGTH * max_length

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Settings":
        data: dict[str, Any] = json.loads(text)
        return cls(**data).check()

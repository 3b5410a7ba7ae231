"""Training progress for people: a live bar with ETA on a terminal, a line per epoch
when the output is piped or logged. Plain hooks; train.py adapts them to Keras."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _metrics(logs: dict[str, Any]) -> str:
    keys = [k for k in ("loss", "accuracy", "val_loss", "val_accuracy") if k in logs]
    return " ".join(f"{k} {float(logs[k]):.4f}" for k in keys)


class Progress:
    """Reports epochs as they finish.

    Args:
        stream: Where to write (default: stdout).
        live: Redraw one line in place (a terminal); default: whether ``stream`` is a TTY.
    """

    def __init__(self, stream: TextIO | None = None, live: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self.epochs = 0
        self.steps = 0
        self.epoch = 0
        self.initial_epoch = 0
        self.start = self.epoch_start = self.last_draw = 0.0

    def note(self, message: str) -> None:
        """A line of information before training starts."""
        print(message, file=self.stream, flush=True)

    def train_begin(self, epochs: int, steps_per_epoch: int, initial_epoch: int = 0) -> None:
        """``initial_epoch``: epochs already done (a resumed run): the ETA counts only the
        epochs trained since this start against the time since it."""
        self.epochs, self.steps = epochs, max(steps_per_epoch, 1)
        self.initial_epoch = initial_epoch
        self.start = time.perf_counter()

    def epoch_begin(self, epoch: int) -> None:
        self.epoch = epoch
        self.epoch_start = time.perf_counter()

    def batch_end(self, batch: int, logs: dict[str, Any]) -> None:
        now = time.perf_counter()
        if self.live and now - self.last_draw > 0.1:
            self.last_draw = now
            self._draw(self.epoch + (batch + 1) / self.steps, logs)

    def epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if self.live:
            self._draw(epoch + 1, logs)
        else:
            took = time.perf_counter() - self.epoch_start
            print(f"epoch {epoch + 1}/{self.epochs} {_metrics(logs)} ({took:.1f}s)",
                  file=self.stream, flush=True)

    def train_end(self) -> None:
        if self.live:
            print(file=self.stream, flush=True)

    def _draw(self, done: float, logs: dict[str, Any]) -> None:
        elapsed = time.perf_counter() - self.start
        frac = min(done / self.epochs, 1.0)
        since = done - self.initial_epoch
        eta = elapsed * max(self.epochs - done, 0.0) / since if since > 0 else 0.0
        width = 24
        fill = int(width * frac)
        bar = "=" * fill + (">" if fill < width else "") + " " * (width - fill - 1)
        line = (f"\repoch {self.epoch + 1}/{self.epochs} [{bar}] "
                f"{frac:4.0%} {_metrics(logs)} elapsed {_clock(elapsed)} ETA {_clock(eta)}")
        self.stream.write(line + "\033[K")
        self.stream.flush()

"""The run directory: what a training run leaves behind, and how it is read back.

A run directory holds the resolved config, the model, the preprocessing state, history,
metrics, reports, plots and a manifest. Every file is written through
``seqclf.outputs`` (atomically: a temporary file, then a rename; the mode a plain
``open()`` gives), an ``INCOMPLETE`` marker exists from creation until the manifest is
in place, and readers refuse a directory that has the marker or lacks the manifest, so
a crash can never leave a run that looks complete.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqclf import outputs
from seqclf.config import Config, read_yaml_mapping, validate_config
from seqclf.models import registry
from seqclf.data import Preprocessor
from seqclf.errors import SeqclfError

CONFIG = "config.yaml"
MODEL = "model.keras"
PREPROCESSING = "preprocessing.json"
HISTORY = "history.csv"
METRICS = "metrics.json"
REPORT = "classification_report.txt"
CONFUSION_PLOT = "confusion_matrix.png"
CURVES_PLOT = "training_curves.png"
RELIABILITY_PLOT = "reliability.png"
PR_PLOT = "precision_recall.png"
# The binary decision threshold chosen at training (absent: the most probable class).
DECISION = "decision.json"
TENSORBOARD = "tensorboard"
BACKUP = "backup"
MANIFEST = "manifest.json"
INCOMPLETE = "INCOMPLETE"
# Figures.finish: how long the forked copies may still take (seconds; a run's figures
# take about one): then they are ended and their figures made here
FIGURE_CHILD_SECONDS = 120.0


SUMMARY = "summary.json"
SUMMARY_MD = "summary.md"


def create_run_dir(output_dir: str | Path, name: str, stamp: bool = True) -> Path:
    """Make a new, empty ``<output_dir>/<name>-<timestamp>`` (never reusing one).

    With ``stamp=False`` the directory is ``<output_dir>/<name>`` exactly, and it is an
    error if it exists.
    """
    output_dir = Path(output_dir)
    if not name or name in (".", "..") or any(c in name for c in "/\\\0"):
        raise SeqclfError(f"{output_dir}: cannot create a run directory named {name!r}: the "
                          "config's name must be a plain file name (no / or \\).")
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SeqclfError(f"{output_dir}: cannot create the output directory "
                          f"({exc.strerror}). Choose another with --output-dir.") from None
    base = f"{name}-{time.strftime('%Y%m%d-%H%M%S')}" if stamp else name
    for n in range(1, 1000):
        path = output_dir / (base if n == 1 else f"{base}-{n}")
        try:
            path.mkdir()
        except FileExistsError:
            if not stamp:
                raise SeqclfError(f"{path}: already exists; runs are never overwritten.") from None
            continue
        except OSError as exc:
            raise SeqclfError(f"{path}: cannot create the run directory ({exc.strerror}).") from None
        write_text(path / INCOMPLETE, "This run has not finished: it crashed, was stopped or "
                   "is still running. Its files are not to be trusted.\n")
        return path
    raise SeqclfError(f"{output_dir}: too many runs named {name!r} this second.")


def write_text(path: Path, text: str) -> None:
    """Write a file atomically: readers see the old file or the whole new one."""
    outputs.write_text(path, text)


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically."""
    write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


def save_model(path: Path, model: Any) -> None:
    """Save a Keras model atomically (Keras needs the ``.keras`` suffix on the temp name)."""
    from seqclf.backend import tensorflow_left_unloaded

    with tensorflow_left_unloaded():
        outputs.write_with(path, model.save, suffix=".keras")


def write_arrays(path: Path, arrays: list[Any]) -> None:
    """Save numpy arrays atomically as an ``.npz`` file (``arr_0``, ``arr_1``, ...)."""
    import numpy as np

    buffer = io.BytesIO()  # a file object: np.savez would append .npz to a name
    np.savez(buffer, *arrays)
    outputs.write_bytes(path, buffer.getvalue())


def save_figure(path: Path, figure: Any) -> None:
    """Save a matplotlib figure atomically as PNG, then free it."""
    import matplotlib.pyplot as plt

    try:
        buffer = io.BytesIO()
        figure.savefig(buffer, dpi=110, format="png")  # laid out by its maker (seqclf.report)
        outputs.write_bytes(path, buffer.getvalue())
    finally:
        plt.close(figure)


class Figures:
    """Figures saved as soon as their data exists, each made in a forked copy of this
    process, so that they overlap with the rest of the command and with each other.

    Made one after the other, a run's four plots took 1-2 s of the command on 2 cores
    (matplotlib renders on one core); forked, the training curves are drawn while the
    test set is predicted and the others side by side. On Linux with more than one core
    only; elsewhere each is made here when it is given. A copy only makes and saves its
    figure, then exits without running any of this process's clean-up. ``finish`` waits
    for them: a copy that failed, or has not finished FIGURE_CHILD_SECONDS after
    ``finish`` began (a lock some other thread held at the fork, say), is ended and its
    figure made here, so an error surfaces as it would without the copies and nothing
    waits forever. Leaving the ``with`` block unfinished (an error) ends the copies.
    """

    def __init__(self) -> None:
        from seqclf.backend import cpu_cores

        self._forks = sys.platform == "linux" and cpu_cores() >= 2
        self._copies: list[tuple[int, Path, Callable[[], Any]]] = []
        if self._forks:
            _draw_text()

    def __enter__(self) -> Figures:
        return self

    def __exit__(self, *exc: object) -> None:
        import signal

        for pid, _, _ in self._copies:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        self._copies = []

    def save(self, path: Path, make: Callable[[], Any]) -> None:
        """Save the figure ``make()`` returns at ``path`` (none when it returns None)."""
        import warnings

        if not self._forks:
            _save_made(path, make)
            return
        sys.stdout.flush()
        sys.stderr.flush()
        with warnings.catch_warnings():
            # JAX warns at every fork of a process that loaded it; the copy runs no JAX,
            # and a copy that hangs is ended in finish().
            warnings.filterwarnings("ignore", r"os\.fork\(\) was called", RuntimeWarning)
            pid = os.fork()
        if pid == 0:
            code = 1
            try:
                _save_made(path, make)
                code = 0
            finally:
                os._exit(code)  # no exception, exit handler or buffer of the parent's runs here
        self._copies.append((pid, path, make))

    def finish(self) -> None:
        """Wait for every figure; make here the ones whose copy failed or hung."""
        deadline = time.monotonic() + FIGURE_CHILD_SECONDS
        failed = [(path, make) for pid, path, make in self._copies
                  if os.waitstatus_to_exitcode(_reap(pid, deadline)) != 0]
        self._copies = []
        for path, make in failed:
            _save_made(path, make)


def _draw_text() -> None:
    """Draw a text once, in this process: the font, its glyph caches and the renderer are
    then loaded in every copy forked from it, instead of in each (0.05-0.1 s of CPU a
    copy, 10 ms here). pyplot's backend is left as it is (the caller's, in a notebook)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(1, 1))
    figure.text(0.5, 0.5, "0.1")
    FigureCanvasAgg(figure).draw()


def _save_made(path: Path, make: Callable[[], Any]) -> None:
    figure = make()
    if figure is not None:
        save_figure(path, figure)


def _reap(pid: int, deadline: float) -> int:
    """The wait status of child ``pid``, killed first if it has not exited by ``deadline``
    (``time.monotonic()``)."""
    import signal

    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            return os.waitpid(pid, 0)[1]
        time.sleep(0.005)


check_writable = outputs.check_writable


def finish(run_dir: Path, manifest: dict[str, Any], name: str = MANIFEST) -> None:
    """Mark a run (or a group of runs) complete: manifest first, then drop the marker."""
    write_json(run_dir / name, {**manifest, "status": "complete"})
    (run_dir / INCOMPLETE).unlink()


@dataclass
class Run:
    """A finished run, read back from its directory."""

    path: Path
    config: Config
    preprocessor: Preprocessor
    manifest: dict[str, Any]

    @property
    def decision(self) -> dict[str, Any] | None:
        """The run's binary decision threshold (``positive_class``, ``threshold``,
        ``rule``, ``validation`` scores), or None: labels are the most probable class."""
        if not (self.path / DECISION).exists():
            return None
        record = _read_json(self.path, DECISION)
        if not isinstance(record.get("threshold"), (int, float)):
            raise _damaged(self.path, DECISION, "no numeric 'threshold'")
        return record

    def load_model(self) -> Any:
        """Load the saved Keras model (imports the backend)."""
        from seqclf.backend import keras, tensorflow_left_unloaded

        if not (self.path / MODEL).is_file():
            raise SeqclfError(f"{self.path / MODEL}: is missing from the run directory. Train "
                              "the run again.")
        k = keras(self.config.training.backend)
        registry.load_layers()  # seqclf's custom layers, so the model's resolve

        try:
            # safe_mode: a model file may not run arbitrary code (Lambda layers, pickles).
            with tensorflow_left_unloaded():
                return k.saving.load_model(self.path / MODEL, compile=False, safe_mode=True)
        except Exception as exc:  # Keras raises many types for a damaged archive
            if "safe_mode" in str(exc):
                raise SeqclfError(f"{self.path / MODEL}: refused: it contains code (e.g. a Lambda "
                                  "layer) that loading would run. seqclf never writes such "
                                  "models; use one trained by seqclf.") from None
            raise SeqclfError(f"{self.path / MODEL}: cannot be loaded ({type(exc).__name__}). "
                              "The file is damaged; train the run again.") from None


def open_run(path: str | Path) -> Run:
    """Read a finished run directory, refusing anything that is not one.

    Raises:
        SeqclfError: Not a directory, not a seqclf run, unfinished, or damaged files.
    """
    path = Path(path)
    if path.is_file():
        raise SeqclfError(f"{path}: is a file, not a run directory. Pass the directory "
                          "`seqclf train` printed.")
    if not path.is_dir():
        raise SeqclfError(f"{path}: run directory not found. Pass the directory "
                          "`seqclf train` printed.")
    if (path / INCOMPLETE).exists():
        raise SeqclfError(f"{path}: this run did not finish (it has an {INCOMPLETE} marker). "
                          "Train it again.")
    if not (path / MANIFEST).exists():
        if (path / SUMMARY).exists():
            raise SeqclfError(f"{path}: is a group of repeated runs; pass one of its seed-N "
                              "directories.")
        raise SeqclfError(f"{path}: is not a seqclf run directory (no {MANIFEST}).")
    manifest = _read_json(path, MANIFEST)
    state = _read_json(path, PREPROCESSING)
    try:
        prep = Preprocessor(**state)
    except TypeError as exc:
        raise _damaged(path, PREPROCESSING, exc) from None
    config = validate_config(read_yaml_mapping(path / CONFIG), where=str(path / CONFIG))
    return Run(path=path, config=config, preprocessor=prep, manifest=manifest)


def _damaged(run_dir: Path, name: str, why: Any) -> SeqclfError:
    return SeqclfError(f"{run_dir}: run files are missing or damaged ({name}: "
                       f"{' '.join(str(why).split())}). Train the run again.")


def _read_json(run_dir: Path, name: str) -> dict[str, Any]:
    """A run file holding a JSON object; anything else is a damaged run."""
    try:
        obj = json.loads((run_dir / name).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _damaged(run_dir, name, "missing") from None
    except (OSError, ValueError) as exc:
        raise _damaged(run_dir, name, exc) from None
    if not isinstance(obj, dict):
        raise _damaged(run_dir, name, f"a JSON {type(obj).__name__}, not an object")
    return obj

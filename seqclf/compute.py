"""The compute plan: how a run computes, with every ``auto`` decided in one place.

``plan()`` is a pure function of the config, the machine (Keras backend, visible GPUs,
CPU cores) and the training work ahead (``workload``: batch-steps, and whether this
machine's compile cache holds the model): XLA, batches per compiled call, TensorFlow's
threads per operation, and why the cuDNN kernel would or would not run. ``seqclf check``
and ``seqclf train`` print its line, the run's manifest records it (``compute``), and
``setup()`` applies it to the framework. The measurements behind each ``auto`` rule are
in docs/results/performance.md (``benchmarks/performance.py``); the rules name what they
were measured on.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seqclf.config import Config, single_step_only
from seqclf.errors import SeqclfError, must_be
from seqclf.models import registry

if TYPE_CHECKING:
    from seqclf.data import Preprocessor

# training.jit_compile: auto on TensorFlow without a GPU: XLA for a plain recurrent stack
# of at most XLA_MAX_UNITS units per layer, on one device, when the run's training work
# pays for the compile. XLA made the small stacks' batches faster on a CPU (about 0.2 ms
# less per layer and step of a batch of 50: LSTM(50) on 49 steps, 24 -> 13 ms a batch) and
# larger ones slower; its compile costs 4-6 s more than TensorFlow's own tracing the
# first time on a 2-core machine, and about 1-2 s when the compiled program is in the
# persistent cache (backend.cache_dir). The work is counted in batch-steps (epochs x
# batches per epoch x steps per sequence); XLA when there are at least this many:
XLA_MAX_UNITS = 64
XLA_MIN_BATCH_STEPS = 20_000
XLA_MIN_BATCH_STEPS_COMPILED = 5_000  # when this machine compiled the model before
# training.steps_per_execution: auto: this many batches per compiled call on JAX and on
# TensorFlow with XLA (faster per epoch, bit-identical losses); 1 on TensorFlow without
# XLA (no gain measured), and where Keras or seqclf's loop runs one batch per call.
STEPS_PER_EXECUTION_AUTO = 32
# training.batch_parts: auto: on TensorFlow with XLA on a CPU-only machine of at least
# this many cores, each batch in this many parts trained side by side (seqclf.split_step;
# a fourth less time per epoch for the tutorial's stacked LSTM on 2 cores), when every
# part gets at least BATCH_PARTS_MIN_ROWS rows; threads per op are then TensorFlow's
# default (the parts run on one core each). Measured on 2 cores
# (docs/results/cpu-training-step.md); more parts and larger machines are unmeasured.
BATCH_PARTS_AUTO = 2
BATCH_PARTS_MIN_ROWS = 16
# training.intra_op_threads: auto: one thread per TensorFlow op on a CPU-only machine of
# at most this many cores (the per-op thread pools contend there), unless batches train
# in parts; elsewhere TensorFlow's default. Larger machines and GPUs are unmeasured.
SINGLE_THREAD_MAX_CORES = 2


@dataclass(frozen=True)
class Work:
    """What a run will train: the ``auto`` rules weigh compile costs against it.

    Attributes:
        batch_steps: Epochs x training batches per epoch x steps per sequence.
        compiled_before: This machine's compile cache holds the model (a run with the
            same model, input shape and batch size compiled it with XLA before).
    """

    batch_steps: int
    compiled_before: bool = False


@dataclass(frozen=True)
class Plan:
    """How a run computes.

    Attributes:
        backend: The Keras backend.
        gpus: GPUs the run may use (0 with ``training.device: cpu``).
        cores: CPU cores the process may run on.
        jit_compile: XLA: True, False, or "auto" (Keras's own choice; ``resolved``
            replaces it with what the compiled model does).
        steps_per_execution: Batches per compiled call.
        batch_parts: Parts each training batch is split into, trained side by side (1:
            whole batches; see ``seqclf.split_step``).
        intra_op_threads: TensorFlow's threads per operation to set; None: its default.
        cudnn_reasons: Why the cuDNN kernel would not run on a GPU (empty: it would).
        work: The training work the ``auto`` rules weighed (None: not known, e.g. no data).
    """

    backend: str
    gpus: int
    cores: int
    jit_compile: bool | str
    steps_per_execution: int
    intra_op_threads: int | None
    cudnn_reasons: tuple[str, ...]
    work: Work | None = None
    batch_parts: int = 1

    @property
    def device(self) -> str:
        return "GPU" if self.gpus else "CPU"

    def cudnn_line(self) -> str:
        """The line seqclf prints about the cuDNN kernel: yes, no (with reasons), or no GPU."""
        if not self.gpus:
            return "cuDNN kernel: no GPU"
        if not self.cudnn_reasons:
            return "cuDNN kernel: yes"
        return "cuDNN kernel: no: " + "; ".join(self.cudnn_reasons)

    def line(self) -> str:
        """The plan for the user, e.g. ``compute: tensorflow on CPU, XLA, 32 batches per
        call, 1 thread per op``."""
        xla = {True: "XLA", False: "no XLA"}.get(self.jit_compile, "XLA as Keras chooses")
        parts = [f"{self.backend} on {self.device}", xla]
        if self.steps_per_execution > 1:
            parts.append(f"{self.steps_per_execution} batches per call")
        if self.batch_parts > 1:
            parts.append(f"each batch in {self.batch_parts} parts side by side")
        if self.intra_op_threads:
            parts.append(f"{self.intra_op_threads} thread"
                         f"{'s' if self.intra_op_threads > 1 else ''} per op")
        return "compute: " + ", ".join(parts)

    def resolved(self, model: Any) -> "Plan":
        """This plan as the compiled ``model`` runs it (XLA, batches per call, parts)."""
        from seqclf import split_step

        parts = self.batch_parts if split_step.eligible(model) is None else 1
        return dataclasses.replace(self, jit_compile=model.jit_compile is True,
                                   steps_per_execution=int(model.steps_per_execution),
                                   batch_parts=parts)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "device": self.device,
                "cudnn_reasons": list(self.cudnn_reasons)}


def plan(cfg: Config, backend: str, gpus: int, cores: int, work: Work | None = None) -> Plan:
    """The compute plan of ``cfg`` on a machine with ``gpus`` GPUs and ``cores`` cores,
    the Keras backend being ``backend``, for ``work`` (see ``workload``)."""
    t = cfg.training
    gpus = 0 if t.device == "cpu" else gpus
    jit = jit_compile(cfg, backend, bool(gpus), work)
    parts = batch_parts(cfg, backend, gpus, cores, xla=jit is True)
    return Plan(backend=backend, gpus=gpus, cores=cores, jit_compile=jit,
                steps_per_execution=steps_per_execution(cfg, backend, xla=jit is True),
                intra_op_threads=intra_op_threads(t.intra_op_threads, backend, gpus, cores,
                                                  split=parts > 1),
                cudnn_reasons=tuple(cudnn_reasons(cfg, backend)), work=work,
                batch_parts=parts)


def jit_compile(cfg: Config, backend: str, gpu: bool, work: Work | None = None) -> bool | str:
    """``training.jit_compile``, with ``auto`` decided where seqclf has evidence: on
    TensorFlow without a GPU, XLA when ``work`` pays for the compile (see XLA_MAX_UNITS;
    no XLA when the work is not known). Elsewhere ``auto`` stays Keras's own choice (XLA
    on JAX; on a TensorFlow GPU Keras keeps it off under seqclf's deterministic ops)."""
    t, m = cfg.training, cfg.model
    if t.jit_compile != "auto" or backend != "tensorflow" or gpu:
        return t.jit_compile
    if work is None:
        return False
    least = XLA_MIN_BATCH_STEPS_COMPILED if work.compiled_before else XLA_MIN_BATCH_STEPS
    return (m.family == "recurrent" and max(m.layer_units()) <= XLA_MAX_UNITS
            and t.distribute == "none" and work.batch_steps >= least)


def workload(cfg: Config, prep: Preprocessor, n_train: int) -> Work:
    """The training work of ``cfg`` on ``n_train`` training sequences shaped as ``prep``
    describes, and whether this machine compiled that model before."""
    t = cfg.training
    batches = -(-n_train // t.batch_size)
    marker = _compiled_marker(cfg, prep)
    return Work(batch_steps=t.epochs * batches * prep.max_length,
                compiled_before=marker is not None and marker.exists())


def remember_compiled(p: Plan, cfg: Config, prep: Preprocessor) -> None:
    """After a fit that ran as ``p`` (resolved): when TensorFlow compiled the model with
    XLA, note it in the compile cache, so the next ``workload`` of this model finds
    ``compiled_before``."""
    marker = _compiled_marker(cfg, prep)
    if marker is None or p.backend != "tensorflow" or p.jit_compile is not True:
        return
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError:  # a read-only cache: the next run compiles as if for the first time
        pass


def _compiled_marker(cfg: Config, prep: Preprocessor) -> Path | None:
    """The file that marks the model as compiled on this machine, keyed by what the
    compiled program depends on (model, optimizer, loss, batch size, input and output
    shapes); None without a compile cache."""
    import hashlib
    import json

    from seqclf.backend import cache_dir

    folder = cache_dir("tensorflow")
    if folder is None:
        return None
    t = cfg.training
    key = {"model": cfg.model.model_dump(mode="json"),
           "optimizer": cfg.optimizer.model_dump(mode="json"),
           "training": {k: getattr(t, k) for k in ("batch_size", "loss", "steps_per_execution",
                                                 "random_crop", "mixed_precision")},
           "shape": [prep.max_length, len(prep.feature_names), len(prep.classes),
                     prep.vocab_size]}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
    return Path(folder) / "seqclf-compiled" / digest[:32]


def steps_per_execution(cfg: Config, backend: str, xla: bool) -> int:
    """``training.steps_per_execution`` with ``auto`` decided (see
    STEPS_PER_EXECUTION_AUTO).

    Raises:
        SeqclfError: More than one asked for where only one can run (the backend came
            from KERAS_BACKEND, after the config was validated).
    """
    t = cfg.training
    why = single_step_only(backend, t.distribute)
    if t.steps_per_execution != "auto":
        if why and t.steps_per_execution > 1:
            raise must_be(cfg.source, "training.steps_per_execution", f"1 or 'auto' {why}",
                          t.steps_per_execution)
        return t.steps_per_execution
    if why or (backend == "tensorflow" and not xla):
        return 1
    return STEPS_PER_EXECUTION_AUTO


def batch_parts(cfg: Config, backend: str, gpus: int, cores: int, xla: bool) -> int:
    """``training.batch_parts`` with ``auto`` decided (see BATCH_PARTS_AUTO).

    Raises:
        SeqclfError: More than one part asked for where batches train whole: another
            backend (from KERAS_BACKEND, after the config was validated) or no XLA.
    """
    t = cfg.training
    if t.batch_parts != "auto":
        if t.batch_parts > 1 and (backend != "tensorflow" or not xla):
            raise must_be(cfg.source, "training.batch_parts", "1 or 'auto' without XLA on "
                          "TensorFlow (each part is an XLA program)", t.batch_parts)
        return t.batch_parts
    whole = (backend != "tensorflow" or gpus or not xla or t.distribute != "none"
             or cores < BATCH_PARTS_AUTO
             or t.batch_size < BATCH_PARTS_AUTO * BATCH_PARTS_MIN_ROWS)
    return 1 if whole else BATCH_PARTS_AUTO


def intra_op_threads(setting: int | str | None, backend: str, gpus: int, cores: int,
                     split: bool = False) -> int | None:
    """``training.intra_op_threads``: a count as it is; ``auto`` 1 for TensorFlow on a
    CPU-only machine of at most SINGLE_THREAD_MAX_CORES cores whose batches train whole
    (not ``split`` into parts), else None (the framework's default); None as it is."""
    if setting != "auto":
        return setting
    if backend == "tensorflow" and not gpus and cores <= SINGLE_THREAD_MAX_CORES and not split:
        return 1
    return None


def cudnn_reasons(cfg: Config, backend: str = "tensorflow") -> list[str]:
    """Why Keras would not run the model's recurrent layers on the cuDNN kernel (empty:
    it would): the backend, then the family's own reasons (its ``cudnn_reasons`` hook; a
    family without one has no recurrent layers)."""
    reasons = []
    if backend != "tensorflow":
        reasons.append(f"the Keras backend is {backend!r} (seqclf's cuDNN path is TensorFlow's)")
    family_reasons = registry.hook(cfg.model.family, "cudnn_reasons")
    if family_reasons is None:
        reasons.append(f"model.family {cfg.model.family!r} has no recurrent layers")
    else:
        reasons += family_reasons(cfg.model, cfg)
    return reasons


@dataclass
class Hardware:
    """A run's compute, set up: the plan, and what setting it up found.

    Attributes:
        plan: The compute plan (threads per op as the framework then runs).
        mixed_precision: float16 compute on (a GPU and training.mixed_precision).
        tensorboard: TensorBoard logs will be written.
        strategy: The tf.distribute strategy, or None.
        warnings: Sentences for the user.
    """

    plan: Plan
    mixed_precision: bool
    tensorboard: bool
    strategy: Any
    warnings: list[str]

    @property
    def device(self) -> str:
        return self.plan.device

    @property
    def cudnn(self) -> str:
        return self.plan.cudnn_line()


def setup(cfg: Config, work: Work | None = None) -> Hardware:
    """Apply the config's compute settings to the framework (backend, device, threads,
    precision, distribution strategy) and return its plan for ``work``.

    Raises:
        SeqclfError: ``training.require_cudnn`` is set and cuDNN would not run (before any
            training); a GPU asked for and none visible; a setting the framework refuses.
    """
    import importlib.util

    from seqclf.backend import configure, cpu_cores, set_intra_op_threads, threads_per_op
    from seqclf.distributed import distribution

    t = cfg.training
    backend, gpus, warnings = configure(t.backend, t.device, t.mixed_precision, cfg.source)
    p = plan(cfg, backend, gpus, cpu_cores(), work)
    if p.intra_op_threads is not None:
        # auto keeps what already runs in this process; an explicit count must apply
        set_intra_op_threads(p.intra_op_threads, backend, cfg.source,
                             strict=t.intra_op_threads != "auto")
    # Created before any other TensorFlow op: collective ops are set up at start-up.
    strategy = distribution(t.distribute, cfg.source)
    if t.require_cudnn and p.cudnn_line() != "cuDNN kernel: yes":
        why = "; ".join(p.cudnn_reasons) if p.gpus else "there is no GPU"
        raise SeqclfError(f"{cfg.source}: training.require_cudnn is true but the cuDNN kernel "
                          f"would not be used: {why}.")
    # Keras writes TensorBoard logs through tf.summary, whatever the backend.
    wanted = t.tensorboard is True or (t.tensorboard == "auto" and backend == "tensorflow")
    tensorboard = wanted and all(importlib.util.find_spec(m) is not None
                                 for m in ("tensorflow", "tensorboard"))
    if t.tensorboard is True and not tensorboard:
        warnings.append("TensorBoard logs need the tensorflow and tensorboard packages "
                        "(Keras writes them with tf.summary); this run writes none.")
    p = dataclasses.replace(p, intra_op_threads=threads_per_op())  # what actually runs
    if p.batch_parts > 1 and t.batch_parts == "auto" and p.intra_op_threads == 1:
        # TensorFlow already runs with one thread per op in this process (an earlier
        # run's plan), where parts ran slower than whole batches
        p = dataclasses.replace(p, batch_parts=1)
    return Hardware(p, t.mixed_precision and bool(p.gpus), tensorboard, strategy, warnings)

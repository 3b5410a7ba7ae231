"""Everything that touches the deep-learning framework directly, imported lazily.

TensorFlow takes seconds to import, so nothing at module level here imports it; callers
ask for ``keras()`` when they are about to build or run a model. Keeping the framework
behind this one module is what lets ``seqclf --help`` and config checks stay instant.
"""

from __future__ import annotations

import gc
import os
import platform
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from types import ModuleType
from typing import Any

# Where compiled XLA programs are kept between processes: a directory, "" for none.
CACHE_ENV = "SEQCLF_CACHE_DIR"
XLA_CACHE_FLAG = "--tf_xla_persistent_cache_directory"


def cache_dir(backend: str) -> str | None:
    """The directory of this machine's compiled programs for ``backend``, or None when
    off (``SEQCLF_CACHE_DIR`` set empty).

    Default ``$XDG_CACHE_HOME/seqclf`` (``~/.cache/seqclf``). One subdirectory per
    backend, framework version and CPU: a compiled program is machine code for one of
    each, and a home directory may be shared by machines of different CPUs.
    """
    root = os.environ.get(CACHE_ENV)
    if root is None:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "seqclf")
    if not root:
        return None
    package = {"tensorflow": "tensorflow", "jax": "jaxlib"}.get(backend)
    if package is None:
        return None
    try:
        version = metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
    return os.path.join(root, f"{backend}-{version}-{platform.machine()}-{_cpu_digest()}")


def _cpu_digest() -> str:
    """A short digest of the CPU's model and instruction-set flags (Linux; else the
    platform's processor string)."""
    import hashlib

    text = platform.processor()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            lines = [line for line in f if line.startswith(("model name", "flags"))]
        text = "".join(sorted(set(lines)))
    except OSError:
        pass
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _use_compile_cache(backend: str) -> None:
    """Keep compiled XLA programs on disk, so a later process with the same model skips
    the compile (seconds on a CPU). TensorFlow reads its flag at start-up, so this runs
    before the import; a cache flag the user set wins."""
    if backend != "tensorflow":
        return
    flags = os.environ.get("TF_XLA_FLAGS", "")
    folder = cache_dir(backend)
    if folder is None or XLA_CACHE_FLAG in flags:
        return
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:  # a read-only home: run without the cache
        return
    os.environ["TF_XLA_FLAGS"] = f"{flags} {XLA_CACHE_FLAG}={folder}".strip()


def _jax_compile_cache() -> None:
    """JAX's persistent compilation cache in seqclf's cache directory, unless the user
    set one (JAX_COMPILATION_CACHE_DIR), keeping programs however quick to compile.

    Why every program: JAX compiles each eager operation of a model's build (the weight
    initializers: 15 programs for one LSTM) and the predict step, each well under JAX's
    default threshold of a second, yet together 2 s of every run's build. Kept, a later
    run's build of the tutorial's stacked model took 0.5-0.6 s instead of 2.0 s; the
    entries are small (18 of them, 160 KB).
    """
    import jax

    folder = cache_dir("jax")
    if folder is None or jax.config.jax_compilation_cache_dir:
        return
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return
    jax.config.update("jax_compilation_cache_dir", folder)
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def keras(backend: str = "auto") -> ModuleType:
    """Import and return Keras 3 on the given backend.

    Args:
        backend: ``tensorflow``, ``jax``, ``torch``, or ``auto``: the KERAS_BACKEND
            environment variable, else TensorFlow.

    Raises:
        SeqclfError: Keras already runs on another backend in this process (Keras picks
            its backend once, at import).
    """
    if "keras" in sys.modules:
        k = sys.modules["keras"]
        active = k.backend.backend()
        if backend not in ("auto", active):
            from seqclf.errors import SeqclfError

            raise SeqclfError(f"training.backend is {backend!r} but Keras already runs on "
                              f"{active!r} in this process. Run it in a new process.")
        return k
    if backend != "auto":
        os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    _use_compile_cache(os.environ["KERAS_BACKEND"])
    # The framework's import makes a few million long-lived objects, and Python's cyclic
    # garbage collector walked them all again and again (about 2 s of a TensorFlow import
    # on 2 cores): off for the import, then those objects are frozen out of every later
    # collection (they live as long as the process).
    collecting = gc.isenabled()
    gc.disable()
    try:
        if os.environ.get("SEQCLF_DEBUG"):
            import keras as _keras
        else:
            _keras = _import_quietly()
    finally:
        gc.freeze()
        if collecting:
            gc.enable()
    if _keras.backend.backend() == "jax":
        _jax_compile_cache()
    return _keras


def _import_quietly() -> ModuleType:
    """Import Keras with TensorFlow's C++ start-up chatter (oneDNN notes, CUDA probing on
    CPU machines) silenced: it is written to file descriptor 2 before any log level
    applies. Python exceptions still propagate; SEQCLF_DEBUG=1 shows everything."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import keras as _keras

        if _keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")  # CUDA probing logs here, once
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return _keras


def configure(backend: str, device: str, mixed_precision: bool,
              where: str = "config") -> tuple[str, int, list[str]]:
    """Pick the backend, device and precision for training.

    Args:
        backend: As for ``keras()``.
        device: ``auto`` (a GPU when there is one), ``cpu`` or ``gpu``.
        mixed_precision: Compute in float16 on a GPU (the softmax stays float32).
        where: The config file, for messages.

    Returns:
        (the Keras backend, the GPUs the run may use, warnings for the user).

    Raises:
        SeqclfError: ``gpu`` asked for and none is visible; backend already taken.
    """
    from seqclf.errors import SeqclfError

    warnings = []
    if device == "cpu" and "keras" not in sys.modules:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # hides GPUs from every backend at import
    k = keras(backend)
    found = devices()  # lists devices without starting TensorFlow's runtime
    if device == "gpu" and not found:
        raise SeqclfError(f"{where}: training.device is 'gpu' but no GPU is visible "
                          f"({k.backend.backend()} backend). Use 'auto' or 'cpu'.")
    if device == "cpu" and found:
        if k.backend.backend() != "tensorflow":
            raise SeqclfError(f"{where}: training.device is 'cpu' but the {k.backend.backend()} "
                              "backend already started on the GPU in this process. Run it in "
                              "a new process.")
        import tensorflow as tf

        tf.config.set_visible_devices([], "GPU")
        found = []
    if mixed_precision and not found:
        warnings.append(f"{where}: training.mixed_precision needs a GPU; training in float32.")
    k.mixed_precision.set_global_policy("mixed_float16" if mixed_precision and found
                                        else "float32")
    return k.backend.backend(), len(found), warnings


def cpu_cores() -> int:
    """The cores this process may run on (its CPU affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads_per_op() -> int | None:
    """TensorFlow's threads per operation in this process (None: its default, or another
    backend)."""
    if keras().backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    return tf.config.threading.get_intra_op_parallelism_threads() or None


def set_intra_op_threads(n: int, backend: str, where: str, strict: bool = True) -> None:
    """Set TensorFlow's intra-op thread count: possible only before its runtime starts.

    Args:
        strict: Refuse when TensorFlow already runs with another count; False: keep it.
    """
    from seqclf.errors import SeqclfError

    if backend != "tensorflow":
        raise SeqclfError(f"{where}: training.intra_op_threads must be 'auto' or null on the "
                          f"{backend} backend (a TensorFlow setting). Got {n} instead.")
    import tensorflow as tf

    current = tf.config.threading.get_intra_op_parallelism_threads()
    if current == n:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(n)
    except RuntimeError:
        if not strict:
            return
        now = current or "its default"
        raise SeqclfError(f"{where}: training.intra_op_threads can only be set before "
                          f"TensorFlow starts in a process, and it runs with {now} already. "
                          "Run it in a new process.") from None


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and the backend, and ask for deterministic kernels.

    With op determinism TensorFlow picks kernels that give bit-identical results for the
    same inputs and seed, so the same config and seed give the same metrics and
    predictions in another process.
    """
    k = keras()
    with tensorflow_left_unloaded():
        k.utils.set_random_seed(seed)
    if k.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


@contextmanager
def tensorflow_left_unloaded() -> Iterator[None]:
    """Keras calls on another backend that do not import TensorFlow when it is installed
    but not loaded.

    Keras checks objects against TensorFlow's types when it saves or loads a model, and
    seeds TensorFlow in ``set_random_seed``, whenever TensorFlow is installed: each
    imports it (7-10 s) on JAX or torch too, where nothing of seqclf's uses it. Inside
    this block Keras's lazy TensorFlow module reports itself unavailable; TensorBoard
    logs (``training.tensorboard: true``) import TensorFlow directly and still work.
    """
    from keras.src.utils import module_utils  # Keras's own lazy import of TensorFlow

    lazy = getattr(module_utils, "tensorflow", None)
    if (keras().backend.backend() == "tensorflow" or "tensorflow" in sys.modules
            or getattr(lazy, "module", 1) is not None or not hasattr(lazy, "_available")):
        yield
        return
    saved = lazy._available
    lazy._available = False
    try:
        yield
    finally:
        lazy._available = saved


def compile_model(model: Any, **kwargs: Any) -> None:
    """``model.compile(**kwargs)``, with ``jit_compile=True`` honoured on TensorFlow.

    Keras turns ``jit_compile=True`` off, with a warning, for a model compiled while
    TensorFlow's op determinism is on (``set_seed`` turns it on), because not every op has
    a deterministic XLA kernel on a GPU. Compiling is only bookkeeping, so the model is
    compiled with determinism briefly off and then runs with it on again: XLA on the CPU
    is deterministic (same seed, same results in another process), and the recurrent,
    dense and embedding layers seqclf builds have deterministic XLA kernels.
    """
    with _xla_allowed(kwargs.get("jit_compile") is True):
        model.compile(**kwargs)


def make_prediction_step(model: Any) -> None:
    """Make a TensorFlow ``model``'s prediction step (``predict_function``) without XLA,
    unless it is made already; ``jit_compile`` stays what the model trains with.

    One test set does not pay for an XLA compile of the forward pass (seconds on a CPU):
    TensorFlow runs it as a graph without. (JAX without jit would run it op by op.)
    """
    jit_compile, model.jit_compile = model.jit_compile, False
    model.make_predict_function()
    with _xla_allowed(jit_compile is True):  # True honoured as compile_model honours it
        model.jit_compile = jit_compile


@contextmanager
def _xla_allowed(xla: bool) -> Iterator[None]:
    """TensorFlow's op determinism off for the block when ``xla`` (Keras refuses
    ``jit_compile=True`` while it is on; see ``compile_model``)."""
    if not xla or keras().backend.backend() != "tensorflow":
        yield
        return
    from tensorflow.python.framework import config as tf_config

    if not tf_config.is_op_determinism_enabled():
        yield
        return
    tf_config.disable_op_determinism()
    try:
        yield
    finally:
        tf_config.enable_op_determinism()


def devices() -> list[dict[str, str]]:
    """The accelerators the backend sees (an empty list on a CPU-only machine)."""
    backend = keras().backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        found = []
        for dev in tf.config.list_physical_devices("GPU"):
            details = tf.config.experimental.get_device_details(dev)
            found.append({"name": dev.name, "kind": "GPU",
                          "model": str(details.get("device_name", "unknown"))})
        return found
    if backend == "torch":
        import torch

        return [{"name": f"cuda:{i}", "kind": "GPU", "model": torch.cuda.get_device_name(i)}
                for i in range(torch.cuda.device_count())]
    if backend == "jax":
        import jax

        return [{"name": str(d), "kind": d.platform.upper(), "model": getattr(d, "device_kind", "")}
                for d in jax.devices() if d.platform != "cpu"]
    return []


def versions() -> dict[str, str]:
    """Versions of Python and of the packages a run's results depend on."""
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for package in ("seqclf", "keras", "tensorflow", "numpy", "pandas", "scikit-learn"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = "not installed"
    return out


def environment() -> dict[str, Any]:
    """Versions, the active backend and the devices, for ``seqclf info`` and manifests."""
    k = keras()
    info: dict[str, Any] = {"versions": versions(), "backend": k.backend.backend()}
    info["devices"] = devices()
    info["device"] = "GPU" if info["devices"] else "CPU"
    if info["backend"] == "tensorflow":
        import tensorflow as tf

        build = tf.sysconfig.get_build_info()
        info["cuda"] = build.get("cuda_version", "none")
        info["cudnn"] = build.get("cudnn_version", "none")
    return info

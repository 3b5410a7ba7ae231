"""Training across several machines: ``training.distribute: multi_worker``.

Keras 3's ``model.fit`` does not run under ``tf.distribute.MultiWorkerMirroredStrategy``
(keras-team/keras#20585; as of Keras 3.15 / TensorFlow 2.21 it fails in its symbolic
build and again in its per-replica metric reduction). So for this mode alone seqclf runs
its own loop on TensorFlow's distribution engine: ``strategy.run`` over a distributed
``tf.data`` pipeline, gradients summed across every replica of every worker by the
optimizer, and the same Keras callbacks ``model.fit`` would drive, so history, progress,
early stopping and checkpoints behave as in a single-machine run.

The cluster comes from the standard ``TF_CONFIG`` environment variable. Every worker runs
the same ``seqclf train`` command on the same data; only the chief (task ``chief``, or
``worker`` 0 when the cluster names no chief) writes the run directory.

Nothing here imports TensorFlow at module level: ``TF_CONFIG`` is checked (and the chief
found) without it, so configuration errors come before TensorFlow's start-up.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from seqclf.errors import SeqclfError, must_be

TF_CONFIG = "TF_CONFIG"
KEY = "the TF_CONFIG environment variable"
EXAMPLE = ('JSON such as {"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
           '"task": {"type": "worker", "index": 0}}')


def cluster_spec(where: str = "config") -> dict[str, Any]:
    """Read and check ``TF_CONFIG``: who is in the cluster and which task this process is.

    Args:
        where: The config file, for messages.

    Returns:
        ``{"workers": total tasks, "task_type": ..., "task_index": ..., "chief": bool}``.

    Raises:
        SeqclfError: ``TF_CONFIG`` is unset, not JSON, or does not describe a cluster of
            ``chief``/``worker`` tasks with ``host:port`` addresses that includes this task.
    """
    raw = os.environ.get(TF_CONFIG)
    when = "when training.distribute is 'multi_worker'"
    if raw is None:
        raise SeqclfError(f"{where}: {KEY} must be {EXAMPLE} {when}. Got nothing instead.")
    if not raw.strip():
        raise must_be(where, KEY, f"{EXAMPLE} {when}", raw)
    try:
        spec = json.loads(raw)
    except json.JSONDecodeError:
        raise must_be(where, KEY, f"{EXAMPLE} (valid JSON)", raw) from None
    cluster = spec.get("cluster") if isinstance(spec, dict) else None
    if not isinstance(cluster, dict) or not cluster:
        raise must_be(where, f"{KEY}'s 'cluster'", "a mapping of task types to lists of "
                      "'host:port' addresses", cluster)
    for kind, addresses in cluster.items():
        if kind not in ("chief", "worker"):
            raise must_be(where, f"{KEY}'s cluster task type", "'chief' or 'worker' "
                          "(MultiWorkerMirroredStrategy has no parameter servers or "
                          "evaluators)", kind)
        if (not isinstance(addresses, list) or not addresses
                or not all(isinstance(a, str) and _is_address(a) for a in addresses)):
            raise must_be(where, f"{KEY}'s cluster.{kind}", "a non-empty list of "
                          "'host:port' addresses", addresses)
    if len(cluster.get("chief", [])) > 1:
        raise must_be(where, f"{KEY}'s cluster.chief", "a list of one address",
                      cluster["chief"])
    task = spec.get("task")
    kind = task.get("type") if isinstance(task, dict) else None
    if kind not in cluster:
        raise must_be(where, f"{KEY}'s task.type", "one of the cluster's task types, "
                      f"{sorted(cluster)}", kind)
    index = task.get("index")
    if not (isinstance(index, int) and not isinstance(index, bool)
            and 0 <= index < len(cluster[kind])):
        raise must_be(where, f"{KEY}'s task.index", f"an integer from 0 to "
                      f"{len(cluster[kind]) - 1} (a position in cluster.{kind})", index)
    chief = kind == "chief" or ("chief" not in cluster and index == 0)
    return {"workers": sum(len(a) for a in cluster.values()), "task_type": kind,
            "task_index": index, "chief": chief}


def _is_address(text: str) -> bool:
    host, _, port = text.rpartition(":")
    return bool(host) and port.isdigit() and 0 < int(port) < 65536


@contextlib.contextmanager
def output_dir(distribute: str, output: str | Path, where: str = "config") -> Iterator[Path]:
    """Where this process writes its run: ``output`` itself, except on a worker that is
    not the chief, which writes into a temporary directory deleted afterwards.

    The non-chief workers run the whole pipeline (they must take part in every collective
    step, and evaluating keeps the code path the same), but a second copy of the run on a
    shared file system would be a race, and on a private one an orphan.
    """
    if distribute != "multi_worker" or cluster_spec(where)["chief"]:
        yield Path(output)
        return
    scratch = tempfile.mkdtemp(prefix="seqclf-worker-")
    try:
        yield Path(scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def worker_notes(distribute: str, where: str = "config") -> list[str]:
    """What a non-chief worker tells its user at the end (nothing on the chief)."""
    if distribute != "multi_worker":
        return []
    spec = cluster_spec(where)
    if spec["chief"]:
        return []
    return [f"this process is {spec['task_type']} {spec['task_index']} of a "
            f"{spec['workers']}-worker cluster, not the chief: the chief writes the run "
            "directory, and this worker's scratch copy is deleted."]


def distribution(kind: str, where: str = "config") -> Any:
    """A tf.distribute strategy for ``training.distribute`` (None for ``none``).

    ``mirrored``: every local GPU (or every logical CPU device when there is no GPU)
    holds a replica; the batch size is the global one, split across replicas.
    ``multi_worker``: ``tf.distribute.MultiWorkerMirroredStrategy`` over the cluster that
    the ``TF_CONFIG`` environment variable describes (``strategy``).

    Raises:
        SeqclfError: Not the TensorFlow backend; ``TF_CONFIG`` missing or malformed.
    """
    if kind == "none":
        return None
    from seqclf.backend import keras

    backend = keras().backend.backend()
    if backend != "tensorflow":
        raise must_be(where, "training.distribute", f"'none' on the {backend!r} Keras backend "
                      "(it runs on TensorFlow's tf.distribute; use training.backend: "
                      "tensorflow)", kind)
    if kind == "multi_worker":
        return strategy(where)
    import tensorflow as tf

    found = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy([d.name for d in found])


def strategy(where: str = "config") -> Any:
    """A ``tf.distribute.MultiWorkerMirroredStrategy`` for the ``TF_CONFIG`` cluster.

    TensorFlow configures collective ops once per process, at start-up, so the strategy
    is created once and reused by later runs in the same process.

    Raises:
        SeqclfError: ``TF_CONFIG`` is missing or malformed (see ``cluster_spec``).
    """
    global _STRATEGY
    cluster_spec(where)
    if _STRATEGY is None:
        import tensorflow as tf

        _STRATEGY = tf.distribute.MultiWorkerMirroredStrategy()
    return _STRATEGY


_STRATEGY: Any = None


def is_multi_worker(strat: Any) -> bool:
    """Whether ``strat`` is the multi-worker strategy (which ``model.fit`` cannot drive)."""
    if strat is None:
        return False
    import tensorflow as tf

    return isinstance(strat, tf.distribute.MultiWorkerMirroredStrategy)


def workers(strat: Any) -> int:
    """How many processes (machines) train together: 1 unless multi-worker."""
    return cluster_spec()["workers"] if is_multi_worker(strat) else 1


def fit(model: Any, strat: Any, x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None,
        validation: tuple | None, epochs: int, initial_epoch: int, batch_size: int,
        shuffle: bool, seed: int, callbacks: list[Any], rebuild: Any) -> Any:
    """``model.fit`` for a multi-worker strategy: the same arguments, callbacks and logs.

    Args:
        model: A compiled Keras model built under ``strat.scope()``.
        strat: The ``MultiWorkerMirroredStrategy``.
        x, y, sample_weight: Training arrays, identical on every worker.
        validation: ``(x, y, sample_weight)`` or None.
        epochs, initial_epoch: As for ``model.fit``.
        batch_size: The global batch: each step takes ``batch_size`` sequences split
            across every replica of every worker (the data is sharded by element,
            ``AutoShardPolicy.DATA``), so the same config trains the same way on one
            machine or several.
        shuffle: Reshuffle the training data each epoch (seeded: every worker must draw
            the same order).
        seed: The shuffle seed.
        callbacks: Keras callbacks, driven as ``model.fit`` drives them.
        rebuild: Returns a fresh compiled model of the same architecture, built outside
            the strategy; the trained weights and optimizer state are copied into it.

    Returns:
        The trained model, as a plain single-device model (same weights and optimizer
        state), so that prediction, scoring and saving afterwards run on one device as
        after any other fit, with no collective steps that would need every worker.

    Raises:
        SeqclfError: ``initial_epoch`` > 0: resuming is not supported across workers.
    """
    if initial_epoch:  # train.resume refuses these runs first; this guards other callers
        raise SeqclfError("training.distribute 'multi_worker': a run cannot be resumed "
                          "(every worker would need the chief's checkpoint). Start a new run.")
    train_data = _distributed(strat, x, y, sample_weight, batch_size, shuffle, seed)
    val_data = (_distributed(strat, *validation, batch_size, False, seed)
                if validation is not None else None)
    return _loop(model, strat, train_data, val_data, math.ceil(len(x) / batch_size), epochs,
                 initial_epoch, callbacks, rebuild)


def fit_stream(model: Any, strat: Any, batches: Any, val_batches: Any, signature: Any,
               steps: int, val_steps: int, epochs: int, batch_size: int,
               callbacks: list[Any], rebuild: Any) -> Any:
    """:func:`fit` on streamed data, sharded by file: each worker reads only its own
    files (``seqclf.streaming``), so adding workers divides the reading and the memory.

    Args:
        batches: ``batches(worker, workers, per_replica_batch, epoch)`` -> an iterator
            of ``(x, y, w)`` NumPy batches of at most ``per_replica_batch`` sequences
            from that worker's files (``tf.distribute.InputContext``'s pipeline id and
            count). A worker that runs out within an epoch starts its share again (with
            the next epoch's order), so that every worker runs the same ``steps``.
        val_batches: The same for the validation part, or None.
        signature: The ``tf.TensorSpec``s of one batch ``(x, y, w)``.
        steps, val_steps: Global batches per epoch: ceil(sequences / batch_size).
        batch_size: The global batch; a multiple of the replicas in the cluster.
    """
    import tensorflow as tf

    def distributed(make: Any, n_steps: int) -> Any:
        def dataset(context: Any) -> Any:
            per_replica = context.get_per_replica_batch_size(batch_size)
            calls = iter(range(1 << 62))  # one call of the generator per epoch

            def generate() -> Iterator[Any]:
                epoch = next(calls) * 1000
                while True:
                    empty = True
                    for batch in make(context.input_pipeline_id, context.num_input_pipelines,
                                      per_replica, epoch):
                        empty = False
                        yield batch
                    if empty:
                        raise SeqclfError(f"worker {context.input_pipeline_id}: has no "
                                          "sequences in its shards to train on.")
                    epoch += 1

            data = tf.data.Dataset.from_generator(generate, output_signature=signature)
            return data.take(n_steps).prefetch(2)

        return strat.distribute_datasets_from_function(dataset)

    train_data = distributed(batches, steps)
    val_data = distributed(val_batches, val_steps) if val_batches is not None else None
    return _loop(model, strat, train_data, val_data, steps, epochs, 0, callbacks, rebuild)


def _loop(model: Any, strat: Any, train_data: Any, val_data: Any, steps: int, epochs: int,
          initial_epoch: int, callbacks: list[Any], rebuild: Any) -> Any:
    """The epochs over distributed datasets, driving the callbacks as ``model.fit``."""
    import tensorflow as tf

    from seqclf.backend import keras

    k = keras()
    train_step, test_step = _steps(k, tf, model, strat, train_data.element_spec)

    history = k.callbacks.History()
    cbs = k.callbacks.CallbackList(list(callbacks) + [history], model=model, epochs=epochs,
                                   steps=steps, verbose=0)
    model.stop_training = False
    cbs.on_train_begin()
    logs: dict[str, float] = {}
    for epoch in range(initial_epoch, epochs):
        cbs.on_epoch_begin(epoch)
        totals = None
        for step, batch in enumerate(train_data):
            cbs.on_train_batch_begin(step)
            out = train_step(batch)
            totals = out if totals is None else [a + b for a, b in zip(totals, out)]
            cbs.on_train_batch_end(step, _logs(totals))
        logs = _logs(totals)
        if val_data is not None:
            cbs.on_test_begin()
            totals = None
            for step, batch in enumerate(val_data):
                out = test_step(batch)
                totals = out if totals is None else [a + b for a, b in zip(totals, out)]
            val_logs = _logs(totals)
            cbs.on_test_end(val_logs)
            logs.update({f"val_{key}": value for key, value in val_logs.items()})
        cbs.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    cbs.on_train_end(logs)
    return _plain_copy(model, rebuild())


def _distributed(strat: Any, x: np.ndarray, y: np.ndarray, w: np.ndarray | None,
                 batch_size: int, shuffle: bool, seed: int) -> Any:
    """A distributed dataset of global batches ``(x, y, w)``, sharded by element."""
    import tensorflow as tf

    w = np.ones(len(y), dtype=np.float32) if w is None else w.astype(np.float32)
    data = tf.data.Dataset.from_tensor_slices((x, y.astype(np.int64), w))
    if shuffle:
        data = data.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    options = tf.data.Options()
    # DATA: every worker reads the same arrays and keeps its share of each global batch.
    # FILE sharding needs files, and the arrays are already in every worker's memory.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    data = data.batch(batch_size).with_options(options)
    return strat.experimental_distribute_dataset(data)


def _steps(k: Any, tf: Any, model: Any, strat: Any, spec: Any) -> tuple[Any, Any]:
    """The train and test steps: each returns global sums ``[loss, correct, count]``.

    ``spec`` is the distributed datasets' element spec, whose batch dimension is unknown:
    traced on it, a step serves every batch, the short last one included. Traced on a
    concrete batch instead, it would retrace for the last batch, and a replica's empty
    share of it (0 sequences) breaks Keras's recurrent cells at trace time.
    """
    replicas = strat.num_replicas_in_sync
    optimizer = model.optimizer
    per_example = k.losses.SparseCategoricalCrossentropy(reduction=None)

    def forward(x: Any, y: Any, w: Any, training: bool) -> tuple[Any, Any, Any, Any]:
        """This replica's share: (loss to differentiate, loss sum, correct, sequences)."""
        proba = model(x, training=training)
        losses = tf.cast(per_example(y, proba), tf.float32) * w
        # Keras's loss is the batch mean (weighted sum over the number of sequences), so
        # each replica divides its sum by the size of the whole global batch: the last
        # batch of an epoch may be short, and a replica's share of it may be empty.
        local = tf.cast(tf.shape(y)[0], tf.float32)
        count = tf.distribute.get_replica_context().all_reduce("SUM", local)
        # Regularization terms are the same on every replica; gradients are summed over
        # replicas, so each contributes 1/replicas of them, as in Keras's own train step.
        extra = (tf.add_n([tf.cast(v, tf.float32) for v in model.losses]) / replicas
                 if model.losses else 0.0)
        loss = tf.math.divide_no_nan(tf.reduce_sum(losses), count) + extra
        correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(proba, axis=-1), y), tf.float32))
        # Summed over replicas, the loss sum is (global batch loss) x (global batch size).
        return loss, tf.reduce_sum(losses) + extra * count, correct, local

    def train_replica(x: Any, y: Any, w: Any) -> tuple[Any, Any, Any]:
        with tf.GradientTape() as tape:
            loss, loss_sum, correct, local = forward(x, y, w, True)
            scaled = optimizer.scale_loss(loss)  # loss scaling under mixed precision
        grads = tape.gradient(scaled, model.trainable_variables)
        # In a replica context the Keras optimizer all-reduces (sums) the gradients
        # across every replica of every worker before the update.
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss_sum, correct, local

    def test_replica(x: Any, y: Any, w: Any) -> tuple[Any, Any, Any]:
        return forward(x, y, w, False)[1:]

    def reduced(replica_fn: Any) -> Any:
        @tf.function(input_signature=[spec])
        def step(batch: Any) -> list[Any]:
            out = strat.run(replica_fn, args=batch)
            return [strat.reduce("SUM", v, axis=None) for v in out]

        return step

    return reduced(train_replica), reduced(test_replica)


def _logs(totals: list[Any] | None) -> dict[str, float]:
    """Epoch-so-far loss and accuracy from the summed ``[loss, correct, count]``.

    The loss is the mean of the batch losses weighted by batch size, and accuracy is
    unweighted, as ``model.fit`` logs them.
    """
    if totals is None:
        return {}
    loss, correct, count = (float(v) for v in totals)
    return {"loss": loss / count, "accuracy": correct / count} if count else {}


def _plain_copy(trained: Any, plain: Any) -> Any:
    """``plain`` with the weights and optimizer state of ``trained``."""
    plain.set_weights(trained.get_weights())
    plain.optimizer.build(plain.trainable_variables)
    for target, source in zip(plain.optimizer.variables, trained.optimizer.variables):
        target.assign(np.asarray(source.numpy()))
    return plain

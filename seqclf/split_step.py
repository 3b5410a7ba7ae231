"""TensorFlow's training step with each batch split across the CPU's cores.

An XLA-compiled step of a small recurrent model runs its time loop on one core: each
time step's matrix products (a batch of 50 by 50 units) are too small to share out
between threads. Split into parts, one XLA program per part, the parts run side by side
on TensorFlow's inter-op threads, and their gradients are combined in one optimizer
update. For the tutorial's 2 x LSTM(50) on 2 CPU cores that was 0.33 s an epoch against
0.41-0.43 s for Keras's own step on one core, and 0.37-0.48 s with slow epochs of up to
0.76 s for Keras's step given both cores as threads per op
(docs/results/cpu-training-step.md).

The update is the batch's: each part's loss is Keras's loss of its rows (weighted mean
over the part), the parts' losses and gradients are averaged by their share of the
batch, so the gradient is the whole batch's up to rounding (sums in another order: a run
is reproducible on the same plan, not bit-identical to one trained unsplit). Dropout
draws differ per part: each part's seed states are offset by its index.
"""

from __future__ import annotations

from typing import Any, Callable

# A part's seed states (Keras's SeedGenerator: [seed, counter], the counter advanced at
# every draw) are offset by this much per part index: no part draws another's numbers
# within a run of fewer draws.
PART_SEED_OFFSET = 1 << 30


def eligible(model: Any) -> str | None:
    """Why ``model`` cannot train in split batches (None: it can): the step needs a
    model whose state besides its weights is random seeds (batch statistics would be a
    part's, not the batch's), without losses of its own (regularizers), compiled with
    XLA."""
    if model.jit_compile is not True:
        return "it trains without XLA"
    if any(not _is_seed_state(v) for v in model.non_trainable_variables):
        return "it has state besides its weights (e.g. batch normalization)"
    if model.losses or any(getattr(layer, "activity_regularizer", None) is not None
                           for layer in model._flatten_layers(include_self=False)):
        return "it has regularization losses"
    return None


def _is_seed_state(variable: Any) -> bool:
    return variable.path.endswith("seed_generator_state")


def install(model: Any, parts: int) -> bool:
    """Give a compiled TensorFlow ``model`` the split training step when ``parts`` > 1
    and it is ``eligible``; True when it did. ``model.fit`` then uses it (Keras makes its
    own step only while there is none; ``compile`` resets it)."""
    if parts < 2 or eligible(model) is not None:
        return False
    model.train_function = train_function(model, parts)
    return True


def train_function(model: Any, parts: int) -> Callable[[Any], Any]:
    """A ``model.train_function`` (Keras calls it with the epoch's tf.data iterator; it
    trains on up to ``model.steps_per_execution`` batches) that splits each batch into
    ``parts`` (rows as even as they go) and returns the last batch's logs, as Keras's
    does; StopIteration when the iterator is empty."""
    import tensorflow as tf

    from seqclf.backend import keras

    ops = keras().ops
    trainable, state = model.trainable_variables, model.non_trainable_variables

    @tf.function(jit_compile=True, reduce_retracing=True)
    def part_gradients(x: Any, y: Any, w: Any, weights: list[Any], seeds: list[Any],
                       index: Any) -> tuple[Any, Any, Any, list[Any]]:
        # ``index`` is a tensor, so that every part runs one compiled program
        offset = tf.stack([0, index * PART_SEED_OFFSET])
        seeds = [s + tf.cast(offset, s.dtype) for s in seeds]
        with tf.GradientTape() as tape:
            tape.watch(weights)
            y_pred, seeds = model.stateless_call(weights, seeds, x, training=True)
            # the metrics' variables as they are when traced (fit builds some first)
            metrics = [v.value for v in model.metrics_variables]
            loss, _ = model.stateless_compute_loss(weights, seeds, metrics, x=x, y=y,
                                                   y_pred=y_pred, sample_weight=w)
        return tape.gradient(loss, weights), loss, y_pred, seeds

    def average(values: list[Any], shares: list[Any]) -> Any:
        # no_nan: a part without rows (a batch smaller than the parts) has share 0 and
        # the NaN loss of an empty mean
        return tf.add_n([tf.math.multiply_no_nan(v, share) for v, share in zip(values, shares)])

    @tf.function(jit_compile=True, reduce_retracing=True)
    def update(results: list[Any], shares: list[Any], x: Any, y: Any, w: Any) -> Any:
        gradients = [average([r[0][j] for r in results], shares) for j in range(len(trainable))]
        loss = average([r[1] for r in results], shares)
        model.optimizer.apply_gradients(zip(gradients, trainable))
        # the seed states as the first part left them: advanced by one part's draws
        for variable, value in zip(state, results[0][3]):
            variable.assign(value)
        model._loss_tracker.update_state(loss, sample_weight=tf.shape(x)[0])
        y_pred = ops.concatenate([r[2] for r in results], axis=0)
        return model.compute_metrics(x, y, y_pred, w)

    @tf.function(reduce_retracing=True)
    def step(data: Any) -> Any:
        x, y, w = keras().utils.unpack_x_y_sample_weight(data)
        n = x.shape[0] if x.shape[0] is not None else tf.shape(x)[0]
        if w is None:
            w = tf.ones([n])
        sizes = [(n + parts - 1 - i) // parts for i in range(parts)]
        shares = [tf.cast(size, "float32") / tf.cast(n, "float32") for size in sizes]
        weights = [v.value for v in trainable]
        seeds = [v.value for v in state]
        results = [part_gradients(xi, yi, wi, weights, seeds, tf.constant(i))
                   for i, (xi, yi, wi) in enumerate(zip(tf.split(x, sizes), tf.split(y, sizes),
                                                        tf.split(w, sizes)))]
        return update(results, shares, x, y, w)

    def function(iterator: Any) -> Any:
        logs = None
        for _, data in zip(range(int(model.steps_per_execution)), iterator):
            logs = step(data)
        if logs is None:
            raise StopIteration
        return logs

    return function

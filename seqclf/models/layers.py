"""Registered Keras layers that carry masks, shared by the model families.

Masking through convolutions. Keras's Conv1D drops masks, so these layers carry them
explicitly and padded steps never change a prediction:

* :class:`MaskedConv1D` zeroes the masked steps of its input (what 'same' padding puts
  beyond the ends anyway) and passes the mask on, so every real step's output is the
  same whatever the padded length. Batch norm takes the mask (its batch statistics use
  real steps only); ReLU passes it on.
* :class:`MaskedMaxPooling1D` pools windows of ``pool_size`` steps and derives the
  downsampled mask: a pooled step is real when ANY of its input steps is real, and it is
  the maximum over its real steps only (the padded ones are excluded, not zeros). Windows
  are aligned to the start of the array for post padding and to its end for pre
  padding, so a real step always falls in the same window whatever the padded length.
  With post padding a sequence of L real steps becomes ceil(L / pool_size) real steps,
  still a prefix (right-padded), as cuDNN's masked LSTM kernels need.
* Global average pooling averages over real steps only (Keras's, given the mask).
* :class:`ZeroMasked` zeroes padded steps and drops the mask (before a layer that cannot
  take one, such as LSTM-FCN's dimension shuffle).

Augmentation. :class:`RandomCrop` (``training.random_crop`` < 1, any family) sits before
the Masking layer and, in training only, cuts each sequence to a random window of its
real steps, re-padded so that the mask covers exactly the window.

The layers are registered Keras serializables (package ``seqclf``), so models load with
``safe_mode=True``; ``seqclf.models.registry.load_layers()`` imports this module (and
every family's ``*_layers`` module) before a model is loaded. It imports Keras, so import
it only after the backend is chosen.
"""

from __future__ import annotations

import math
from typing import Any

from seqclf.backend import keras as _keras

keras = _keras()
ops = keras.ops


def _expand(mask: Any) -> Any:
    return ops.expand_dims(ops.cast(mask, "bool"), -1)


@keras.saving.register_keras_serializable(package="seqclf")
class MaskedConv1D(keras.layers.Conv1D):
    """A 'same'-padded, stride-1 Conv1D that zeroes masked input steps and keeps the mask."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.padding != "same" or tuple(self.strides) != (1,):
            raise ValueError("MaskedConv1D needs padding='same' and strides=1")

    def call(self, inputs: Any, mask: Any = None) -> Any:
        if mask is not None:
            inputs = ops.where(_expand(mask), inputs, ops.zeros_like(inputs))
        return super().call(inputs)

    def compute_mask(self, inputs: Any, previous_mask: Any = None) -> Any:
        return previous_mask


@keras.saving.register_keras_serializable(package="seqclf")
class MaskedMaxPooling1D(keras.layers.Layer):
    """Max pooling over windows of ``pool_size`` steps that ignores masked steps.

    Args:
        pool_size: Steps per window (also the stride).
        align: ``start`` (post padding) or ``end`` (pre padding): which end of the array
            the windows are aligned to; the other end is padded up to a whole window.
    """

    def __init__(self, pool_size: int, align: str = "start", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if align not in ("start", "end"):
            raise ValueError(f"align must be 'start' or 'end', not {align!r}")
        self.pool_size = int(pool_size)
        self.align = align

    def _windows(self, x: Any) -> Any:
        """(batch, steps, c) -> (batch, ceil(steps / pool_size), pool_size, c)."""
        steps, channels = x.shape[1], x.shape[2]
        extra = (-steps) % self.pool_size
        if extra:
            x = ops.pad(x, [[0, 0], [0, extra] if self.align == "start" else [extra, 0], [0, 0]])
        return ops.reshape(x, (-1, (steps + extra) // self.pool_size, self.pool_size, channels))

    def _real(self, inputs: Any, mask: Any) -> Any:
        """Which input steps are real, as a float (batch, steps, 1) array."""
        if mask is None:
            return ops.ones_like(inputs[..., :1], dtype="float32")
        return ops.cast(_expand(mask), "float32")

    def call(self, inputs: Any, mask: Any = None) -> Any:
        x = self._windows(inputs)
        real = self._windows(self._real(inputs, mask)) > 0  # padding added here is not real
        # stands in for masked steps: never above a real step's value, and no gradient
        low = ops.stop_gradient(ops.min(x, axis=2, keepdims=True))
        pooled = ops.max(ops.where(real, x, low), axis=2)
        return ops.where(ops.any(real, axis=2), pooled, ops.zeros_like(pooled))

    def compute_mask(self, inputs: Any, previous_mask: Any = None) -> Any:
        if previous_mask is None:
            return None
        return ops.any(self._windows(self._real(inputs, previous_mask)) > 0, axis=(2, 3))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        steps = input_shape[1]
        return (input_shape[0], None if steps is None else math.ceil(steps / self.pool_size),
                input_shape[2])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "pool_size": self.pool_size, "align": self.align}


@keras.saving.register_keras_serializable(package="seqclf")
class ZeroMasked(keras.layers.Layer):
    """Sets masked steps to zero and drops the mask (for layers that cannot take one)."""

    def call(self, inputs: Any, mask: Any = None) -> Any:
        if mask is None:
            return inputs
        return ops.where(_expand(mask), inputs, ops.zeros_like(inputs))

    def compute_mask(self, inputs: Any, previous_mask: Any = None) -> Any:
        return None


@keras.saving.register_keras_serializable(package="seqclf")
class RandomCrop(keras.layers.Layer):
    """Window slicing (Le Guennec et al., 2016): in training, each sequence is replaced by
    a random window of its real steps; in inference the layer passes its input through.

    It sits before the Masking layer and works on the padded array: the real steps (a
    prefix for post padding, a suffix for pre padding; a step is padding when every
    feature equals ``pad_value``) are cut to a window of ``ceil(fraction * length)``
    steps at a uniformly random start, moved to where the sequence's real steps start,
    and the rest is filled with ``pad_value`` again, so the mask the next layer derives
    covers exactly the window. Every batch gets new windows.

    Args:
        fraction: Share of each sequence's real steps kept, in (0, 1].
        pad_value: The value of padded steps (the preprocessor's).
        padding: ``post`` or ``pre``: where the padding is.
        seed: Seed of the window draws.
    """

    def __init__(self, fraction: float, pad_value: float, padding: str = "post",
                 seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction must be in (0, 1], not {fraction!r}")
        if padding not in ("post", "pre"):
            raise ValueError(f"padding must be 'post' or 'pre', not {padding!r}")
        self.fraction = float(fraction)
        self.pad_value = float(pad_value)
        self.padding = padding
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def call(self, inputs: Any, training: Any = None) -> Any:
        if not training or self.fraction >= 1.0:
            return inputs
        x = ops.flip(inputs, axis=1) if self.padding == "pre" else inputs  # now post padded
        steps = ops.shape(x)[1]
        position = ops.arange(steps, dtype="int32")
        real = ops.any(ops.not_equal(x, self.pad_value), axis=-1)
        # the real length is up to the last real step (a real step may equal pad_value in
        # some features, but never in all: Preprocessor.transform checks that)
        length = ops.max(ops.where(real, position[None, :] + 1, 0), axis=1)
        window = ops.maximum(1, ops.cast(ops.ceil(self.fraction * ops.cast(length, "float32")),
                                         "int32"))
        draw = keras.random.uniform(ops.shape(length), seed=self.seed_generator)
        start = ops.cast(ops.floor(draw * ops.cast(length - window + 1, "float32")), "int32")
        start = ops.minimum(start, length - window)  # draw < 1, but float rounding
        index = ops.minimum(start[:, None] + position[None, :], steps - 1)
        out = ops.take_along_axis(x, index[:, :, None], axis=1)
        keep = position[None, :] < window[:, None]
        out = ops.where(keep[:, :, None], out, ops.full_like(out, self.pad_value))
        return ops.flip(out, axis=1) if self.padding == "pre" else out

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "fraction": self.fraction, "pad_value": self.pad_value,
                "padding": self.padding, "seed": self.seed}

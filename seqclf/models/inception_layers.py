"""Registered Keras layers of the ``inception_time`` family.

:class:`MaskedSameMaxPooling1D` is the max pooling of the Inception module's fourth
branch: stride 1 and 'same' padding, so it keeps the step grid (and the mask) and needs
no window alignment, unlike the downsampling ``layers.MaskedMaxPooling1D``. Each output
step is the maximum over the real steps of its window only, so padded steps change
nothing whatever the padded length, post or pre.

The layers are registered Keras serializables (package ``seqclf``), so models load with
``safe_mode=True``; ``seqclf.models.registry.load_layers()`` imports this module before
a model is loaded. It imports Keras, so import it only after the backend is chosen.
"""

from __future__ import annotations

from typing import Any

from seqclf.backend import keras as _keras

keras = _keras()
ops = keras.ops


@keras.saving.register_keras_serializable(package="seqclf")
class MaskedSameMaxPooling1D(keras.layers.Layer):
    """Stride-1 'same' max pooling that excludes masked steps from every window.

    Windows are placed as Keras's ``MaxPooling1D(pool_size, strides=1, padding="same")``
    places them ((pool_size - 1) // 2 steps before a step, the rest after), and without a
    mask the output is that layer's. With a mask, masked steps in a window are left out
    (not read as zeros or as their values); a real step's window always holds that step,
    so its output is a maximum over real steps. Masked steps' outputs are 0. The mask
    passes on unchanged.

    Args:
        pool_size: Steps per window.
    """

    def __init__(self, pool_size: int = 3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if int(pool_size) < 1:
            raise ValueError(f"pool_size must be >= 1, not {pool_size!r}")
        self.pool_size = int(pool_size)

    def call(self, inputs: Any, mask: Any = None) -> Any:
        before = (self.pool_size - 1) // 2
        after = self.pool_size - 1 - before
        if mask is None:
            real = ops.ones_like(inputs[..., :1], dtype="bool")
        else:
            real = ops.expand_dims(ops.cast(mask, "bool"), -1)
        # Steps beyond the ends are not real: 'same' pooling leaves them out too.
        x = ops.pad(inputs, [[0, 0], [before, after], [0, 0]])
        r = ops.pad(real, [[0, 0], [before, after], [0, 0]], constant_values=False)
        out = inputs
        for offset in range(self.pool_size):
            # Window member `offset` of every step; negative ends keep the slice valid
            # when the number of steps is only known at run time.
            end = offset - self.pool_size + 1 or None
            # A masked member stands in as the step's own value, which is already in the
            # maximum: it can neither raise it nor (when every value is negative) lift
            # it to a zero fill.
            out = ops.maximum(out, ops.where(r[:, offset:end], x[:, offset:end], inputs))
        if mask is not None:
            out = ops.where(real, out, ops.zeros_like(out))
        return out

    def compute_mask(self, inputs: Any, previous_mask: Any = None) -> Any:
        return previous_mask

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "pool_size": self.pool_size}

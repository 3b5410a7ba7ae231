"""InceptionTime (Ismail Fawaz et al., 2020, "InceptionTime: Finding AlexNet for Time
Series Classification"): one network of the paper's ensemble.

``depth`` Inception modules (6 in the paper), each of them:

* a bottleneck: a 1x1 convolution to ``bottleneck_size`` channels (32), only when the
  module's input has more than one channel (so not on a univariate series), as in the
  paper's code;
* one convolution of ``filters`` (32) per ``kernel_sizes`` entry on the bottleneck's
  output: the paper's kernel_size 41 gives widths 40, 20, 10 (41 - 1, halved twice);
* beside them, on the module's input itself, max pooling (``pool_size`` 3, stride 1,
  'same') then a 1x1 convolution of ``filters``;
* the branches concatenated (filters x (len(kernel_sizes) + 1) channels, 128), batch
  norm, ReLU.

With ``use_residual`` every third module's output is added to a shortcut from the input
of the module three before (a 1x1 convolution to the same channels, then batch norm),
then ReLU; with a depth that is not a multiple of 3 the last modules have no shortcut,
as in the paper's code. Global average pooling over the real steps gives the features
for the softmax. Convolutions have no bias (batch norm follows each) and Keras's default
(Glorot-uniform) kernels, as in the paper's code.

Masking: every convolution is a ``layers.MaskedConv1D`` and the pooling branch a
``inception_layers.MaskedSameMaxPooling1D``, all stride 1 and 'same', so each real
step's output is the same whatever the padded length, post or pre; batch norm takes the
mask, concatenation and addition keep it, global average pooling averages real steps.

Differences from the paper: batch norm uses momentum 0.9 rather than Keras's 0.99 (see
``convolution.BATCH_NORM_MOMENTUM``); the paper's 1500 epochs saw the moving averages
settle either way, far fewer epochs do not. Training settings (Adam 0.001, batch 64,
1500 epochs, learning rate halved after 50 epochs without a lower training loss, down to
0.0001) and the ensemble of 5 networks are the training section's and the user's.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from seqclf.models.convolution import BATCH_NORM_MOMENTUM
from seqclf.sections import FamilyConfig, int_list

__all__ = ["Config", "features", "describe", "RESIDUAL_EVERY"]

# The paper adds a shortcut every 3 modules (its code: `d % 3 == 2`).
RESIDUAL_EVERY = 3


class Config(FamilyConfig):
    """InceptionTime; its defaults are the published settings."""

    family: Literal["inception_time"] = "inception_time"
    depth: int = Field(6, ge=1, description="Inception modules")
    filters: int = Field(32, ge=1, description="filters of each branch of a module (a "
                         "module outputs filters x (len(kernel_sizes) + 1) channels)")
    kernel_sizes: list[int] = Field([40, 20, 10], description="kernel width of each "
                                    "convolutional branch")
    bottleneck_size: int = Field(32, ge=1, description="channels of the 1x1 bottleneck "
                                 "before the convolutional branches")
    use_bottleneck: bool = Field(True, description="a bottleneck in modules whose input "
                                 "has more than one channel")
    pool_size: int = Field(3, ge=1, description="window of the max-pooling branch "
                           "(stride 1)")
    use_residual: bool = Field(True, description="a shortcut around every 3 modules")

    @field_validator("kernel_sizes", mode="before")
    @classmethod
    def _check_kernel_sizes(cls, value: Any) -> Any:
        return int_list(value)


def features(k: Any, m: Config, prep: Any, x: Any) -> Any:
    """InceptionTime's modules on the masked input ``x``, then global average pooling.

    ``prep`` is unused: stride-1 'same' layers need no alignment to the padding side.
    """
    # Keras layers, imported only now that the backend is chosen
    from seqclf.models.inception_layers import MaskedSameMaxPooling1D
    from seqclf.models.layers import MaskedConv1D

    layers = k.layers

    def module(d: int, inputs: Any) -> Any:
        name = f"inception_{d}"
        branch_input = inputs
        if m.use_bottleneck and inputs.shape[-1] > 1:
            branch_input = MaskedConv1D(m.bottleneck_size, 1, padding="same", use_bias=False,
                                        name=f"{name}_bottleneck")(inputs)
        branches = [MaskedConv1D(m.filters, width, padding="same", use_bias=False,
                                 name=f"{name}_conv_{j}")(branch_input)
                    for j, width in enumerate(m.kernel_sizes, start=1)]
        pooled = MaskedSameMaxPooling1D(m.pool_size, name=f"{name}_max_pool")(inputs)
        branches.append(MaskedConv1D(m.filters, 1, padding="same", use_bias=False,
                                     name=f"{name}_pool_conv")(pooled))
        y = layers.Concatenate(name=f"{name}_concatenate")(branches)
        y = layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, name=f"{name}_batch_norm")(y)
        return layers.Activation("relu", name=f"{name}_relu")(y)

    def shortcut(r: int, inputs: Any, out: Any) -> Any:
        name = f"residual_{r}"
        s = MaskedConv1D(out.shape[-1], 1, padding="same", use_bias=False,
                         name=f"{name}_conv")(inputs)
        s = layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, name=f"{name}_batch_norm")(s)
        y = layers.Add(name=f"{name}_add")([s, out])
        return layers.Activation("relu", name=f"{name}_relu")(y)

    residual_input = x
    for d in range(1, m.depth + 1):
        x = module(d, x)
        if m.use_residual and d % RESIDUAL_EVERY == 0:
            x = residual_input = shortcut(d // RESIDUAL_EVERY, residual_input, x)
    return layers.GlobalAveragePooling1D(name="global_average_pooling")(x)


def describe(m: Config) -> str:
    widths = "/".join(map(str, m.kernel_sizes))
    extras = [s for s, on in (("bottleneck", m.use_bottleneck), ("residual", m.use_residual))
              if on]
    return (f"InceptionTime: {m.depth} modules of {m.filters} filters x widths {widths} + "
            f"max pool" + (f" ({', '.join(extras)})" if extras else ""))

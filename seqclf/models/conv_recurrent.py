"""A convolutional front-end that downsamples long series before the recurrent stack:
per block Conv1D -> batch norm -> ReLU -> max pooling by ``conv_pool_sizes`` (1: none);
1500 steps with pools 4, 4, 4 reach the stack as 24."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from seqclf.models import convolution
from seqclf.models.recurrent import cudnn_reasons, describe as describe_stack, recurrent_stack
from seqclf.sections import DenseHead, FamilyConfig, RecurrentLayers, TokenInput

__all__ = ["Config", "features", "cudnn_reasons", "describe"]


class Config(convolution.ConvBlocks, RecurrentLayers, DenseHead, TokenInput, FamilyConfig):
    """Convolutions that shorten the series, then the recurrent stack."""

    family: Literal["conv_recurrent"] = "conv_recurrent"
    conv_filters: list[int] = Field([64, 64, 64], description="filters of each "
                                    "convolutional block")
    conv_kernel_sizes: list[int] = Field([7, 5, 3], description="kernel width of each block")
    conv_pool_sizes: list[int] | None = Field([4, 4, 4], description="max pooling after "
                                              "each block (1: none)")


def features(k: Any, m: Config, prep: Any, x: Any) -> Any:
    """A downsampling conv front-end, then the recurrent stack on the shorter sequence."""
    pooled = convolution.conv_blocks(k, m, x, m.conv_pool_sizes, convolution.align(prep))
    return recurrent_stack(k, m, pooled)


def describe(m: Config) -> str:
    return f"conv {'/'.join(map(str, m.conv_filters))} -> {describe_stack(m)}"

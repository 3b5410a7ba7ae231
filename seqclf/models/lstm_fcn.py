"""LSTM-FCN (Karim et al., 2017, "LSTM Fully Convolutional Networks for Time Series
Classification").

A fully convolutional branch (``conv_filters`` / ``conv_kernel_sizes``, by default the
paper's 128/256/128 filters of widths 8/5/3, each Conv1D -> batch norm -> ReLU, then
global average pooling) beside a recurrent branch (the ordinary stack: ``cell``,
``units``, ``bidirectional``, ...; then Dropout ``branch_dropout``, 0.8 in the paper),
concatenated before the softmax. With ``dimension_shuffle`` (the paper's default) the
recurrent branch reads the series transposed: one step per channel, each step holding the
whole series; it is fast and what the paper found best, and it ties the branch to
``data.max_length``. The paper tried 8, 64 and 128 cells per data set; ``units`` keeps
seqclf's default, 64. Not implemented: the attention variant (ALSTM-FCN).

seqclf's extension for long series, ``recurrent_input: conv_features``: the recurrent
branch reads the convolutional branch's feature sequence, max-pooled between blocks by
``conv_pool_sizes``, instead of the series (global average pooling then reads the pooled
features). The paper's branches cannot tell the order of events in a long series: global
average pooling discards position, and the shuffled LSTM gives each step of the series its
own input weight, which a few hundred series cannot fit. Batch norm uses momentum 0.9
rather than Keras's 0.99 (see ``convolution.BATCH_NORM_MOMENTUM``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from seqclf.models import convolution
from seqclf.models.recurrent import cudnn_reasons as recurrent_cudnn_reasons
from seqclf.models.recurrent import describe as describe_stack
from seqclf.models.recurrent import recurrent_stack
from seqclf.sections import DenseHead, FamilyConfig, RecurrentLayers, TokenInput, invalid


class Config(convolution.ConvBlocks, RecurrentLayers, DenseHead, TokenInput, FamilyConfig):
    """LSTM-FCN; its defaults are the published settings."""

    family: Literal["lstm_fcn"] = "lstm_fcn"
    conv_filters: list[int] = Field([128, 256, 128], description="filters of each "
                                    "convolutional block")
    conv_kernel_sizes: list[int] = Field([8, 5, 3], description="kernel width of each block")
    conv_pool_sizes: list[int] | None = Field(None, description="max pooling after each "
                                              "block (1: none); only with recurrent_input "
                                              "conv_features")
    recurrent_input: Literal["series", "conv_features"] = Field(
        "series", description="what the recurrent branch reads: the series (the paper's) "
        "or the convolutional features, pooled by conv_pool_sizes")
    dimension_shuffle: bool | None = Field(None, description="the recurrent branch reads "
                                           "the series transposed (default true with "
                                           "recurrent_input series)")
    branch_dropout: float = Field(0.8, ge=0.0, lt=1.0, description="dropout after the "
                                  "recurrent branch")

    @model_validator(mode="after")
    def _check_recurrent_input(self) -> "Config":
        if self.dimension_shuffle is None:
            # with conv_features the series is not read, so there is nothing to transpose
            self.dimension_shuffle = self.recurrent_input == "series"
        if self.recurrent_input == "conv_features" and self.dimension_shuffle:
            raise invalid("dimension_shuffle", "false when model.recurrent_input is "
                          "'conv_features' (the recurrent branch reads the convolutional "
                          "features, not the series it would transpose)", True)
        if self.recurrent_input == "series" and self.conv_pool_sizes is not None:
            raise invalid("conv_pool_sizes", "null for lstm_fcn when model.recurrent_input "
                          "is 'series' (pooling only shortens what the recurrent branch "
                          "reads; set recurrent_input: conv_features)", self.conv_pool_sizes)
        return self


def features(k: Any, m: Config, prep: Any, x: Any) -> Any:
    """LSTM-FCN features: [recurrent branch, globally pooled conv branch], concatenated."""
    from seqclf.models.layers import ZeroMasked

    layers = k.layers
    if m.recurrent_input == "conv_features":
        conv = rec = convolution.conv_blocks(k, m, x, m.conv_pool_sizes, convolution.align(prep))
    else:
        conv, rec = convolution.conv_blocks(k, m, x), x
        if m.dimension_shuffle:
            rec = ZeroMasked(name="zero_padded_steps")(rec)
            rec = layers.Permute((2, 1), name="dimension_shuffle")(rec)
    conv = layers.GlobalAveragePooling1D(name="global_average_pooling")(conv)
    rec = recurrent_stack(k, m, rec)
    if m.branch_dropout:
        rec = layers.Dropout(m.branch_dropout, name="branch_dropout")(rec)
    return layers.Concatenate(name="concatenate")([rec, conv])


def cudnn_reasons(m: Config, cfg: Any) -> list[str]:
    # the dimension shuffle drops the mask: the recurrent branch never sees one
    return recurrent_cudnn_reasons(m, cfg, masked_input=not m.dimension_shuffle)


def describe(m: Config) -> str:
    convs = "/".join(map(str, m.conv_filters))
    return f"LSTM-FCN: conv {convs} beside {describe_stack(m)}"

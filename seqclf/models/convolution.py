"""Convolutional blocks shared by the families that put convolutions before or beside a
recurrent stack (``lstm_fcn``, ``conv_recurrent``): their config keys and builder."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator, model_validator

from seqclf.sections import int_list, invalid

# Keras's default (0.99) averages the batch statistics used at inference over about 100
# batches; a small data set gives a few batches per epoch, and predictions made (e.g. on
# the validation split) before those averages settle are poor. 0.9: about 10 batches.
BATCH_NORM_MOMENTUM = 0.9


class ConvBlocks(BaseModel):
    """Conv1D -> batch norm -> ReLU blocks, one per ``conv_filters`` entry. A family
    sets its own defaults by redeclaring the fields."""

    conv_filters: list[int] = Field(description="filters of each convolutional block")
    conv_kernel_sizes: list[int] = Field(description="kernel width of each block")
    conv_pool_sizes: list[int] | None = Field(None, description="max pooling after each "
                                              "block (1: none)")

    @field_validator("conv_filters", "conv_kernel_sizes", mode="before")
    @classmethod
    def _check_conv_lists(cls, value: Any) -> Any:
        return int_list(value)

    @field_validator("conv_pool_sizes", mode="before")
    @classmethod
    def _check_pool_list(cls, value: Any) -> Any:
        return int_list(value, nullable=True)

    @model_validator(mode="after")
    def _one_per_block(self) -> "ConvBlocks":
        n = len(self.conv_filters)
        given = set(self.model_fields_set)
        for key in ("conv_kernel_sizes", "conv_pool_sizes"):
            value = getattr(self, key)
            if value is not None and len(value) != n:
                hint = ("" if key in given else
                        f"; set it too, the {self.family} default has {len(value)}")
                raise invalid(key, f"a list of {n} integers (one per model.conv_filters "
                              f"entry{hint})", value)
        return self


def align(prep: Any) -> str:
    """Where pooling windows are aligned: at the real steps' start (see
    ``layers.MaskedMaxPooling1D``)."""
    return "end" if prep.padding == "pre" else "start"


def conv_blocks(k: Any, m: ConvBlocks, x: Any, pool_sizes: list[int] | None = None,
                align: str = "start") -> Any:
    """Conv1D -> batch norm -> ReLU (-> max pooling) per ``model.conv_filters`` entry.

    He-uniform kernels, as in the LSTM-FCN paper. The mask, if any, travels along.
    """
    from seqclf.models.layers import MaskedConv1D, MaskedMaxPooling1D

    layers = k.layers
    for i, (filters, width) in enumerate(zip(m.conv_filters, m.conv_kernel_sizes), start=1):
        x = MaskedConv1D(filters, width, padding="same", kernel_initializer="he_uniform",
                         name=f"conv_{i}")(x)
        x = layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, name=f"batch_norm_{i}")(x)
        x = layers.Activation("relu", name=f"relu_{i}")(x)
        if pool_sizes and pool_sizes[i - 1] > 1:
            x = MaskedMaxPooling1D(pool_sizes[i - 1], align, name=f"pool_{i}")(x)
    return x

"""Config building blocks shared by the top-level config and the model families.

``seqclf.config`` assembles the whole config from these and from each family's own
schema (``seqclf.models.<family>.Config``), so a family module can declare its keys
without importing the config that lists the families. No TensorFlow here: names of
Keras objects are checked against static lists (a test keeps them in step with Keras).
"""

from __future__ import annotations

import copy
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, field_validator,
                      model_validator)
from pydantic_core import PydanticCustomError

ACTIVATIONS = (
    "celu", "elu", "exponential", "gelu", "glu", "hard_shrink", "hard_sigmoid", "hard_silu",
    "hard_swish", "hard_tanh", "leaky_relu", "linear", "log_sigmoid", "log_softmax", "mish",
    "relu", "relu6", "selu", "sigmoid", "silu", "soft_shrink", "softmax", "softplus",
    "softsign", "sparse_plus", "sparse_sigmoid", "sparsemax", "squareplus", "swish", "tanh",
    "tanh_shrink", "threshold",
)
INITIALIZERS = (
    "glorot_normal", "glorot_uniform", "he_normal", "he_uniform", "identity",
    "lecun_normal", "lecun_uniform", "ones", "orthogonal", "random_normal", "random_uniform",
    "truncated_normal", "variance_scaling", "zeros",
)
CONSTRAINTS = ("max_norm", "min_max_norm", "non_neg", "unit_norm")
CELLS = {"lstm": "LSTM", "gru": "GRU", "rnn": "SimpleRNN"}

# Arguments of keras.layers.LSTM/GRU/SimpleRNN that the config passes through by name.
# return_sequences/return_state are absent on purpose: seqclf manages them for stacking.
RECURRENT_LAYER_ARGS = (
    "activation", "recurrent_activation", "use_bias", "kernel_initializer",
    "recurrent_initializer", "bias_initializer", "unit_forget_bias", "kernel_regularizer",
    "recurrent_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint",
    "recurrent_constraint", "bias_constraint", "dropout", "recurrent_dropout", "seed",
    "go_backwards", "stateful", "unroll", "reset_after", "use_cudnn",
)
# Which optional arguments only some cells take (None in the config means "not used").
CELL_ONLY_ARGS = {"recurrent_activation": ("lstm", "gru"), "unit_forget_bias": ("lstm",),
                  "reset_after": ("gru",), "use_cudnn": ("lstm", "gru")}
CELL_ARG_DEFAULTS = {"recurrent_activation": "sigmoid", "unit_forget_bias": True,
                     "reset_after": True, "use_cudnn": "auto"}

# The description of the keys that go to the Keras recurrent layers as they are.
KERAS_ARG = "passed to the Keras recurrent layer (its argument of that name)"

Activation = Literal[ACTIVATIONS]
Initializer = Literal[INITIALIZERS]
Constraint = Literal[CONSTRAINTS]


def _bool_or_auto(value: Any) -> Any:
    if not (isinstance(value, bool) or value == "auto"):
        raise PydanticCustomError("constraint", "true, false or 'auto'")
    return value


# A key that is true, false or 'auto' (one error message, not the union's two)
BoolOrAuto = Annotated[Union[bool, Literal["auto"]], BeforeValidator(_bool_or_auto)]


def fraction(description: str | None = None) -> Any:
    """A field in [0, 1), default 0: a dropout or split of 1 would leave nothing."""
    return Field(0.0, ge=0.0, lt=1.0, description=description)


def invalid(key: str, constraint: str, value: Any) -> PydanticCustomError:
    """A cross-field error for a model validator; ``key`` is relative to the section
    (or a dotted path from the top when it contains a dot)."""
    return PydanticCustomError("constraint_at", "{key} must be {constraint}",
                               {"key": key, "constraint": constraint, "value": value})


def is_int(value: Any, minimum: int = 1) -> bool:
    """An int (not a bool) of at least ``minimum``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def int_list(value: Any, nullable: bool = False) -> Any:
    """Validate a non-empty list of integers >= 1 (or None when ``nullable``)."""
    if nullable and value is None:
        return value
    if not (isinstance(value, list) and value and all(map(is_int, value))):
        raise PydanticCustomError("constraint", ("null or " if nullable else "")
                                  + "a non-empty list of integers >= 1")
    return value


class Section(BaseModel):
    """Base of every config section: strict types, no unknown keys."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class Regularizer(Section):
    """Weight penalty, built as ``keras.regularizers.L1L2(l1, l2)``."""

    l1: float = Field(0.0, ge=0.0)
    l2: float = Field(0.0, ge=0.0)


class EmbeddingConfig(Section):
    """An Embedding layer for integer token inputs (token 0 is reserved for padding)."""

    input_dim: int = Field(ge=2, description="vocabulary size: tokens are 1..input_dim-1")
    output_dim: int = Field(ge=1)


# --- the model section: a family's schema is FamilyConfig plus the mixins it needs -----


class FamilyConfig(Section):
    """What every model family's config has: its name and whether padded steps are
    masked. A family module (``seqclf/models/<family>.py``) subclasses this as its
    ``Config`` with ``family: Literal["<family>"]``."""

    family: str = Field(description="the model family (seqclf/models/<family>.py)")
    masking: bool = Field(True, description="mask padded steps so they never change a "
                          "prediction (numeric input: a Masking layer; tokens: token 0)")

    def token_input(self) -> EmbeddingConfig | None:
        """The embedding for integer token input, or None (numeric input)."""
        return getattr(self, "embedding", None)

    def is_stateful(self) -> bool:
        """Whether recurrent state carries over between batches (``stateful``)."""
        return bool(getattr(self, "stateful", False))


class TokenInput(BaseModel):
    """Families that can read integer tokens through an Embedding layer."""

    embedding: EmbeddingConfig | None = Field(None, description="an Embedding layer for "
                                              "integer token input (input_dim, output_dim)")


class DenseHead(BaseModel):
    """Families with optional Dense layers between their features and the softmax."""

    head_units: list[int] = Field(default_factory=list, description="units of Dense layers "
                                  "between the features and the softmax")
    head_activation: Activation = Field("relu", description="activation of the head layers")
    head_dropout: float = fraction("dropout after each head layer")

    @field_validator("head_units", mode="before")
    @classmethod
    def _check_head_units(cls, value: Any) -> Any:
        if not (isinstance(value, list) and all(map(is_int, value))):
            raise PydanticCustomError("constraint", "a list of integers >= 1")
        return value


class RecurrentLayers(BaseModel):
    """Families with a stack of Keras recurrent layers. Keys named like Keras arguments
    go straight to the layers, with Keras's defaults."""

    cell: Literal["lstm", "gru", "rnn"] = Field("lstm", description="the recurrent layer: "
                                                "LSTM, GRU or SimpleRNN")
    units: Union[int, list[int]] = Field(64, description="units per layer; a list gives "
                                         "one layer per entry")
    depth: int | None = Field(None, ge=1, description="layers of `units` each (with an "
                              "integer units)")
    bidirectional: bool = Field(False, description="wrap each layer in Bidirectional")
    merge_mode: Literal["concat", "sum", "mul", "ave"] = Field(
        "concat", description="how Bidirectional merges the two directions")
    activation: Activation = Field("tanh", description=KERAS_ARG)
    recurrent_activation: Activation | None = Field(None, description="lstm/gru only "
                                                    "(default sigmoid)")
    use_bias: bool = Field(True, description=KERAS_ARG)
    kernel_initializer: Initializer = Field("glorot_uniform", description=KERAS_ARG)
    recurrent_initializer: Initializer = Field("orthogonal", description=KERAS_ARG)
    bias_initializer: Initializer = Field("zeros", description=KERAS_ARG)
    unit_forget_bias: bool | None = Field(None, description="lstm only (default true)")
    kernel_regularizer: Regularizer | None = Field(None, description=KERAS_ARG)
    recurrent_regularizer: Regularizer | None = Field(None, description=KERAS_ARG)
    bias_regularizer: Regularizer | None = Field(None, description=KERAS_ARG)
    activity_regularizer: Regularizer | None = Field(None, description=KERAS_ARG)
    kernel_constraint: Constraint | None = Field(None, description=KERAS_ARG)
    recurrent_constraint: Constraint | None = Field(None, description=KERAS_ARG)
    bias_constraint: Constraint | None = Field(None, description=KERAS_ARG)
    dropout: float = fraction("dropout of each layer's inputs")
    recurrent_dropout: float = fraction("dropout of the recurrent state (no cuDNN)")
    seed: int | None = Field(None, description=KERAS_ARG)
    go_backwards: bool = Field(False, description=KERAS_ARG)
    stateful: bool = Field(False, description=KERAS_ARG)
    unroll: bool = Field(False, description=KERAS_ARG)
    reset_after: bool | None = Field(None, description="gru only (default true)")
    use_cudnn: Optional[BoolOrAuto] = Field(None, description="lstm/gru only (default auto)")

    @field_validator("units", mode="before")
    @classmethod
    def _check_units(cls, value: Any) -> Any:
        if not (is_int(value) or isinstance(value, list) and value and all(map(is_int, value))):
            raise PydanticCustomError("constraint", "an integer >= 1 or a non-empty list of them")
        return value

    @model_validator(mode="after")
    def _check_cell_args(self) -> "RecurrentLayers":
        units = self.units
        if isinstance(units, list) and self.depth is not None and self.depth != len(units):
            raise invalid("depth", f"null or {len(units)} (the length of model.units) "
                          "when units is a list", self.depth)
        for key, cells in CELL_ONLY_ARGS.items():
            value = getattr(self, key)
            if self.cell in cells:
                if value is None:
                    setattr(self, key, copy.deepcopy(CELL_ARG_DEFAULTS[key]))
            elif value is not None:
                raise invalid(key, f"null for cell {self.cell!r} (only {' and '.join(cells)} "
                              f"{'take' if len(cells) > 1 else 'takes'} it)", value)
        return self

    def layer_units(self) -> list[int]:
        """The units of each recurrent layer, bottom to top."""
        if isinstance(self.units, list):
            return list(self.units)
        return [self.units] * (self.depth or 1)

    def layer_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for the Keras recurrent layer class of ``cell``."""
        return {k: getattr(self, k) for k in RECURRENT_LAYER_ARGS
                if not (k in CELL_ONLY_ARGS and self.cell not in CELL_ONLY_ARGS[k])}

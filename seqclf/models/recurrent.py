"""The plain recurrent stack: (optionally bidirectional) LSTM, GRU or SimpleRNN layers,
all but the last returning sequences. The default family, and the recurrent part of
``lstm_fcn`` and ``conv_recurrent``."""

from __future__ import annotations

from typing import Any, Literal

from seqclf.sections import CELLS, DenseHead, FamilyConfig, RecurrentLayers, TokenInput

REGULARIZER_KEYS = ("kernel_regularizer", "recurrent_regularizer", "bias_regularizer",
                    "activity_regularizer")


class Config(RecurrentLayers, DenseHead, TokenInput, FamilyConfig):
    """A recurrent stack on the (masked or embedded) input."""

    family: Literal["recurrent"] = "recurrent"


def features(k: Any, m: Config, prep: Any, x: Any) -> Any:
    return recurrent_stack(k, m, x)


def recurrent_stack(k: Any, m: RecurrentLayers, x: Any) -> Any:
    """The configured recurrent layers on ``x``; all but the last return sequences."""
    layers = k.layers
    kwargs = m.layer_kwargs()
    for key in REGULARIZER_KEYS:
        reg = kwargs[key]
        kwargs[key] = None if reg is None else k.regularizers.L1L2(l1=reg.l1, l2=reg.l2)
    cell = getattr(layers, CELLS[m.cell])
    units = m.layer_units()
    for i, n in enumerate(units):
        layer = cell(n, return_sequences=i < len(units) - 1, name=f"{m.cell}_{i + 1}", **kwargs)
        if m.bidirectional:
            layer = layers.Bidirectional(layer, merge_mode=m.merge_mode,
                                         name=f"bidirectional_{i + 1}")
        x = layer(x)
    return x


def cudnn_reasons(m: RecurrentLayers, cfg: Any, masked_input: bool = True) -> list[str]:
    """Why Keras would not run the recurrent layers on the cuDNN kernel (empty: it would).

    A pure function of the config, mirroring Keras's own conditions (which otherwise fall
    back to the generic kernel silently): LSTM or GRU, tanh activation, sigmoid recurrent
    activation, no recurrent dropout, no unrolling, biases on, GRU with reset_after, and
    masks only on right-padded input (``masked_input``: whether the layers get a mask).
    """
    reasons = []
    if m.cell == "rnn":
        reasons.append("model.cell is 'rnn' (cuDNN has LSTM and GRU kernels only)")
    if m.use_cudnn is False:
        reasons.append("model.use_cudnn is false")
    if m.activation != "tanh":
        reasons.append(f"model.activation is {m.activation!r}, not 'tanh'")
    if m.cell != "rnn" and m.recurrent_activation != "sigmoid":
        reasons.append(f"model.recurrent_activation is {m.recurrent_activation!r}, not 'sigmoid'")
    if m.recurrent_dropout:
        reasons.append(f"model.recurrent_dropout is {m.recurrent_dropout:g}, not 0")
    if m.unroll:
        reasons.append("model.unroll is true")
    if not m.use_bias:
        reasons.append("model.use_bias is false")
    if m.cell == "gru" and m.reset_after is False:
        reasons.append("model.reset_after is false")
    if m.masking and masked_input and cfg.data.padding == "pre":
        reasons.append("data.padding is 'pre' (cuDNN takes masks on right-padded input only)")
    return reasons


def describe(m: RecurrentLayers) -> str:
    """e.g. ``lstm(50) -> lstm(50)``."""
    return " -> ".join(f"{'bi' if m.bidirectional else ''}{m.cell}({u})" for u in m.layer_units())

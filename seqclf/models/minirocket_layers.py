"""The registered Keras layer of the ``minirocket`` family: the MiniRocket transform.

:class:`MiniRocketTransform` holds the transform's fitted parameters as non-trainable
weights, so they are saved in ``model.keras``: the kernels of each dilation (each
(dilation, kernel) pair's channel selection folded in as zero weights) and the biases.
Its dilations and features per dilation are static (they shape the graph) and travel in
its config. ``seqclf.models.minirocket`` builds it and fits its weights.

It is written in ``keras.ops`` only, so it runs on every Keras backend.

The layer is a registered Keras serializable (package ``seqclf``), so models load with
``safe_mode=True``; ``seqclf.models.registry.load_layers()`` imports this module before a
model is loaded. It imports Keras, so import it only after the backend is chosen.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from seqclf.backend import keras as _keras

keras = _keras()
ops = keras.ops

# seqclf.models.minirocket's too (not imported from there: that module imports this one)
KERNEL_LENGTH = 9
N_KERNELS = 84  # 9 choose 3
LOWEST = float(np.finfo(np.float32).min)
POOLINGS = ("ppv", "ppv_mipv")


@keras.saving.register_keras_serializable(package="seqclf")
class MiniRocketTransform(keras.layers.Layer):
    """MiniRocket's features: proportions of positive values (PPV) of 84 fixed kernels
    at several dilations, each against its own biases (Dempster et al., 2021), and
    optionally where those positive values lie (MIPV, from MultiRocket).

    At the j-th dilation ``d``, the input is convolved with the 84 kernels ('same', zero
    padding; a kernel sums its output over the channels it reads), and each kernel's
    output is compared with its ``features_per_dilation[j]`` biases. As in the reference
    code, kernel ``k`` has padded features when ``j + k`` is even (the PPV over every
    step) and unpadded ones otherwise (the PPV over the central steps, which the kernel
    computes without reaching past the sequence: those at least ``4 d`` steps from
    either end).

    Masking: masked steps are zeroed before the convolution (what 'same' padding puts
    beyond the ends anyway) and the PPVs count real steps only, central ones measured
    from the first and the last real step, so a sequence's features are the same
    whatever its padded length, post or pre (up to the rounding of the convolution,
    which can differ with the position in the array: it matters where an output equals
    a bias exactly, as a bias's own example's output can). A sequence with no central steps (at most
    ``8 d`` real steps) gets its padded PPVs as unpadded ones, as in the reference
    code's variable-length version, which has padded features only; one without real
    steps gets zeros.

    Normalising (``normalise``): each sequence's channels are first brought to mean 0 and
    standard deviation 1 over its real steps (a channel whose standard deviation is at
    most 1e-10 times its largest magnitude, a constant one up to rounding, becomes 0),
    so the features no longer see a sequence's level and scale.

    Pooling (``pooling``): ``ppv``, the paper's; or ``ppv_mipv``, each PPV followed (after
    all of them, in the same order) by its MIPV, the mean index of the counted steps where
    the output exceeds the bias (Tan et al., 2022, "MultiRocket"), here measured from the
    first counted step as a share of the counted steps, so it lies in [0, 1) whatever the
    length and padding; -1 where the output never exceeds the bias. PPV pools over the
    whole sequence and cannot tell which of two motifs came first; MIPV can.

    Args:
        dilations: The dilation of each group of features, ascending.
        features_per_dilation: Biases per kernel at each dilation.
        normalise: z-normalise each sequence and channel first (see above).
        pooling: ``ppv`` or ``ppv_mipv`` (see above).

    Weights (non-trainable; zeros until ``seqclf.models.minirocket.fit``):
        kernels: (dilations, 84, 9 x channels): kernel k at dilation j, its weight of
            tap i on channel c at ``i * channels + c``; 0 for the channels the pair does
            not read.
        biases: (84 x sum(features_per_dilation),): per dilation, a (biases, 84) block,
            ``[b, k]`` the b-th bias of kernel k.

    Output: (batch, 84 x sum(features_per_dilation)) float32 PPVs, ordered by dilation,
    then kernel, then bias, as in the reference code; with ``ppv_mipv`` twice as many,
    the MIPVs after the PPVs.
    """

    def __init__(self, dilations: list[int], features_per_dilation: list[int],
                 normalise: bool = False, pooling: str = "ppv", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dilations = [int(d) for d in dilations]
        self.features_per_dilation = [int(f) for f in features_per_dilation]
        self.normalise = bool(normalise)
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, not {pooling!r}")
        self.pooling = pooling
        if (not self.dilations or len(self.dilations) != len(self.features_per_dilation)
                or min(self.dilations) < 1 or min(self.features_per_dilation) < 1):
            raise ValueError("dilations and features_per_dilation must be equally long lists "
                             f"of integers >= 1, not {dilations!r} and {features_per_dilation!r}")
        self.supports_masking = True

    @property
    def n_biases(self) -> int:
        return N_KERNELS * sum(self.features_per_dilation)

    @property
    def n_features(self) -> int:
        return self.n_biases * (2 if self.pooling == "ppv_mipv" else 1)

    def build(self, input_shape: tuple) -> None:
        self.kernels = self.add_weight(
            shape=(len(self.dilations), N_KERNELS, KERNEL_LENGTH * input_shape[-1]),
            initializer="zeros", trainable=False, name="kernels")
        self.biases = self.add_weight(shape=(self.n_biases,), initializer="zeros",
                                      trainable=False, name="biases")

    def call(self, inputs: Any, mask: Any = None) -> Any:
        x = ops.cast(inputs, "float32")
        steps = x.shape[1] if x.shape[1] is not None else ops.shape(x)[1]
        if mask is None:
            real = ops.ones_like(x[..., 0], dtype="bool")
        else:
            real = ops.cast(mask, "bool")
            x = ops.where(real[..., None], x, ops.zeros_like(x))
        if self.normalise:
            x = self._z_normalise(x, real)
        # Steps last: each kernel's output is then a contiguous row to count along.
        x = ops.transpose(x, (0, 2, 1))  # (batch, channels, steps)
        reach = (KERNEL_LENGTH // 2) * max(self.dilations)
        x = ops.pad(x, [[0, 0], [0, 0], [reach, reach]])  # zeros: 'same' padding
        n_real, inner, n_inner, first, first_inner = self._regions(real, steps)
        inner, n_inner = ops.unstack(inner[:, :, None], axis=1), ops.unstack(n_inner, axis=1)
        first_inner = ops.unstack(first_inner, axis=1)
        real, n_real, first = real[:, None, :], n_real[:, None], first[:, None]
        position = ops.arange(steps, dtype="float32")
        # the weights of each dilation, split once (fewer ops to trace and dispatch)
        kernels = ops.unstack(ops.convert_to_tensor(self.kernels))
        sizes = [N_KERNELS * f for f in self.features_per_dilation]
        biases = ops.convert_to_tensor(self.biases)
        biases = ops.split(biases, np.cumsum(sizes)[:-1].tolist()) if len(sizes) > 1 else [biases]
        ppvs, mipvs = [], []
        for j, n_biases in enumerate(self.features_per_dilation):
            conv = self._convolve(x, kernels[j], self.dilations[j], steps, reach)
            padded = (j + np.arange(N_KERNELS)) % 2 == 0  # static, per kernel
            counted = ops.where(padded[None, :, None], real, inner[j])
            # Steps left out can never exceed a bias: a compare then counts real hits.
            # (The lowest float32, not -inf: ONNX converters may select by arithmetic,
            # where 0 x -inf is NaN.)
            conv = ops.where(counted, conv, ops.full_like(conv, LOWEST))
            n = ops.maximum(ops.where(padded[None, :], n_real, n_inner[j][:, None]), 1.0)
            bias = ops.unstack(ops.reshape(biases[j], (n_biases, 1, N_KERNELS, 1)))
            # One compare of the whole (batch, kernels, steps) output per bias: on a CPU
            # the fastest way in seqclf's measurements (XLA's fused loops were 3x
            # slower; broadcasting all biases at once 1.2x slower on small batches, 3x
            # on large ones, and it needs n_biases times the memory).
            above = [conv > b for b in bias]
            hits = ops.cast(ops.stack([ops.sum(ops.cast(a, "int32"), axis=-1) for a in above],
                                      axis=-1), "float32")
            ppvs.append(ops.reshape(hits / n[..., None], (-1, N_KERNELS * n_biases)))
            if self.pooling == "ppv_mipv":
                start = ops.where(padded[None, :], first, first_inner[j][:, None])
                index = ops.stack([ops.matmul(ops.cast(a, "float32"), position)
                                   for a in above], axis=-1)
                mean = index / ops.maximum(hits, 1.0) - start[..., None]
                mipv = ops.where(hits > 0, mean / n[..., None], ops.full_like(mean, -1.0))
                mipvs.append(ops.reshape(mipv, (-1, N_KERNELS * n_biases)))
        outputs = ppvs + mipvs
        return outputs[0] if len(outputs) == 1 else ops.concatenate(outputs, axis=-1)

    @staticmethod
    def _z_normalise(x: Any, real: Any) -> Any:
        """``x`` (batch, steps, channels), zero at padded steps, with each sequence's
        channels at mean 0 and standard deviation 1 over its real steps; padded steps
        stay 0. (seqclf.models.minirocket.z_normalise computes the same in NumPy.)"""
        weight = ops.cast(real, "float32")[..., None]
        n = ops.maximum(ops.sum(weight, axis=1, keepdims=True), 1.0)
        centred = (x - ops.sum(x, axis=1, keepdims=True) / n) * weight
        std = ops.sqrt(ops.sum(centred * centred, axis=1, keepdims=True) / n)
        constant = std <= 1e-10 * ops.max(ops.abs(x), axis=1, keepdims=True)
        return ops.where(constant, ops.zeros_like(centred),
                         centred / ops.where(constant, ops.ones_like(std), std))

    def _regions(self, real: Any, steps: Any) -> tuple[Any, Any, Any, Any, Any]:
        """Where the PPVs count, from ``real`` (batch, steps), for every dilation at once.

        Returns:
            (real steps per sequence (batch,); the central steps (batch, dilations,
            steps): the real ones at least 4 x dilation steps after the first real step
            and before the last, or all the real ones where there are none such; their
            number (batch, dilations); the first real step (batch,); the first central
            step (batch, dilations)), counts and steps as float32.
        """
        position = ops.arange(steps, dtype="int32")
        first = ops.min(ops.where(real, position[None, :], steps), axis=1)
        last = ops.max(ops.where(real, position[None, :], -1), axis=1)
        reach = np.array(self.dilations, dtype=np.int32) * (KERNEL_LENGTH // 2)
        at = position[None, None, :]
        inner = (real[:, None, :] & (at >= first[:, None, None] + reach[None, :, None])
                 & (at <= last[:, None, None] - reach[None, :, None]))
        n_inner = ops.sum(ops.cast(inner, "float32"), axis=-1)
        n_real = ops.sum(ops.cast(real, "float32"), axis=1)
        has_inner = n_inner > 0
        inner = ops.where(has_inner[..., None], inner, real[:, None, :])
        first = ops.cast(first, "float32")
        first_inner = ops.where(has_inner, first[:, None] + reach[None, :].astype(np.float32),
                                first[:, None])
        return (n_real, inner, ops.where(has_inner, n_inner, n_real[:, None]), first,
                first_inner)

    def _convolve(self, x: Any, kernels: Any, dilation: int, steps: Any, reach: int) -> Any:
        """The 84 ``kernels`` (84, 9 x channels) at ``dilation`` over ``x`` (batch,
        channels, steps + 2 x reach; zero-padded by ``reach`` at both ends): the 9 taps
        of every step stacked, (batch, 9 x channels, steps), times the kernels (3x
        faster than a dilated convolution op on a CPU). Returns (batch, 84, steps)."""
        skip = reach - (KERNEL_LENGTH // 2) * dilation
        taps = ops.concatenate([x[:, :, skip + i * dilation:skip + i * dilation + steps]
                                for i in range(KERNEL_LENGTH)], axis=1)
        return ops.matmul(kernels, taps)

    def compute_mask(self, inputs: Any, previous_mask: Any = None) -> Any:
        return None

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], self.n_features)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "dilations": self.dilations,
                "features_per_dilation": self.features_per_dilation,
                "normalise": self.normalise, "pooling": self.pooling}

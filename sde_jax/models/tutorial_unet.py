"""The time-dependent U-Net of Song's score-SDE tutorial (the MNIST notebook), in Flax.

Four levels (channels 32, 64, 128, 256 for 28x28 MNIST): each a bias-free 3x3 convolution (stride 1,
then 2), plus a Dense projection of the time embedding, GroupNorm and swish; the decoder mirrors it
with transposed convolutions and concatenated skips. Time enters through Gaussian Fourier features
(scale 30 in the tutorial) and one Dense layer. The tutorial divides the output by the marginal std;
here that division is `conditioning.score_from_output`, shared by every network.

`same_padding=False` reproduces the tutorial's geometry exactly (28 -> 26 -> 12 -> 5 -> 2 with
'VALID' convolutions and output padding on the way up; 28x28 inputs only). `same_padding=True`
halves the resolution per level with 'SAME' padding, for any side divisible by 2^(levels-1), e.g.
the 8x8 digits of the quickstart.
"""

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from gen_runtime.group_norm import GroupNorm
from gen_runtime.transposed_conv import transposed_conv3x3_stride2
from sde_jax.models.embeddings import GaussianFourierProjection

# Per level of the tutorial's 28x28 geometry: convolution stride, and the output padding of the
# transposed convolution that comes back to that level.
TUTORIAL_STRIDES = (1, 2, 2, 2)
TUTORIAL_OUTPUT_PADDING = (0, 1, 1, 0)


def _groups(level: int, channels: int, decoder: bool) -> int:
    """GroupNorm groups as in the tutorial: 4 at the encoder's first level, else 32 (at most one per channel)."""
    return 4 if level == 0 and not decoder else min(32, channels)


class UpConv3x3(nn.Module):
    """Bias-free 3x3 transposed convolution with stride 2 (PyTorch ConvTranspose2d semantics:
    y[2i + k] += x[i] W[k]), full output of side 2n + 2 (its last row and column are zero), computed as
    gen_runtime.transposed_conv.transposed_conv3x3_stride2 (one ordinary convolution per output phase): the same
    function and parameters as a strided transposed convolution, which XLA:CPU differentiates (an lhs-dilated
    convolution) 3-5x slower (benchmarked at 12x12x128 -> 26x26x32, batch 64).
    """

    features: int
    dtype: Any = jnp.float32  # computation dtype (the kernel is stored in float32)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        w = self.param('kernel', nn.initializers.lecun_normal(), (3, 3, x.shape[-1], self.features))
        return transposed_conv3x3_stride2(x.astype(self.dtype), w.astype(self.dtype))


class TutorialUNet(nn.Module):
    """Score network of the tutorial; returns the noise prediction (see sde_jax.conditioning)."""

    channels: Sequence[int] = (32, 64, 128, 256)
    embed_dim: int = 256
    fourier_scale: float = 30.0
    same_padding: bool = False
    # Computation dtype of convolutions and dense layers (bfloat16: mixed precision; parameters, the Fourier
    # features, GroupNorm statistics and the output stay float32).
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, label: jax.Array, train: bool = False) -> jax.Array:
        levels = len(self.channels)
        if not self.same_padding and (levels != 4 or x.shape[1:3] != (28, 28)):
            raise ValueError('the tutorial geometry (same_padding=False) needs 4 levels and 28x28 inputs, got '
                             f'{levels} levels and {x.shape[1:3]}; set model.same_padding=True')
        act = nn.swish
        embed = GaussianFourierProjection(self.embed_dim // 2, self.fourier_scale)(label)
        embed = act(nn.Dense(self.embed_dim, dtype=self.dtype)(embed))

        def time_bias(h: jax.Array) -> jax.Array:
            return h + nn.Dense(h.shape[-1], dtype=self.dtype)(embed)[:, None, None, :]

        skips = []
        h = x
        for level, ch in enumerate(self.channels):
            stride = (1 if level == 0 else 2) if self.same_padding else TUTORIAL_STRIDES[level]
            h = nn.Conv(ch, (3, 3), strides=stride, padding='SAME' if self.same_padding else 'VALID',
                        use_bias=False, dtype=self.dtype)(h)
            h = act(GroupNorm(_groups(level, ch, decoder=False), dtype=self.dtype)(time_bias(h)))
            skips.append(h)
        skips.pop()
        for level in range(levels - 1, 0, -1):
            if level < levels - 1:
                h = jnp.concatenate([h, skips.pop()], axis=-1)
            h = self._up(h, self.channels[level - 1], level)
            h = act(GroupNorm(_groups(level - 1, self.channels[level - 1], decoder=True),
                                 dtype=self.dtype)(time_bias(h)))
        h = jnp.concatenate([h, skips.pop()], axis=-1)
        # A stride-1 transposed convolution is a convolution with full padding (kernel flipped).
        padding = 'SAME' if self.same_padding else ((2, 2), (2, 2))
        return nn.Conv(x.shape[-1], (3, 3), padding=padding, dtype=self.dtype)(h).astype(jnp.float32)

    def _up(self, h: jax.Array, features: int, level: int) -> jax.Array:
        """Transposed 3x3 convolution with stride 2 from `level` to `level - 1`: side n -> 2n + 1 plus
        the tutorial's output padding, or exactly 2n (PyTorch's padding=1, output_padding=1)."""
        y = UpConv3x3(features, self.dtype)(h)
        n = h.shape[1]
        if self.same_padding:
            return y[:, 1:2 * n + 1, 1:2 * n + 1]
        side = 2 * n + 1 + TUTORIAL_OUTPUT_PADDING[level]
        return y[:, :side, :side]

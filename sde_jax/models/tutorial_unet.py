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

import flax.linen as nn
import jax
import jax.numpy as jnp

from sde_jax.models.embeddings import GaussianFourierProjection

# (kernel stride, transposed-conv extra output row) per level of the tutorial's 28x28 geometry.
TUTORIAL_STRIDES = (1, 2, 2, 2)
TUTORIAL_OUTPUT_PADDING = (0, 1, 1, 0)


def _groups(level: int, channels: int) -> int:
    return 4 if level == 0 else min(32, channels)


class TutorialUNet(nn.Module):
    """Score network of the tutorial; returns the noise prediction (see sde_jax.conditioning)."""

    channels: Sequence[int] = (32, 64, 128, 256)
    embed_dim: int = 256
    fourier_scale: float = 30.0
    same_padding: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, label: jax.Array, train: bool = False) -> jax.Array:
        levels = len(self.channels)
        if not self.same_padding and (levels != 4 or x.shape[1:3] != (28, 28)):
            raise ValueError('the tutorial geometry (same_padding=False) needs 4 levels and 28x28 inputs, got '
                             f'{levels} levels and {x.shape[1:3]}; set model.same_padding=True')
        act = nn.swish
        embed = GaussianFourierProjection(self.embed_dim // 2, self.fourier_scale)(label)
        embed = act(nn.Dense(self.embed_dim)(embed))

        def time_bias(h: jax.Array) -> jax.Array:
            return h + nn.Dense(h.shape[-1])(embed)[:, None, None, :]

        skips = []
        h = x
        for level, ch in enumerate(self.channels):
            stride = (1 if level == 0 else 2) if self.same_padding else TUTORIAL_STRIDES[level]
            h = nn.Conv(ch, (3, 3), strides=stride, padding='SAME' if self.same_padding else 'VALID',
                        use_bias=False)(h)
            h = act(nn.GroupNorm(_groups(level, ch))(time_bias(h)))
            skips.append(h)
        skips.pop()
        for level in range(levels - 1, 0, -1):
            if level < levels - 1:
                h = jnp.concatenate([h, skips.pop()], axis=-1)
            h = self._up(h, self.channels[level - 1], level)
            h = act(nn.GroupNorm(_groups(level - 1, self.channels[level - 1]))(time_bias(h)))
        h = jnp.concatenate([h, skips.pop()], axis=-1)
        padding = 'SAME' if self.same_padding else 'VALID'
        return nn.ConvTranspose(x.shape[-1], (3, 3), padding=padding, transpose_kernel=True)(h)

    def _up(self, h: jax.Array, features: int, level: int) -> jax.Array:
        """Transposed 3x3 convolution from `level` to `level - 1` (doubling the side when strided)."""
        if self.same_padding:
            return nn.ConvTranspose(features, (3, 3), strides=(2, 2), padding='SAME', use_bias=False,
                                    transpose_kernel=True)(h)
        extra = TUTORIAL_OUTPUT_PADDING[level]
        return nn.ConvTranspose(features, (3, 3), strides=(2, 2), padding=((2, 2 + extra), (2, 2 + extra)),
                                use_bias=False, transpose_kernel=True)(h)

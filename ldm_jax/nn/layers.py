"""Building blocks shared by the diffusion UNet and the VQ autoencoder (NHWC, Flax linen).

The blocks follow latent diffusion's `openaimodel.py` (UNet) and `model.py` (autoencoder), which
in turn follow DDPM (Ho et al. 2020, appendix B): GroupNorm-SiLU-conv residual blocks with an
optional time embedding, single- or multi-head self-attention over all positions, nearest-neighbour
upsampling followed by a 3x3 convolution and strided 3x3 convolutions for downsampling. Parameter
names follow diffusers' (norm1/conv1/time_emb_proj/norm2/conv2/conv_shortcut) so that converters
stay short.
"""


from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from gen_runtime.group_norm import GroupNorm

# torch's default init for conv/linear weights is kaiming-uniform with a=sqrt(5), i.e. U(+-1/sqrt(fan_in)).
torch_default_init = nn.initializers.variance_scaling(1.0 / 3.0, 'fan_in', 'uniform')


def group_norm(eps: float, name: str, groups: int = 32, dtype: Any = jnp.float32) -> GroupNorm:
    """GroupNorm with `groups` groups (32 in the originals) and the exact (two-pass) variance, as torch
    computes it; its statistics are float32 whatever `dtype` (the output's) is."""
    return GroupNorm(num_groups=groups, epsilon=eps, use_fast_variance=False, dtype=dtype, name=name)


def conv(features: int, kernel: int, name: str, stride: int = 1, padding: tuple | str = 'SAME',
         zero_init: bool = False, dtype: Any = jnp.float32) -> nn.Conv:
    """A 2-D convolution computed in `dtype` (float32 parameters); `zero_init` zeroes it, as openaimodel's
    `zero_module` does."""
    init = nn.initializers.zeros if zero_init else torch_default_init
    return nn.Conv(features, (kernel, kernel), strides=(stride, stride), padding=padding, kernel_init=init,
                   dtype=dtype, name=name)


def dense(features: int, name: str, zero_init: bool = False, dtype: Any = jnp.float32) -> nn.Dense:
    init = nn.initializers.zeros if zero_init else torch_default_init
    return nn.Dense(features, kernel_init=init, dtype=dtype, name=name)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv3x3, + time embedding, GroupNorm-SiLU-dropout-conv3x3, + skip (DDPM's ResNet block).

    With `scale_shift_norm` the embedding modulates the second norm as norm(h) * (1 + scale) + shift
    (FiLM, openaimodel's use_scale_shift_norm). Without an embedding (`emb=None`) it is the
    autoencoder's block.
    """

    out_channels: int
    dropout: float = 0.0
    norm_eps: float = 1e-5
    scale_shift_norm: bool = False
    zero_init_last: bool = True
    norm_groups: int = 32
    dtype: Any = jnp.float32  # computation dtype (parameters stay float32)

    @nn.compact
    def __call__(self, x: jax.Array, emb: jax.Array | None = None, train: bool = False) -> jax.Array:
        norm1 = group_norm(self.norm_eps, 'norm1', self.norm_groups, self.dtype)
        h = conv(self.out_channels, 3, 'conv1', dtype=self.dtype)(nn.silu(norm1(x)))
        h2 = group_norm(self.norm_eps, 'norm2', self.norm_groups, self.dtype)
        if emb is not None:
            width = 2 * self.out_channels if self.scale_shift_norm else self.out_channels
            e = dense(width, 'time_emb_proj', dtype=self.dtype)(nn.silu(emb))[:, None, None, :]
            if self.scale_shift_norm:
                scale, shift = jnp.split(e, 2, axis=-1)
                h = h2(h) * (1.0 + scale) + shift
            else:
                h = h2(h + e)
        else:
            h = h2(h)
        h = nn.Dropout(self.dropout, deterministic=not train)(nn.silu(h))
        h = conv(self.out_channels, 3, 'conv2', zero_init=self.zero_init_last, dtype=self.dtype)(h)
        if x.shape[-1] != self.out_channels:
            x = conv(self.out_channels, 1, 'conv_shortcut', dtype=self.dtype)(x)
        return x + h


class AttentionBlock(nn.Module):
    """x + proj_out(softmax(q k^T / sqrt(d)) v) over all H*W positions, after a GroupNorm.

    `qkv` is one dense layer whose outputs are [q | k | v], each laid out as (heads, head_dim).
    """

    num_heads: int = 1
    norm_eps: float = 1e-5
    zero_init_last: bool = True
    norm_groups: int = 32
    dtype: Any = jnp.float32  # computation dtype; the softmax is float32 (jax.nn.dot_product_attention's)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        b, height, width, c = x.shape
        if c % self.num_heads:
            raise ValueError(f'{c} channels do not split into {self.num_heads} attention heads')
        h = group_norm(self.norm_eps, 'norm', self.norm_groups, self.dtype)(x).reshape(b, height * width, c)
        qkv = dense(3 * c, 'qkv', dtype=self.dtype)(h).reshape(b, height * width, 3, self.num_heads,
                                                                c // self.num_heads)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        out = jax.nn.dot_product_attention(q, k, v).reshape(b, height * width, c)
        out = dense(c, 'proj_out', zero_init=self.zero_init_last, dtype=self.dtype)(out)
        return x + out.reshape(b, height, width, c)


def num_attention_heads(channels: int, num_heads: int, num_head_channels: int) -> int:
    """openaimodel's rule: a fixed head width `num_head_channels` if set (!= -1), else `num_heads` heads."""
    if num_head_channels > 0:
        if channels % num_head_channels:
            raise ValueError(f'{channels} channels are not divisible by num_head_channels={num_head_channels}')
        return channels // num_head_channels
    return num_heads


def upsample_nearest(x: jax.Array) -> jax.Array:
    """Nearest-neighbour 2x upsampling of NHWC."""
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


class Downsample(nn.Module):
    """Strided 3x3 convolution. `asymmetric` pads only bottom/right by one (the autoencoder's)."""

    channels: int
    asymmetric: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        padding = ((0, 1), (0, 1)) if self.asymmetric else ((1, 1), (1, 1))
        return conv(self.channels, 3, 'conv', stride=2, padding=padding, dtype=self.dtype)(x)


class Upsample(nn.Module):
    """Nearest-neighbour 2x upsampling, then a 3x3 convolution."""

    channels: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return conv(self.channels, 3, 'conv', dtype=self.dtype)(upsample_nearest(x))

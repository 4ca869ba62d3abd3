"""Building blocks of NCSN++ / DDPM++ (Song et al. 2021, Appendix H), NHWC.

Convolutions and dense layers use DDPM's initialisation (variance scaling, fan_avg, uniform); a
scale of 0 means 1e-10, which makes the last layer of each residual branch start near zero.
"""

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gen_runtime.group_norm import GroupNorm
from sde_jax.models import fir


def default_init(scale: float = 1.0) -> Callable:
    """DDPM's initialiser: variance scaling with fan_avg and a uniform distribution."""
    return jax.nn.initializers.variance_scaling(1e-10 if scale == 0 else scale, 'fan_avg', 'uniform')


def conv3x3(features: int, init_scale: float = 1.0, stride: int = 1, padding: str | tuple = 'SAME',
            use_bias: bool = True, dtype: Any = jnp.float32) -> nn.Conv:
    """3x3 convolution computed in `dtype` (its parameters stay float32), as every layer helper here."""
    return nn.Conv(features, (3, 3), strides=stride, padding=padding, use_bias=use_bias,
                   kernel_init=default_init(init_scale), dtype=dtype)


def conv1x1(features: int, init_scale: float = 1.0, dtype: Any = jnp.float32) -> nn.Conv:
    return nn.Conv(features, (1, 1), kernel_init=default_init(init_scale), dtype=dtype)


def nin(features: int, init_scale: float = 0.1, dtype: Any = jnp.float32) -> nn.Dense:
    """A 1x1 'network in network' layer: a dense layer over channels."""
    return nn.Dense(features, kernel_init=default_init(init_scale), dtype=dtype)


def group_norm(channels: int, dtype: Any = jnp.float32) -> GroupNorm:
    """GroupNorm whose statistics are float32 whatever `dtype` (the output's) is."""
    return GroupNorm(num_groups=min(channels // 4, 32), epsilon=1e-6, dtype=dtype)


def skip_sum(x: jax.Array, h: jax.Array, rescale: bool) -> jax.Array:
    return (x + h) / np.sqrt(2.0) if rescale else x + h


class AttnBlock(nn.Module):
    """Self-attention over all positions, with a residual connection (DDPM, Ho et al. 2020)."""

    skip_rescale: bool = True
    init_scale: float = 0.0
    dtype: Any = jnp.float32  # computation dtype; the softmax is float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        b, height, width, c = x.shape
        h = group_norm(c, self.dtype)(x)
        q, k, v = (nin(c, dtype=self.dtype)(h) for _ in range(3))
        w = jnp.einsum('bhwc,bijc->bhwij', q, k, preferred_element_type=jnp.float32) * (c ** -0.5)
        w = jax.nn.softmax(w.reshape(b, height, width, height * width), axis=-1).reshape(w.shape).astype(v.dtype)
        h = jnp.einsum('bhwij,bijc->bhwc', w, v)
        return skip_sum(x, nin(c, self.init_scale, self.dtype)(h), self.skip_rescale)


def _fir_conv_params(module: nn.Module, in_features: int, features: int) -> tuple[jax.Array, jax.Array]:
    """3x3 kernel (HWIO) and bias of a convolution fused with FIR resampling."""
    return (module.param('kernel', default_init(), (3, 3, in_features, features)),
            module.param('bias', nn.initializers.zeros, (features,)))


class Upsample(nn.Module):
    """2x upsampling: nearest + 3x3 conv, or FIR (optionally fused with a 3x3 conv)."""

    features: int
    with_conv: bool = False
    fir: bool = False
    fir_kernel: tuple[int, ...] = (1, 3, 3, 1)
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if not self.fir:
            h = fir.naive_upsample_2d(x)
            return conv3x3(self.features, dtype=self.dtype)(h) if self.with_conv else h
        if not self.with_conv:
            return fir.upsample_2d(x, self.fir_kernel)
        w, b = (v.astype(self.dtype) for v in _fir_conv_params(self, x.shape[-1], self.features))
        return fir.upsample_conv_2d(x.astype(self.dtype), w, self.fir_kernel) + b


class Downsample(nn.Module):
    """2x downsampling: strided 3x3 conv or average pooling, or FIR (optionally fused with a conv)."""

    features: int
    with_conv: bool = False
    fir: bool = False
    fir_kernel: tuple[int, ...] = (1, 3, 3, 1)
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if not self.fir:
            if self.with_conv:
                return conv3x3(self.features, stride=2, padding=((0, 1), (0, 1)), dtype=self.dtype)(x)
            return fir.naive_downsample_2d(x)
        if not self.with_conv:
            return fir.downsample_2d(x, self.fir_kernel)
        w, b = (v.astype(self.dtype) for v in _fir_conv_params(self, x.shape[-1], self.features))
        return fir.conv_downsample_2d(x.astype(self.dtype), w, self.fir_kernel) + b


class ResnetBlockDDPM(nn.Module):
    """DDPM residual block: GN-act-conv, + Dense(time), GN-act-dropout-conv, 1x1 shortcut if widths differ."""

    features: int
    dropout: float = 0.1
    skip_rescale: bool = False
    init_scale: float = 0.0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, temb: jax.Array, train: bool) -> jax.Array:
        c, dtype = x.shape[-1], self.dtype
        h = conv3x3(self.features, dtype=dtype)(nn.swish(group_norm(c, dtype)(x)))
        h = h + nn.Dense(self.features, kernel_init=default_init(), dtype=dtype)(nn.swish(temb))[:, None, None, :]
        h = nn.Dropout(self.dropout, deterministic=not train)(nn.swish(group_norm(self.features, dtype)(h)))
        h = conv3x3(self.features, self.init_scale, dtype=dtype)(h)
        if c != self.features:
            x = nin(self.features, dtype=dtype)(x)
        return skip_sum(x, h, self.skip_rescale)


class ResnetBlockBigGAN(nn.Module):
    """BigGAN-style residual block that can also resample by 2 (NCSN++ / DDPM++)."""

    features: int
    up: bool = False
    down: bool = False
    dropout: float = 0.1
    fir: bool = False
    fir_kernel: tuple[int, ...] = (1, 3, 3, 1)
    skip_rescale: bool = True
    init_scale: float = 0.0
    dtype: Any = jnp.float32

    def _resample(self, v: jax.Array) -> jax.Array:
        if self.up:
            return fir.upsample_2d(v, self.fir_kernel) if self.fir else fir.naive_upsample_2d(v)
        if self.down:
            return fir.downsample_2d(v, self.fir_kernel) if self.fir else fir.naive_downsample_2d(v)
        return v

    @nn.compact
    def __call__(self, x: jax.Array, temb: jax.Array, train: bool) -> jax.Array:
        c, dtype = x.shape[-1], self.dtype
        h = self._resample(nn.swish(group_norm(c, dtype)(x)))
        x = self._resample(x)
        h = conv3x3(self.features, dtype=dtype)(h)
        h = h + nn.Dense(self.features, kernel_init=default_init(), dtype=dtype)(nn.swish(temb))[:, None, None, :]
        h = nn.Dropout(self.dropout, deterministic=not train)(nn.swish(group_norm(self.features, dtype)(h)))
        h = conv3x3(self.features, self.init_scale, dtype=dtype)(h)
        if c != self.features or self.up or self.down:
            x = conv1x1(self.features, dtype=dtype)(x)
        return skip_sum(x, h, self.skip_rescale)


class Combine(nn.Module):
    """Merges a pyramid branch into the main branch: 1x1 conv, then sum or concatenation."""

    features: int
    method: str = 'sum'
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, pyramid: jax.Array, h: jax.Array) -> jax.Array:
        p = conv1x1(self.features, dtype=self.dtype)(pyramid)
        return jnp.concatenate([p, h], axis=-1) if self.method == 'cat' else p + h

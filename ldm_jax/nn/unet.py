"""The diffusion UNet of latent diffusion's `openaimodel.UNetModel`, and its encoder half as a classifier.

Structure (Ho et al. 2020, appendix B; Dhariwal & Nichol 2021; Rombach et al. 2022): a sinusoidal
time embedding through two dense layers (plus an optional class embedding), `num_res_blocks`
residual blocks per resolution with self-attention where the downsampling factor is in
`attention_resolutions`, a strided-conv downsample between levels, a middle block
(res-attn-res), and a mirrored decoder that concatenates the skip activations. Submodule names say
where each layer sits (`down_{level}_res_{i}`, `mid_attn`, `up_{level}_upsample`, ...).
"""

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from gen_runtime.timestep_embedding import timestep_embedding
from ldm_jax.nn.layers import (
    AttentionBlock,
    Downsample,
    ResBlock,
    Upsample,
    conv,
    dense,
    group_norm,
    num_attention_heads,
)


class _UNetTrunk(nn.Module):
    """Fields and the encoder half shared by the UNet and the noise-conditional classifier."""

    model_channels: int = 128
    channel_mult: Sequence[int] = (1, 2, 2, 2)
    num_res_blocks: int = 2
    attention_resolutions: Sequence[int] = (2,)  # downsampling factors with self-attention
    dropout: float = 0.0
    num_heads: int = 1
    num_head_channels: int = -1  # fixed head width; -1 uses num_heads heads
    scale_shift_norm: bool = False
    norm_eps: float = 1e-5
    norm_groups: int = 32
    flip_sin_to_cos: bool = True
    freq_shift: float = 0.0
    # Computation dtype of convolutions, dense layers and attention (bfloat16: mixed precision; parameters,
    # the sinusoidal time features, GroupNorm statistics and the output stay float32).
    dtype: Any = jnp.float32

    def _res(self, channels: int, name: str) -> ResBlock:
        return ResBlock(channels, self.dropout, self.norm_eps, self.scale_shift_norm, norm_groups=self.norm_groups,
                        dtype=self.dtype, name=name)

    def _attn(self, channels: int, name: str) -> AttentionBlock:
        heads = num_attention_heads(channels, self.num_heads, self.num_head_channels)
        return AttentionBlock(heads, self.norm_eps, norm_groups=self.norm_groups, dtype=self.dtype, name=name)

    def _time_embedding(self, t: jax.Array, name: str = 'time_embed') -> jax.Array:
        emb = timestep_embedding(t, self.model_channels, self.flip_sin_to_cos, self.freq_shift)
        emb = dense(4 * self.model_channels, f'{name}_0', dtype=self.dtype)(emb)
        return dense(4 * self.model_channels, f'{name}_1', dtype=self.dtype)(nn.silu(emb))

    def _encode(self, x: jax.Array, emb: jax.Array, train: bool) -> tuple[jax.Array, list[jax.Array]]:
        """conv_in, the downsampling levels and the middle block; returns (h, skip activations)."""
        h = conv(self.model_channels, 3, 'conv_in', dtype=self.dtype)(x)
        skips = [h]
        factor = 1
        for level, mult in enumerate(self.channel_mult):
            for i in range(self.num_res_blocks):
                h = self._res(mult * self.model_channels, f'down_{level}_res_{i}')(h, emb, train)
                if factor in self.attention_resolutions:
                    h = self._attn(mult * self.model_channels, f'down_{level}_attn_{i}')(h)
                skips.append(h)
            if level != len(self.channel_mult) - 1:
                h = Downsample(h.shape[-1], dtype=self.dtype, name=f'down_{level}_downsample')(h)
                skips.append(h)
                factor *= 2
        h = self._res(h.shape[-1], 'mid_res_0')(h, emb, train)
        h = self._attn(h.shape[-1], 'mid_attn')(h)
        h = self._res(h.shape[-1], 'mid_res_1')(h, emb, train)
        return h, skips

    def _check_input(self, x: jax.Array) -> None:
        levels = len(self.channel_mult) - 1
        if x.ndim != 4 or x.shape[1] % 2**levels or x.shape[2] % 2**levels:
            raise ValueError(f'the UNet takes NHWC inputs with sides divisible by {2**levels}, got {x.shape}')


class UNet(_UNetTrunk):
    """openaimodel's UNetModel: predicts eps, x0 or v (per the diffusion config) from (x_t, t[, y])."""

    out_channels: int = 3
    num_classes: int = 0  # rows of the class embedding (0: unconditional)
    # A cascade's super-resolution stage (Ho et al. 2022): channels of the upsampled low-resolution condition
    # concatenated to x_t, whose augmentation level is embedded like a second timestep (0: not a stage).
    cond_channels: int = 0

    @nn.compact
    def __call__(self, x: jax.Array, t: jax.Array, y: jax.Array | None = None, train: bool = False,
                 cond: jax.Array | None = None, level: jax.Array | None = None) -> jax.Array:
        self._check_input(x)
        emb = self._time_embedding(t)
        if self.num_classes:
            if y is None:
                raise ValueError('this UNet is class-conditional: pass labels y')
            emb = emb + nn.Embed(self.num_classes, emb.shape[-1], embedding_init=nn.initializers.normal(1.0),
                                 dtype=self.dtype, name='label_emb')(y)
        if self.cond_channels:
            want = x.shape[:-1] + (self.cond_channels,)
            if cond is None or level is None or cond.shape != want:
                raise ValueError(f'this UNet is a super-resolution stage: pass cond of shape {want} and its '
                                 'augmentation level')
            x = jnp.concatenate([x, cond.astype(x.dtype)], axis=-1)
            emb = emb + self._time_embedding(level, 'level_embed')
        h, skips = self._encode(x, emb, train)
        factor = 2 ** (len(self.channel_mult) - 1)
        for level in reversed(range(len(self.channel_mult))):
            channels = self.channel_mult[level] * self.model_channels
            for i in range(self.num_res_blocks + 1):
                h = jnp.concatenate([h, skips.pop()], axis=-1)
                h = self._res(channels, f'up_{level}_res_{i}')(h, emb, train)
                if factor in self.attention_resolutions:
                    h = self._attn(channels, f'up_{level}_attn_{i}')(h)
            if level:
                h = Upsample(channels, dtype=self.dtype, name=f'up_{level}_upsample')(h)
                factor //= 2
        h = nn.silu(group_norm(self.norm_eps, 'out_norm', self.norm_groups, self.dtype)(h))
        return conv(self.out_channels, 3, 'conv_out', zero_init=True, dtype=self.dtype)(h).astype(jnp.float32)


class EncoderUNet(_UNetTrunk):
    """openaimodel's EncoderUNetModel with adaptive pooling: logits of a noise-conditional classifier.

    Used for classifier guidance (Dhariwal & Nichol 2021, sec. 4): p_phi(y | x_t, t).
    """

    num_classes: int = 10

    @nn.compact
    def __call__(self, x: jax.Array, t: jax.Array, train: bool = False) -> jax.Array:
        self._check_input(x)
        h, _ = self._encode(x, self._time_embedding(t), train)
        h = nn.silu(group_norm(self.norm_eps, 'out_norm', self.norm_groups, self.dtype)(h)).mean(axis=(1, 2))
        return dense(self.num_classes, 'out', zero_init=True, dtype=self.dtype)(h).astype(jnp.float32)

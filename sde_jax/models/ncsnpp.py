"""NCSN++ and DDPM++ (Song et al. 2021, Appendix H.2): one U-Net family, configured by flags.

A stack of `num_res_blocks` residual blocks per resolution (widths nf * ch_mult), self-attention at
`attn_resolutions`, resampling by BigGAN-style residual blocks or (DDPM blocks) by separate layers,
optional FIR filters, optional progressive input / output pyramids, and skip connections scaled by
1/sqrt(2). The noise label (sde_jax.conditioning) is embedded with Gaussian Fourier features (NCSN++,
on log sigma) or sinusoidal positions (DDPM++, on 999 t), then two Dense layers of width 4 nf.
As in the paper's CIFAR-10 configs:
  NCSN++ cont. (VE):  fir, progressive_input='residual', fourier embedding, 4 blocks (deep: 8);
  DDPM++ cont. (VP, sub-VP): no fir, no pyramids, positional embedding, 4 blocks (deep: 8).
The network predicts the noise; the score is formed in sde_jax.conditioning.
"""

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from gen_runtime.timestep_embedding import timestep_embedding
from sde_jax.models import layers
from sde_jax.models.embeddings import GaussianFourierProjection
from sde_jax.models.layers import conv3x3, group_norm, skip_sum


class NCSNpp(nn.Module):
    nf: int = 128
    ch_mult: Sequence[int] = (1, 2, 2, 2)
    num_res_blocks: int = 4
    attn_resolutions: Sequence[int] = (16,)
    dropout: float = 0.1
    resamp_with_conv: bool = True
    fir: bool = False
    fir_kernel: tuple[int, ...] = (1, 3, 3, 1)
    skip_rescale: bool = True
    resblock_type: str = 'biggan'
    progressive: str = 'none'
    progressive_input: str = 'none'
    progressive_combine: str = 'sum'
    embedding_type: str = 'fourier'
    fourier_scale: float = 16.0
    init_scale: float = 0.0
    centered: bool = False  # inputs already in [-1, 1]; otherwise [0, 1] inputs are mapped there
    # Computation dtype of convolutions, dense layers and attention (bfloat16: mixed precision; parameters,
    # the noise-level features, GroupNorm statistics and the output stay float32).
    dtype: Any = jnp.float32

    def _resblock(self, features: int, up: bool = False, down: bool = False) -> nn.Module:
        if self.resblock_type == 'ddpm':
            return layers.ResnetBlockDDPM(features, self.dropout, self.skip_rescale, self.init_scale, self.dtype)
        return layers.ResnetBlockBigGAN(features, up, down, self.dropout, self.fir, tuple(self.fir_kernel),
                                        self.skip_rescale, self.init_scale, self.dtype)

    def _embed(self, label: jax.Array) -> jax.Array:
        if self.embedding_type == 'fourier':
            temb = GaussianFourierProjection(self.nf, self.fourier_scale)(label)
        else:
            temb = timestep_embedding(label, self.nf, flip_sin_to_cos=False, freq_shift=1.0)  # DDPM's
        temb = nn.Dense(4 * self.nf, kernel_init=layers.default_init(), dtype=self.dtype)(temb)
        return nn.Dense(4 * self.nf, kernel_init=layers.default_init(), dtype=self.dtype)(nn.swish(temb))

    @nn.compact
    def __call__(self, x: jax.Array, label: jax.Array, train: bool = False) -> jax.Array:
        self._check()
        channels = x.shape[-1]
        num_levels = len(self.ch_mult)
        fir_kernel = tuple(self.fir_kernel)
        temb = self._embed(label)
        if not self.centered:
            x = 2.0 * x - 1.0

        def attn() -> layers.AttnBlock:
            return layers.AttnBlock(self.skip_rescale, self.init_scale, self.dtype)

        pyramid_in = x if self.progressive_input != 'none' else None
        hs = [conv3x3(self.nf, dtype=self.dtype)(x)]
        for level in range(num_levels):
            for _ in range(self.num_res_blocks):
                h = self._resblock(self.nf * self.ch_mult[level])(hs[-1], temb, train)
                if h.shape[1] in self.attn_resolutions:
                    h = attn()(h)
                hs.append(h)
            if level == num_levels - 1:
                continue
            width = hs[-1].shape[-1]
            if self.resblock_type == 'ddpm':
                h = layers.Downsample(width, self.resamp_with_conv, self.fir, fir_kernel, self.dtype)(hs[-1])
            else:
                h = self._resblock(width, down=True)(hs[-1], temb, train)
            if self.progressive_input == 'input_skip':
                pyramid_in = layers.Downsample(pyramid_in.shape[-1], False, self.fir, fir_kernel,
                                               self.dtype)(pyramid_in)
                h = layers.Combine(h.shape[-1], self.progressive_combine, self.dtype)(pyramid_in, h)
            elif self.progressive_input == 'residual':
                pyramid_in = layers.Downsample(h.shape[-1], True, self.fir, fir_kernel, self.dtype)(pyramid_in)
                pyramid_in = h = skip_sum(pyramid_in, h, self.skip_rescale)
            hs.append(h)

        h = hs[-1]
        width = h.shape[-1]
        h = self._resblock(width)(h, temb, train)
        h = attn()(h)
        h = self._resblock(width)(h, temb, train)

        pyramid = None
        for level in reversed(range(num_levels)):
            for _ in range(self.num_res_blocks + 1):
                h = self._resblock(self.nf * self.ch_mult[level])(jnp.concatenate([h, hs.pop()], axis=-1), temb,
                                                                  train)
            if h.shape[1] in self.attn_resolutions:
                h = attn()(h)
            if self.progressive != 'none':
                h, pyramid = self._output_pyramid(h, pyramid, channels, level == num_levels - 1)
            if level != 0:
                if self.resblock_type == 'ddpm':
                    h = layers.Upsample(h.shape[-1], self.resamp_with_conv, self.fir, fir_kernel, self.dtype)(h)
                else:
                    h = self._resblock(h.shape[-1], up=True)(h, temb, train)
        if self.progressive == 'output_skip':
            return pyramid.astype(jnp.float32)
        h = nn.swish(group_norm(h.shape[-1], self.dtype)(h))
        return conv3x3(channels, self.init_scale, dtype=self.dtype)(h).astype(jnp.float32)

    def _output_pyramid(self, h: jax.Array, pyramid: jax.Array | None, channels: int,
                        first: bool) -> tuple[jax.Array, jax.Array]:
        """One level of the progressive output: 'output_skip' (sum of upsampled image-space outputs)
        or 'residual' (an upsampled feature branch merged into h)."""
        width = h.shape[-1]
        if self.progressive == 'output_skip':
            out = conv3x3(channels, self.init_scale, dtype=self.dtype)(nn.swish(group_norm(width, self.dtype)(h)))
            if first:
                return h, out
            return h, layers.Upsample(channels, False, self.fir, tuple(self.fir_kernel), self.dtype)(pyramid) + out
        if first:
            return h, conv3x3(width, dtype=self.dtype)(nn.swish(group_norm(width, self.dtype)(h)))
        pyramid = layers.Upsample(width, True, self.fir, tuple(self.fir_kernel), self.dtype)(pyramid)
        h = skip_sum(pyramid, h, self.skip_rescale)
        return h, h

    def _check(self) -> None:
        options = {'resblock_type': ('ddpm', 'biggan'), 'progressive': ('none', 'output_skip', 'residual'),
                   'progressive_input': ('none', 'input_skip', 'residual'), 'progressive_combine': ('sum', 'cat'),
                   'embedding_type': ('fourier', 'positional')}
        for name, allowed in options.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f'{name}={getattr(self, name)!r} is not one of {", ".join(allowed)}')

"""The VQ-regularised autoencoder of latent diffusion's first stage (`ldm.models.autoencoder.VQModel`).

Encoder: conv_in, `num_res_blocks` residual blocks per level (attention at the resolutions in
`attn_resolutions`), asymmetrically padded strided-conv downsampling, middle res-attn-res,
GroupNorm-SiLU-conv_out to `z_channels`. Decoder mirrors it with `num_res_blocks + 1` blocks per
level. `quant_conv`/`post_quant_conv` are 1x1 convolutions to and from the codebook dimension.
vq-f4 is ch=128, ch_mult=(1, 2, 4), 2 res blocks, no attention but the middle one, z 3 channels and
8192 codes (Rombach et al. 2022, table 8). `encode` gives the pre-quantisation latent that the
diffusion model is trained on; `decode` quantises before decoding (VQModelInterface).
"""

from collections.abc import Sequence

import flax.linen as nn
import jax

from ldm_jax.nn.layers import AttentionBlock, Downsample, ResBlock, Upsample, conv, group_norm
from ldm_jax.nn.quantizer import VectorQuantizer

NORM_EPS = 1e-6  # the autoencoder's GroupNorm epsilon (model.py's Normalize)


def _res(channels: int, dropout: float, groups: int, name: str) -> ResBlock:
    return ResBlock(channels, dropout, NORM_EPS, zero_init_last=False, norm_groups=groups, name=name)


def _attn(groups: int, name: str) -> AttentionBlock:
    return AttentionBlock(1, NORM_EPS, zero_init_last=False, norm_groups=groups, name=name)


class Encoder(nn.Module):
    ch: int = 128
    ch_mult: Sequence[int] = (1, 2, 4)
    num_res_blocks: int = 2
    attn_resolutions: Sequence[int] = ()
    z_channels: int = 3
    dropout: float = 0.0
    norm_groups: int = 32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        h = conv(self.ch, 3, 'conv_in')(x)
        resolution = x.shape[1]
        for level, mult in enumerate(self.ch_mult):
            for i in range(self.num_res_blocks):
                h = _res(self.ch * mult, self.dropout, self.norm_groups, f'down_{level}_res_{i}')(h, None, train)
                if resolution in self.attn_resolutions:
                    h = _attn(self.norm_groups, f'down_{level}_attn_{i}')(h)
            if level != len(self.ch_mult) - 1:
                h = Downsample(h.shape[-1], asymmetric=True, name=f'down_{level}_downsample')(h)
                resolution //= 2
        h = _res(h.shape[-1], self.dropout, self.norm_groups, 'mid_res_0')(h, None, train)
        h = _attn(self.norm_groups, 'mid_attn')(h)
        h = _res(h.shape[-1], self.dropout, self.norm_groups, 'mid_res_1')(h, None, train)
        return conv(self.z_channels, 3, 'conv_out')(nn.silu(group_norm(NORM_EPS, 'norm_out', self.norm_groups)(h)))


class Decoder(nn.Module):
    ch: int = 128
    ch_mult: Sequence[int] = (1, 2, 4)
    num_res_blocks: int = 2
    attn_resolutions: Sequence[int] = ()
    out_channels: int = 3
    dropout: float = 0.0
    norm_groups: int = 32

    @nn.compact
    def __call__(self, z: jax.Array, train: bool = False, features_only: bool = False) -> jax.Array:
        """The image; with `features_only`, what enters the output convolution (after GroupNorm and SiLU)."""
        h = conv(self.ch * self.ch_mult[-1], 3, 'conv_in')(z)
        h = _res(h.shape[-1], self.dropout, self.norm_groups, 'mid_res_0')(h, None, train)
        h = _attn(self.norm_groups, 'mid_attn')(h)
        h = _res(h.shape[-1], self.dropout, self.norm_groups, 'mid_res_1')(h, None, train)
        resolution = z.shape[1]
        for level in reversed(range(len(self.ch_mult))):
            for i in range(self.num_res_blocks + 1):
                block = _res(self.ch * self.ch_mult[level], self.dropout, self.norm_groups, f'up_{level}_res_{i}')
                h = block(h, None, train)
                if resolution in self.attn_resolutions:
                    h = _attn(self.norm_groups, f'up_{level}_attn_{i}')(h)
            if level:
                h = Upsample(h.shape[-1], name=f'up_{level}_upsample')(h)
                resolution *= 2
        h = nn.silu(group_norm(NORM_EPS, 'norm_out', self.norm_groups)(h))
        return h if features_only else output_conv(self.out_channels)(h)


def output_conv(channels: int) -> nn.Conv:
    """The decoder's last layer, whose gradients set the GAN loss's adaptive weight."""
    return conv(channels, 3, 'conv_out')


class VQModel(nn.Module):
    """Encoder, 1x1 quant_conv, vector quantiser, 1x1 post_quant_conv, decoder."""

    ch: int = 128
    ch_mult: Sequence[int] = (1, 2, 4)
    num_res_blocks: int = 2
    attn_resolutions: Sequence[int] = ()
    z_channels: int = 3
    embed_dim: int = 3
    num_codes: int = 8192
    dropout: float = 0.0
    in_channels: int = 3
    beta: float = 0.25
    legacy_beta: bool = False
    norm_groups: int = 32

    def setup(self) -> None:
        arch = dict(ch=self.ch, ch_mult=self.ch_mult, num_res_blocks=self.num_res_blocks,
                    attn_resolutions=self.attn_resolutions, dropout=self.dropout, norm_groups=self.norm_groups)
        self.encoder = Encoder(z_channels=self.z_channels, **arch)
        self.quant_conv = conv(self.embed_dim, 1, 'quant_conv')
        self.quantizer = VectorQuantizer(self.num_codes, self.embed_dim, self.beta, self.legacy_beta)
        self.post_quant_conv = conv(self.z_channels, 1, 'post_quant_conv')
        self.decoder = Decoder(out_channels=self.in_channels, **arch)

    def __call__(self, x: jax.Array, train: bool = False) -> tuple[jax.Array, dict[str, jax.Array], jax.Array]:
        """Reconstruction of x in [-1, 1], the quantiser's losses and the code indices."""
        z_q, losses, indices = self.quantize(self.encode(x, train))
        return self.decoder(self.post_quant_conv(z_q), train), losses, indices

    def encode(self, x: jax.Array, train: bool = False) -> jax.Array:
        """The pre-quantisation latent (what latent diffusion trains on)."""
        return self.quant_conv(self.encoder(x, train))

    def quantize(self, z: jax.Array) -> tuple[jax.Array, dict[str, jax.Array], jax.Array]:
        return self.quantizer(z)

    def decode(self, z: jax.Array, train: bool = False) -> jax.Array:
        """Quantises a latent, then decodes it to an image in about [-1, 1]."""
        z_q, _, _ = self.quantize(z)
        return self.decoder(self.post_quant_conv(z_q), train)

    def decode_features(self, z_q: jax.Array, train: bool = False) -> jax.Array:
        """The decoder up to its last layer, from already quantised latents (for the adaptive GAN weight)."""
        return self.decoder(self.post_quant_conv(z_q), train, features_only=True)

"""Networks built from config sections (see configs/ldm/base.py for the fields)."""

import ml_collections

from gen_runtime.errors import ConfigError
from gen_runtime.precision import compute_dtype
from ldm_jax.nn.autoencoder import VQModel
from ldm_jax.nn.discriminator import PatchDiscriminator
from ldm_jax.nn.unet import EncoderUNet, UNet

_TRUNK_FIELDS = ('model_channels', 'channel_mult', 'num_res_blocks', 'attention_resolutions', 'dropout',
                 'num_heads', 'num_head_channels', 'scale_shift_norm', 'norm_groups')


def _check_groups(widths: list[int], groups: int, what: str, field: str) -> None:
    if groups < 1:
        raise ConfigError(f'{field}={groups} must be at least 1')
    bad = [w for w in widths if w % groups]
    if bad:
        raise ConfigError(f'{what}: GroupNorm uses {field}={groups} groups, so every width must be a multiple of '
                          f'{groups} (got {bad[0]}); change the widths or {field}')


def unet_from_config(config: ml_collections.ConfigDict, out_channels: int, cond_channels: int = 0) -> UNet:
    """The denoiser of `config.model`; with label dropout its class embedding gets a null row; a cascade's
    super-resolution stage takes `cond_channels` of condition beside x_t."""
    m = config.model
    _check_groups([m.model_channels * k for k in m.channel_mult], m.norm_groups,
                  'model.channel_mult * model.model_channels', 'model.norm_groups')
    if config.diffusion.label_dropout > 0 and m.num_classes <= 0:
        raise ConfigError('diffusion.label_dropout > 0 (classifier-free guidance) needs a class-conditional model: '
                          'set model.num_classes')
    rows = m.num_classes + (1 if config.diffusion.label_dropout > 0 else 0)
    return UNet(**{k: tuple(m[k]) if isinstance(m[k], (list, tuple)) else m[k] for k in _TRUNK_FIELDS},
                norm_eps=m.norm_eps, flip_sin_to_cos=m.flip_sin_to_cos, freq_shift=m.freq_shift,
                out_channels=out_channels, num_classes=rows, cond_channels=cond_channels,
                dtype=compute_dtype(config.runtime.compute_dtype))


def classifier_from_config(config: ml_collections.ConfigDict) -> EncoderUNet:
    """The noise-conditional classifier of `config.classifier`."""
    c = config.classifier
    if c.num_classes < 2:
        raise ConfigError(f'classifier.num_classes={c.num_classes} must be at least 2')
    _check_groups([c.model_channels * k for k in c.channel_mult], c.norm_groups, 'classifier widths',
                  'classifier.norm_groups')
    return EncoderUNet(**{k: tuple(c[k]) if isinstance(c[k], (list, tuple)) else c[k] for k in _TRUNK_FIELDS},
                       num_classes=c.num_classes, dtype=compute_dtype(config.runtime.compute_dtype))


def autoencoder_from_config(config: ml_collections.ConfigDict) -> VQModel:
    """The VQ autoencoder of `config.autoencoder` for images of `data.num_channels` channels."""
    a = config.autoencoder
    _check_groups([a.ch * k for k in a.ch_mult], a.norm_groups, 'autoencoder.ch * autoencoder.ch_mult',
                  'autoencoder.norm_groups')
    return VQModel(ch=a.ch, ch_mult=tuple(a.ch_mult), num_res_blocks=a.num_res_blocks,
                   attn_resolutions=tuple(a.attn_resolutions), z_channels=a.z_channels, embed_dim=a.embed_dim,
                   num_codes=a.num_codes, dropout=a.dropout, in_channels=config.data.num_channels, beta=a.beta,
                   legacy_beta=a.legacy_beta, norm_groups=a.norm_groups)


def discriminator_from_config(config: ml_collections.ConfigDict) -> PatchDiscriminator:
    return PatchDiscriminator(ndf=config.autoencoder.disc_ndf, num_layers=config.autoencoder.disc_layers)

"""Score networks: Song's tutorial U-Net and NCSN++ / DDPM++ (Song et al. 2021)."""

import flax.linen as nn
import ml_collections

from gen_runtime.errors import ConfigError
from gen_runtime.precision import compute_dtype
from sde_jax.models.ncsnpp import NCSNpp
from sde_jax.models.tutorial_unet import TutorialUNet

MODEL_NAMES = ('tutorial_unet', 'ncsnpp')


def get_model(config: ml_collections.ConfigDict) -> nn.Module:
    """The network `config.model` describes (fields documented in configs/sde/base.py)."""
    model, dtype = config.model, compute_dtype(config.runtime.compute_dtype)
    if model.name == 'tutorial_unet':
        return TutorialUNet(channels=tuple(model.channels), embed_dim=model.embed_dim,
                            fourier_scale=model.fourier_scale, same_padding=model.same_padding, dtype=dtype)
    if model.name == 'ncsnpp':
        return NCSNpp(nf=model.nf, ch_mult=tuple(model.ch_mult), num_res_blocks=model.num_res_blocks,
                      attn_resolutions=tuple(model.attn_resolutions), dropout=model.dropout,
                      resamp_with_conv=model.resamp_with_conv, fir=model.fir, fir_kernel=tuple(model.fir_kernel),
                      skip_rescale=model.skip_rescale, resblock_type=model.resblock_type,
                      progressive=model.progressive, progressive_input=model.progressive_input,
                      progressive_combine=model.progressive_combine, embedding_type=model.embedding_type,
                      fourier_scale=model.fourier_scale, init_scale=model.init_scale, centered=config.data.centered,
                      dtype=dtype)
    raise ConfigError(f'model.name={model.name!r} is not one of {", ".join(MODEL_NAMES)}')


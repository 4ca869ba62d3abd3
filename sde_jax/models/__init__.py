"""Score networks: Song's tutorial U-Net and NCSN++ / DDPM++ (Song et al. 2021)."""

import flax.linen as nn
import ml_collections

from gen_runtime.errors import ConfigError
from sde_jax.models.tutorial_unet import TutorialUNet

MODEL_NAMES = ('tutorial_unet', 'ncsnpp')


def get_model(model: ml_collections.ConfigDict) -> nn.Module:
    """The network `config.model` describes (fields documented in configs/sde/base.py)."""
    if model.name == 'tutorial_unet':
        return TutorialUNet(channels=tuple(model.channels), embed_dim=model.embed_dim,
                            fourier_scale=model.fourier_scale, same_padding=model.same_padding)
    raise ConfigError(f'model.name={model.name!r} is not one of {", ".join(MODEL_NAMES)}')

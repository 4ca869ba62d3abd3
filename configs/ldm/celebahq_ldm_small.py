"""A small latent diffusion model: a 5,072,643-parameter UNet on 3x64x64 vq-f4 latents of CelebA-HQ 256.

Width 64, channel_mult (1, 1, 2, 2), one residual block per level, attention at 16x16 and 8x8 with
32-channel heads; otherwise as celebahq_ldm_vq4.py.
"""

import ml_collections

from configs.ldm import celebahq_ldm_vq4


def get_config() -> ml_collections.ConfigDict:
    config = celebahq_ldm_vq4.get_config()
    config.model.model_channels = 64
    config.model.channel_mult = (1, 1, 2, 2)
    config.model.num_res_blocks = 1
    config.model.attention_resolutions = (4, 8)
    config.optim.learning_rate = 1e-4
    config.training.batch_size = 32
    return config

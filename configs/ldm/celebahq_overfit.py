"""The overfitting check: a small autoencoder and latent diffusion model on the 56 CelebA-HQ faces at 32x32.

Variants: 'vq' (the first stage) and 'ldm' (the UNet on its 16x16x3 latents). The commands and the result
(samples reproduce training faces) are in docs/ldm.md.
"""

import ml_collections

from configs.ldm import tiny


def get_config(variant: str = 'vq') -> ml_collections.ConfigDict:
    config = tiny.get_config(variant)
    config.data.random_flip = False
    config.training.batch_size = 16
    config.training.log_every = 100
    config.training.checkpoint_every = 500
    config.optim.learning_rate = 2e-4
    config.optim.ema_rate = 0.999
    config.autoencoder.num_codes = 256
    config.autoencoder.disc_start = 1000
    config.autoencoder.disc_weight = 0.1
    config.training.num_steps = 1500 if variant == 'vq' else 4000
    config.latent.first_stage_workdir = 'runs/celebahq_overfit_vq'
    config.model.model_channels = 64
    config.diffusion.num_timesteps = 1000
    config.diffusion.schedule = 'sqrt_linear'
    config.diffusion.linear_start = 0.0015
    config.diffusion.linear_end = 0.0195
    config.sampling.num_steps = 100
    config.sampling.num_samples = 32
    config.sampling.batch_size = 32
    return config

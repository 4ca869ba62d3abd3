"""Tiny configs for tests and smoke runs on a CPU, one per variant (`--config configs/ldm/tiny.py:<variant>`).

- ddpm: a class-conditional UNet on scikit-learn's 8x8 digits (no data download), classifier-free guidance.
- classifier: the noise-conditional classifier on the same digits.
- vq: a small VQ autoencoder on 32x32 CelebA-HQ faces from the shared data folder (celebahq_samples).
- ldm: a small UNet on that autoencoder's 16x16x3 latents, the vq variant trained in runs/tiny_vq (or set
  latent.first_stage_workdir).
"""

import ml_collections

from configs.ldm import base

VARIANTS = ('ddpm', 'classifier', 'vq', 'ldm')


def get_config(variant: str = 'ddpm') -> ml_collections.ConfigDict:
    if variant not in VARIANTS:
        raise ValueError(f'unknown tiny variant {variant!r}; choose one of {", ".join(VARIANTS)}')
    config = base.get_config()
    config.training.batch_size = 8
    config.training.num_steps = 4
    config.training.log_every = 2
    config.training.checkpoint_every = 4
    config.optim.learning_rate = 1e-3
    config.optim.warmup_steps = 0
    config.optim.ema_rate = 0.9
    config.runtime.tensorboard = False
    config.runtime.progress_bar = False
    config.model.model_channels = 32
    config.model.channel_mult = (1, 2)
    config.model.num_res_blocks = 1
    config.model.num_head_channels = 32
    config.model.dropout = 0.0
    config.diffusion.num_timesteps = 100
    config.sampling.num_steps = 10
    config.sampling.num_samples = 8
    config.sampling.batch_size = 8
    config.likelihood.batch_size = 8
    config.latent.encode_batch_size = 8
    config.eval.num_samples = 8
    config.eval.batch_size = 8
    config.eval.kid_subset_size = 4
    config.eval.is_splits = 2
    if variant in ('ddpm', 'classifier'):
        config.data.source = 'digits'
        config.data.image_size = 8
        config.data.num_channels = 1
        config.data.random_flip = False
        config.model.num_classes = 10
        config.diffusion.label_dropout = 0.2
        config.sampling.guidance_scale = 2.0
        config.classifier.model_channels = 32
        config.classifier.channel_mult = (1, 2)
        config.classifier.num_res_blocks = 1
        config.classifier.num_head_channels = 32
        config.task = 'diffusion' if variant == 'ddpm' else 'classifier'
        return config
    config.data.source = 'image_folder'
    config.data.path = 'celebahq_samples'
    config.data.image_size = 32
    config.data.eval_split = 'train'
    config.autoencoder.ch = 32
    config.autoencoder.ch_mult = (1, 2)
    config.autoencoder.num_res_blocks = 1
    config.autoencoder.num_codes = 64
    config.autoencoder.disc_ndf = 8
    config.autoencoder.disc_layers = 2
    config.autoencoder.disc_start = 2
    config.autoencoder.kmeans_init = True
    config.latent.scale_factor = 0.0
    if variant == 'vq':
        config.eval.use_ema = False  # the first stage's raw parameters, as taming's VQGAN
    config.sampling.clip_denoised = False
    if variant == 'ldm':
        config.latent.first_stage_workdir = 'runs/tiny_vq'
    return config

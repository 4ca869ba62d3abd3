"""The latent-diffusion exercise at CPU size: faces at 256x256 through a reduced vq-f4 first stage and the ~5M UNet.

Variants (`--config configs/ldm/celebahq256_exercise.py:<variant>`):
- vq: the vq-f4 autoencoder of vq_f4.py reduced to ch 32, mult 1,2,4, one residual block per level and 1024
  codes (f = 4: 256x256x3 images to 64x64x3 latents), trained on random 128x128 windows of the 56 shared
  CelebA-HQ faces resized to 256 (`--mode preprocess`; the middle attention over all 64x64 latent positions of a
  whole image makes a step 5x slower on a CPU), Adam 2e-4 at batch 4 for 800 steps, the patch discriminator from
  step 500 at weight 0.1.
- ldm: celebahq_ldm_small.py's 5,072,643-parameter UNet on that first stage's latents (scale factor 1 / std),
  Adam 2e-4 at batch 8 for 600 steps, EMA 0.999, 100 DDIM steps.
scripts/ldm_celebahq256.sh runs both and the evaluations; docs/tutorials/ldm_celebahq256.ipynb shows them.
"""

import ml_collections

from configs.ldm import celebahq_ldm_small, vq_f4

VARIANTS = ('vq', 'ldm')


def get_config(variant: str = 'vq') -> ml_collections.ConfigDict:
    if variant not in VARIANTS:
        raise ValueError(f'unknown variant {variant!r}; choose one of {", ".join(VARIANTS)}')
    config = vq_f4.get_config() if variant == 'vq' else celebahq_ldm_small.get_config()
    config.data.path = 'celebahq256'  # scripts/ldm_celebahq256.sh points it at its preprocessed folder
    config.data.eval_split = 'train'  # 56 faces: no held-out split
    config.training.log_every = 50
    config.training.checkpoint_every = 250
    config.optim.learning_rate = 2e-4
    config.optim.warmup_steps = 0
    if variant == 'vq':
        config.autoencoder.ch = 32
        config.autoencoder.num_res_blocks = 1
        config.autoencoder.num_codes = 1024
        config.autoencoder.kmeans_init = True
        config.autoencoder.train_crop = 128
        config.training.batch_size = 4
        config.training.num_steps = 800
        config.autoencoder.disc_start = 500
        config.autoencoder.disc_weight = 0.1
        return config
    config.latent.first_stage_workdir = 'runs/celebahq256/vq'
    config.latent.scale_factor = 0.0
    config.latent.encode_batch_size = 8
    config.training.batch_size = 8
    config.training.num_steps = 600
    config.optim.ema_rate = 0.999
    config.sampling.num_steps = 100
    config.sampling.num_samples = 16
    config.sampling.batch_size = 16
    return config

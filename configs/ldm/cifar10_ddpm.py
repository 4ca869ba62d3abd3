"""DDPM on CIFAR-10 (Ho et al. 2020): the 35.7M-parameter UNet, linear betas 1e-4..0.02, fixed-large variance.

Data: the CIFAR-10 copy in the shared data folder (train/test jpeg folders in a tgz, 32x32).
Train: python main.py --config configs/ldm/cifar10_ddpm.py --workdir runs/cifar10_ddpm --mode train
"""

import ml_collections

from configs.ldm import base


def get_config() -> ml_collections.ConfigDict:
    config = base.get_config()
    config.data.source = 'image_folder'
    config.data.path = 'cifar10/cifar10_jpeg.tgz'
    config.data.image_size = 32
    # DDPM's TF implementation: [sin, cos] time embedding with frequency shift 1, GroupNorm eps 1e-6.
    config.model.flip_sin_to_cos = False
    config.model.freq_shift = 1.0
    config.model.norm_eps = 1e-6
    config.diffusion.variance = 'fixed_large'
    config.sampling.method = 'ddpm'
    return config

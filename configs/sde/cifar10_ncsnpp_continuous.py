"""CIFAR-10, VE SDE, NCSN++ cont. (Song et al. 2021, Table 3); `:deep` is NCSN++ cont. (deep).

Data: ../shared/data/cifar10/cifar10_jpeg.tgz (a JPEG copy of CIFAR-10, see its README).
Sampling as in the paper: reverse-diffusion predictor + Langevin corrector (snr 0.16), N = 1000.
"""

import ml_collections

from configs.sde import base


def get_config(variant: str = '') -> ml_collections.ConfigDict:
    if variant not in ('', 'deep'):
        raise ValueError(f"variant {variant!r} is not '' or 'deep'")
    config = base.get_config()
    config.data.source = 'image_folder'
    config.data.path = 'cifar10/cifar10_jpeg.tgz'
    config.data.image_size = 32
    config.data.num_channels = 3
    config.data.random_flip = True

    config.sde.type = 'vesde'
    config.sde.ve_marginal_std = 'sigma'

    model = config.model
    model.name = 'ncsnpp'
    model.num_res_blocks = 8 if variant == 'deep' else 4
    model.fourier_scale = 16.0
    model.fir = True
    model.progressive_input = 'residual'

    config.training.num_steps = 950_001 if variant == 'deep' else 1_300_001
    config.training.checkpoint_every = 10_000
    config.optim.warmup_steps = 5000

    config.sampling.predictor = 'reverse_diffusion'
    config.sampling.corrector = 'langevin'
    config.sampling.eps = 1e-5
    config.sampling.batch_size = 128
    return config

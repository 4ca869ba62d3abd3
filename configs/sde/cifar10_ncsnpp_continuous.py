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
    config.data.centered = False

    config.sde.type = 'vesde'
    config.sde.sigma_min = 0.01
    config.sde.sigma_max = 50.0
    config.sde.ve_marginal_std = 'sigma'
    config.sde.num_scales = 1000
    config.loss.reduce_mean = False

    model = config.model
    model.name = 'ncsnpp'
    model.nf = 128
    model.ch_mult = (1, 2, 2, 2)
    model.num_res_blocks = 8 if variant == 'deep' else 4
    model.attn_resolutions = (16,)
    model.dropout = 0.1
    model.embedding_type = 'fourier'
    model.fourier_scale = 16.0
    model.resblock_type = 'biggan'
    model.fir = True
    model.skip_rescale = True
    model.progressive = 'none'
    model.progressive_input = 'residual'
    model.progressive_combine = 'sum'

    config.training.batch_size = 128
    config.training.num_steps = 950_001 if variant == 'deep' else 1_300_001
    config.training.checkpoint_every = 10_000
    config.optim.learning_rate = 2e-4
    config.optim.warmup_steps = 5000
    config.optim.grad_clip = 1.0
    config.optim.ema_rate = 0.999

    config.sampling.method = 'pc'
    config.sampling.predictor = 'reverse_diffusion'
    config.sampling.corrector = 'langevin'
    config.sampling.snr = 0.16
    config.sampling.eps = 1e-5
    config.sampling.batch_size = 128
    config.eval.batch_size = 200
    return config

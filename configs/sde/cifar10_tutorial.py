"""CIFAR-10 likelihood on a CPU budget: Song's tutorial U-Net (SAME padding) with the VP SDE.

The likelihood exercise of Song et al. (2021) at the size a CPU allows: the paper's VP SDE (beta from
0.1 to 20), data scaled to [-1, 1], continuous denoising score matching, and the tutorial U-Net (its
widths, 3 colour channels at 32x32: 1,117,155 parameters) instead of DDPM++. Bits/dim through the
probability-flow ODE over the whole test split: `scripts/sde_cifar10.sh`,
docs/tutorials/sde_cifar10_likelihood.ipynb.
Data: ../shared/data/cifar10/cifar10_jpeg.tgz (a JPEG copy of CIFAR-10, see its README).
"""

import ml_collections

from configs.sde import base


def get_config() -> ml_collections.ConfigDict:
    config = base.get_config()
    config.data.source = 'image_folder'
    config.data.path = 'cifar10/cifar10_jpeg.tgz'
    config.data.image_size = 32
    config.data.num_channels = 3
    config.data.random_flip = True
    config.data.centered = True

    config.sde.type = 'vpsde'
    config.model.same_padding = True

    config.training.batch_size = 64
    config.training.num_steps = 20_000
    config.training.log_every = 50
    config.training.checkpoint_every = 250
    config.optim.learning_rate = 5e-4
    config.optim.warmup_steps = 100
    config.optim.ema_warmup = True

    config.sampling.num_steps = 500
    config.likelihood.batch_size = 50
    return config

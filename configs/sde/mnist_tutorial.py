"""MNIST as in Song's score-SDE tutorial: VE SDE dx = 25^t dw, the tutorial's U-Net, Adam 1e-4.

The tutorial's SDE is the VE SDE with sigma_min = 1/sqrt(2 ln 25), sigma_max = 25/sqrt(2 ln 25)
(sde_jax.sde.tutorial_ve_sigmas). The network's noise label is log sigma(t) = log sigma_min + t ln 25,
so Fourier features of scale 30 / ln 25 equal the tutorial's features of t (scale 30) up to a phase.
Data: ../shared/data/mnist/mnist.npz (set JAXGEN_DATA_ROOT or data.root). The tutorial trains 50
epochs at batch 32; `scripts/sde_mnist.sh` trains a fixed CPU budget instead.
"""

import math

import ml_collections

from configs.sde import base
from sde_jax.sde import tutorial_ve_sigmas

SIGMA = 25.0


def get_config() -> ml_collections.ConfigDict:
    config = base.get_config()
    config.data.source = 'npz'
    config.data.path = 'mnist/mnist.npz'
    config.data.image_size = 28

    config.sde.type = 'vesde'
    config.sde.sigma_min, config.sde.sigma_max = tutorial_ve_sigmas(SIGMA)
    config.model.fourier_scale = 30.0 / math.log(SIGMA)

    config.training.batch_size = 32
    config.training.num_steps = 50 * 60000 // 32
    config.training.log_every = 100
    config.training.checkpoint_every = 2000
    config.optim.learning_rate = 1e-4
    config.optim.grad_clip = 0.0
    config.optim.ema_warmup = True

    config.sampling.num_steps = 500
    config.likelihood.batch_size = 500
    return config

"""Improved DDPM's comparison on MNIST (Nichol & Dhariwal 2021) at a CPU budget: fixed against learned variances.

Two variants of one unconditional network (configs/ldm/mnist_cfg.py's UNet without the label embedding, 32
channels at 28/14/7, attention at 7x7) and one cosine schedule (the paper's, T = 1000):
- fixed: L_simple with the fixed variance beta~_t (DDPM's 'fixed_small');
- learned: twice the output channels, 'learned_range' variances trained with the hybrid loss (lambda = 0.001).
Sampled by improved DDPM's strided sampling (sampling.method='ddpm_strided', num_steps 50 or 100).
Data: ../shared/data/mnist/mnist.npz (set JAXGEN_DATA_ROOT or data.root).
Run: scripts/iddpm_mnist.sh (both variants at equal steps, the bound in bits/dim and KID at 50 and 100 steps).
"""

import ml_collections

from configs.ldm import base

VARIANTS = ('fixed', 'learned')


def get_config(variant: str = 'learned') -> ml_collections.ConfigDict:
    if variant not in VARIANTS:
        raise ValueError(f'unknown variant {variant!r}; choose one of {", ".join(VARIANTS)}')
    config = base.get_config()
    config.data.source = 'npz'
    config.data.path = 'mnist/mnist.npz'
    config.data.image_size = 28
    config.data.num_channels = 1
    config.data.random_flip = False

    config.model.model_channels = 32
    config.model.channel_mult = (1, 2, 2)
    config.model.num_res_blocks = 1
    config.model.attention_resolutions = (4,)
    config.model.num_head_channels = 32
    config.diffusion.schedule = 'cosine'
    config.diffusion.variance = 'learned_range' if variant == 'learned' else 'fixed_small'

    config.training.batch_size = 64
    config.training.num_steps = 2000
    config.training.log_every = 50
    config.training.checkpoint_every = 250
    config.optim.learning_rate = 5e-4
    config.optim.warmup_steps = 100
    config.optim.ema_rate = 0.999
    config.optim.ema_warmup = True

    config.sampling.method = 'ddpm_strided'
    config.sampling.num_steps = 100
    config.sampling.num_samples = 64
    config.sampling.batch_size = 250
    config.likelihood.batch_size = 50
    config.eval.num_samples = 500
    config.eval.batch_size = 250
    config.eval.metrics = 'kid'
    config.eval.kid_subset_size = 250
    return config

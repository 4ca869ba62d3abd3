"""Improved DDPM's comparison on MNIST (Nichol & Dhariwal 2021) at a CPU budget: fixed against learned variances.

Two variants of one unconditional network (configs/ldm/mnist_kid.py: mnist_cfg.py's UNet without the label
embedding, 32 channels at 28/14/7, attention at 7x7) and one cosine schedule (the paper's, T = 1000):
- fixed: L_simple with the fixed variance beta~_t (DDPM's 'fixed_small');
- learned: twice the output channels, 'learned_range' variances trained with the hybrid loss (lambda = 0.001).
Sampled by improved DDPM's strided sampling (sampling.method='ddpm_strided', num_steps 50 or 100).
Data: ../shared/data/mnist/mnist.npz (set JAXGEN_DATA_ROOT or data.root).
Run: scripts/iddpm_mnist.sh (both variants at equal steps, the bound in bits/dim and KID at 50 and 100 steps).
"""

import ml_collections

from configs.ldm import mnist_kid

VARIANTS = ('fixed', 'learned')


def get_config(variant: str = 'learned') -> ml_collections.ConfigDict:
    if variant not in VARIANTS:
        raise ValueError(f'unknown variant {variant!r}; choose one of {", ".join(VARIANTS)}')
    config = mnist_kid.get_config()
    config.diffusion.schedule = 'cosine'
    config.diffusion.variance = 'learned_range' if variant == 'learned' else 'fixed_small'
    config.likelihood.batch_size = 50
    return config

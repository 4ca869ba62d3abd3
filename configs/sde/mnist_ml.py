"""MNIST, maximum-likelihood training (Song, Durkan, Murray & Ermon 2021): the tutorial's network and VE SDE at the
CPU budget of scripts/sde_mnist_ml.sh, one variant per training objective.

Variants: 'sigma2' (the tutorial's DSM weighting lambda(t) = sigma_t^2), 'likelihood' (lambda(t) = g(t)^2, t
uniform) and 'likelihood_is' (the likelihood weighting with t importance-sampled from p(t) proportional to
g^2 / sigma^2). All train at batch 64 with Adam 5e-4 (100 warm-up steps) and report the variational bound beside
the ODE's bits/dim.
"""

import ml_collections

from configs.sde import mnist_tutorial

VARIANTS = ('sigma2', 'likelihood', 'likelihood_is')


def get_config(variant: str = 'sigma2') -> ml_collections.ConfigDict:
    if variant not in VARIANTS:
        raise ValueError(f'variant {variant!r} is not one of {VARIANTS}')
    config = mnist_tutorial.get_config()
    config.loss.weighting = 'sigma2' if variant == 'sigma2' else 'likelihood'
    config.loss.importance_sampling = variant == 'likelihood_is'
    config.training.num_steps = 2000
    config.training.batch_size = 64
    config.training.log_every = 50
    config.training.checkpoint_every = 250
    config.optim.learning_rate = 5e-4
    config.optim.warmup_steps = 100
    return config

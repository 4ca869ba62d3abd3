"""CIFAR-10, maximum-likelihood training (Song, Durkan, Murray & Ermon 2021): DDPM++ cont. (deep) on the VP SDE
(default) or the sub-VP SDE ('subvp'), trained with the likelihood weighting and importance-sampled t, as the
paper's likelihood models; bits/dim through the ODE with the variational bound beside it.
"""

import ml_collections

from configs.sde import cifar10_ddpmpp_continuous


def get_config(variant: str = '') -> ml_collections.ConfigDict:
    if variant not in ('', 'subvp'):
        raise ValueError(f"variant {variant!r} is not '' (VP) or 'subvp'")
    config = cifar10_ddpmpp_continuous.get_config('subvp_deep' if variant == 'subvp' else 'deep')
    config.loss.weighting = 'likelihood'
    config.loss.importance_sampling = True
    return config

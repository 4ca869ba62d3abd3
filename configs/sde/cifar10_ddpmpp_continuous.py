"""CIFAR-10, DDPM++ cont. with the VP SDE (default) or the sub-VP SDE (Song et al. 2021, Table 3).

Variants: '' (VP), 'deep' (VP, deep), 'subvp', 'subvp_deep'. Starts from the NCSN++ config for the
data and optimiser and changes the SDE, the network flags (no FIR, no input pyramid, positional
embedding of 999 t), data centring, loss reduction and EMA rate as the original configs do.
"""

import ml_collections

from configs.sde import cifar10_ncsnpp_continuous

VARIANTS = ('', 'deep', 'subvp', 'subvp_deep')


def get_config(variant: str = '') -> ml_collections.ConfigDict:
    if variant not in VARIANTS:
        raise ValueError(f'variant {variant!r} is not one of {VARIANTS}')
    deep = variant.endswith('deep')
    config = cifar10_ncsnpp_continuous.get_config('deep' if deep else '')
    config.data.centered = True
    config.sde.type = 'subvpsde' if variant.startswith('subvp') else 'vpsde'
    config.loss.reduce_mean = True

    config.model.fir = False
    config.model.progressive_input = 'none'
    config.model.embedding_type = 'positional'
    config.optim.ema_rate = 0.9999

    config.sampling.predictor = 'euler_maruyama'
    config.sampling.corrector = 'none'
    config.sampling.eps = 1e-3
    return config

"""A two-stage cascade on MNIST (Ho et al. 2022) at a CPU budget: 14x14 digits, then 14 -> 28 super-resolution.

Variants:
- base: configs/ldm/mnist_kid.py (mnist_cfg.py's UNet without labels) on the digits resized to 14x14 (levels
  14/7, attention at 7x7), sampled with 100 strided ancestral steps;
- stage: the same UNet at 28x28 conditioned on the image averaged down to 14x14 and upsampled, with Gaussian
  conditioning augmentation at levels 0..250 of its linear schedule;
- stage_noaug: the same stage without augmentation (cascade.max_level = 0).
Data: ../shared/data/mnist/mnist.npz (set JAXGEN_DATA_ROOT or data.root).
Run: scripts/cascade_mnist.sh (trains the three, sweeps the sampling level and the truncated variant, KID).
"""

import ml_collections

from configs.ldm import mnist_kid

VARIANTS = ('base', 'stage', 'stage_noaug')


def get_config(variant: str = 'stage') -> ml_collections.ConfigDict:
    if variant not in VARIANTS:
        raise ValueError(f'unknown variant {variant!r}; choose one of {", ".join(VARIANTS)}')
    config = mnist_kid.get_config()
    if variant == 'base':
        config.data.image_size = 14
        config.model.channel_mult = (1, 2)
        config.model.attention_resolutions = (2,)
        return config
    config.cascade.low_resolution = 14
    config.cascade.max_level = 250 if variant == 'stage' else 0
    return config

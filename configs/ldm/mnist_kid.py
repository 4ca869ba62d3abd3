"""Unconditional MNIST scored by KID: the common start of mnist_iddpm.py and mnist_cascade.py.

configs/ldm/mnist_cfg.py's UNet without labels or guidance, 2000 steps by default (the scripts set their own),
100 strided ancestral steps (improved DDPM's), and `--mode eval` scoring 500 samples by KID in subsets of 250.
"""

import ml_collections

from configs.ldm import mnist_cfg


def get_config() -> ml_collections.ConfigDict:
    config = mnist_cfg.get_config()
    config.model.num_classes = 0
    config.diffusion.label_dropout = 0.0
    config.training.num_steps = 2000
    config.training.checkpoint_every = 250
    config.sampling.method = 'ddpm_strided'
    config.sampling.num_steps = 100
    config.sampling.guidance_scale = 1.0
    config.sampling.num_samples = 64
    config.sampling.batch_size = 250
    config.eval.num_samples = 500
    config.eval.batch_size = 250
    config.eval.metrics = 'kid'
    config.eval.kid_subset_size = 250
    return config

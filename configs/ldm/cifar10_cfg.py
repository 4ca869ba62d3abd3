"""Classifier-free guided DDPM on CIFAR-10 (Ho & Salimans 2022): labels dropped with p = 0.1, sampled at w = 3.

Guided output: out_u + w (out_c - out_u), i.e. the paper's (1 + w') eps_c - w' eps_u with w' = w - 1.
"""

import ml_collections

from configs.ldm import cifar10_ddpm


def get_config() -> ml_collections.ConfigDict:
    config = cifar10_ddpm.get_config()
    config.model.num_classes = 10
    config.diffusion.label_dropout = 0.1
    config.sampling.method = 'ddim'
    config.sampling.num_steps = 100
    config.sampling.guidance_scale = 3.0
    return config

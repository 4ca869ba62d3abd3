"""Classifier-free guided DDPM on MNIST (Ho et al. 2020; Ho & Salimans 2022): the tutorial's CPU-sized model.

A 1,114,209-parameter UNet (32 channels, levels 28/14/7, attention at 7x7, an 11 x 128 label embedding),
linear betas over 1000 steps, labels dropped with p = 0.1; sampled with 50 DDIM steps at guidance weight
w = 2 (out_u + w (out_c - out_u)).
Data: ../shared/data/mnist/mnist.npz (set JAXGEN_DATA_ROOT or data.root).
Train: python main.py --config configs/ldm/mnist_cfg.py --workdir runs/mnist_cfg --mode train
"""

import ml_collections

from configs.ldm import base


def get_config() -> ml_collections.ConfigDict:
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
    config.model.num_classes = 10
    config.diffusion.label_dropout = 0.1

    config.training.batch_size = 64
    config.training.num_steps = 20_000
    config.training.log_every = 50
    config.training.checkpoint_every = 500
    config.optim.learning_rate = 5e-4
    config.optim.warmup_steps = 100
    config.optim.ema_rate = 0.999
    config.optim.ema_warmup = True

    config.sampling.method = 'ddim'
    config.sampling.num_steps = 50
    config.sampling.guidance_scale = 2.0
    config.sampling.num_samples = 40
    config.sampling.batch_size = 40
    config.likelihood.batch_size = 20
    return config

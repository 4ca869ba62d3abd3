"""LDM-VQ-4 on CelebA-HQ 256 (latent-diffusion configs/latent-diffusion/celebahq-ldm-vq-4.yaml): 274M UNet on 64x64x3.

First train the vq-f4 first stage (configs/ldm/vq_f4.py) into latent.first_stage_workdir, then:
python main.py --config configs/ldm/celebahq_ldm_vq4.py --workdir runs/celebahq_ldm_vq4 --mode train
Data: a folder of 256x256 CelebA-HQ images under the data root (`--mode preprocess` makes it from the
1024x1024 originals), or --config.data.source=tfds --config.data.name=celeb_a_hq/256 after tfds' manual download.
"""

import ml_collections

from configs.ldm import base


def get_config() -> ml_collections.ConfigDict:
    config = base.get_config()
    config.data.source = 'image_folder'
    config.data.path = 'celebahq256'
    config.data.image_size = 256
    config.data.random_flip = False
    config.latent.first_stage_workdir = 'runs/celebahq_vq_f4'
    config.model.model_channels = 224
    config.model.channel_mult = (1, 2, 3, 4)
    config.model.attention_resolutions = (8, 4, 2)
    config.model.num_head_channels = 32
    config.model.dropout = 0.0
    config.diffusion.schedule = 'sqrt_linear'
    config.diffusion.linear_start = 0.0015
    config.diffusion.linear_end = 0.0195
    # latent diffusion: AdamW at base_learning_rate 2e-6 times the batch size 48, LitEma with warm-up, no clipping.
    config.training.batch_size = 48
    config.training.num_steps = 500_000
    config.optim.optimizer = 'adamw'
    config.optim.weight_decay = 0.01
    config.optim.learning_rate = 2e-6 * 48
    config.optim.warmup_steps = 0
    config.optim.grad_clip = 0.0
    config.optim.ema_warmup = True
    config.sampling.num_steps = 200
    config.sampling.batch_size = 16
    return config

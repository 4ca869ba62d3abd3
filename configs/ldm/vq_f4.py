"""The vq-f4 first stage of latent diffusion (models/first_stage_models/vq-f4): 55.3M parameters, 8192 codes.

python main.py --config configs/ldm/vq_f4.py --workdir runs/celebahq_vq_f4 --mode train_autoencoder
Adam with betas (0.5, 0.9) at base_learning_rate 4.5e-6 times the batch size (taming's recipe), patch
discriminator weight 0.75 with the adaptive weight. No perceptual loss (see docs/ldm.md on LPIPS).
"""

import ml_collections

from configs.ldm import celebahq_ldm_vq4


def get_config() -> ml_collections.ConfigDict:
    config = celebahq_ldm_vq4.get_config()
    config.latent.first_stage_workdir = ''
    config.training.batch_size = 8
    config.training.num_steps = 200_000
    config.optim.optimizer = 'adam'
    config.optim.weight_decay = 0.0
    config.optim.beta1 = 0.5
    config.optim.beta2 = 0.9
    config.optim.learning_rate = 4.5e-6 * 8
    config.optim.ema_warmup = False
    # Evaluated, and used as a first stage, with its raw parameters: taming's VQGAN keeps no average.
    config.eval.use_ema = False
    return config

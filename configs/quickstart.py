"""The quickstart: a score model of scikit-learn's 8x8 digits (bundled, no download), minutes on a CPU.

VP SDE, continuous denoising score matching, a 3-level tutorial-style U-Net (66k parameters) and
Euler-Maruyama sampling. `python main.py --config configs/quickstart.py --workdir runs/quickstart`
writes runs/quickstart/metrics.json and train/step_<N>/samples.png. A seconds-long smoke run (docs/sde.md):
--config.training.num_steps=8 --config.training.batch_size=16 --config.training.log_every=4
--config.training.checkpoint_every=4 --config.sampling.num_steps=10 --config.sampling.num_samples=16
--config.sampling.batch_size=16
"""

import ml_collections

from configs.sde import base


def get_config() -> ml_collections.ConfigDict:
    config = base.get_config()
    config.data.image_size = 8
    config.data.centered = True

    config.model.channels = (16, 32, 64)
    config.model.embed_dim = 64
    config.model.same_padding = True
    config.model.fourier_scale = 0.02  # label 999 t: features of t at the tutorial's scale ~30 / 999

    config.training.num_steps = 2000
    config.training.log_every = 100
    config.training.checkpoint_every = 1000
    config.optim.learning_rate = 1e-3
    config.optim.warmup_steps = 100
    config.optim.ema_warmup = True

    config.sampling.num_steps = 500
    return config

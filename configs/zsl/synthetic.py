"""A tiny generated ZSL problem for tests and quick checks: `configs/zsl/synthetic.py[:gazsl|cizsl]`."""

import ml_collections

from configs.zsl import base


def get_config(variant: str = 'gazsl') -> ml_collections.ConfigDict:
    config = base.get_config()
    config.benchmark.kind = 'synthetic'
    config.benchmark.dataset = 'synthetic'
    config.benchmark.split = ''
    config.model.variant = variant
    config.model.noise_dim = 8
    config.model.hidden_dim = 128
    config.model.text_reduction_dim = 16
    config.training.batch_size = 64
    config.training.num_steps = 1000
    config.training.log_every = 100
    config.training.checkpoint_every = 200
    config.optim.learning_rate = 2e-3
    config.eval.seeds = (0,)
    config.eval.every = 100
    config.eval.samples_per_class = 30
    config.eval.knn = 10
    config.eval.gbu = True
    config.runtime.tensorboard = False
    config.runtime.progress_bar = False
    return config

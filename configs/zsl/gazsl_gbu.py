"""GAZSL's attribute variant on xlsa17 (train_GBU.py): `configs/zsl/gazsl_gbu.py[:AWA2|SUN|CUB|AWA1|APY|FLO]`.

No text-reduction layer, visual pivot weight 5, no L2,1 term, batch 1024, MinMax-scaled features,
noise of 10 dims (100 for CUB and FLO, as the README's commands), GBU u/s/H evaluation.
"""

import ml_collections

from configs.zsl import base


def get_config(dataset: str = 'AWA2') -> ml_collections.ConfigDict:
    config = base.get_config()
    config.data.path = 'zsl/xlsa17'
    config.benchmark.kind = 'gbu'
    config.benchmark.dataset = dataset
    config.benchmark.split = ''
    config.model.text_reduction_dim = 0
    config.model.noise_dim = 100 if dataset in ('CUB', 'FLO') else 10
    config.loss.centroid_weight = 5.0
    config.loss.text_l21 = 0.0
    config.training.batch_size = 1024
    config.eval.gbu = True
    config.eval.selection_metric = 'gbu_h'
    return config

"""CIZSL on CUB-wiki (train_CIZSL.py / run.sh): `configs/zsl/cizsl_cub.py[:easy|hard]`."""

import ml_collections

from configs.zsl import base


def get_config(split: str = 'easy') -> ml_collections.ConfigDict:
    config = base.get_config()
    config.benchmark.split = split
    return base.use_cizsl(config)

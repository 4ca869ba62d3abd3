"""GAZSL on CUB-wiki (train_CUB.py): `configs/zsl/gazsl_cub.py[:easy|hard]`."""

import ml_collections

from configs.zsl import base


def get_config(split: str = 'easy') -> ml_collections.ConfigDict:
    config = base.get_config()
    config.benchmark.split = split
    return config

"""GAZSL on NABirds-wiki (train_NAB.py): `configs/zsl/gazsl_nab.py[:easy|hard]`."""

import ml_collections

from configs.zsl import base


def get_config(split: str = 'easy') -> ml_collections.ConfigDict:
    config = base.get_config()
    config.data.path = 'zsl/cub_nab_wiki/NABird'
    config.benchmark.dataset = 'NAB'
    config.benchmark.split = split
    return config

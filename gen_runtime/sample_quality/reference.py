"""Reference statistics of a data set and where they are cached.

A statistics file (.npz) holds the mean and covariance of the Inception pool_3 features of the
reference images, a uniform random subset of the feature vectors (for KID and precision/recall) and,
as JSON, which images they are (data section of the config, split, levels, subset) and how they were
preprocessed, with the fingerprint of the Inception weights. `reference_stats.py` writes them.
"""

import os
import re
from dataclasses import dataclass

import ml_collections
import numpy as np

from gen_runtime.data import data_set_name
from gen_runtime.errors import DataError
from gen_runtime.sample_quality.npz_file import read_npz, write_npz
from gen_runtime.sample_quality.weights import cache_dir

COMMAND = 'python -m gen_runtime.sample_quality.reference_stats'


@dataclass
class ReferenceStats:
    """Statistics of the Inception pool_3 features of a reference image set."""

    mean: np.ndarray  # (2048,) float64
    covariance: np.ndarray  # (2048, 2048) float64, unbiased
    features: np.ndarray  # (min(num_images, kept), 2048) float32, a uniform random subset
    num_images: int
    meta: dict  # data set, split, preprocessing, Inception fingerprint, command, date

    def save(self, path: str) -> str:
        arrays = {'mean': self.mean, 'covariance': self.covariance, 'features': self.features,
                  'num_images': np.asarray(self.num_images)}
        return write_npz(path, arrays, self.meta)

    @classmethod
    def load(cls, path: str) -> 'ReferenceStats':
        remedy = (f'compute them with `{COMMAND} --config <your config> --out {path}` (or --dataset '
                  'mnist|cifar10|celebahq), or set eval.reference_stats')
        arrays, meta = read_npz(path, 'reference statistics', remedy, DataError)
        try:
            return cls(mean=arrays['mean'], covariance=arrays['covariance'], features=arrays['features'],
                       num_images=int(arrays['num_images']), meta=meta)
        except KeyError as e:
            raise DataError(f'{path} lacks {e} of reference statistics; {remedy}') from e


def data_description(config: ml_collections.ConfigDict, split: str) -> dict:
    """The fields of `config.data` that decide which images the statistics describe."""
    data = config.data
    files = data.source in ('npz', 'image_folder')
    return {'source': data.source, 'name': data.name if data.source == 'tfds' else '',
            'path': data.path if files else '', 'split': split,
            'image_size': data.image_size, 'num_channels': data.num_channels, 'max_examples': data.max_examples}


def default_reference_path(config: ml_collections.ConfigDict, split: str, random_subset: int = 0) -> str:
    """<cache>/reference_stats/<source>-<data set>-<split>-<size>-<channels>.npz for `config.data`;
    statistics of a random subset get a '-random<N>' suffix (evaluation only uses them when named)."""
    data = config.data
    parts = [data.source, data_set_name(data), split, f'{data.image_size or "native"}px', f'{data.num_channels}ch']
    if data.max_examples:
        parts.append(f'first{data.max_examples}')
    if random_subset:
        parts.append(f'random{random_subset}')
    name = re.sub(r'[^A-Za-z0-9_.-]+', '_', '-'.join(parts))
    return os.path.join(cache_dir(), 'reference_stats', name + '.npz')


def reference_path(config: ml_collections.ConfigDict) -> str:
    """`config.eval.reference_stats`, or the default file of config.data and eval.reference_split."""
    configured = os.path.expanduser(config.eval.reference_stats)
    return configured or default_reference_path(config, config.eval.reference_split)

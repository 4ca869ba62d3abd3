"""Computes reference statistics of a data set: Inception feature mean and covariance, a random subset of the
feature vectors (for KID and precision/recall), and how the images were read and preprocessed.

    python -m gen_runtime.sample_quality.reference_stats --dataset cifar10 [--split train] [--out PATH]
    python -m gen_runtime.sample_quality.reference_stats --config configs/<family>/<file>.py [--split train]
    python -m gen_runtime.sample_quality.reference_stats --compare A.npz B.npz   # FID (KID, P/R) between two files

`--dataset` names a preset of the shared data folder ($JAXGEN_DATA_ROOT): mnist (npz), cifar10 (the
JPEG tgz), celebahq (the folder of CelebA-HQ jpgs, resized to 256) or digits (scikit-learn's, no data
root needed). `--config` takes the `data` section of any config, so statistics match the images a
family trains on; without `--out` the file goes where `evaluate_samples` looks for it by default.
Images are read with gen_runtime.data.load_dataset, mapped to [0, 1] as n / (levels - 1) (no
dequantisation, no flips) and go through exactly the preprocessing of the samples (preprocess.py).
"""

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence

import ml_collections
import numpy as np

from gen_runtime.config import load_config_file, resolve_data_path
from gen_runtime.data import Dataset, load_dataset
from gen_runtime.errors import ConfigError, DataError
from gen_runtime.sample_quality import metrics
from gen_runtime.sample_quality.command import run_command
from gen_runtime.sample_quality.features import FeatureExtractor, with_progress
from gen_runtime.sample_quality.preprocess import __doc__ as PREPROCESS_DOC
from gen_runtime.sample_quality.reference import ReferenceStats, data_description, default_reference_path
from gen_runtime.sample_quality.statistics import accumulate
from gen_runtime.sample_quality.weights import load_weights, weights_path

# Data sections of the data sets in the shared data folder (fields as in configs/common.py).
PRESETS = {
    'digits': {'source': 'digits', 'num_channels': 1},
    'mnist': {'source': 'npz', 'path': 'mnist/mnist.npz', 'num_channels': 1},
    'cifar10': {'source': 'image_folder', 'path': 'cifar10/cifar10_jpeg.tgz', 'num_channels': 3},
    'celebahq': {'source': 'image_folder', 'path': 'celebahq_samples', 'image_size': 256, 'num_channels': 3},
}


def _image_batches(dataset: Dataset, indices: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Images of `indices` in [0, 1]: n / (levels - 1), as the samples' data was scaled."""
    for start in range(0, len(indices), batch_size):
        images = dataset.gather(indices[start:start + batch_size])['image']
        yield images.astype(np.float32) / (dataset.levels - 1)


def compute_reference_stats(config: ml_collections.ConfigDict, split: str, *, max_images: int = 0,
                            progress: bool = True) -> ReferenceStats:
    """Statistics of `split` of the data set `config.data` describes (a seeded random subset of
    `max_images` images if > 0), with the weights and settings of `config.eval`."""
    weights = load_weights(weights_path(config))
    dataset = load_dataset(config, split)
    indices = np.arange(len(dataset))
    if 0 < max_images < len(dataset):
        indices = np.sort(np.random.default_rng(config.seed).choice(len(dataset), max_images, replace=False))
    extractor = FeatureExtractor(weights, config.eval.batch_size)
    batches = _image_batches(dataset, indices, config.eval.batch_size)
    batches = with_progress(batches, len(indices), f'reference statistics ({split})', progress)
    stats = accumulate(extractor.stream(batches), keep_features=config.eval.max_features, seed=config.seed)
    data = data_description(config, split)
    if data['path']:
        data['resolved_path'] = os.path.abspath(resolve_data_path(config, data['path']))
    meta = {
        'data': data,
        'levels': int(dataset.levels),
        'subset': {'max_images': max_images, 'seed': config.seed} if len(indices) < len(dataset) else None,
        'scaling': 'x = n / (levels - 1); no dequantisation, no flips',
        'preprocess': ' '.join(PREPROCESS_DOC.split()),
        'inception_fingerprint': weights.fingerprint,
        'command': ' '.join([os.path.basename(sys.executable), '-m', __spec__.name if __spec__ else __name__,
                             *sys.argv[1:]]),
        'created': time.strftime('%Y-%m-%d %H:%M:%S'),
    }
    return ReferenceStats(mean=stats.moments.mean, covariance=stats.moments.covariance,
                          features=stats.features.rows.copy(), num_images=stats.count, meta=meta)


def compare(path_a: str, path_b: str, pr_k: int = 3, kid_subsets: int = 100, kid_subset_size: int = 1000) -> dict:
    """FID between two statistics files; KID and precision/recall on their kept features when enough."""
    a, b = ReferenceStats.load(path_a), ReferenceStats.load(path_b)
    if a.meta.get('inception_fingerprint') != b.meta.get('inception_fingerprint'):
        raise DataError(f'{path_a} and {path_b} were computed with different Inception weights')
    out = {'fid': metrics.frechet_distance(a.mean, a.covariance, b.mean, b.covariance),
           'num_images_a': a.num_images, 'num_images_b': b.num_images}
    subset = min(kid_subset_size, len(a.features), len(b.features))
    if subset >= 2:
        out['kid'], out['kid_std'] = metrics.kernel_inception_distance(a.features, b.features, kid_subsets, subset)
        out['kid_subset_size'] = subset
    if min(len(a.features), len(b.features)) > pr_k:
        out['precision'], out['recall'] = metrics.precision_recall(a.features, b.features, pr_k)
    return out


def config_for(args: argparse.Namespace) -> ml_collections.ConfigDict:
    """The config whose `data` and `eval` sections the command uses."""
    if bool(args.config) == bool(args.dataset):
        raise ConfigError('pass exactly one of --config <file.py[:variant]> and --dataset '
                          f'{"|".join(PRESETS)}')
    if args.config:
        config = load_config_file(args.config)
    else:
        from configs import common  # the repo root is on sys.path when run as `python -m` from it

        config = common.get_config()
        config.data.update(PRESETS[args.dataset])
    with config.unlocked():
        if args.batch_size:
            config.eval.batch_size = args.batch_size
        if args.inception:
            config.eval.inception_path = args.inception
        if args.max_features:
            config.eval.max_features = args.max_features
    return config


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--dataset', choices=sorted(PRESETS), default='', help='a data set of the shared data folder')
    parser.add_argument('--config', default='', help='a config file whose data section names the data set')
    parser.add_argument('--split', default='', help='split to describe (default: eval.reference_split)')
    parser.add_argument('--out', default='', help='output .npz (default: the cache file evaluation looks for)')
    parser.add_argument('--max_images', type=int, default=0, help='use a seeded random subset of this many images')
    parser.add_argument('--max_features', type=int, default=0, help='feature vectors kept for KID and P/R '
                        '(default: eval.max_features)')
    parser.add_argument('--batch_size', type=int, default=0,
                        help='images per Inception call (default: eval.batch_size)')
    parser.add_argument('--inception', default='', help='converted Inception weights (default: eval.inception_path)')
    parser.add_argument('--compare', nargs=2, metavar=('A', 'B'), help='print FID/KID/P-R between two statistics '
                        'files (P/R of B against reference A) and exit')
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> str:
    """Carries out the command; returns what it prints."""
    if args.compare:
        return json.dumps(compare(*args.compare), indent=2)
    config = config_for(args)
    split = args.split or config.eval.reference_split
    stats = compute_reference_stats(config, split, max_images=args.max_images)
    subset = args.max_images if stats.meta['subset'] else 0
    path = stats.save(args.out or default_reference_path(config, split, subset))
    return f'wrote {path} ({stats.num_images} images)'


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    run_command(lambda: run(args))


if __name__ == '__main__':
    main()

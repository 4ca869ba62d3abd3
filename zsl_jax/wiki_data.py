"""The CUB / NABirds Wikipedia-text benchmark as GAZSL and CIZSL ship it.

Per data set and split (easy = super-category-shared (SCS), hard = super-category-exclusive (SCE)):
`train_test_split_*.mat` (1-based `train_cid`, `test_cid`), label pickles (0-based positions in
those lists), 3584-d visual features `pfc_feat_*.mat` (key `pfc_feat`, the user's copy) and the
TF-IDF class matrix (`PredicateMatrix`, rows = class ids - 1).
"""

import dataclasses
import os

import ml_collections
import numpy as np

from gen_runtime.config import resolve_data_path
from gen_runtime.errors import ConfigError, DataError
from zsl_jax import files
from zsl_jax.problem import ZslProblem, hold_out_last_classes


@dataclasses.dataclass(frozen=True)
class WikiSplit:
    """File names of one data set and split, and the classes CIZSL holds out for validation."""

    split_file: str
    labels_train: str
    labels_test: str
    features_train: str
    features_test: str
    val_unseen: int  # classes of the seen set held out as unseen in CIZSL's validation split


SPLITS = {
    ('CUB', 'easy'): WikiSplit('train_test_split_easy.mat', 'labels_train.pkl', 'labels_test.pkl',
                               'pfc_feat_train.mat', 'pfc_feat_test.mat', 30),
    ('CUB', 'hard'): WikiSplit('train_test_split_hard.mat', 'labels_train_hard.pkl', 'labels_test_hard.pkl',
                               'pfc_feat_train_hard.mat', 'pfc_feat_test_hard.mat', 30),
    ('NAB', 'easy'): WikiSplit('train_test_split_NABird_easy.mat', 'labels_train.pkl', 'labels_test.pkl',
                               'pfc_feat_train_easy.mat', 'pfc_feat_test_easy.mat', 65),
    ('NAB', 'hard'): WikiSplit('train_test_split_NABird_hard.mat', 'labels_train_hard.pkl', 'labels_test_hard.pkl',
                               'pfc_feat_train_hard.mat', 'pfc_feat_test_hard.mat', 65),
}
# The originals' TF-IDF class matrices (not distributed here; see docs/zsl.md for rebuilding one).
DEFAULT_TEXT = {'CUB': 'CUB_Porter_7551D_TFIDF_new.mat', 'NAB': 'NAB_Porter_13217D_TFIDF_new.mat'}


def wiki_split(benchmark: ml_collections.ConfigDict) -> WikiSplit:
    key = (benchmark.dataset, benchmark.split)
    if key not in SPLITS:
        raise ConfigError(f'benchmark.dataset={benchmark.dataset!r} with benchmark.split={benchmark.split!r} is '
                          "not a Wikipedia benchmark; use dataset 'CUB' or 'NAB' with split 'easy' or 'hard'")
    return SPLITS[key]


def read_split(path: str) -> tuple[np.ndarray, np.ndarray]:
    """(train_cid, test_cid): 1-based class ids of the seen and unseen classes."""
    mat = files.load_mat(path, ('train_cid', 'test_cid'), 'split file', 'check data.path and benchmark.split')
    return mat['train_cid'].reshape(-1).astype(np.int64), mat['test_cid'].reshape(-1).astype(np.int64)


def normalize_like_gazsl(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """(x - mean) / var with the scalar mean and variance of all training entries, as the originals do.

    Note the division by the variance, not the standard deviation: that is the published code.
    """
    mean, var = train.mean(dtype=np.float64), train.var(dtype=np.float64)
    if not var > 0:
        raise DataError('the training visual features are constant; check the feature file')
    return [((x - mean) / var).astype(np.float32) for x in (train, *others)]


def load_wiki_problem(config: ml_collections.ConfigDict, stage: str) -> ZslProblem:
    """The benchmark for `stage` 'final' (all seen classes, test on unseen) or 'validation'.

    The validation stage is CIZSL's `is_val` split: train on the first seen classes, treat the last
    `val_unseen` seen classes (their training images) as unseen.
    """
    bench = config.benchmark
    split = wiki_split(bench)
    root = resolve_data_path(config, config.data.path)
    features_dir = resolve_data_path(config, bench.features_dir) if bench.features_dir else root
    train_cid, test_cid = read_split(os.path.join(root, split.split_file))
    labels_train = files.load_label_pickle(os.path.join(root, split.labels_train))
    text_path = files.resolve_in(root, bench.text_path or DEFAULT_TEXT[bench.dataset])
    seen_text = files.load_class_features(text_path, train_cid)
    what = f'{bench.dataset} {bench.split} visual feature file'
    features_train = files.load_mat(os.path.join(features_dir, split.features_train), ('pfc_feat',), what,
                                    files.GAZSL_DATA_HINT)['pfc_feat'].astype(np.float32)
    name = f'{bench.dataset}-wiki {bench.split}'
    if stage == 'validation':
        num_val = bench.val_unseen or split.val_unseen
        seen = labels_train < len(train_cid) - num_val
        _, features = normalize_like_gazsl(features_train[seen], features_train)
        return hold_out_last_classes(name, features, labels_train, seen_text, num_val)
    if stage != 'final':
        raise ValueError(f'unknown stage {stage!r}')
    labels_test = files.load_label_pickle(os.path.join(root, split.labels_test))
    features_test = files.load_mat(os.path.join(features_dir, split.features_test), ('pfc_feat',), what,
                                   files.GAZSL_DATA_HINT)['pfc_feat'].astype(np.float32)
    unseen_text = files.load_class_features(text_path, test_cid)
    features_train, features_test = normalize_like_gazsl(features_train, features_test)
    # Seen accuracy of the generalised sweep is measured on the training images, as in the originals.
    return ZslProblem(name=name, train_features=features_train, train_labels=labels_train, seen_text=seen_text,
                      unseen_text=unseen_text, unseen_features=features_test, unseen_labels=labels_test,
                      seen_test_features=features_train, seen_test_labels=labels_train).checked()

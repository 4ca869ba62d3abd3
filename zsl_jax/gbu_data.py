"""The attribute benchmark of Xian et al. ("the Good, the Bad and the Ugly", xlsa17) as GAZSL uses it.

`<DS>_att_splits.mat` holds the class attributes `att` (dims x classes) and 1-based image indices
`trainval_loc`, `test_seen_loc`, `test_unseen_loc` (some copies also `train_loc`/`val_loc`);
`res101.mat` (the user's copy) holds ResNet-101 `features` (2048 x images) and 1-based `labels`.
"""

import os

import ml_collections
import numpy as np

from gen_runtime.config import resolve_data_path
from gen_runtime.errors import ConfigError, DataError
from zsl_jax import files
from zsl_jax.problem import ZslProblem

# Validation classes of the proposed splits (Xian et al., Table 1: train + val = the seen classes),
# held out when a splits file has no train_loc/val_loc.
GBU_VAL_CLASSES = {'AWA1': 13, 'AWA2': 13, 'CUB': 50, 'SUN': 65, 'APY': 5, 'FLO': 20}


def splits_path(config: ml_collections.ConfigDict) -> str:
    root = resolve_data_path(config, config.data.path)
    name = config.benchmark.dataset
    flat, nested = os.path.join(root, f'{name}_att_splits.mat'), os.path.join(root, name, 'att_splits.mat')
    return nested if os.path.isfile(nested) and not os.path.isfile(flat) else flat


def features_path(config: ml_collections.ConfigDict) -> str:
    bench = config.benchmark
    folder = resolve_data_path(config, bench.features_dir or config.data.path)
    nested = os.path.join(folder, bench.dataset, 'res101.mat')
    flat = os.path.join(folder, f'{bench.dataset}_res101.mat')
    return flat if os.path.isfile(flat) and not os.path.isfile(nested) else nested


def minmax_like_gazsl(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """`--preprocessing` of train_GBU.py: per-dimension min-max scaling fit on the training features,
    then everything divided by the largest scaled training value."""
    low, high = train.min(0), train.max(0)
    scale = np.where(high > low, high - low, 1.0)
    scaled = [(x - low) / scale for x in (train, *others)]
    top = scaled[0].max()
    return [(x / top).astype(np.float32) for x in scaled]


def _relabel(labels: np.ndarray, classes: np.ndarray) -> np.ndarray:
    return np.searchsorted(classes, labels).astype(np.int32)


def load_gbu_problem(config: ml_collections.ConfigDict, stage: str) -> ZslProblem:
    """The benchmark for `stage` 'final' (trainval -> test) or 'validation'.

    Validation uses the file's train_loc/val_loc when it has them; otherwise it holds out
    `val_unseen` (default: the proposed split's number) of the seen classes, chosen by
    `benchmark.val_seed`. In validation, `val_seen_fraction` of the seen-class training images are
    kept apart to measure seen accuracy.
    """
    bench = config.benchmark
    if bench.dataset not in GBU_VAL_CLASSES:
        raise ConfigError(f'benchmark.dataset={bench.dataset!r} is not an xlsa17 data set; choose one of '
                          f'{", ".join(GBU_VAL_CLASSES)}')
    if bench.preprocessing not in ('minmax', 'none'):
        raise ConfigError(f"benchmark.preprocessing={bench.preprocessing!r} is not 'minmax' or 'none'")
    split_file = splits_path(config)
    splits = files.load_mat(split_file, ('att', 'trainval_loc', 'test_seen_loc', 'test_unseen_loc'),
                            'xlsa17 splits file', 'check data.path and benchmark.dataset')
    text = (splits['att'].T.astype(np.float32) if not bench.text_path else files.load_class_features(
        files.resolve_in(os.path.dirname(split_file), bench.text_path), np.arange(1, splits['att'].shape[1] + 1)))
    mat = files.load_mat(features_path(config), ('features', 'labels'), f'{bench.dataset} visual feature file',
                         files.GBU_DATA_HINT)
    features = np.asarray(mat['features'], np.float32).T
    labels = mat['labels'].reshape(-1).astype(np.int64) - 1
    if len(features) != len(labels):
        raise DataError(f'{features_path(config)}: {len(features)} feature columns but {len(labels)} labels')

    def loc(key: str) -> np.ndarray:
        index = splits[key].reshape(-1).astype(np.int64) - 1
        if index.max() >= len(labels):
            raise DataError(f'{split_file}: {key} indexes image {index.max() + 1}, but the feature file has '
                            f'{len(labels)} images; the two files are of different data sets')
        return index

    name = f'{bench.dataset} (xlsa17)'
    rng = np.random.default_rng(bench.val_seed)
    if stage == 'final':
        train, unseen, seen_test = loc('trainval_loc'), loc('test_unseen_loc'), loc('test_seen_loc')
    elif stage == 'validation':
        name += ' (validation)'
        if 'train_loc' in splits and 'val_loc' in splits:
            train, unseen = loc('train_loc'), loc('val_loc')
        else:
            trainval = loc('trainval_loc')
            seen_classes = np.unique(labels[trainval])
            val_classes = rng.permutation(seen_classes)[:bench.val_unseen or GBU_VAL_CLASSES[bench.dataset]]
            is_val = np.isin(labels[trainval], val_classes)
            train, unseen = trainval[~is_val], trainval[is_val]
        held_out = rng.random(len(train)) < bench.val_seen_fraction
        train, seen_test = train[~held_out], train[held_out]
    else:
        raise ValueError(f'unknown stage {stage!r}')
    seen_classes, unseen_classes = np.unique(labels[train]), np.unique(labels[unseen])
    x_train, x_unseen, x_seen = features[train], features[unseen], features[seen_test]
    if bench.preprocessing == 'minmax':
        x_train, x_unseen, x_seen = minmax_like_gazsl(x_train, x_unseen, x_seen)
    return ZslProblem(name=name, train_features=x_train, train_labels=_relabel(labels[train], seen_classes),
                      seen_text=text[seen_classes], unseen_text=text[unseen_classes],
                      unseen_features=x_unseen, unseen_labels=_relabel(labels[unseen], unseen_classes),
                      seen_test_features=x_seen, seen_test_labels=_relabel(labels[seen_test], seen_classes)
                      ).checked()

"""Loaders on the real split, label, text and attribute files, paired with generated visual features.

The visual features (pfc_feat_*.mat, res101.mat) are not distributed, so each test writes random
features with the real row counts (3584 columns for CUB easy, fewer elsewhere to stay fast).
"""

import os
import pickle
import shutil

import numpy as np
import pytest
import scipy.io

from configs.zsl import base, gazsl_gbu, gazsl_nab
from gen_runtime.errors import DataError
from zsl_jax.data import load_problem
from zsl_jax.gbu_data import minmax_like_gazsl
from zsl_jax.wiki_data import SPLITS, normalize_like_gazsl

WIKI = 'zsl/cub_nab_wiki'
HUMAN_TFIDF = 'CUB_Porter_7551D_TFIDF_new_HUMAN.mat'  # the one CUB TF-IDF matrix that is shipped (200 x 1272)


def _labels(folder, name):
    with open(os.path.join(folder, name), 'rb') as f:
        return np.asarray(pickle.load(f, encoding='latin1'))


def _write_wiki_features(data_root, tmp_path, dataset, split, dim, seed=0):
    folder = os.path.join(data_root, WIKI, 'CUB2011' if dataset == 'CUB' else 'NABird')
    files = SPLITS[(dataset, split)]
    rng = np.random.default_rng(seed)
    out = {}
    for labels_name, features_name in ((files.labels_train, files.features_train),
                                       (files.labels_test, files.features_test)):
        n = len(_labels(folder, labels_name))
        out[features_name] = rng.uniform(0, 3, (n, dim)).astype(np.float32)
        scipy.io.savemat(os.path.join(tmp_path, features_name), {'pfc_feat': out[features_name]})
    return folder, out


def _wiki_config(data_root, tmp_path, dataset='CUB', split='easy'):
    config = base.get_config() if dataset == 'CUB' else gazsl_nab.get_config(split)
    config.data.root = str(data_root)
    config.benchmark.split = split
    config.benchmark.features_dir = str(tmp_path)
    return config


def test_cub_easy_final_and_validation_splits(data_root, tmp_path):
    folder, features = _write_wiki_features(data_root, tmp_path, 'CUB', 'easy', 3584)
    config = _wiki_config(data_root, tmp_path)
    config.benchmark.text_path = HUMAN_TFIDF
    final = load_problem(config, 'final')
    assert (final.num_seen, final.num_unseen, final.feature_dim, final.text_dim) == (150, 50, 3584, 1272)
    assert final.train_features.shape == (8855, 3584) and final.unseen_features.shape == (2933, 3584)
    split = scipy.io.loadmat(os.path.join(folder, 'train_test_split_easy.mat'))
    matrix = scipy.io.loadmat(os.path.join(folder, HUMAN_TFIDF))['PredicateMatrix']
    np.testing.assert_allclose(final.seen_text, matrix[split['train_cid'].ravel() - 1], rtol=1e-6)
    np.testing.assert_allclose(final.unseen_text, matrix[split['test_cid'].ravel() - 1], rtol=1e-6)
    raw = features['pfc_feat_train.mat']
    mean, var = raw.mean(dtype=np.float64), raw.var(dtype=np.float64)
    np.testing.assert_allclose(final.train_features[::97], (raw[::97] - mean) / var, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(final.unseen_features[::97], (features['pfc_feat_test.mat'][::97] - mean) / var,
                               rtol=1e-5, atol=1e-6)
    # The generalised evaluation measures seen accuracy on the training images, as the originals do.
    assert final.seen_test_features is final.train_features
    np.testing.assert_allclose(final.centroids()[3], final.train_features[final.train_labels == 3].mean(0),
                               rtol=1e-5, atol=1e-6)

    val = load_problem(config, 'validation')  # CIZSL's is_val split: 120 seen, 30 held out
    assert (val.num_seen, val.num_unseen) == (120, 30)
    assert len(val.train_labels) + len(val.unseen_labels) == 8855
    assert val.unseen_labels.max() == 29 and val.train_labels.max() == 119
    np.testing.assert_allclose(val.unseen_text, final.seen_text[120:])


@pytest.mark.parametrize('dataset,split,seen,unseen,val_unseen', [
    ('CUB', 'hard', 160, 40, 30), ('NAB', 'easy', 323, 81, 65), ('NAB', 'hard', 323, 81, 65)])
def test_other_wiki_splits(data_root, tmp_path, dataset, split, seen, unseen, val_unseen):
    _write_wiki_features(data_root, tmp_path, dataset, split, 8)
    config = _wiki_config(data_root, tmp_path, dataset, split)
    rng = np.random.default_rng(0)  # the NABirds TF-IDF matrix is not shipped: a generated one of its size
    num_classes = 404 if dataset == 'NAB' else 200
    text = os.path.join(tmp_path, 'text.npz')
    np.savez(text, features=rng.uniform(size=(num_classes, 5)), class_ids=np.arange(1, num_classes + 1))
    config.benchmark.text_path = text
    final = load_problem(config, 'final')
    assert (final.num_seen, final.num_unseen) == (seen, unseen)
    val = load_problem(config, 'validation')
    assert (val.num_seen, val.num_unseen) == (seen - val_unseen, val_unseen)


def test_missing_visual_features_say_where_to_get_them(data_root, tmp_path):
    config = _wiki_config(data_root, tmp_path)
    config.benchmark.text_path = HUMAN_TFIDF
    with pytest.raises(DataError, match=r'pfc_feat_train\.mat does not exist.*ZSL_GAN'):
        load_problem(config, 'final')
    config.benchmark.text_path = ''
    with pytest.raises(DataError, match=r'CUB_Porter_7551D_TFIDF_new\.mat does not exist.*text_path'):
        load_problem(config, 'final')


def test_features_of_the_wrong_split_are_refused(data_root, tmp_path):
    _write_wiki_features(data_root, tmp_path, 'CUB', 'hard', 4)
    shutil.copy(os.path.join(tmp_path, 'pfc_feat_test_hard.mat'), os.path.join(tmp_path, 'pfc_feat_test.mat'))
    shutil.copy(os.path.join(tmp_path, 'pfc_feat_train_hard.mat'), os.path.join(tmp_path, 'pfc_feat_train.mat'))
    config = _wiki_config(data_root, tmp_path)
    config.benchmark.text_path = HUMAN_TFIDF
    with pytest.raises(DataError, match='feature rows but .* labels'):
        load_problem(config, 'final')


def test_normalisations_of_the_originals():
    train, test = np.array([[0.0, 2.0], [4.0, 6.0]]), np.array([[3.0, 3.0]])
    a, b = normalize_like_gazsl(train, test)  # mean 3, variance 5 over all entries
    np.testing.assert_allclose(a, (train - 3) / 5)
    np.testing.assert_allclose(b, [[0.0, 0.0]])
    a, b = minmax_like_gazsl(np.array([[1.0, 5.0], [3.0, 5.0]]), np.array([[2.0, 6.0]]))
    np.testing.assert_allclose(a, [[0.0, 0.0], [1.0, 0.0]])  # a constant column keeps scale 1
    np.testing.assert_allclose(b, [[0.5, 1.0]])


def _write_res101(data_root, tmp_path, dataset, dim=6):
    splits = scipy.io.loadmat(os.path.join(data_root, 'zsl/xlsa17', f'{dataset}_att_splits.mat'))
    locs = np.concatenate([splits[k].ravel() for k in ('trainval_loc', 'test_seen_loc', 'test_unseen_loc')])
    n = int(locs.max())
    # Labels consistent with the split: the classes of test_unseen_loc are unseen; give every image a class
    # by its position (a generated labelling with the split's structure).
    labels = np.zeros(n, np.int64)
    num_classes = splits['att'].shape[1]
    unseen_classes = np.arange(num_classes)[-10:] if dataset != 'SUN' else np.arange(num_classes)[-72:]
    seen_classes = np.setdiff1d(np.arange(num_classes), unseen_classes)
    rng = np.random.default_rng(0)
    labels[splits['test_unseen_loc'].ravel() - 1] = rng.choice(unseen_classes, len(splits['test_unseen_loc']))
    for key in ('trainval_loc', 'test_seen_loc'):
        index = splits[key].ravel() - 1
        labels[index] = seen_classes[np.arange(len(index)) % len(seen_classes)]
    os.makedirs(os.path.join(tmp_path, dataset), exist_ok=True)
    scipy.io.savemat(os.path.join(tmp_path, dataset, 'res101.mat'),
                     {'features': rng.uniform(0, 5, (dim, n)).astype(np.float32), 'labels': labels[:, None] + 1})
    return splits, len(seen_classes), len(unseen_classes)


@pytest.mark.parametrize('dataset', ['AWA2', 'AWA1'])
def test_gbu_attribute_splits(data_root, tmp_path, dataset):
    splits, num_seen, num_unseen = _write_res101(data_root, tmp_path, dataset)
    config = gazsl_gbu.get_config(dataset)
    config.data.root = str(data_root)
    config.benchmark.features_dir = str(tmp_path)
    final = load_problem(config, 'final')
    assert (final.num_seen, final.num_unseen, final.text_dim) == (num_seen, num_unseen, 85)
    assert len(final.train_labels) == len(splits['trainval_loc'])
    assert len(final.seen_test_labels) == len(splits['test_seen_loc'])
    assert final.train_features.min() == 0.0 and final.train_features.max() == 1.0  # min-max, then / max
    val = load_problem(config, 'validation')
    if 'val_loc' in splits:  # AWA1's copy ships train_loc/val_loc
        assert len(val.unseen_labels) == len(splits['val_loc'])
    else:  # AWA2's does not: 13 of the seen classes are held out (the proposed split's validation classes)
        assert (val.num_seen, val.num_unseen) == (num_seen - 13, 13)
    held_out = len(val.seen_test_labels) / (len(val.seen_test_labels) + len(val.train_labels))
    assert held_out == pytest.approx(config.benchmark.val_seen_fraction, abs=0.02)


def test_gbu_missing_features(data_root, tmp_path):
    config = gazsl_gbu.get_config('SUN')
    config.data.root = str(data_root)
    config.benchmark.features_dir = str(tmp_path)
    with pytest.raises(DataError, match=r'SUN/res101\.mat does not exist.*xlsa17'):
        load_problem(config, 'final')

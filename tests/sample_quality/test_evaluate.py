"""evaluate_samples and the reference-statistics command end to end on scikit-learn's 8x8 digits."""

import importlib
import json
import os
import tarfile

import numpy as np
import pytest
from sklearn.datasets import load_digits

from configs import common
from gen_runtime.config import resolve_data_path
from gen_runtime.data import load_dataset
from gen_runtime.errors import ConfigError, DataError, NonFiniteError
from gen_runtime.sample_quality import evaluate_samples, metrics, reference_stats
from gen_runtime.sample_quality.features import FeatureExtractor
from gen_runtime.sample_quality.reference import COMMAND, ReferenceStats, data_description, default_reference_path
from gen_runtime.sample_quality.weights import load_weights
from tests.sample_quality.test_metrics import hand_inception_score


def eval_config(weights: str, reference: str, metrics_: str = 'fid,kid,is,pr'):
    config = common.get_config()
    config.data.source = 'digits'
    config.eval.update(num_samples=8, batch_size=4, metrics=metrics_, reference_stats=reference,
                       inception_path=weights, kid_subsets=3, kid_subset_size=5, is_splits=2, pr_k=2,
                       max_features=100)
    config.runtime.progress_bar = False
    return config


def generated_images() -> np.ndarray:
    """Eight 'samples': digits of the test rows (1500+), in [0, 1]."""
    return (load_digits().images[1500:1508, :, :, None] / 16.0).astype(np.float32)


@pytest.fixture(scope='module')
def reference_file(tmp_path_factory, weights_with_logits_file) -> str:
    """Statistics of 8 random training digits, written by the command's main()."""
    out = str(tmp_path_factory.mktemp('reference') / 'digits.npz')
    reference_stats.main(['--dataset', 'digits', '--split', 'train', '--max_images', '8', '--batch_size', '4',
                          '--inception', weights_with_logits_file, '--out', out])
    return out


@pytest.mark.slow
def test_reference_stats_record_data_and_preprocessing(reference_file, weights_with_logits_file):
    stats = ReferenceStats.load(reference_file)
    assert stats.num_images == 8 and stats.features.shape == (8, 2048)
    np.testing.assert_allclose(stats.mean, stats.features.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats.covariance, np.cov(stats.features.astype(np.float64), rowvar=False), atol=1e-6)
    assert stats.meta['data']['source'] == 'digits' and stats.meta['data']['split'] == 'train'
    assert stats.meta['levels'] == 17 and stats.meta['subset'] == {'max_images': 8, 'seed': 0}
    assert 'ResizeBilinear' in stats.meta['preprocess']
    assert stats.meta['inception_fingerprint'] == load_weights(weights_with_logits_file).fingerprint


@pytest.mark.slow
def test_evaluate_samples_streams_and_equals_direct_computation(tmp_path, reference_file, weights_with_logits_file):
    config = eval_config(weights_with_logits_file, reference_file)
    images = generated_images()
    results = evaluate_samples(config, str(tmp_path), iter(np.split(images, [3, 7])))  # uneven batches
    assert json.loads((tmp_path / 'eval_metrics.json').read_text()) == results

    pool3, logits = FeatureExtractor(load_weights(weights_with_logits_file), batch_size=4)(images)
    ref = ReferenceStats.load(reference_file)
    features = pool3.astype(np.float64)
    assert results['num_samples'] == 8
    assert results['fid'] == pytest.approx(metrics.frechet_distance(
        features.mean(axis=0), np.cov(features, rowvar=False), ref.mean, ref.covariance), rel=1e-6)
    kid = metrics.kernel_inception_distance(ref.features, pool3, 3, 5, seed=config.seed)
    assert (results['kid'], results['kid_std']) == pytest.approx(kid, rel=1e-5, abs=1e-9)
    inception_score = hand_inception_score(logits.astype(np.float64), 2)
    assert (results['inception_score'], results['inception_score_std']) == pytest.approx(inception_score, rel=1e-6)
    assert (results['precision'], results['recall']) == metrics.precision_recall(ref.features, pool3, 2)
    assert results['fid'] > 1.0  # test digits are not the 8 training digits

    # The reference images themselves as samples: FID 0 up to float32 feature round-off.
    same = eval_config(weights_with_logits_file, reference_file, 'fid,pr')
    identical = evaluate_samples(same, str(tmp_path), [_training_reference_images()])
    assert abs(identical['fid']) < 1e-2 and identical['precision'] == identical['recall'] == 1.0


def _training_reference_images() -> np.ndarray:
    """The 8 training digits the reference statistics were computed from (same seeded subset)."""
    indices = np.sort(np.random.default_rng(0).choice(1500, 8, replace=False))
    return (load_digits().images[indices, :, :, None] / 16.0).astype(np.float32)


@pytest.mark.slow
def test_compare_command_gives_zero_fid_for_the_same_file(reference_file, capsys):
    reference_stats.main(['--compare', reference_file, reference_file])
    out = json.loads(capsys.readouterr().out)
    assert abs(out['fid']) < 1e-3 and out['precision'] == out['recall'] == 1.0


def test_configuration_and_input_errors(tmp_path, weights_file, weights_with_logits_file):
    images = [generated_images()]
    with pytest.raises(ConfigError, match='eval.metrics'):
        evaluate_samples(eval_config(weights_file, '', 'fid,lpips'), str(tmp_path), images)
    with pytest.raises(ConfigError, match='no 1008-way classifier'):
        evaluate_samples(eval_config(weights_file, '', 'is'), str(tmp_path), images)
    with pytest.raises(DataError, match=COMMAND):
        evaluate_samples(eval_config(weights_file, str(tmp_path / 'absent.npz'), 'fid'), str(tmp_path), images)
    config = eval_config(weights_with_logits_file, '', 'kid')
    config.eval.kid_subset_size = 50
    with pytest.raises(ConfigError, match='kid_subset_size=50'):
        evaluate_samples(config, str(tmp_path), images)
    nan_batch = generated_images()
    nan_batch[0, 0, 0, 0] = np.nan
    with pytest.raises(NonFiniteError, match='NaN'):
        evaluate_samples(eval_config(weights_with_logits_file, '', 'is'), str(tmp_path), [nan_batch])
    with pytest.raises(DataError, match='NHWC'):
        evaluate_samples(eval_config(weights_with_logits_file, '', 'is'), str(tmp_path), [np.zeros((2, 8, 8))])


def test_reference_from_other_weights_is_rejected(tmp_path, weights_with_logits_file):
    fake = ReferenceStats(mean=np.zeros(2048), covariance=np.eye(2048), features=np.zeros((20, 2048), np.float32),
                          num_images=20, meta={'inception_fingerprint': 'other'})
    path = fake.save(str(tmp_path / 'other.npz'))
    with pytest.raises(DataError, match='other Inception weights'):
        evaluate_samples(eval_config(weights_with_logits_file, path, 'fid'), str(tmp_path), [generated_images()])


@pytest.mark.data
def test_dataset_presets_point_at_the_shared_data(data_root, monkeypatch):
    monkeypatch.setenv('JAXGEN_DATA_ROOT', str(data_root))
    for name in ('mnist', 'celebahq'):
        config = reference_stats.config_for(reference_stats.parse_args(['--dataset', name]))
        dataset = load_dataset(config, 'train')
        image = dataset.gather(np.array([0]))['image']
        assert image.dtype == np.uint8 and image.shape[-1] == config.data.num_channels
        assert len(dataset) == {'mnist': 60000, 'celebahq': 56}[name]
    cifar = reference_stats.config_for(reference_stats.parse_args(['--dataset', 'cifar10']))
    assert tarfile.is_tarfile(resolve_data_path(cifar, cifar.data.path))  # decoding it all takes ~15 s


@pytest.mark.parametrize('leaf, data_set', [('mnist_cfg', 'mnist.npz'), ('celebahq_ldm_vq4', 'celebahq256'),
                                            ('cifar10_ddpm', 'cifar10_jpeg.tgz')])
def test_default_reference_file_names_the_data_a_leaf_config_reads(leaf, data_set):
    # The LDM base names a tfds set (cifar10) that its leaves, reading files, keep: the statistics' file and record
    # name the file the leaf reads, never the base's tfds name.
    config = importlib.import_module(f'configs.ldm.{leaf}').get_config()
    path = default_reference_path(config, 'test')
    assert os.path.basename(path).startswith(f'{config.data.source}-{data_set}-test-')
    described = data_description(config, 'test')
    assert described['name'] == '' and described['path'] == config.data.path
    config.data.update(source='tfds', name='mnist')
    assert os.path.basename(default_reference_path(config, 'test')).startswith('tfds-mnist-test-')
    assert data_description(config, 'test')['path'] == ''

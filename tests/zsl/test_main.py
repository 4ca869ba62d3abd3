"""`main.py` end to end on the real CUB-wiki split, label and TF-IDF files with generated features."""

import json
import os

import numpy as np
import pytest
import scipy.io

from tests.conftest import run_python
from zsl_jax.wiki_data import SPLITS

TINY = ['--config.model.hidden_dim=32', '--config.model.text_reduction_dim=16', '--config.model.noise_dim=8',
        '--config.training.batch_size=64', '--config.training.num_steps=20',
        '--config.training.log_every=10', '--config.training.checkpoint_every=10', '--config.eval.every=10',
        '--config.eval.start=10', '--config.eval.seeds=(0,)', '--config.eval.samples_per_class=5',
        '--config.eval.knn=3', '--config.runtime.progress_bar=False',
        '--config.benchmark.text_path=CUB_Porter_7551D_TFIDF_new_HUMAN.mat']


def _write_features(data_root, folder, dim=16):
    import pickle

    cub = os.path.join(data_root, 'zsl/cub_nab_wiki/CUB2011')
    rng = np.random.default_rng(0)
    split = SPLITS[('CUB', 'easy')]
    for labels_name, features_name in ((split.labels_train, split.features_train),
                                       (split.labels_test, split.features_test)):
        with open(os.path.join(cub, labels_name), 'rb') as f:
            labels = np.asarray(pickle.load(f, encoding='latin1'))
        means = rng.uniform(0, 1, (200, dim))
        scipy.io.savemat(os.path.join(folder, features_name),
                         {'pfc_feat': (means[labels] + 0.1 * rng.normal(size=(len(labels), dim))).astype(np.float32)})


@pytest.mark.slow
def test_cizsl_best_on_test_on_two_devices_writes_labelled_results(data_root, tmp_path):
    """The originals' protocol end to end (the honest one runs in test_train.py), data-parallel."""
    features = tmp_path / 'features'
    features.mkdir()
    _write_features(data_root, str(features))
    workdir = tmp_path / 'run'
    proc = run_python(['main.py', '--config=configs/zsl/cizsl_cub.py:easy', f'--workdir={workdir}', '--mode=train',
                       f'--config.benchmark.features_dir={features}', '--config.eval.protocol=best_on_test', *TINY],
                      devices=2,
                      env={'JAXGEN_DATA_ROOT': str(data_root)})
    printed = json.loads(proc.stdout.strip().splitlines()[-1])  # the summary as one JSON line
    assert printed['results'] == str(workdir / 'results.json') and 'gzsl_auc' in printed['summary']
    with open(workdir / 'results.json') as f:
        results = json.load(f)
    assert results['protocol'] == 'best_on_test' and 'ORIGINAL PROTOCOL' in results['protocol_description']
    assert set(results['seeds'][0]['best_step'].values()) <= {10, 20}
    assert 'ORIGINAL PROTOCOL' in (workdir / 'results.md').read_text()
    with open(workdir / 'config.json') as f:
        assert json.load(f)['cizsl']['creativity_weight'] == pytest.approx(1e-4)  # run.sh's CUB-easy weight
    assert 0.0 <= results['summary']['zsl_top1']['mean'] <= 100.0
    assert results['parameters']['generator'] == (1272 * 16 + 16) + (24 * 32 + 32) + (32 * 16 + 16)
    assert os.path.getsize(workdir / 'results_seen_unseen.png') > 0
    with open(workdir / 'seed_0' / 'best_on_test' / 'metrics.jsonl') as f:
        logged = [json.loads(line) for line in f]
    assert [r['step'] for r in logged if 'test/gzsl_auc' in r] == [10, 20] and all('loss' in r for r in logged)
    best_auc = max(r['test/gzsl_auc'] for r in logged)
    assert results['summary']['gzsl_auc']['mean'] == pytest.approx(best_auc)


def test_missing_features_fail_with_one_line(data_root, tmp_path):
    proc = run_python(['main.py', '--config=configs/zsl/gazsl_cub.py', f'--workdir={tmp_path}', '--mode=train',
                       f'--config.benchmark.features_dir={tmp_path}', *TINY], env={'JAXGEN_DATA_ROOT': str(data_root)},
                      check=False)
    assert proc.returncode == 2
    assert 'pfc_feat_train.mat does not exist' in proc.stderr and 'ZSL_GAN' in proc.stderr

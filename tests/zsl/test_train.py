"""GAZSL and CIZSL on a generated problem with known structure, under the honest protocol.

Class features are a fixed nonlinear function of the class semantics plus noise (zsl_jax/synthetic.py);
an oracle that knows the function classifies unseen test features by the nearest true class mean.
Both models, selected on the validation split and tested once, must be far above chance (10%) and
close to the oracle.
"""

import json
import os

import numpy as np
import pytest

from configs.zsl import synthetic
from zsl_jax import protocol, report
from zsl_jax.synthetic import make_synthetic


def oracle_accuracy(config) -> float:
    data = make_synthetic(config.benchmark.synthetic)
    p = data.problem
    x = p.unseen_features / np.linalg.norm(p.unseen_features, axis=1, keepdims=True)
    means = data.unseen_means / np.linalg.norm(data.unseen_means, axis=1, keepdims=True)
    return 100.0 * float(np.mean(np.argmax(x @ means.T, axis=1) == p.unseen_labels))


@pytest.fixture(scope='module', params=['gazsl', 'cizsl'])
def trained(request, tmp_path_factory):
    config = synthetic.get_config(request.param)
    workdir = str(tmp_path_factory.mktemp(request.param))
    return config, workdir, protocol.run_protocol(config, workdir)


@pytest.mark.slow
def test_far_above_chance_and_near_the_oracle(trained):
    config, _, results = trained
    oracle = oracle_accuracy(config)
    chance = 100.0 / config.benchmark.synthetic.num_unseen
    accuracy = results[0].metrics['zsl_top1']
    assert oracle > 95.0
    assert accuracy > 7 * chance, f'{config.model.variant}: {accuracy:.1f}% on unseen classes (chance {chance}%)'
    assert accuracy > oracle - 20.0, f'{config.model.variant}: {accuracy:.1f}% vs the oracle {oracle:.1f}%'
    assert results[0].metrics['gzsl_auc'] > 50.0
    assert results[0].details['selected_step'] % config.eval.every == 0


@pytest.mark.slow
def test_results_files_and_eval_mode_reproduce_the_test_numbers(trained):
    config, workdir, results = trained
    payload = report.write_results(config, workdir, results, {'generator': 1, 'discriminator': 1})
    assert payload['protocol'] == 'validation'
    for name in ('results.json', 'results.md', 'results_seen_unseen.png'):
        assert os.path.getsize(os.path.join(workdir, name)) > 0
    with open(os.path.join(workdir, 'seed_0', 'selection.json')) as f:
        selection = json.load(f)
    assert selection['selected_step'] == results[0].details['selected_step']
    again = protocol.evaluate_trained(config, workdir)
    assert again[0].metrics == pytest.approx(results[0].metrics)

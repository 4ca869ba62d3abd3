"""GAZSL and CIZSL on a generated problem with known structure, under the honest protocol.

Class features are a fixed nonlinear function of the class semantics plus noise (zsl_jax/synthetic.py);
an oracle that knows the function classifies unseen test features by the nearest true class mean.
Both models, selected on the validation split and tested once, must be far above chance (10%) and
close to the oracle.
"""

import json
import os

import pytest

from configs.zsl import synthetic
from zsl_jax import protocol, report
from zsl_jax.synthetic import oracle_accuracy


def _train(variant, tmp_path_factory):
    config = synthetic.get_config(variant)
    workdir = str(tmp_path_factory.mktemp(variant))
    return config, workdir, protocol.run_protocol(config, workdir)


@pytest.fixture(scope='module')
def gazsl(tmp_path_factory):
    return _train('gazsl', tmp_path_factory)


@pytest.fixture(scope='module')
def cizsl(tmp_path_factory):
    return _train('cizsl', tmp_path_factory)


@pytest.mark.slow
@pytest.mark.parametrize('variant', ['gazsl', 'cizsl'])
def test_far_above_chance_and_near_the_oracle(variant, request):
    config, _, results = request.getfixturevalue(variant)
    oracle = oracle_accuracy(config.benchmark.synthetic)
    chance = 100.0 / config.benchmark.synthetic.num_unseen
    accuracy = results[0].metrics['zsl_top1']
    assert oracle > 95.0
    assert accuracy > 7 * chance, f'{config.model.variant}: {accuracy:.1f}% on unseen classes (chance {chance}%)'
    assert accuracy > oracle - 20.0, f'{config.model.variant}: {accuracy:.1f}% vs the oracle {oracle:.1f}%'
    assert results[0].metrics['gzsl_auc'] > 50.0
    assert results[0].details['selected_step'] % config.eval.every == 0


@pytest.mark.slow
def test_results_files_and_eval_mode_reproduce_the_test_numbers(gazsl):
    config, workdir, results = gazsl
    payload = report.write_results(config, workdir, results, {'generator': 1, 'discriminator': 1}, 'synthetic')
    assert payload['title'] == f'{config.model.variant.upper()} on synthetic'
    assert payload['protocol'] == 'validation'
    for name in ('results.json', 'results.md', 'results_seen_unseen.png'):
        assert os.path.getsize(os.path.join(workdir, name)) > 0
    with open(os.path.join(workdir, 'seed_0', 'selection.json')) as f:
        selection = json.load(f)
    assert selection['selected_step'] == results[0].details['selected_step']
    again = protocol.evaluate_trained(config, workdir)
    assert again[0].metrics == pytest.approx(results[0].metrics)

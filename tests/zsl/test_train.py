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
from zsl_jax.synthetic import oracle_accuracy


def _train(variant, tmp_path_factory):
    config = synthetic.get_config(variant)
    workdir = str(tmp_path_factory.mktemp(variant))
    return config, workdir, protocol.run_protocol(config, workdir, protocol.load_problems(config))


@pytest.fixture(scope='module')
def gazsl(tmp_path_factory):
    return _train('gazsl', tmp_path_factory)


@pytest.fixture(scope='module')
def cizsl(tmp_path_factory):
    return _train('cizsl', tmp_path_factory)


# ZSL top-1 (%) over seeds 0-2 on this problem, mean and spread (docs/zsl.md, the command there): the
# bound below is 3 spreads under the mean, as one seed's result varies across machines of this kind
# (CIZSL's seed 0 gave 77.7% on one where the docs' run gave more).
MEASURED_TOP1 = {'gazsl': (90.33, 1.70), 'cizsl': (82.56, 6.00)}


@pytest.mark.slow
@pytest.mark.parametrize('variant', ['gazsl', 'cizsl'])
def test_far_above_chance_and_near_the_oracle(variant, request):
    config, _, results = request.getfixturevalue(variant)
    oracle = oracle_accuracy(config.benchmark.synthetic)
    chance = 100.0 / config.benchmark.synthetic.num_unseen
    accuracy = results[0].metrics['zsl_top1']
    assert oracle > 95.0
    assert accuracy > 7 * chance, f'{config.model.variant}: {accuracy:.1f}% on unseen classes (chance {chance}%)'
    mean, spread = MEASURED_TOP1[variant]
    assert accuracy > mean - 3 * spread, f'{variant}: {accuracy:.1f}% vs {mean} +- {spread} (oracle {oracle:.1f}%)'
    assert results[0].metrics['gzsl_auc'] > 50.0
    assert results[0].details['selected_step'] % config.eval.every == 0


@pytest.mark.slow
def test_cizsl_players_and_learned_orders(cizsl):
    """One generator step per iteration after 5 critic steps; the Sharma-Mittal orders are learned."""
    from gen_runtime.trainer import load_trained_state
    from zsl_jax.data import load_problem
    from zsl_jax.experiment import initialiser, make_experiment

    config, workdir, results = cizsl
    final_config = protocol.final_run_config(config, 0, results[0].details)
    step, state = load_trained_state(final_config, os.path.join(workdir, 'seed_0', 'final'),
                                     initialiser(make_experiment(final_config, load_problem(final_config, 'final'))))
    assert int(state['generator'].step) == step and int(state['discriminator'].step) == 5 * step
    assert state['orders'].params.shape == (2,)
    with open(os.path.join(workdir, 'seed_0', 'validation', 'metrics.jsonl')) as f:
        logged = [json.loads(line) for line in f]
    for key in ('loss', 'd_loss', 'gradient_penalty', 'visual_pivot', 'creativity', 'creative_realism'):
        assert all(np.isfinite(r[key]) for r in logged), key
    alphas = [r['sm_alpha'] for r in logged]
    assert all(0.2 < a < 0.8 for a in alphas) and alphas[0] != alphas[-1]


@pytest.mark.slow
def test_results_files_and_eval_mode_reproduce_the_test_numbers(gazsl):
    import matplotlib

    config, workdir, results = gazsl
    backend = matplotlib.get_backend()
    matplotlib.use('svg')  # a backend the report does not use: writing its PNG must leave the caller's alone
    try:
        payload = report.write_results(config, workdir, results, {'generator': 1, 'discriminator': 1}, 'synthetic')
        assert matplotlib.get_backend() == 'svg'
    finally:
        matplotlib.use(backend)
    assert payload['title'] == f'{config.model.variant.upper()} on synthetic'
    assert payload['protocol'] == 'validation'
    for name in ('results.json', 'results.md', 'results_seen_unseen.png'):
        assert os.path.getsize(os.path.join(workdir, name)) > 0
    from PIL import Image

    assert Image.open(os.path.join(workdir, 'results_seen_unseen.png')).size == (600, 600)  # 5 x 5 in at 120 dpi
    with open(os.path.join(workdir, 'seed_0', 'selection.json')) as f:
        selection = json.load(f)
    assert selection['selected_step'] == results[0].details['selected_step']
    again = protocol.evaluate_trained(config, workdir, protocol.load_problems(config)['final'])
    assert again[0].metrics == pytest.approx(results[0].metrics)


def test_validation_protocol_selects_weight_and_step_on_validation_only(tmp_path, monkeypatch):
    """The grid over CIZSL's creativity weight and the step are chosen from validation scores alone;
    the final run uses both and is evaluated once."""
    config = synthetic.get_config('cizsl')
    config.eval.creativity_weights = (0.001, 0.1, 1.0)
    scores = {0.001: (300, 60.0), 0.1: (700, 75.0), 1.0: (200, 75.0)}  # a tie: the earlier step wins
    trained = {}

    def fake_selection(run_config, problem, run_dir):
        step, score = scores[run_config.cizsl.creativity_weight]
        return {'step': step, 'validation': {'zsl_top1': score}}

    def fake_train(run_config, run_dir, task):
        trained.update(steps=run_config.training.num_steps, weight=run_config.cizsl.creativity_weight, dir=run_dir)
        return {'generator': type('S', (), {'params': None})()}

    class FakeEvaluator:
        def __call__(self, params, key):
            return protocol.Evaluation({'zsl_top1': 50.0}, None, None, None)

    monkeypatch.setattr(protocol, 'train_with_selection', fake_selection)
    monkeypatch.setattr(protocol, 'train', fake_train)
    monkeypatch.setattr(protocol, 'make_evaluator', lambda *a: FakeEvaluator())
    monkeypatch.setattr(protocol, 'make_experiment', lambda *a: None)
    monkeypatch.setattr(protocol, '_train_task', lambda *a: None)
    result = protocol.validation_protocol(config, str(tmp_path), 3, {'validation': None, 'final': None})
    assert trained == {'steps': 200, 'weight': 1.0, 'dir': str(tmp_path / 'seed_3' / 'final')}
    assert result.details['selected_step'] == 200 and result.details['creativity_weight'] == 1.0
    with open(tmp_path / 'seed_3' / 'selection.json') as f:
        assert len(json.load(f)['candidates']) == 3

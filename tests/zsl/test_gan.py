"""The training step: batch layout, hallucinated text, players and learned orders, finite updates."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs.zsl import synthetic
from gen_runtime.errors import ConfigError
from gen_runtime.run_once import run_once
from zsl_jax import checks, gan
from zsl_jax.data import load_problem
from zsl_jax.experiment import make_experiment, train_task, training_batches


def _tiny(variant, divergence='sharma_mittal'):
    config = synthetic.get_config(variant)
    config.cizsl.divergence = divergence
    config.training.batch_size = 16
    config.model.hidden_dim = 32
    return config


def test_hallucinated_text_is_a_normalised_mix_of_two_seen_classes():
    text = jnp.asarray(np.random.default_rng(0).uniform(size=(5, 6)), jnp.float32)
    labels = jnp.array([0, 1, 2, 3, 4, 0, 1, 2])
    t_h = np.asarray(gan.hallucinated_text(jax.random.key(0), text, labels, 0.2, 0.8, normalize=False))
    raw = np.asarray(text)
    for row in t_h:  # find a, i, j with row = a t_i + (1 - a) t_j, a in [0.2, 0.8]
        found = False
        for i in range(5):
            for j in range(5):
                diff = raw[i] - raw[j]
                a = 1.0 if i == j else float(np.dot(row - raw[j], diff) / np.dot(diff, diff))
                in_range = i == j or 0.2 - 1e-5 <= a <= 0.8 + 1e-5
                found = found or (in_range and np.allclose(a * raw[i] + (1 - a) * raw[j], row, atol=1e-5))
        assert found
    normed = gan.hallucinated_text(jax.random.key(0), text, labels, 0.2, 0.8, normalize=True)
    np.testing.assert_allclose(np.linalg.norm(normed, axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize('variant,divergence,orders', [('gazsl', 'sharma_mittal', 0), ('cizsl', 'sharma_mittal', 2),
                                                       ('cizsl', 'renyi', 1), ('cizsl', 'bhattacharyya', 0)])
def test_players_and_batches(variant, divergence, orders):
    config = _tiny(variant, divergence)
    problem = load_problem(config, 'final')
    exp = make_experiment(config, problem)
    task = train_task(exp, training_batches(exp))
    state = jax.eval_shape(task.init_state, jax.random.key(0))
    assert set(state) == {'generator', 'discriminator', 'classes'} | ({'orders'} if orders else set())
    if orders:
        assert state['orders'].params.shape == (orders,)
    assert 'text_reduction' in state['generator'].params
    assert state['discriminator'].params['classifier']['kernel'].shape == (32, problem.num_seen)
    batch = task.host_batches(0, 1)
    draws = config.loss.critic_steps + 1 + (variant == 'cizsl')  # critic batches, generator's, CIZSL's pairs
    assert batch['feature'].shape == (1, 16 * draws, problem.feature_dim)
    assert len(np.unique(batch['feature'][0], axis=0)) == 16 * draws  # disjoint draws, as FeatDataLayer


def test_a_reversed_mixing_range_is_a_config_error():
    """Single fields are checked against their domains (configs/zsl/base.py); the range's order by the mode's
    check (zsl_jax.checks)."""
    config = _tiny('cizsl')
    config.cizsl.mix_low, config.cizsl.mix_high = 0.8, 0.2
    with pytest.raises(ConfigError, match='cizsl.mix_low=0.8 must not exceed cizsl.mix_high=0.2'):
        checks.check_model(config)


def test_parameter_counts_of_the_published_models():
    from configs.zsl import base
    from zsl_jax.protocol import parameter_counts

    # GAZSL on CUB-wiki: text 7551 -> 1000, [z 100, text 1000] -> 4096 -> 3584; D 3584 -> 4096 -> (1, 150).
    counts = parameter_counts(base.get_config(), 3584, 7551, 150)
    assert counts['generator'] == (7551 * 1000 + 1000) + (1100 * 4096 + 4096) + (4096 * 3584 + 3584)
    assert counts['discriminator'] == (3584 * 4096 + 4096) + (4096 + 1) + (4096 * 150 + 150)
    # CIZSL's models.py: 4086 hidden units.
    counts = parameter_counts(base.use_cizsl(base.get_config()), 3584, 7551, 150)
    assert counts['generator'] == (7551 * 1000 + 1000) + (1100 * 4086 + 4086) + (4086 * 3584 + 3584)


def test_the_sampler_draws_class_major_features_of_the_unseen_classes():
    from zsl_jax.experiment import Sampler, initialiser

    config = _tiny('gazsl', 'sharma_mittal')
    exp = make_experiment(config, load_problem(config, 'final'))
    params = run_once(initialiser(exp), jax.random.key(0))['generator'].params
    sampler = Sampler(exp, per_class=5)
    features = np.asarray(sampler(params, jax.random.key(1)))
    assert features.shape == (exp.problem.num_unseen * 5, exp.problem.feature_dim)
    np.testing.assert_array_equal(features, np.asarray(sampler(params, jax.random.key(1))))
    # Row i is a feature of unseen class i // 5: its own text with noise z_i.
    z = jax.random.normal(jax.random.key(1), (len(features), config.model.noise_dim))
    text = np.repeat(exp.problem.unseen_text, 5, axis=0)
    np.testing.assert_allclose(features, exp.generator.apply({'params': params}, z, text), rtol=1e-5, atol=1e-6)

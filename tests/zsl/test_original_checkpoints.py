"""Checkpoints of the original CIZSL / GAZSL training scripts imported and run against the original modules.

fixtures/original_checkpoints/ was written by fixtures/make_original_checkpoint_fixtures.py from the
originals' own models.py (CIZSL `_netG`/`_netD` saved in torch's legacy format as PyTorch 0.4 did; GAZSL's
GBU `_netG_att`/`_netD` in the zip format), at the sizes of configs/zsl/synthetic.py, with what those
modules output.
"""

import json
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from configs.zsl import synthetic
from gen_runtime.errors import CheckpointError, ConfigError
from gen_runtime.modes import run_mode
from gen_runtime.torch_archive import load_archive
from gen_runtime.trainer import load_trained_state
from zsl_jax.data import load_problem
from zsl_jax.experiment import initialiser, make_experiment
from zsl_jax.models import make_models
from zsl_jax.protocol import for_seed

FIXTURES = Path(__file__).parent / 'fixtures' / 'original_checkpoints'
# fixture -> (our config variant, text reduction layer)
CASES = {'cizsl': ('cizsl', 16), 'gbu': ('gazsl', 0)}


def config_for(name: str, **model):
    variant, reduction = CASES[name]
    config = synthetic.get_config(variant)
    config.unlock()
    config.model.text_reduction_dim = reduction
    config.model.update(model)
    config.eval.protocol = 'best_on_test'
    config.weights.path = str(FIXTURES / f'{name}.tar')
    config.lock()
    return config


@pytest.fixture(scope='module')
def ref() -> dict:
    with np.load(FIXTURES / 'reference.npz') as f:
        return {k: f[k] for k in f.files}


@pytest.mark.parametrize('name', sorted(CASES))
def test_the_checkpoints_hold_what_the_training_scripts_save(name):
    """The originals save state dicts and plain Python values only (no optimizer state, no numpy value), so the
    numpy that ran the training does not change the file (see the fixture script)."""
    saved = load_archive(str(FIXTURES / f'{name}.tar'))
    assert sorted(saved) == ['it', 'log', 'random_seed', 'state_dict_D', 'state_dict_G']
    assert type(saved['it']) is int and type(saved['random_seed']) is int and type(saved['log']) is str
    assert all(isinstance(v, np.ndarray) for k in ('state_dict_G', 'state_dict_D') for v in saved[k].values())


@pytest.mark.parametrize('name', sorted(CASES))
def test_imported_players_equal_the_original_modules_and_evaluate(name, ref, tmp_path):
    config = config_for(name)
    run_mode(config, str(tmp_path), 'import_weights')
    record = json.loads((tmp_path / 'seed_0' / 'best_on_test' / 'import.json').read_text())
    assert record['original_iteration'] == 1500 and record['original_random_seed'] == 7
    run_config = for_seed(config, 0)
    problem = load_problem(run_config, 'final')
    step, state = load_trained_state(run_config, str(tmp_path / 'seed_0' / 'best_on_test'),
                                     initialiser(make_experiment(run_config, problem)))
    assert step == 0
    generator, discriminator = make_models(config.model, problem.feature_dim, problem.num_seen)
    out = generator.apply({'params': state['generator'].params}, jnp.asarray(ref[f'{name}_z']),
                          jnp.asarray(ref[f'{name}_text']))
    np.testing.assert_allclose(np.asarray(out), ref[f'{name}_g'], atol=1e-5)
    critic, logits = discriminator.apply({'params': state['discriminator'].params}, jnp.asarray(ref[f'{name}_x']))
    np.testing.assert_allclose(np.asarray(critic), ref[f'{name}_critic'], atol=1e-5)
    np.testing.assert_allclose(np.asarray(logits), ref[f'{name}_logits'], atol=1e-5)

    run_mode(config, str(tmp_path), 'eval')
    results = json.loads((tmp_path / 'eval_results.json').read_text())
    assert 0.0 <= results['seeds'][0]['metrics']['zsl_top1'] <= 100.0


def test_a_checkpoint_of_another_width_is_refused_before_writing(tmp_path):
    with pytest.raises(CheckpointError, match=r'main.0 \(kernel\) has shape \(32, 128\), .* hidden.kernel \(32, 64\)'):
        run_mode(config_for('gbu', hidden_dim=64), str(tmp_path / 'w'), 'import_weights')
    assert not (tmp_path / 'w' / 'seed_0' / 'best_on_test' / 'checkpoints').exists()


def test_import_needs_the_original_protocol(tmp_path):
    config = config_for('cizsl')
    config.unlock()
    config.eval.protocol = 'validation'
    with pytest.raises(ConfigError, match='best_on_test'):
        run_mode(config, str(tmp_path), 'import_weights')

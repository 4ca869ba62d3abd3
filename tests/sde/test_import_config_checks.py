"""Issue 22: what a score_sde / score_sde_pytorch checkpoint fixes (the VE noise scales of its `sigmas`
buffer, its time embedding, the original VE SDE's sigma(t) marginal std, the SDE its embedding goes with)
is the config's too, or the import is refused in one line naming the field and both values, before anything
is written."""

from pathlib import Path

import pytest

from gen_runtime.errors import ConfigError
from sde_jax.weights import import_weights
from tests.sde import test_original_checkpoints as pytorch_fixtures
from tests.sde import test_original_flax_checkpoints as flax_fixtures

LAYOUTS = {'score_sde_pytorch': pytorch_fixtures, 'score_sde': flax_fixtures}


def _config(layout: str, name: str, **fields):
    fixtures = LAYOUTS[layout]
    _, original = fixtures.reference(name)
    config = fixtures.tiny_config(name, original)
    config.unlock()
    for key, value in fields.items():
        section, field = key.split('.')
        config[section][field] = value
    config.lock()
    return config


def _refused(config, workdir: Path, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        import_weights(config, str(workdir))
    assert not (workdir / 'checkpoints').exists() and not (workdir / 'import.json').exists()


@pytest.mark.parametrize('field,wrong,theirs', [('sigma_max', 100.0, '50.0'), ('sigma_min', 0.02, '0.01')])
def test_ve_noise_scales_other_than_the_sigmas_buffer_are_refused(field, wrong, theirs, tmp_path):
    config = _config('score_sde_pytorch', 've', **{f'sde.{field}': wrong})
    _refused(config, tmp_path, rf"^the checkpoint's sigmas buffer has sde\.{field}={theirs} where this config has "
                               rf'{wrong}; pass --config\.sde\.{field}={theirs}$')


@pytest.mark.parametrize('layout', sorted(LAYOUTS))
def test_ve_import_with_the_exact_marginal_std_is_refused(layout, tmp_path):
    config = _config(layout, 've', **{'sde.ve_marginal_std': 'exact'})
    _refused(config, tmp_path, r"^score_sde's VE SDE \(.*\) has sde\.ve_marginal_std='sigma' where this config has "
                               r"'exact'; pass --config\.sde\.ve_marginal_std=sigma$")


@pytest.mark.parametrize('layout', sorted(LAYOUTS))
def test_fourier_network_under_the_vp_sde_is_refused(layout, tmp_path):
    """The VE checkpoint (Fourier features of log sigma) under a VP SDE: the shapes fit, the inputs would not."""
    config = _config(layout, 've', **{'sde.type': 'vpsde'})
    _refused(config, tmp_path, r"^sde\.type='vpsde' with model\.embedding_type='fourier': .* sde\.type=vesde only")


@pytest.mark.parametrize('layout', sorted(LAYOUTS))
def test_embedding_other_than_the_checkpoints_is_refused(layout, tmp_path):
    config = _config(layout, 'vp', **{'sde.type': 'vesde', 'sde.ve_marginal_std': 'sigma',
                                      'model.embedding_type': 'fourier'})
    _refused(config, tmp_path, r"^the checkpoint has model\.embedding_type='positional' where this config has "
                               r"'fourier'; pass --config\.model\.embedding_type=positional$")

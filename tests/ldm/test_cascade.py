"""Cascaded diffusion (Ho et al. 2022): the condition's resampling and Gaussian conditioning augmentation against
closed forms, the truncated chain, a two-stage cascade through the modes, and the refusals of its settings."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gen_runtime.errors import ConfigError
from gen_runtime.modes import run_mode
from ldm_jax import cascade, diffusion, samplers
from ldm_jax.schedule import Schedule, beta_schedule
from tests.ldm.test_end_to_end import _newest_samples, _run, _tiny


def test_downsample_averages_blocks_and_upsample_keeps_constants():
    x = jnp.arange(2 * 4 * 4 * 1, dtype=jnp.float32).reshape(2, 4, 4, 1)
    low = cascade.downsample(x, 2)
    np.testing.assert_allclose(np.asarray(low[0, 0, 0, 0]), np.mean([0, 1, 4, 5]))
    np.testing.assert_allclose(np.asarray(low[1, 1, 1, 0]), np.mean([26, 27, 30, 31]))
    flat = cascade.upsample(jnp.full((1, 2, 2, 3), 0.25), 8)
    assert flat.shape == (1, 8, 8, 3)
    np.testing.assert_allclose(np.asarray(flat), 0.25, atol=1e-7)
    with pytest.raises(ValueError, match='side must divide'):
        cascade.downsample(x, 3)


def test_augmentation_is_the_forward_process_at_level_minus_one():
    s = Schedule.from_betas(beta_schedule('linear', 100, 1e-4, 0.05))
    z = jax.random.uniform(jax.random.key(0), (3, 4, 4, 1), minval=-1, maxval=1)
    noise = jax.random.normal(jax.random.key(1), z.shape)
    level = jnp.asarray([0, 1, 60])
    got = cascade.augment(s, z, level, noise)
    np.testing.assert_array_equal(np.asarray(got[0]), np.asarray(z[0]))
    want = diffusion.q_sample(s, z, jnp.asarray([0, 0, 59]), noise)
    np.testing.assert_allclose(np.asarray(got[1:]), np.asarray(want[1:]), rtol=1e-6)
    cond, levels = cascade.training_condition(s, jnp.tile(z, (1, 2, 2, 1)), 4, 0, jax.random.key(2))
    assert not np.any(np.asarray(levels))
    np.testing.assert_allclose(np.asarray(cond), np.asarray(cascade.upsample(cascade.downsample(
        jnp.tile(z, (1, 2, 2, 1)), 4), 8)), rtol=1e-6)
    _, levels = cascade.training_condition(s, jnp.zeros((512, 8, 8, 1)), 4, 30, jax.random.key(3))
    assert int(levels.min()) == 0 and int(levels.max()) == 30


def test_truncated_chain_is_the_start_of_the_whole_chain():
    s = Schedule.from_betas(beta_schedule('linear', 40, 1e-4, 0.1))
    x_T = jax.random.normal(jax.random.key(0), (2, 4, 4, 1))

    def denoise(x, t):
        eps = 0.5 * jnp.tanh(x) * jnp.cos(t[:, None, None, None] / 10.0)
        return diffusion.split_prediction('eps', s, x, t, eps)

    path = samplers.ddpm_sample(denoise, s, x_T, jax.random.key(1), trajectory=True)
    stopped = samplers.ddpm_sample(denoise, s, x_T, jax.random.key(1), stop_level=15)
    np.testing.assert_allclose(np.asarray(stopped), np.asarray(path[40 - 15 - 1]), rtol=1e-6)
    with pytest.raises(ValueError, match='stop_level=41'):
        samplers.ddpm_sample(denoise, s, x_T, jax.random.key(1), stop_level=41)


def _stage(base_dir, **fields):
    config = _tiny('ddpm', **{'cascade__low_resolution': 4, 'cascade__max_level': 30,
                              'cascade__base_workdir': str(base_dir), **fields})
    return config


@pytest.mark.fast_compile
@pytest.mark.slow
def test_a_two_stage_cascade_trains_and_samples_end_to_end(tmp_path):
    base_dir, stage_dir = tmp_path / 'base', tmp_path / 'sr'
    _run(_tiny('ddpm', data__image_size=4, model__channel_mult=(1,)), base_dir, 'train')
    stage = _stage(base_dir)
    _run(stage, stage_dir, 'train')
    for fields in ({'cascade__sample_level': 0}, {'cascade__sample_level': 20},
                   {'cascade__sample_level': 20, 'cascade__truncated': True}):
        _run(_stage(base_dir, **fields), stage_dir, 'sample')
        images, labels, _ = _newest_samples(stage_dir)
        assert images.shape == (8, 8, 8, 1) and list(labels) == list(range(8)) and images.std() > 0
    stage.likelihood.max_examples = 8
    _run(stage, stage_dir, 'likelihood')
    result = json.load(open(stage_dir / 'likelihood' / 'step_4' / 'likelihood.json'))
    assert 0 < result['bpd'] < 20


@pytest.mark.parametrize('fields,message', [
    ({'cascade__low_resolution': 3}, r'cascade.low_resolution=3 must be smaller than data.image_size=8 and divide'),
    ({'cascade__low_resolution': 8}, r'cascade.low_resolution=8 must be smaller'),
    ({'cascade__low_resolution': 4, 'cascade__sample_level': 101}, r'cascade.sample_level=101 is above'),
    ({'cascade__low_resolution': 4}, r'set cascade.base_workdir to its run'),
])
def test_bad_cascade_settings_are_refused_before_any_work(tmp_path, fields, message):
    with pytest.raises(ConfigError, match=message):
        run_mode(_tiny('ddpm', **fields), str(tmp_path / 'run'), 'sample')
    assert not (tmp_path / 'run').exists()


@pytest.mark.slow
def test_a_base_run_that_does_not_fit_the_stage_is_refused(tmp_path):
    base_dir = tmp_path / 'base'
    _run(_tiny('ddpm', data__image_size=4, model__channel_mult=(1,), steps=2), base_dir, 'train')
    with pytest.raises(ConfigError, match=r'cascade.truncated needs the base model and this stage on the same noise '
                                          r'schedule'):
        run_mode(_stage(base_dir, cascade__truncated=True, diffusion__linear_end=0.03), str(tmp_path / 'sr'),
                 'sample')
    with pytest.raises(ConfigError, match=r'diffuses \(4, 4, 1\) images; this stage needs \(2, 2, 1\) images'):
        run_mode(_stage(base_dir, cascade__low_resolution=2), str(tmp_path / 'sr'), 'sample')
    assert not (tmp_path / 'sr').exists()

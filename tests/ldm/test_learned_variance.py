"""Improved DDPM's learned variances (Nichol & Dhariwal 2021): the learned-range variance and the VLB term against
their closed forms, the hybrid loss's stopped gradient, respaced strided sampling, step-by-step parity with
diffusers' DDPMScheduler(variance_type='learned_range'), the diffusers import, and the modes end to end."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler, UNet2DModel

from configs.ldm import tiny
from gen_runtime.errors import ConfigError
from gen_runtime.modes import run_mode
from gen_runtime.trainer import load_trained_state
from ldm_jax import diffusion, samplers
from ldm_jax.diffusers_folder import read_scheduler
from ldm_jax.experiment import initialiser, make_experiment
from ldm_jax.schedule import Schedule, beta_schedule, respace, strided_timesteps
from tests.ldm.test_end_to_end import _newest_samples, _run, _tiny
from tests.ldm.test_networks import _nchw, _nhwc, _randomise

SHAPE = (2, 4, 4, 3)


def _schedule(T=1000):
    return Schedule.from_betas(beta_schedule('linear', T, 1e-4, 0.02))


def test_learned_range_spans_beta_tilde_to_beta():
    """v = -1 gives the posterior variance beta~_t, v = 1 gives beta_t, v = 0 their geometric mean (eq. 15)."""
    s = _schedule()
    t = jnp.asarray([1, 10, 500, 999])
    betas = np.asarray(beta_schedule('linear', 1000, 1e-4, 0.02))
    ab = np.cumprod(1 - betas)
    tilde = betas[1:] * (1 - ab[:-1]) / (1 - ab[1:])
    for v, want in ((-1.0, tilde[np.asarray(t) - 1]), (1.0, betas[np.asarray(t)]),
                    (0.0, np.sqrt(tilde[np.asarray(t) - 1] * betas[np.asarray(t)]))):
        got = diffusion.model_log_variance(s, 'learned_range', t, 1, jnp.full((4,), v))
        np.testing.assert_allclose(np.exp(np.asarray(got)), want, rtol=1e-4)
    # at t = 0 beta~ is 0; its log is clipped to the value at t = 1, as for 'fixed_small'
    low = diffusion.model_log_variance(s, 'learned_range', jnp.asarray([0]), 1, jnp.asarray([-1.0]))
    np.testing.assert_allclose(np.asarray(low), np.log(tilde[0]), rtol=1e-5)
    with pytest.raises(ValueError, match='needs the network'):
        diffusion.model_log_variance(s, 'learned_range', t, 1)


def test_vlb_term_of_the_exact_mean_is_the_gaussian_kl_of_the_variances():
    """With the true x_0, L_{t-1} = 0.5 (r - 1 - log r) per dimension, r = beta~_t / sigma^2 (closed form), zero
    at v = -1; it is smallest there, so the learned v of an exact mean goes to beta~."""
    s = _schedule()
    x0 = jax.random.uniform(jax.random.key(0), SHAPE, minval=-1, maxval=1)
    t = jnp.full((2,), 300)
    x_t = diffusion.q_sample(s, x0, t, jax.random.normal(jax.random.key(1), SHAPE))
    tilde, beta = float(s.posterior_variance[300]), float(s.betas[300])
    for v in (-1.0, -0.5, 0.0, 1.0):
        log_var = diffusion.model_log_variance(s, 'learned_range', t, 4, jnp.full(SHAPE, v))
        got = np.asarray(diffusion.vlb_term_bpd(s, x0, x_t, t, x0, log_var))
        sigma2 = math.exp((v + 1) / 2 * math.log(beta) + (1 - v) / 2 * math.log(tilde))
        r = tilde / sigma2
        np.testing.assert_allclose(got, 0.5 * (r - 1 - math.log(r)) / math.log(2), rtol=2e-3, atol=1e-7)


def test_hybrid_term_trains_only_the_variance_half():
    """The L_vlb term sees the mean through a stopped gradient (sec. 3.1): zero gradient on the prediction
    channels, a nonzero one on v."""
    s = _schedule(100)
    x0 = jax.random.uniform(jax.random.key(0), SHAPE, minval=-1, maxval=1)
    t = jnp.asarray([0, 40])
    x_t = diffusion.q_sample(s, x0, t, jax.random.normal(jax.random.key(1), SHAPE))
    out = 0.3 * jax.random.normal(jax.random.key(2), SHAPE[:3] + (6,))
    grad = jax.grad(lambda o: jnp.sum(diffusion.hybrid_vlb_term(s, 'eps', x0, x_t, t, o)))(out)
    assert float(jnp.max(jnp.abs(grad[..., :3]))) == 0.0
    assert float(jnp.min(jnp.sum(jnp.abs(grad[..., 3:]), axis=(1, 2, 3)))) > 0.0


def test_respaced_schedule_keeps_the_marginals():
    s = _schedule()
    ts = strided_timesteps(50, 1000)
    assert ts[0] == 0 and ts[-1] == 999 and len(np.unique(ts)) == 50
    chain = respace(s, ts)
    np.testing.assert_allclose(np.asarray(chain.alphas_cumprod), np.asarray(s.alphas_cumprod)[ts], rtol=1e-5)
    whole = respace(s, np.arange(1000))
    # abar is kept in float32, so betas recovered from its ratios are good to about 1e-3 relative
    np.testing.assert_allclose(np.asarray(whole.betas), np.asarray(s.betas), rtol=2e-3)
    with pytest.raises(ValueError, match='ascending'):
        respace(s, np.asarray([5, 3]))
    with pytest.raises(ValueError, match='num_steps=1001'):
        strided_timesteps(1001, 1000)


def _toy_out(x, t, xp=np):
    """A smooth stand-in for a learned-range network (NHWC): eps and v in (-1, 1), in numpy (for diffusers) or jax."""
    t = xp.asarray(t, xp.float32).reshape(-1, 1, 1, 1)
    return xp.concatenate([0.8 * xp.tanh(x) * xp.cos(t / 40.0) + 0.05, 0.9 * xp.tanh(0.5 * x + t / 700.0 - 0.6)], -1)


def test_strided_learned_range_ddpm_equals_diffusers_step_by_step():
    """DDPMScheduler(variance_type='learned_range', timestep_spacing='linspace') after set_timesteps(25): each of
    our respaced steps (same x, same noise) equals the scheduler's."""
    sched = DDPMScheduler(num_train_timesteps=1000, variance_type='learned_range', timestep_spacing='linspace')
    s = _schedule()
    np.testing.assert_allclose(np.asarray(s.alphas_cumprod), sched.alphas_cumprod.numpy(), rtol=1e-5)
    sched.set_timesteps(25)
    ts = strided_timesteps(25, 1000)
    np.testing.assert_array_equal(sched.timesteps.numpy(), ts[::-1])
    chain = respace(s, ts)
    x = np.asarray(jax.random.normal(jax.random.key(3), SHAPE))
    for i, t in enumerate(sched.timesteps):
        out = _toy_out(x, [int(t)] * 2).astype(np.float32)
        noise = torch.randn((2, 3, 4, 4), generator=torch.Generator().manual_seed(i))
        want = sched.step(_nchw(out), t, _nchw(x), generator=torch.Generator().manual_seed(i)).prev_sample
        pred, v = diffusion.split_variance('learned_range', jnp.asarray(out))
        x0 = diffusion.split_prediction('eps', s, jnp.asarray(x), jnp.full((2,), int(t)), pred)[0]
        k = jnp.full((2,), len(ts) - 1 - i)
        got = samplers.ddpm_step(chain, jnp.asarray(x), k, x0, jnp.asarray(_nhwc(noise)), 'learned_range', True, v)
        np.testing.assert_allclose(np.asarray(got), _nhwc(want), rtol=1e-4, atol=1e-4, err_msg=f'step {i} (t={int(t)})')
        x = _nhwc(want)


def test_ddpm_sample_is_its_steps_and_all_steps_strided_is_plain_ddpm():
    s = _schedule(50)
    x_T = jax.random.normal(jax.random.key(0), SHAPE)

    def denoise(x, t):
        pred, v = diffusion.split_variance('learned_range', _toy_out(x, t, jnp))
        return (*diffusion.split_prediction('eps', s, x, t, pred), v)

    plain = samplers.ddpm_sample(denoise, s, x_T, jax.random.key(1), 'learned_range', trajectory=True)
    strided = samplers.ddpm_sample(denoise, s, x_T, jax.random.key(1), 'learned_range', trajectory=True,
                                   timesteps=np.arange(50))
    np.testing.assert_allclose(np.asarray(strided), np.asarray(plain), rtol=1e-4, atol=1e-5)
    ts = strided_timesteps(10, 50)
    path = samplers.ddpm_sample(denoise, s, x_T, jax.random.key(1), 'learned_range', trajectory=True, timesteps=ts)
    chain, x = respace(s, ts), x_T
    for i, t in enumerate(ts[::-1]):
        x0, _, v = denoise(x, jnp.full((2,), t))
        noise = jax.random.normal(jax.random.fold_in(jax.random.key(1), i), SHAPE)
        x = samplers.ddpm_step(chain, x, jnp.full((2,), 9 - i), x0, noise, 'learned_range', True, v)
        np.testing.assert_allclose(np.asarray(path[i]), np.asarray(x), rtol=1e-5, atol=1e-5)


def test_a_learned_range_diffusers_folder_imports_and_refuses_a_fixed_config(tmp_path):
    torch_model = _randomise(UNet2DModel(sample_size=8, in_channels=3, out_channels=6, block_out_channels=(32, 64),
                                         layers_per_block=1, down_block_types=('DownBlock2D', 'AttnDownBlock2D'),
                                         up_block_types=('AttnUpBlock2D', 'UpBlock2D')))
    torch_model.save_pretrained(tmp_path / 'pipe' / 'unet')
    DDPMScheduler(variance_type='learned_range').save_config(tmp_path / 'pipe' / 'scheduler')
    assert read_scheduler(str(tmp_path / 'pipe' / 'unet'))['diffusion']['variance'] == 'learned_range'
    config = tiny.get_config('ddpm')
    config.data.image_size, config.data.num_channels = 8, 3
    config.model.update(num_classes=0, channel_mult=(1, 2), num_head_channels=8)
    config.diffusion.update(label_dropout=0.0, num_timesteps=1000)
    config.sampling.guidance_scale = 1.0
    config.weights.update(path=str(tmp_path / 'pipe' / 'unet'), layout='diffusers')
    with pytest.raises(ConfigError, match=r'has 6 output channels where diffusion.variance=.fixed_small. needs 3; '
                                          r'pass --config.diffusion.variance=learned_range$'):
        run_mode(config, str(tmp_path / 'run'), 'import_weights')
    assert not (tmp_path / 'run').exists()
    config.diffusion.variance = 'learned_range'
    run_mode(config, str(tmp_path / 'run'), 'import_weights')
    _, state = load_trained_state(config, str(tmp_path / 'run'), initialiser(make_experiment(config)))
    x = np.random.default_rng(0).standard_normal((2, 8, 8, 3)).astype(np.float32)
    t = np.array([7, 650])
    got = make_experiment(config).network.apply({'params': state.params}, x, t)
    with torch.no_grad():
        want = _nhwc(torch_model(_nchw(x), torch.from_numpy(t)).sample)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('fields,message', [
    ({'sampling__method': 'ddpm_strided', 'sampling__spacing': 'quad'}, r"sampling.spacing='quad': .*'uniform'"),
    ({'sampling__method': 'ddpm_strided', 'sampling__num_steps': 101}, r'num_steps=101 must be in 2..'),
    ({'diffusion__variance': 'learned'}, r'diffusion.variance'),
    ({'diffusion__vlb_weight': -1.0}, r'diffusion.vlb_weight'),
])
def test_bad_learned_variance_settings_are_refused(tmp_path, fields, message):
    config = _tiny('ddpm', **{'diffusion__variance': 'learned_range', **fields})
    with pytest.raises(ConfigError, match=message):
        run_mode(config, str(tmp_path / 'run'), 'sample')
    assert not (tmp_path / 'run').exists()


@pytest.mark.fast_compile
@pytest.mark.slow
def test_learned_range_trains_samples_strided_and_gives_its_bound(tmp_path):
    workdir = tmp_path / 'run'
    config = _tiny('ddpm', diffusion__variance='learned_range', sampling__method='ddpm_strided',
                   sampling__num_steps=10)
    _run(config, workdir, 'train')
    logged = json.loads(open(workdir / 'metrics.jsonl').readlines()[-1])
    assert logged['loss'] == pytest.approx(logged['loss_simple'] + 0.001 * 100 * logged['loss_vlb_term'], rel=1e-4)
    assert logged['loss_vlb_term'] > 0
    _run(config, workdir, 'sample')
    images, labels, _ = _newest_samples(workdir)
    assert images.shape == (8, 8, 8, 1) and list(labels) == list(range(8)) and images.std() > 0
    config.likelihood.max_examples = 8
    _run(config, workdir, 'likelihood')
    result = json.load(open(workdir / 'likelihood' / 'step_4' / 'likelihood.json'))
    assert result['bpd'] == pytest.approx(result['prior_bpd'] + result['decoder_bpd'] + result['kl_bpd'], rel=1e-5)
    assert 0 < result['bpd'] < 20

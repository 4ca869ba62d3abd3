"""Schedules, the forward process, parameterisations and the variational bound against independent truth."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler
from scipy import stats

from ldm_jax import diffusion
from ldm_jax.schedule import Schedule, beta_schedule

DIFFUSERS_NAMES = {'linear': 'linear', 'sqrt_linear': 'scaled_linear', 'cosine': 'squaredcos_cap_v2'}


@pytest.mark.parametrize('kind', ['linear', 'sqrt_linear', 'cosine'])
def test_beta_schedules_match_diffusers(kind):
    ours = beta_schedule(kind, 1000, 0.0015, 0.0195)
    theirs = DDPMScheduler(num_train_timesteps=1000, beta_start=0.0015, beta_end=0.0195,
                           beta_schedule=DIFFUSERS_NAMES[kind]).betas.double().numpy()
    assert ours.dtype == np.float64
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-9)


def test_latent_diffusion_linear_is_linear_in_sqrt_beta():
    betas = beta_schedule('sqrt_linear', 1000, 0.0015, 0.0195)
    np.testing.assert_allclose(np.diff(np.sqrt(betas)), (0.0195**0.5 - 0.0015**0.5) / 999, rtol=1e-9)
    assert betas[0] == pytest.approx(0.0015) and betas[-1] == pytest.approx(0.0195)


def test_cosine_schedule_is_improved_ddpm_alpha_bar():
    betas = beta_schedule('cosine', 1000)
    abar = np.cumprod(1 - betas)
    f = np.cos((np.arange(1, 1001) / 1000 + 0.008) / 1.008 * np.pi / 2) ** 2
    f0 = np.cos(0.008 / 1.008 * np.pi / 2) ** 2
    unclipped = betas < 0.999
    np.testing.assert_allclose(abar[unclipped], (f / f0)[unclipped], rtol=1e-9)


def test_unknown_schedule_is_refused():
    with pytest.raises(ValueError, match="schedule='quadratic' is not one of"):
        beta_schedule('quadratic', 10)


def test_constants_are_float32_from_float64():
    s = Schedule.from_betas(beta_schedule('linear', 1000))
    assert s.alphas_cumprod.dtype == jnp.float32
    exact = np.cumprod(1 - np.linspace(1e-4, 0.02, 1000, dtype=np.float64))
    np.testing.assert_array_equal(np.asarray(s.alphas_cumprod), exact.astype(np.float32))


def _schedule():
    return Schedule.from_betas(beta_schedule('linear', 1000))


def test_q_sample_matches_diffusers_add_noise():
    rng = np.random.default_rng(0)
    x0, noise = rng.standard_normal((2, 4, 3, 3, 2)).astype(np.float32)
    t = np.array([0, 10, 500, 999])
    ours = diffusion.q_sample(_schedule(), jnp.asarray(x0), jnp.asarray(t), jnp.asarray(noise))
    sched = DDPMScheduler(num_train_timesteps=1000)
    theirs = sched.add_noise(torch.from_numpy(x0), torch.from_numpy(noise), torch.from_numpy(t)).numpy()
    np.testing.assert_allclose(np.asarray(ours), theirs, atol=2e-6)


@pytest.mark.parametrize('param', ['eps', 'x0', 'v'])
def test_parameterisations_recover_x0_and_eps(param):
    s = _schedule()
    rng = np.random.default_rng(1)
    x0, noise = (jnp.asarray(a) for a in rng.standard_normal((2, 5, 4, 4, 3)).astype(np.float32))
    t = jnp.asarray([0, 1, 250, 900, 999])
    x_t = diffusion.q_sample(s, x0, t, noise)
    target = diffusion.training_target(param, s, x0, t, noise)
    x0_hat, eps_hat = diffusion.split_prediction(param, s, x_t, t, target)
    # x0 from eps divides by sqrt(abar) (~0.006 at t=999) and eps from x0 by sqrt(1-abar) (0.01 at t=0)
    np.testing.assert_allclose(np.asarray(x0_hat)[1:4], np.asarray(x0)[1:4], atol=1e-4)
    np.testing.assert_allclose(np.asarray(eps_hat)[1:4], np.asarray(noise)[1:4], atol=1e-4)


def test_v_target_is_salimans_ho():
    s = _schedule()
    x0, eps = jnp.ones((1, 2)), 2 * jnp.ones((1, 2))
    t = jnp.asarray([300])
    a = float(s.sqrt_alphas_cumprod[300])
    v = diffusion.training_target('v', s, x0, t, eps)
    np.testing.assert_allclose(np.asarray(v), a * 2 - math.sqrt(1 - a * a) * 1, rtol=1e-6)


def test_posterior_is_the_gaussian_conditional():
    """q(x_{t-1}|x_t,x_0) from the joint Gaussian of (x_{t-1}, x_t) given x_0, computed independently."""
    betas = beta_schedule('cosine', 50)
    s = Schedule.from_betas(betas)
    abar = np.cumprod(1 - betas)
    t, x0, x_t = 20, 0.3, -0.7
    # x_{t-1} ~ N(sqrt(abar_{t-1}) x0, 1 - abar_{t-1}); x_t | x_{t-1} ~ N(sqrt(alpha_t) x_{t-1}, beta_t)
    m1, v1, a = math.sqrt(abar[t - 1]) * x0, 1 - abar[t - 1], math.sqrt(1 - betas[t])
    var_t = a * a * v1 + betas[t]
    mean = m1 + a * v1 / var_t * (x_t - a * m1)
    var = v1 - (a * v1) ** 2 / var_t
    got_mean, got_logvar = diffusion.q_posterior(s, jnp.full((1, 1), x0), jnp.full((1, 1), x_t), jnp.asarray([t]))
    assert float(got_mean[0, 0]) == pytest.approx(mean, rel=1e-5)
    assert math.exp(float(got_logvar[0, 0])) == pytest.approx(var, rel=1e-5)


def test_normal_kl_closed_form():
    kl = diffusion.normal_kl(jnp.asarray(1.0), jnp.log(4.0), jnp.asarray(0.0), jnp.log(1.0))
    assert float(kl) == pytest.approx(0.5 * (4.0 + 1.0 - 1.0 - math.log(4.0)), rel=1e-6)


def test_discretized_gaussian_matches_scipy():
    x = jnp.asarray([-1.0, -0.2, 1.0])
    mean, log_scale = jnp.asarray([-0.9, -0.21, 0.95]), jnp.log(jnp.asarray([0.05, 0.02, 0.1]))
    got = np.exp(np.asarray(diffusion.discretized_gaussian_log_likelihood(x, mean, log_scale)))
    h = 1 / 255
    want = [stats.norm.cdf(-1 + h, -0.9, 0.05), stats.norm.cdf(-0.2 + h, -0.21, 0.02)
            - stats.norm.cdf(-0.2 - h, -0.21, 0.02), 1 - stats.norm.cdf(1 - h, 0.95, 0.1)]
    np.testing.assert_allclose(got, want, rtol=1e-4)


def _fixed(s, variance, x0_fn):
    """A vlb_bpd model function: x0_fn's prediction with a fixed variance."""
    return lambda x_t, t: (x0_fn(x_t, t), diffusion.model_log_variance(s, variance, t, x_t.ndim))


def test_vlb_of_an_exact_denoiser_is_prior_plus_decoder():
    """With the true x_0 as prediction every KL term vanishes; the rest has a closed form (scipy)."""
    s = Schedule.from_betas(beta_schedule('linear', 100, 1e-4, 0.05))
    levels = 256
    x0 = jnp.asarray(np.random.default_rng(2).integers(0, levels, (3, 4, 4, 1)) / (levels - 1) * 2 - 1, jnp.float32)
    out = diffusion.vlb_bpd(_fixed(s, 'fixed_small', lambda x_t, t: x0), s, x0, jax.random.key(0), levels)
    np.testing.assert_allclose(np.asarray(out['kl']), 0.0, atol=1e-6)
    abar_T = float(s.alphas_cumprod[-1])
    prior_nats = 0.5 * (abar_T * np.asarray(x0) ** 2 + (1 - abar_T) - 1 - np.log(1 - abar_T))
    dims = 16
    np.testing.assert_allclose(np.asarray(out['prior']), prior_nats.reshape(3, -1).sum(1) / dims / math.log(2),
                               rtol=1e-4)
    sigma = math.sqrt(float(np.exp(s.posterior_log_variance_clipped[0])))
    h = 1 / (levels - 1)
    xs = np.asarray(x0).reshape(3, -1)
    probs = np.where(xs < -0.999, stats.norm.cdf(h / sigma), np.where(xs > 0.999, stats.norm.sf(-h / sigma),
                     stats.norm.cdf(h / sigma) - stats.norm.cdf(-h / sigma)))
    np.testing.assert_allclose(np.asarray(out['decoder']), -np.log(probs).sum(1) / dims / math.log(2), rtol=1e-4)
    np.testing.assert_allclose(np.asarray(out['total']), np.asarray(out['prior'] + out['decoder']), rtol=1e-6)


def test_vlb_penalises_a_wrong_denoiser():
    s = Schedule.from_betas(beta_schedule('linear', 50, 1e-4, 0.1))
    x0 = jnp.zeros((2, 3, 3, 1))
    exact = diffusion.vlb_bpd(_fixed(s, 'fixed_large', lambda x_t, t: x0), s, x0, jax.random.key(1))
    wrong = diffusion.vlb_bpd(_fixed(s, 'fixed_large', lambda x_t, t: x0 + 0.3), s, x0, jax.random.key(1))
    assert np.all(np.asarray(wrong['kl']) > np.asarray(exact['kl']) + 0.1)


def test_loss_simple_kinds():
    out, target = jnp.ones((2, 3)), jnp.zeros((2, 3))
    np.testing.assert_allclose(np.asarray(diffusion.loss_simple(2 * out, target, 'l2')), [4.0, 4.0])
    np.testing.assert_allclose(np.asarray(diffusion.loss_simple(2 * out, target, 'l1')), [2.0, 2.0])
    with pytest.raises(ValueError, match="loss='huber'"):
        diffusion.loss_simple(out, target, 'huber')

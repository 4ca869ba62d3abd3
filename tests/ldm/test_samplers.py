"""DDPM and DDIM samplers against diffusers' schedulers step by step, DDIM's closed form, and guidance."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler
from diffusers.schedulers import scheduling_ddpm

from ldm_jax import diffusion, guidance, samplers
from ldm_jax.schedule import Schedule, beta_schedule

T = 100
SHAPE = (2, 4, 4, 3)


def _model_np(x, t):
    """A smooth stand-in network (the same function in torch and jax): eps(x, t)."""
    return 0.8 * np.tanh(x) * np.cos(t / 40.0) + 0.05


def _model_jax(x, t):
    return 0.8 * jnp.tanh(x) * jnp.cos(t[:, None, None, None] / 40.0) + 0.05


def _to_torch(x):
    return torch.from_numpy(np.array(x)).permute(0, 3, 1, 2)


def _from_torch(x):
    return x.permute(0, 2, 3, 1).numpy()


def _noise(rng, i):
    return np.asarray(jax.random.normal(jax.random.fold_in(rng, i), SHAPE))


@pytest.mark.parametrize('variance,clip,param', [('fixed_small', True, 'eps'), ('fixed_large', False, 'eps'),
                                                 ('fixed_small', False, 'v')])
def test_ddpm_matches_diffusers_step_by_step(monkeypatch, variance, clip, param):
    s = Schedule.from_betas(beta_schedule('linear', T, 1e-3, 0.1))
    rng = jax.random.key(0)
    x_T = np.asarray(jax.random.normal(jax.random.key(1), SHAPE))

    def denoise(x, t):
        return diffusion.split_prediction(param, s, x, t, _model_jax(x, t))

    ours = np.asarray(jax.jit(lambda x: samplers.ddpm_sample(denoise, s, x, rng, variance, clip, trajectory=True))(
        jnp.asarray(x_T)))
    sched = DDPMScheduler(num_train_timesteps=T, beta_start=1e-3, beta_end=0.1, variance_type=variance,
                          clip_sample=clip, prediction_type={'eps': 'epsilon', 'v': 'v_prediction'}[param])
    sched.set_timesteps(T)
    noises = iter(_noise(rng, i) for i in range(T))  # diffusers draws step i's noise for t > 0 only
    monkeypatch.setattr(scheduling_ddpm, 'randn_tensor', lambda *a, **k: _to_torch(next(noises)))
    x = _to_torch(x_T)
    for i, t in enumerate(sched.timesteps):
        # feed diffusers our previous state, so each step is compared on the same input
        x_in = _to_torch(ours[i - 1]) if i else x
        out = _to_torch(_model_np(_from_torch(x_in), float(t)).astype(np.float32))
        x_prev = _from_torch(sched.step(out, t, x_in).prev_sample)
        np.testing.assert_allclose(ours[i], x_prev, rtol=1e-5, atol=2e-5, err_msg=f'step {i} (t={int(t)})')
    assert int(sched.timesteps[-1]) == 0


@pytest.mark.parametrize('eta,param', [(0.0, 'eps'), (0.5, 'eps'), (1.0, 'x0')])
def test_ddim_matches_diffusers_step_by_step(eta, param):
    s = Schedule.from_betas(beta_schedule('sqrt_linear', 1000, 0.0015, 0.0195))
    steps = samplers.ddim_timesteps('uniform', 20, 1000)
    rng = jax.random.key(2)
    x_T = np.asarray(jax.random.normal(jax.random.key(3), SHAPE))

    def denoise(x, t):
        return diffusion.split_prediction(param, s, x, t, _model_jax(x, t))

    ours = np.asarray(jax.jit(lambda x: samplers.ddim_sample(denoise, s, x, rng, steps, eta, trajectory=True))(
        jnp.asarray(x_T)))
    sched = DDIMScheduler(num_train_timesteps=1000, beta_start=0.0015, beta_end=0.0195,
                          beta_schedule='scaled_linear', clip_sample=False, set_alpha_to_one=False, steps_offset=1,
                          prediction_type={'eps': 'epsilon', 'x0': 'sample'}[param])
    sched.set_timesteps(20)
    np.testing.assert_array_equal(sched.timesteps.numpy(), steps[::-1])
    for i, t in enumerate(sched.timesteps):
        x_in = _to_torch(ours[i - 1] if i else x_T)
        out = _to_torch(_model_np(_from_torch(x_in), float(t)).astype(np.float32))
        x_prev = _from_torch(sched.step(out, t, x_in, eta=eta, variance_noise=_to_torch(_noise(rng, i))).prev_sample)
        np.testing.assert_allclose(ours[i], x_prev, rtol=1e-5, atol=2e-5, err_msg=f'step {i} (t={int(t)})')


def test_ddim_timesteps_follow_latent_diffusion():
    np.testing.assert_array_equal(samplers.ddim_timesteps('uniform', 50, 1000), np.arange(0, 1000, 20) + 1)
    quad = samplers.ddim_timesteps('quad', 50, 1000)
    np.testing.assert_array_equal(quad, (np.linspace(0, math.sqrt(800), 50) ** 2).astype(int) + 1)
    with pytest.raises(ValueError, match='num_steps=1000 is too many DDIM steps'):
        samplers.ddim_timesteps('uniform', 1000, 1000)
    with pytest.raises(ValueError, match="spacing='cubic'"):
        samplers.ddim_timesteps('cubic', 10, 1000)


def test_uniform_ldm_spacing_gives_the_originals_step_counts():
    """latent diffusion's make_ddim_timesteps: range(0, T, T // n) + 1, i.e. 30 -> 31 and 64 -> 67 steps;
    its quad spacing at 50 steps starts 1, 1 (ours the same); 'uniform' keeps exactly n."""
    for n, count in ((30, 31), (64, 67), (50, 50), (7, 8)):
        steps = samplers.ddim_timesteps('uniform_ldm', n, 1000)
        assert len(steps) == count
        np.testing.assert_array_equal(steps, np.arange(0, 1000, 1000 // n) + 1)
        assert len(samplers.ddim_timesteps('uniform', n, 1000)) == n
    np.testing.assert_array_equal(samplers.ddim_timesteps('quad', 50, 1000)[:3], [1, 1, 2])


@pytest.mark.parametrize('spacing', ['uniform', 'quad'])
def test_deterministic_ddim_with_an_exact_denoiser_keeps_its_noise(spacing):
    """For a point mass x_0 the exact denoiser gives eps_t = eps_T at every step, so (eta = 0) the result is
    sqrt(abar_0) x_0 + sqrt(1 - abar_0) eps_T in closed form, whatever the spacing."""
    s = Schedule.from_betas(beta_schedule('cosine', 1000))
    x0 = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, SHAPE), jnp.float32)

    def exact(x, t):
        eps = (x - s.sqrt_alphas_cumprod[t][:, None, None, None] * x0) / s.sqrt_one_minus_alphas_cumprod[t][
            :, None, None, None]
        return x0, eps

    x_T = jax.random.normal(jax.random.key(4), SHAPE)
    steps = samplers.ddim_timesteps(spacing, 25, 1000)
    out = samplers.ddim_sample(exact, s, x_T, jax.random.key(5), steps, eta=0.0)
    eps_T = exact(x_T, jnp.full((2,), steps[-1]))[1]
    a0 = float(s.alphas_cumprod[0])
    np.testing.assert_allclose(np.asarray(out), np.asarray(math.sqrt(a0) * x0 + math.sqrt(1 - a0) * eps_T),
                               atol=1e-4)


def test_ddpm_with_an_exact_denoiser_ends_on_the_data():
    s = Schedule.from_betas(beta_schedule('linear', 200, 1e-4, 0.05))
    x0 = jnp.full(SHAPE, 0.25)
    out = samplers.ddpm_sample(lambda x, t: (x0, None), s, jax.random.normal(jax.random.key(0), SHAPE),
                               jax.random.key(1))
    np.testing.assert_allclose(np.asarray(out), 0.25, atol=1e-5)


def test_classifier_free_guidance_is_one_batched_call():
    calls = []

    def model(x, t, y):
        calls.append(x.shape[0])
        return x * (1.0 + y[:, None, None, None].astype(x.dtype))

    x = jnp.ones((3, 2, 2, 1))
    y = jnp.asarray([1, 2, 3])
    out = jax.jit(lambda x: guidance.classifier_free_output(model, x, jnp.zeros(3, jnp.int32), y, 10, 2.5))(x)
    assert calls == [6]
    cond, uncond = 1.0 + np.asarray([1, 2, 3]), 11.0
    np.testing.assert_allclose(np.asarray(out)[:, 0, 0, 0], uncond + 2.5 * (cond - uncond), rtol=1e-6)


def test_drop_labels_rate():
    labels = guidance.drop_labels(jnp.zeros(20000, jnp.int32), 10, 0.2, jax.random.key(0))
    assert abs(float(jnp.mean(labels == 10)) - 0.2) < 0.01
    assert set(np.unique(np.asarray(labels))) == {0, 10}


def test_classifier_guidance_gradient_and_shift():
    w = jax.random.normal(jax.random.key(0), (12, 3))

    def logits_fn(x, t):
        return x.reshape(x.shape[0], -1) @ w * (1.0 + t[:, None] / 100.0)

    x = jax.random.normal(jax.random.key(1), (2, 2, 2, 3))
    t, y = jnp.asarray([5, 50]), jnp.asarray([0, 2])
    grad = np.asarray(guidance.classifier_log_prob_grad(logits_fn, x, t, y))
    eps_fd = 1e-2
    for index in [(0, 0, 0, 0), (1, 1, 0, 2)]:
        def log_p(x, row=index[0]):
            return float(jax.nn.log_softmax(logits_fn(x, t))[row, y[row]])
        bump = jnp.zeros_like(x).at[index].set(eps_fd)
        fd = (log_p(x + bump) - log_p(x - bump)) / (2 * eps_fd)
        assert grad[index] == pytest.approx(fd, rel=1e-3, abs=1e-4)
    s = Schedule.from_betas(beta_schedule('linear', 100))
    eps = jnp.zeros_like(x)
    guided = guidance.classifier_guided_eps(s, eps, t, jnp.asarray(grad), 3.0)
    np.testing.assert_allclose(np.asarray(guided[1]), -3.0 * float(s.sqrt_one_minus_alphas_cumprod[50]) * grad[1],
                               rtol=1e-6)

"""The few-step samplers against the closed-form probability-flow map of Gaussian data.

For data N(mu, s^2 I) and a kernel x_t = alpha_t x_0 + sigma_t eps, the exact denoiser is
E[x_0 | x_t] = mu + alpha_t s^2 / (alpha_t^2 s^2 + sigma_t^2) (x_t - alpha_t mu), and the probability-flow
ODE carries x_T = alpha_T mu + sqrt(alpha_T^2 s^2 + sigma_T^2) z to alpha_t mu + sqrt(alpha_t^2 s^2 +
sigma_t^2) z. Each solver's error against that map must shrink with the number of network evaluations
at its order (DDIM 1, DPM-Solver++(2M) 2, Heun 2): the slope of log error against log NFE is fitted over
32..256 steps (float64, so rounding stays far below the errors measured).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gen_runtime import few_step
from sde_jax.sde import VESDE, VPSDE, SubVPSDE

MU, S, T_MIN = 0.5, 0.3, 1e-3
SDES = {'vp': VPSDE(beta_min=0.1, beta_max=20.0, N=1000), 've': VESDE(sigma_min=0.01, sigma_max=50.0, N=1000),
        'subvp': SubVPSDE(beta_min=0.1, beta_max=20.0, N=1000)}
# method: (its order, the spacing its paper uses, solver keyword arguments)
METHODS = {'ddim': (1, 'uniform', {}), 'dpm_solver_pp': (2, 'logsnr', {'lower_order_final': False}),
           'heun': (2, 'karras', {})}


def _gaussian_problem(sde):
    def coefs(t):
        alpha, sigma = sde.marginal_coefs(jnp.asarray(t, jnp.float64))
        return np.asarray(alpha), np.asarray(sigma)

    def x0_fn(x, t):
        alpha, sigma = (c[:, None] for c in sde.marginal_coefs(t))
        return MU + alpha * S**2 / (alpha**2 * S**2 + sigma**2) * (x - alpha * MU)

    z = jax.random.normal(jax.random.key(0), (64, 4), jnp.float64)

    def exact(t):
        alpha, sigma = coefs(np.array([t]))
        return alpha[0] * MU + np.sqrt(alpha[0] ** 2 * S**2 + sigma[0] ** 2) * z

    return coefs, x0_fn, exact(1.0), exact(T_MIN)


@pytest.mark.parametrize('sde_name', sorted(SDES))
@pytest.mark.parametrize('method', sorted(METHODS))
def test_error_shrinks_at_the_solvers_order(sde_name, method):
    order, spacing, kwargs = METHODS[method]
    solve = getattr(few_step, method)
    with jax.enable_x64(True):
        coefs, x0_fn, x_T, target = _gaussian_problem(SDES[sde_name])
        errors, nfes = [], []
        for steps in (32, 64, 128, 256):
            ts = few_step.spaced_times(spacing, steps, 1.0, T_MIN, coefs)
            alphas, sigmas = coefs(ts)
            out = jax.jit(functools.partial(solve, x0_fn, **kwargs))(x_T, jnp.asarray(ts), jnp.asarray(alphas),
                                                                      jnp.asarray(sigmas))
            errors.append(float(jnp.sqrt(jnp.mean((out - target) ** 2))))
            nfes.append(few_step.nfe(method, steps))
    slope = np.polyfit(np.log(nfes), np.log(errors), 1)[0]
    assert -order - 0.25 < slope < -order + 0.25, (errors, slope)
    assert errors[-1] < 0.02


def test_nfe_counts():
    assert few_step.nfe('ddim', 10) == few_step.nfe('dpm_solver_pp', 10) == 10
    assert few_step.nfe('heun', 10) == 20 and few_step.nfe('heun', 10, ends_at_zero=True) == 19


def test_spacings_start_and_end_where_asked_and_are_monotone():
    with jax.enable_x64(True):
        _check_spacings(_gaussian_problem(SDES['vp'])[0])


def _check_spacings(coefs):
    for spacing in few_step.SPACINGS:
        ts = few_step.spaced_times(spacing, 10, 1.0, T_MIN, coefs)
        assert len(ts) == 11 and np.all(np.diff(ts) < 0)
        np.testing.assert_allclose([ts[0], ts[-1]], [1.0, T_MIN], rtol=1e-6)
    alpha, sigma = coefs(few_step.spaced_times('logsnr', 10, 1.0, T_MIN, coefs))
    steps = np.diff(np.log(alpha / sigma))
    np.testing.assert_allclose(steps, steps.mean(), rtol=1e-3)  # equal steps in log-SNR
    alpha, sigma = coefs(few_step.spaced_times('karras', 10, 1.0, T_MIN, coefs))
    steps = np.diff((sigma / alpha) ** (1 / 7))
    np.testing.assert_allclose(steps, steps.mean(), rtol=1e-3)  # equal steps in sigma^(1/rho)


# Step-by-step parity with diffusers' schedulers on a discrete DDPM schedule and a smooth stand-in network.
BETAS = {'beta_start': 1e-4, 'beta_end': 0.02, 'beta_schedule': 'linear', 'num_train_timesteps': 1000}


def _eps(x, t):
    """The stand-in noise prediction, in numpy (for diffusers) and jax (for ours) alike."""
    lib = jnp if isinstance(x, jax.Array) else np
    return 0.8 * lib.tanh(x) * lib.cos(t.reshape((-1,) + (1,) * (x.ndim - 1)) / 40.0) + 0.05


def _diffusers_run(scheduler, x_T):
    """diffusers' own loop: scale the input, predict eps, step; returns the final sample."""
    import torch

    sample = torch.tensor(x_T) * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        model_input = scheduler.scale_model_input(sample, t)
        eps = torch.tensor(_eps(model_input.numpy(), np.full(len(x_T), float(t))), dtype=torch.float32)
        sample = scheduler.step(eps, t, sample).prev_sample
    return sample.numpy()


def _ours(method, x_T, ts, sigma_hat, **kwargs):
    """Our solver through diffusers' times and EDM sigmas (sigma_t / alpha_t; the last one 0).

    The network's t -> sigma map is diffusers' too: sigma^ = sqrt((1 - abar_t) / abar_t) at the integer
    timesteps, linearly interpolated between them (Heun's and Euler's times are fractional).
    """
    abar = np.cumprod(1.0 - np.linspace(BETAS['beta_start'], BETAS['beta_end'], BETAS['num_train_timesteps']))
    sigma_of_t = jnp.asarray(np.sqrt((1.0 - abar) / abar), jnp.float32)
    grid = jnp.arange(len(abar), dtype=jnp.float32)
    sigma_hat = np.asarray(sigma_hat, np.float64)
    alphas = 1.0 / np.sqrt(sigma_hat**2 + 1.0)

    def x0_fn(x, t):
        s = jnp.interp(t, grid, sigma_of_t).reshape(-1, 1, 1, 1)
        return jnp.sqrt(s**2 + 1.0) * x - s * _eps(x, t)  # (x - sigma_t eps) / alpha_t

    times = jnp.asarray(np.append(ts, 0.0), jnp.float32)
    solve = getattr(few_step, method)
    run = jax.jit(lambda x: solve(x0_fn, x, times, jnp.asarray(alphas, jnp.float32),
                                  jnp.asarray(sigma_hat * alphas, jnp.float32), **kwargs))
    return np.asarray(run(jnp.asarray(x_T)))  # x_T in x_t terms: diffusers' x^_T = x_T / alpha_T


def _heun_grid(scheduler):
    """HeunDiscreteScheduler lists each interior time and sigma twice (the Euler stage and the correction)."""
    return scheduler.timesteps.numpy()[::2], np.append(scheduler.sigmas.numpy()[::2], 0.0)


def _plain_grid(scheduler):
    return scheduler.timesteps.numpy(), scheduler.sigmas.numpy()


# (diffusers scheduler, its settings, steps, our method, the scheduler's (times, sigmas) as ours): DPM-Solver++
# (diffusers' last step to sigma = 0 is first order, as ours is at lambda = inf), Heun, and Euler, which in
# EDM's variables (x / alpha against sigma / alpha) is DDIM with eta = 0.
PARITY = {
    'dpm_solver_pp-5': ('DPMSolverMultistepScheduler', {'algorithm_type': 'dpmsolver++', 'solver_order': 2}, 5,
                        'dpm_solver_pp', _plain_grid),
    'dpm_solver_pp-12': ('DPMSolverMultistepScheduler', {'algorithm_type': 'dpmsolver++', 'solver_order': 2}, 12,
                         'dpm_solver_pp', _plain_grid),
    'heun-6': ('HeunDiscreteScheduler', {}, 6, 'heun', _heun_grid),
    'ddim-8': ('EulerDiscreteScheduler', {}, 8, 'ddim', _plain_grid),
}


@pytest.mark.parametrize('case', sorted(PARITY))
def test_solvers_equal_diffusers_schedulers_step_by_step(case):
    import diffusers

    name, settings, steps, method, grid = PARITY[case]
    scheduler = getattr(diffusers, name)(**BETAS, **settings)
    scheduler.set_timesteps(steps)
    x_T = np.asarray(jax.random.normal(jax.random.key(steps), (2, 4, 4, 3)))
    ts, sigmas = grid(scheduler)
    assert len(scheduler.timesteps) == few_step.nfe(method, steps, ends_at_zero=True)
    np.testing.assert_allclose(_ours(method, x_T, ts, sigmas), _diffusers_run(scheduler, x_T), rtol=2e-4, atol=2e-4)

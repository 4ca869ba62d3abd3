"""The few-step samplers against the closed-form probability-flow map of Gaussian data.

For data N(mu, s^2 I) and a kernel x_t = alpha_t x_0 + sigma_t eps, the exact denoiser is
E[x_0 | x_t] = mu + alpha_t s^2 / (alpha_t^2 s^2 + sigma_t^2) (x_t - alpha_t mu), and the probability-flow
ODE carries x_T = alpha_T mu + sqrt(alpha_T^2 s^2 + sigma_T^2) z to alpha_t mu + sqrt(alpha_t^2 s^2 +
sigma_t^2) z. Each solver's error against that map must shrink with the number of network evaluations
at its order (DDIM 1, DPM-Solver++(2M) 2, (3M) 3, Heun 2): the slope of log error against log NFE is fitted over
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
# case: (solver, the fitted slope's bounds, the spacing its paper uses, solver keyword arguments). DPM-Solver++(3M)
# starts with a first- and a second-order step; on this problem their error stays below the third-order
# steps' (its slope is about -4 here), so only "at least third order" is asserted for it.
METHODS = {'ddim': ('ddim', (-1.25, -0.75), 'uniform', {}),
           'dpm_solver_pp-2M': ('dpm_solver_pp', (-2.25, -1.75), 'logsnr', {'lower_order_final': False}),
           'dpm_solver_pp-3M': ('dpm_solver_pp', (-4.5, -2.75), 'logsnr', {'order': 3, 'lower_order_final': False}),
           'heun': ('heun', (-2.25, -1.75), 'karras', {})}


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
@pytest.mark.parametrize('case', sorted(METHODS))
def test_error_shrinks_at_the_solvers_order(sde_name, case):
    method, (low, high), spacing, kwargs = METHODS[case]
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
    assert low < slope < high, (errors, slope)
    assert errors[-1] < 0.02


# The local error of one DPM-Solver++ step from the exact history, on the VP kernel parametrised by log-SNR
# lambda (alpha^2 = sigmoid(2 lambda), sigma^2 = sigmoid(-2 lambda)) with Gaussian data: the history sits at
# lambda_0 - h and lambda_0 - 2.5 h (uneven steps, r_1 = 1.5), the step goes to lambda_0 + h.
LOCAL_STEPS = (0.1, 0.05, 0.025, 0.0125)


def _vp_of_lambda(lam):
    return jnp.sqrt(jax.nn.sigmoid(2 * lam)), jnp.sqrt(jax.nn.sigmoid(-2 * lam))


def _exact_step(h):
    """(x now, the exact predictions (m_0, m_1, m_2), the four lambdas, x at lambda_0 + h) in float64."""
    z = jax.random.normal(jax.random.key(1), (64, 4), jnp.float64)

    def x_of(lam):
        alpha, sigma = _vp_of_lambda(lam)
        return alpha * MU + jnp.sqrt(alpha**2 * S**2 + sigma**2) * z

    def m_of(lam):
        alpha, sigma = _vp_of_lambda(lam)
        return MU + alpha * S**2 / (alpha**2 * S**2 + sigma**2) * (x_of(lam) - alpha * MU)

    lam = tuple(jnp.asarray(v, jnp.float64) for v in (-0.5 + h, -0.5, -0.5 - h, -0.5 - 2.5 * h))
    return x_of(lam[1]), tuple(m_of(v) for v in lam[1:]), lam, x_of(lam[0])


def _local_slope(step):
    errors = []
    for h in LOCAL_STEPS:
        x, m, lam, target = _exact_step(h)
        errors.append(float(jnp.sqrt(jnp.mean((step(x, m, lam) - target) ** 2))))
    return np.polyfit(np.log(LOCAL_STEPS), np.log(errors), 1)[0]


@pytest.mark.parametrize('order', (1, 2, 3))
def test_dpm_solver_pp_step_has_local_error_of_its_order_plus_one(order):
    def step(x, m, lam):
        alpha_next, sigma_next = _vp_of_lambda(lam[0])
        return few_step.dpm_solver_pp_step(x, m, lam, alpha_next, sigma_next, _vp_of_lambda(lam[1])[1], order)

    with jax.enable_x64(True):
        slope = _local_slope(step)
    assert order + 1 - 0.1 < slope < order + 1 + 0.15, slope


def test_diffusers_third_order_multistep_update_is_locally_second_order():
    """diffusers' DPMSolverMultistepScheduler third-order update on the same exact history: its local
    error shrinks as h^3, not h^4 (its D_2 weight is half of the Taylor coefficient; see
    gen_runtime/few_step.dpm_solver_pp_step)."""
    import diffusers
    import torch

    scheduler = diffusers.DPMSolverMultistepScheduler(**BETAS, algorithm_type='dpmsolver++', solver_order=3)

    def step(x, m, lam):
        # diffusers' sigma is sigma_t / alpha_t = exp(-lambda); its sample is x_t (alpha_t = 1 / sqrt(sigma^2 + 1)).
        scheduler.sigmas = torch.tensor(np.exp(-np.asarray([lam[3], lam[2], lam[1], lam[0]])), dtype=torch.float64)
        scheduler._step_index = 2
        history = [torch.tensor(np.asarray(v)) for v in (m[2], m[1], m[0])]
        return jnp.asarray(scheduler.multistep_dpm_solver_third_order_update(history, sample=torch.tensor(
            np.asarray(x))).numpy())

    with jax.enable_x64(True):
        slope = _local_slope(step)
    assert 2.9 < slope < 3.25, slope


def test_solve_refuses_an_unknown_method():
    with pytest.raises(ValueError, match="method='euler' is not one of ddim, dpm_solver_pp, heun"):
        few_step.solve('euler', lambda x, t: x, jnp.zeros((1, 2)), jnp.ones(2), jnp.ones(2), jnp.ones(2))


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
    run = jax.jit(lambda x: few_step.solve(method, x0_fn, x, times, jnp.asarray(alphas, jnp.float32),
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

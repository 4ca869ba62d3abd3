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

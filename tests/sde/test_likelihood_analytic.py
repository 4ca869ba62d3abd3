"""The probability-flow ODE likelihood against closed-form log-densities, and its estimators."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sde_jax.likelihood import bits_per_dim, ode_log_likelihood
from sde_jax.sde import VESDE, VPSDE, SubVPSDE
from tests.sde.analytic import GAUSSIAN, MIXTURE, DiagonalMixture

SDES = {'ve': VESDE(sigma_min=0.01, sigma_max=50.0), 'vp': VPSDE(), 'subvp': SubVPSDE()}
EPS = 1e-3
TOL = 1e-6


def _log_likelihood(sde, dist: DiagonalMixture, x: jax.Array, rng: jax.Array, estimator: str,
                    num_probes: int = 1) -> jax.Array:
    """ODE log-likelihood of x(eps) = x with the exact score, and the exact p_T as the prior.

    With the exact prior the only error left is the solver's (the SDE's N(0, std(T)^2) prior differs
    from p_T by a modelling error that is not under test here).
    """
    logp, _, _ = ode_log_likelihood(sde, functools.partial(dist.score, sde), x, rng, estimator=estimator,
                                 num_probes=num_probes, rtol=TOL, atol=TOL, eps=EPS,
                                 prior_logp=lambda z: dist.log_density(sde, z, jnp.full(z.shape[:1], sde.T)))
    return logp


_jitted = jax.jit(_log_likelihood, static_argnames=('estimator', 'num_probes'))


@pytest.mark.parametrize('sde_name', list(SDES))
def test_exact_trace_likelihood_equals_analytic_log_density(sde_name):
    sde = SDES[sde_name]
    for dist in (GAUSSIAN, MIXTURE):
        x = jnp.asarray(dist.sample(np.random.default_rng(0), 64))
        logp = _jitted(sde, dist, x, jax.random.key(0), 'exact')
        truth = dist.log_density(sde, x, jnp.full((64,), EPS))
        per_dim_error = np.abs(np.asarray(logp - truth)) / x.shape[1]
        assert per_dim_error.max() < 1e-3, per_dim_error.max()


def test_rademacher_trace_is_exact_for_a_diagonal_jacobian():
    """For Gaussian data the drift's Jacobian is diagonal, and v^T J v = tr J for every v in {-1, 1}^D."""
    x = jnp.asarray(GAUSSIAN.sample(np.random.default_rng(1), 16))
    exact = _jitted(SDES['vp'], GAUSSIAN, x, jax.random.key(0), 'exact')
    rademacher = _jitted(SDES['vp'], GAUSSIAN, x, jax.random.key(1), 'rademacher')
    np.testing.assert_allclose(rademacher, exact, atol=1e-3)


@pytest.mark.parametrize('estimator', ['rademacher', 'gaussian'])
def test_hutchinson_estimate_is_unbiased_and_averages_down_with_probes(estimator):
    """Mixture data (non-diagonal Jacobian): M independent probe draws per point average to the exact
    value within 5 standard errors (SE = sample std / sqrt(M)); K = 4 probes cut the std by ~2."""
    sde, draws = SDES['vp'], 200
    points = jnp.asarray(MIXTURE.sample(np.random.default_rng(2), 4))
    exact = np.asarray(_jitted(sde, MIXTURE, points, jax.random.key(0), 'exact'))
    x = jnp.repeat(points, draws, axis=0)  # each row gets its own probes
    stds = {}
    for k in (1, 4):
        estimates = np.asarray(_jitted(sde, MIXTURE, x, jax.random.key(k), estimator, k)).reshape(4, draws)
        stds[k] = estimates.std(axis=1, ddof=1)
        standard_error = stds[k] / np.sqrt(draws)
        assert np.all(stds[k] > 1e-3)  # the estimator is random here...
        np.testing.assert_array_less(np.abs(estimates.mean(axis=1) - exact), 5 * standard_error)  # ...and unbiased
    np.testing.assert_array_less(stds[4], 0.7 * stds[1])


def test_bits_per_dim_offset_is_the_same_in_any_data_scaling():
    """Uniform density on the data cube: bpd = log2(levels) whether the model sees [0, 1] or [-1, 1]."""
    dims, levels = 784, 256
    unit = bits_per_dim(jnp.zeros(()), dims, levels, model_scale=1.0)  # density 1 on [0, 1]^D
    centred = bits_per_dim(jnp.asarray(-dims * np.log(2.0)), dims, levels, model_scale=2.0)  # 2^-D on [-1, 1]^D
    np.testing.assert_allclose([unit, centred], [8.0, 8.0], rtol=1e-6)
    np.testing.assert_allclose(bits_per_dim(jnp.zeros(()), 64, 17, 1.0), np.log2(17), rtol=1e-6)

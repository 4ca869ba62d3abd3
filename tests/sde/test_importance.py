"""Importance sampling of t for the likelihood weighting (sde_jax.importance) against closed forms and quadrature."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from gen_runtime.errors import ConfigError
from sde_jax.importance import importance_times, inverse_antiderivative, likelihood_weight, weight_antiderivative
from sde_jax.losses import check_loss_config, dsm_loss
from sde_jax.sde import VESDE, VPSDE, SubVPSDE

SDES = {'vp': VPSDE(), 'subvp': SubVPSDE(), 've': VESDE(sigma_min=0.01, sigma_max=50.0)}
EPS = 1e-5


@pytest.mark.parametrize('name', sorted(SDES))
def test_the_antiderivative_integrates_the_weight_and_inverts_exactly(name):
    sde = SDES[name]
    t = np.geomspace(EPS, 1.0, 4001)
    weight = np.asarray(likelihood_weight(sde, jnp.asarray(t)), np.float64)
    f = np.asarray(weight_antiderivative(sde, jnp.asarray(t)), np.float64)
    # dF/dt = g^2 / sigma^2: the trapezoid rule on a geometric grid, where the weight is smooth in log t.
    integral = np.cumsum(np.concatenate([[0.0], 0.5 * (weight[1:] + weight[:-1]) * np.diff(t)]))
    np.testing.assert_allclose(f - f[0], integral, rtol=2e-4, atol=2e-4)
    np.testing.assert_allclose(np.asarray(inverse_antiderivative(sde, jnp.asarray(f))), t, rtol=2e-4)


@pytest.mark.parametrize('name', sorted(SDES))
def test_times_follow_the_weight_and_the_weighted_estimate_is_the_uniform_one(name):
    sde, n = SDES[name], 20000
    t, w = importance_times(sde, jax.random.key(0), (n,), EPS)
    t, w = np.asarray(t, np.float64), np.asarray(w, np.float64)
    assert t.min() >= EPS and t.max() <= 1.0 and np.ptp(w) == 0.0
    # The empirical CDF is (F(t) - F(eps)) / Z: Kolmogorov-Smirnov distance below its 0.1% critical value.
    f = lambda s: np.asarray(weight_antiderivative(sde, jnp.asarray(s)), np.float64)  # noqa: E731
    cdf = (f(np.sort(t)) - f(EPS)) / (f(1.0) - f(EPS))
    ks = np.max(np.abs(cdf - np.arange(1, n + 1) / n))
    assert ks < 1.95 / np.sqrt(n), ks
    # E_p[w h(t)] = (1 / (1 - eps)) int (g^2 / sigma^2) h dt for a residual h(t) that varies with t.
    grid = np.geomspace(EPS, 1.0, 20001)
    h = lambda s: (1.0 - s) ** 2 + 0.1  # noqa: E731
    weight = np.asarray(likelihood_weight(sde, jnp.asarray(grid)), np.float64)
    exact = np.trapezoid(weight * h(grid), grid) / (1.0 - EPS)
    estimate = w * h(t)
    assert abs(estimate.mean() - exact) < 4 * estimate.std() / np.sqrt(n)
    # Uniform t estimates the same number with a far larger spread (the weight grows like 1 / t near 0).
    u = np.asarray(jax.random.uniform(jax.random.key(1), (n,), minval=EPS, maxval=1.0), np.float64)
    uniform = np.asarray(likelihood_weight(sde, jnp.asarray(u)), np.float64) * h(u)
    assert uniform.std() > 10 * estimate.std()


def test_the_loss_weights_the_residual_by_the_normaliser():
    """dsm_loss with importance sampling: the residual at the drawn t, times Z / (T - eps), by hand."""

    class Zero:  # a network that predicts zero noise: the residual is ||z||^2 whatever t is
        def apply(self, variables, x, t, train=False, rngs=None):
            return jnp.zeros_like(x)

    sde, x = VPSDE(), jnp.ones((4, 3, 3, 1))
    rng = jax.random.key(2)
    loss = dsm_loss(Zero(), {}, sde, x, rng, weighting='likelihood', importance_sampling=True, eps=EPS)
    t_rng, z_rng, _ = jax.random.split(rng, 3)
    _, w = importance_times(sde, t_rng, (4,), EPS)
    z = jax.random.normal(z_rng, x.shape)
    np.testing.assert_allclose(loss, 0.5 * w * jnp.sum(z**2, axis=(1, 2, 3)), rtol=1e-6)


def test_settings_the_closed_form_does_not_cover_are_refused():
    loss = ml_collections.ConfigDict({'type': 'dsm', 'weighting': 'sigma2', 'importance_sampling': True,
                                   'time_sampling': 'uniform'})
    with pytest.raises(ConfigError, match="set loss.type='dsm' and loss.weighting='likelihood'"):
        check_loss_config(loss, VPSDE())
    loss.weighting = 'likelihood'
    with pytest.raises(ConfigError, match="VP, sub-VP and VE SDEs .VE with sde.ve_marginal_std='exact'"):
        check_loss_config(loss, VESDE(marginal_std='sigma'))
    check_loss_config(loss, SubVPSDE())
    check_loss_config(loss, VESDE())
    with pytest.raises(ValueError, match='not VESDE'):
        importance_times(VESDE(marginal_std='sigma'), jax.random.key(0), (2,), EPS)

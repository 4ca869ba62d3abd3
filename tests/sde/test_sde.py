"""The forward SDEs against their own moment equations and the papers' closed forms."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from gen_runtime.errors import ConfigError
from sde_jax.losses import check_loss_config, discrete_loss, dsm_loss
from sde_jax.sde import VESDE, VPSDE, SubVPSDE, get_sde, tutorial_ve_sigmas

SDES = [VESDE(sigma_min=0.01, sigma_max=50.0), VPSDE(beta_min=0.1, beta_max=20.0),
        SubVPSDE(beta_min=0.1, beta_max=20.0)]
TIMES = jnp.array([0.05, 0.3, 0.7, 0.95])


@pytest.mark.parametrize('sde', SDES, ids=['ve', 'vp', 'subvp'])
def test_marginals_solve_the_moment_equations_of_the_sde(sde):
    """For dx = b(t) x dt + g(t) dw: d a/dt = b a and d var/dt = 2 b var + g^2 (var = std^2)."""
    ones = jnp.ones((len(TIMES), 1))
    b = sde.sde(ones, TIMES)[0][:, 0]  # drift of x = 1 is b(t)
    g2 = sde.sde(ones, TIMES)[1] ** 2
    a, da = jax.jvp(lambda t: sde.marginal_coefs(t)[0], (TIMES,), (jnp.ones_like(TIMES),))
    var, dvar = jax.jvp(lambda t: sde.marginal_coefs(t)[1] ** 2, (TIMES,), (jnp.ones_like(TIMES),))
    np.testing.assert_allclose(da, b * a, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(dvar, 2 * b * var + g2, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(sde.marginal_coefs(jnp.zeros(1))[1], 0.0, atol=1e-7)  # starts at the data


def test_tutorial_ve_sde_is_dx_equals_sigma_to_the_t_dw():
    lo, hi = tutorial_ve_sigmas(25.0)
    sde = VESDE(sigma_min=lo, sigma_max=hi)
    np.testing.assert_allclose(sde.sde(jnp.ones((4, 1)), TIMES)[1], 25.0**TIMES, rtol=1e-5)
    np.testing.assert_allclose(sde.marginal_coefs(TIMES)[1] ** 2, (25.0 ** (2 * TIMES) - 1) / (2 * np.log(25.0)),
                               rtol=1e-5)


@pytest.mark.parametrize('sde', SDES[:2], ids=['ve', 'vp'])
def test_smld_and_ddpm_discretisations_compose_to_the_marginal(sde):
    """N steps of the discretisation from 0 to 1 reproduce p_01 exactly (VE: the variances add up;
    VP: the sqrt(1 - beta_i) multiply to the signal coefficient and the variance follows)."""
    n = 100
    coef, var = 1.0, 0.0
    for i in range(1, n + 1):
        t = jnp.full((1,), i / n)
        f, g = sde.discretize(jnp.ones((1, 1)), t, 1.0 / n)
        step_coef = 1.0 + f[0, 0]
        coef, var = coef * step_coef, var * step_coef**2 + g[0] ** 2
    true_coef, true_std = sde.marginal_coefs(jnp.ones(1))
    np.testing.assert_allclose([coef, var], [true_coef[0], true_std[0] ** 2], rtol=1e-4, atol=1e-7)


def test_discrete_noise_levels_are_smld_and_ddpm():
    ve = VESDE(sigma_min=0.01, sigma_max=50.0, N=1000)
    np.testing.assert_allclose(ve.discrete_noise(jnp.array([0, 999]))[1], [0.01, 50.0], rtol=1e-5)
    vp = VPSDE(N=1000)
    np.testing.assert_allclose(vp.discrete_betas()[jnp.array([0, 999])], [1e-4, 0.02], rtol=1e-6)
    coef, std = vp.discrete_noise(jnp.array([0, 500, 999]))
    np.testing.assert_allclose(coef**2 + std**2, 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match='no discrete noise levels'):
        SubVPSDE().discrete_noise(jnp.array([0]))


def test_reverse_sde_and_probability_flow():
    sde, x, t = VPSDE(), jnp.ones((2, 3)), jnp.array([0.2, 0.8])

    def score(x, t):
        return -2.0 * x

    f, g = sde.sde(x, t)
    drift, diffusion = sde.reverse(score).sde(x, t)
    np.testing.assert_allclose(drift, f - g[:, None] ** 2 * score(x, t), rtol=1e-6)
    np.testing.assert_allclose(diffusion, g)
    drift, diffusion = sde.reverse(score, probability_flow=True).sde(x, t)
    np.testing.assert_allclose(drift, f - 0.5 * g[:, None] ** 2 * score(x, t), rtol=1e-6)
    np.testing.assert_allclose(diffusion, 0.0)


def test_sdes_are_pytrees_that_jit_takes():
    out = jax.jit(lambda sde, t: sde.marginal_coefs(t)[1])(VPSDE(beta_max=10.0), TIMES)
    np.testing.assert_allclose(out, VPSDE(beta_max=10.0).marginal_coefs(TIMES)[1], rtol=1e-6)
    assert jax.tree.leaves(VESDE(sigma_min=0.1, sigma_max=5.0)) == [0.1, 5.0]


def _cfg(**fields) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(fields)


def test_bad_sde_and_loss_configs_are_clear_errors():
    with pytest.raises(ConfigError, match="sde.type='cde'"):
        get_sde(_cfg(type='cde', num_scales=10))
    with pytest.raises(ConfigError, match='0 < sigma_min < sigma_max'):
        get_sde(_cfg(type='vesde', sigma_min=1.0, sigma_max=0.5, num_scales=10))
    with pytest.raises(ConfigError, match="loss.type='smld' is the discrete loss of the VE SDE"):
        check_loss_config(_cfg(type='smld', weighting='sigma2', time_sampling='uniform'), VPSDE())
    with pytest.raises(ConfigError, match="needs the continuous loss.type='dsm'"):
        check_loss_config(_cfg(type='ddpm', weighting='likelihood', time_sampling='uniform'), VPSDE())


def test_losses_of_a_perfect_noise_predictor_are_zero():
    """A 'network' returning the true noise has zero residual in every loss (checks the conventions)."""
    x = jax.random.normal(jax.random.key(0), (8, 4))

    class Oracle:
        """Recovers z from x_t = a x0 + std z for the fixed batch x0 = x, inverting the noise label
        of sde_jax.conditioning (VE: log sigma(t); VP: 999 t) to find t."""

        def __init__(self, sde, continuous):
            self.sde, self.continuous = sde, continuous

        def apply(self, variables, x_t, label, train=False, rngs=None):
            sde = self.sde
            if isinstance(sde, VESDE):
                t = (label - jnp.log(sde.sigma_min)) / sde.log_ratio()
            else:
                t = label / 999.0
            if self.continuous:
                a, std = sde.marginal_coefs(t)
            else:
                a, std = sde.discrete_noise(jnp.round(t * (sde.N - 1)).astype(jnp.int32))
            return (x_t - a[:, None] * x) / std[:, None]

    for sde in (VPSDE(N=100), VESDE(N=100)):
        for weighting in ('sigma2', 'likelihood'):
            loss = dsm_loss(Oracle(sde, True), {}, sde, x, jax.random.key(1), weighting=weighting)
            np.testing.assert_allclose(loss, 0.0, atol=1e-4)
        np.testing.assert_allclose(discrete_loss(Oracle(sde, False), {}, sde, x, jax.random.key(2)), 0.0, atol=1e-4)

"""The variational bound (sde_jax.bound) on Gaussian data, where the score, the NLL and every term's expectation
have closed forms: with the exact score and a prior that matches, the bound equals the NLL; with a wrong score it
exceeds it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sde_jax.bound import prior_term, variational_bound
from sde_jax.sde import VESDE, VPSDE, SubVPSDE

S2, D, N, EPS = 0.25, 2, 50000, 1e-5  # data N(0, S2 I) in D dimensions, N examples
SDES = {'vp': VPSDE(), 'subvp': SubVPSDE(), 've': VESDE(sigma_min=0.01, sigma_max=50.0)}


def expected_terms(sde, eps: float = EPS) -> dict[str, float]:
    """E_x of each term for the exact score of N(0, S2 I): m_t = alpha^2 S2 + sigma^2, E||eps_hat - z||^2 =
    D alpha^2 S2 / m_t, Tweedie's mean leaves E||x - x0_hat||^2 = D S2 sigma^2 / m_eps (the diffusion integral by
    the trapezoid rule on a geometric grid)."""
    t = np.geomspace(eps, 1.0, 200001)
    coef, std = (np.asarray(a, np.float64) for a in sde.marginal_coefs(jnp.asarray(t)))
    g2 = np.asarray(sde.sde(jnp.zeros(len(t)), jnp.asarray(t))[1], np.float64) ** 2
    m = coef**2 * S2 + std**2
    prior_var = float(sde.prior_std()) ** 2
    ratio = std[-1] ** 2 / prior_var
    return {'prior': 0.5 * D * (coef[-1] ** 2 * S2 / prior_var + ratio - 1.0 - np.log(ratio)),
            'diffusion': 0.5 * np.trapezoid(g2 / std**2 * D * coef**2 * S2 / m, t),
            'reconstruction': (0.5 * D * np.log(2 * np.pi * std[0] ** 2 / coef[0] ** 2)
                               + D * S2 * coef[0] ** 2 / (2 * m[0]))}


def exact_score(sde, scale: float = 1.0):
    def score(x_t, t):
        coef, std = sde.marginal_coefs(t)
        return -scale * x_t / (coef**2 * S2 + std**2)[:, None]

    return score


def estimate(sde, score) -> dict[str, np.ndarray]:
    x = jnp.sqrt(S2) * jax.random.normal(jax.random.key(0), (N, D))
    out = jax.jit(lambda x, r: variational_bound(sde, score, x, r, eps=EPS, num_times=4))(x, jax.random.key(1))
    return {k: np.asarray(v, np.float64) for k, v in out.items()}


NLL = 0.5 * D * np.log(2 * np.pi * S2) + D / 2  # E_x[-log N(x; 0, S2 I)]


@pytest.mark.parametrize('name', sorted(SDES))
def test_with_the_exact_score_the_bound_is_the_nll(name):
    sde = SDES[name]
    terms = expected_terms(sde)
    assert 0 <= sum(terms.values()) - NLL < 1e-5  # the closed forms: equality up to the decoder's O(eps) gap
    got = estimate(sde, exact_score(sde))
    for term, value in terms.items():  # the estimator is unbiased, term by term
        assert abs(got[term].mean() - value) < 4 * got[term].std() / np.sqrt(N) + 1e-6, (term, got[term].mean(), value)
    assert abs(got['bound'].mean() - NLL) < 4 * got['bound'].std() / np.sqrt(N)


@pytest.mark.parametrize('name', sorted(SDES))
def test_a_wrong_score_raises_the_bound(name):
    sde = SDES[name]
    got = estimate(sde, exact_score(sde, scale=0.8))
    excess = got['bound'] - NLL
    assert excess.mean() > 4 * excess.std() / np.sqrt(N)  # about 0.4 nats, 6-10 standard errors


def test_the_prior_term_is_the_gaussian_kl_per_example():
    sde = VPSDE()
    x = jnp.asarray([[0.5, -1.0], [0.0, 2.0]])
    coef, std = (float(a) for a in sde.marginal_coefs(jnp.asarray(1.0)))
    want = [0.5 * sum((coef * v) ** 2 + std**2 - 1.0 - np.log(std**2) for v in row) for row in np.asarray(x)]
    np.testing.assert_allclose(prior_term(sde, x), want, rtol=0, atol=1e-7)  # float32: terms of 3e-5 and 9e-5

"""The variational bound of the score SDE's likelihood, without the ODE (Song, Durkan, Murray & Ermon 2021, Theorem 1
in its per-example form with the prior and reconstruction terms; the continuous-time ELBO of Kingma et al. 2021).

The generative model is the reverse SDE with the learned score, started from the prior pi at T and run to eps,
then a Gaussian decoder p(x | x_eps) = N(x; x0_hat, (sigma_eps / alpha_eps)^2 I), x0_hat Tweedie's denoised mean
(x_eps + sigma_eps^2 s(x_eps, eps)) / alpha_eps. With q the forward process started at x,
  -log p(x) <= KL(q(x_T | x) || pi)                                           (prior)
             + 1/2 int_eps^T g(t)^2 E_q || s(x_t, t) - grad log q(x_t | x) ||^2 dt   (diffusion)
             + E_q[-log p(x | x_eps)]                                          (reconstruction),
the path KL by Girsanov's theorem. With s = -eps_hat / sigma_t the diffusion term is
1/2 int (g^2 / sigma^2) E || eps_hat(x_t, t) - z ||^2 dt, the likelihood-weighted DSM loss integrated over t: it
is estimated with `num_times` draws of t per example, from p(t) proportional to g^2 / sigma^2 where that has a
closed form (sde_jax.importance: VP, sub-VP, VE with its exact marginal) and uniformly otherwise. The bound holds
for any score; it is the SDE model's (which equals the probability-flow ODE's only where the score is exact), so
it upper-bounds that model's NLL.
"""

import math

import jax
import jax.numpy as jnp

from sde_jax.importance import has_closed_form, importance_times
from sde_jax.sde import SDE, RectifiedFlow, ScoreFn, batch_broadcast


def _sum(x: jax.Array) -> jax.Array:
    return jnp.sum(x, axis=tuple(range(1, x.ndim)))


def time_draws(sde: SDE, rng: jax.Array, shape: tuple[int, ...], eps: float) -> tuple[jax.Array, jax.Array]:
    """(t, w) with E[w h(t)] = int_eps^T (g^2 / sigma^2) h(t) dt for any h: importance sampled where
    sde_jax.importance has the closed form, uniform otherwise."""
    if has_closed_form(sde):
        t, weight = importance_times(sde, rng, shape, eps)
        return t, weight * (sde.T - eps)
    t = jax.random.uniform(rng, shape, minval=eps, maxval=sde.T)
    std = sde.marginal_coefs(t)[1]
    return t, (sde.T - eps) * sde.sde(jnp.zeros_like(t), t)[1] ** 2 / std**2


def prior_term(sde: SDE, x: jax.Array) -> jax.Array:
    """KL(N(alpha_T x, sigma_T^2 I) || N(0, prior_std^2 I)) per example, in nats."""
    coef, std = sde.marginal_coefs(jnp.asarray(sde.T))
    prior_var, var = sde.prior_std() ** 2, std**2
    dims = math.prod(x.shape[1:])
    return 0.5 * (_sum((coef * x) ** 2) / prior_var + dims * (var / prior_var - 1.0 - jnp.log(var / prior_var)))


def variational_bound(sde: SDE, score_fn: ScoreFn, x: jax.Array, rng: jax.Array, *, eps: float = 1e-5,
                      num_times: int = 1) -> dict[str, jax.Array]:
    """The bound on -log p(x) in nats per example of model-space data x (B, ...), and its three terms:
    {'bound', 'prior', 'diffusion', 'reconstruction'}, each (B,) (module docstring)."""
    if isinstance(sde, RectifiedFlow):
        raise ValueError('the bound is the reverse SDE\'s; the rectified flow is run only through its ODE')
    batch = x.shape[0]
    t_rng, z_rng, rec_rng = jax.random.split(rng, 3)
    t, w = time_draws(sde, t_rng, (num_times, batch), eps)

    def residual(t_k: jax.Array, z_key: jax.Array) -> jax.Array:
        z = jax.random.normal(z_key, x.shape)
        mean, std = sde.marginal_prob(x, t_k)
        x_t = mean + batch_broadcast(std, x) * z
        eps_hat = -batch_broadcast(std, x) * score_fn(x_t, t_k)
        return _sum((eps_hat - z) ** 2)

    squared = jax.lax.map(lambda a: residual(*a), (t, jax.random.split(z_rng, num_times)))
    diffusion = 0.5 * jnp.mean(w * squared, axis=0)

    t_eps = jnp.full((batch,), eps)
    coef, std = sde.marginal_coefs(t_eps)
    coef_b, std_b = batch_broadcast(coef, x), batch_broadcast(std, x)
    x_eps = coef_b * x + std_b * jax.random.normal(rec_rng, x.shape)
    x0_hat = (x_eps + std_b**2 * score_fn(x_eps, t_eps)) / coef_b
    var = (std / coef) ** 2
    dims = math.prod(x.shape[1:])
    reconstruction = 0.5 * dims * jnp.log(2.0 * jnp.pi * var) + _sum((x - x0_hat) ** 2) / (2.0 * var)

    prior = prior_term(sde, x)
    return {'bound': prior + diffusion + reconstruction, 'prior': prior, 'diffusion': diffusion,
            'reconstruction': reconstruction}

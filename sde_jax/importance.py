"""Importance sampling of the diffusion time for likelihood-weighted score matching (Song, Durkan, Murray & Ermon,
"Maximum likelihood training of score-based diffusion models", NeurIPS 2021, sec. 5).

With the noise-predicting network the likelihood-weighted DSM objective is
  (1 / (T - eps)) int_eps^T (g(t)^2 / sigma_t^2) E || eps_hat(x_t, t) - z ||^2 dt,
whose uniform-t estimate is dominated by the weight g^2 / sigma^2, which grows like 1 / t near 0. Drawing t from
p(t) = (g^2 / sigma^2) / Z instead, with Z = int_eps^T g^2 / sigma^2 dt, and weighting each example by
Z / (T - eps) estimates the same objective with the weight's variance removed. For the VP and sub-VP SDEs
(B(t) = int_0^t beta, linear beta; the paper's two) and the VE SDE with its exact marginal (r = sigma_max /
sigma_min) the weight has a closed-form antiderivative F, so t = F^-1(F(eps) + u Z), u ~ U(0, 1), is exact:
  VP:     g^2 / sigma^2 = beta / (1 - e^-B),                F = log(e^B - 1),
  sub-VP: g^2 / sigma^2 = beta (1 + e^-B) / (1 - e^-B),     F = 2 log(e^B - 1) - B = 2 log(2 sinh(B / 2)),
  VE:     g^2 / sigma^2 = 2 log r r^2t / (r^2t - 1),        F = log(r^2t - 1),
and B -> t solves beta_min t + (beta_max - beta_min) t^2 / 2 = B. (With the VE SDE's marginal_std='sigma' the
weight is the constant 2 log r: uniform t is already exact.)
"""

import jax
import jax.numpy as jnp

from sde_jax.sde import SDE, VESDE, VPSDE, SubVPSDE


def has_closed_form(sde: SDE) -> bool:
    """Whether F and its inverse are implemented for `sde` (module docstring)."""
    return type(sde) in (VPSDE, SubVPSDE) or (type(sde) is VESDE and sde.marginal_std == 'exact')


def _check(sde: SDE) -> None:
    if not has_closed_form(sde):
        raise ValueError(f'importance sampling of t has a closed form for the VP, sub-VP and VE (exact marginal) '
                         f'SDEs, not {type(sde).__name__}')


def likelihood_weight(sde: SDE, t: jax.Array) -> jax.Array:
    """g(t)^2 / sigma_t^2, the likelihood weighting of the noise-prediction residual."""
    _check(sde)
    std = sde.marginal_coefs(t)[1]
    return sde.sde(jnp.zeros_like(t), t)[1] ** 2 / std**2


def weight_antiderivative(sde: SDE, t: jax.Array) -> jax.Array:
    """F(t) with dF/dt = g(t)^2 / sigma_t^2 (module docstring)."""
    _check(sde)
    if type(sde) is VESDE:
        return jnp.log(jnp.expm1(2.0 * t * sde.log_ratio()))
    b = sde.integrated_beta(t)
    log_expm1 = jnp.log(jnp.expm1(b))
    return log_expm1 if type(sde) is VPSDE else 2.0 * log_expm1 - b


def _time_of_integrated_beta(sde: SDE, b: jax.Array) -> jax.Array:
    """The t >= 0 with beta_min t + (beta_max - beta_min) t^2 / 2 = b (the root in its cancellation-free form)."""
    slope = sde.beta_max - sde.beta_min
    return 2.0 * b / (sde.beta_min + jnp.sqrt(sde.beta_min**2 + 2.0 * slope * b))


def inverse_antiderivative(sde: SDE, f: jax.Array) -> jax.Array:
    """The t with F(t) = f."""
    _check(sde)
    if type(sde) is VESDE:
        return jax.nn.softplus(f) / (2.0 * sde.log_ratio())
    if type(sde) is VPSDE:
        b = jax.nn.softplus(f)  # log(1 + e^f)
    else:
        b = 2.0 * jnp.arcsinh(0.5 * jnp.exp(0.5 * f))
    return _time_of_integrated_beta(sde, b)


def importance_times(sde: SDE, rng: jax.Array, shape: tuple[int, ...],
                     eps: float) -> tuple[jax.Array, jax.Array]:
    """(t ~ p(t) proportional to g^2 / sigma^2 on [eps, T], the per-example weight Z / (T - eps)): the weighted
    residual has the expectation of the uniform-t likelihood-weighted one."""
    low, high = weight_antiderivative(sde, jnp.asarray(eps)), weight_antiderivative(sde, jnp.asarray(sde.T))
    u = jax.random.uniform(rng, shape)
    t = inverse_antiderivative(sde, low + u * (high - low))
    return jnp.clip(t, eps, sde.T), jnp.full(shape, (high - low) / (sde.T - eps))

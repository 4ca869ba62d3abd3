"""Training objectives of score-based models (Song et al. 2021, eq. 7 and Appendix C).

With the network predicting the noise (sde_jax.conditioning), the denoising score matching residual
std(t) s_theta + z equals z - eps_hat, so
  - 'dsm' with weighting 'sigma2' (lambda(t) = std(t)^2, eq. 7):  || eps_hat - z ||^2,
  - 'dsm' with weighting 'likelihood' (lambda(t) = g(t)^2, Song et al. 2021b): g^2 || s_theta + z / std ||^2,
    with t drawn uniformly or, with importance sampling, from p(t) proportional to g^2 / std^2 (sde_jax.importance),
  - 'smld' (VE) / 'ddpm' (VP): the same residual at one of N discrete noise levels drawn uniformly
    (NCSN's sum_i sigma_i^2 E||s + z / sigma_i||^2 and DDPM's sum_i E||eps_hat - z||^2).
  - 'flow_matching' (the rectified flow, sde.RectifiedFlow): the conditional flow matching loss of Lipman et al.
    2023 (eq. 23 with their optimal-transport path at sigma_min = 0; Liu et al.'s rectified flow)
    || v_theta(x_t, t) - (eps - x_0) ||^2 at x_t = (1 - t) x_0 + t eps, t uniform on (0, 1) or logit-normal,
    t = sigmoid(m + s n), n ~ N(0, 1) (Esser et al. 2024, eq. 19: more weight on the middle of the path).
Per example the squared residual is summed with a factor 1/2 (or averaged with reduce_mean), then
averaged over the batch.
"""

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from gen_runtime.errors import ConfigError
from gen_runtime.pytree import PyTree
from sde_jax.importance import has_closed_form, importance_times
from sde_jax.score_model import network_fn
from sde_jax.sde import SDE, VESDE, VPSDE, RectifiedFlow, batch_broadcast

LOSS_TYPES = ('dsm', 'smld', 'ddpm', 'flow_matching')
DISCRETE_LOSSES = ('smld', 'ddpm')
WEIGHTINGS = ('sigma2', 'likelihood')
TIME_SAMPLINGS = ('uniform', 'logit_normal')


def _reduce(per_dim: jax.Array, reduce_mean: bool) -> jax.Array:
    axes = tuple(range(1, per_dim.ndim))
    return jnp.mean(per_dim, axis=axes) if reduce_mean else 0.5 * jnp.sum(per_dim, axis=axes)


def dsm_loss(model: nn.Module, params: PyTree, sde: SDE, x: jax.Array, rng: jax.Array, *,
             weighting: str = 'sigma2', reduce_mean: bool = False, eps: float = 1e-5,
             importance_sampling: bool = False) -> jax.Array:
    """Continuous-time denoising score matching (eq. 7), t ~ U(eps, T) (or, with importance_sampling and the
    likelihood weighting, t ~ p(t) with the weight of sde_jax.importance.importance_times); per-example losses (B,)."""
    t_rng, z_rng, dropout_rng = jax.random.split(rng, 3)
    if importance_sampling:
        if weighting != 'likelihood':
            raise ValueError("importance_sampling draws t for weighting='likelihood'")
        t, weight = importance_times(sde, t_rng, (x.shape[0],), eps)
    else:
        t = jax.random.uniform(t_rng, (x.shape[0],), minval=eps, maxval=sde.T)
    z = jax.random.normal(z_rng, x.shape)
    mean, std = sde.marginal_prob(x, t)
    x_t = mean + batch_broadcast(std, x) * z
    eps_hat = network_fn(model, params, sde, True, train=True, dropout_rng=dropout_rng)(x_t, t)
    residual = (eps_hat - z) ** 2
    if importance_sampling:
        residual = residual * batch_broadcast(weight, x)
    elif weighting == 'likelihood':
        g2 = sde.sde(x_t, t)[1] ** 2
        residual = residual * batch_broadcast(g2 / std**2, x)
    return _reduce(residual, reduce_mean)


def discrete_loss(model: nn.Module, params: PyTree, sde: SDE, x: jax.Array, rng: jax.Array, *,
                  reduce_mean: bool = False) -> jax.Array:
    """SMLD (VE) / DDPM (VP) loss at a noise level i ~ U{0..N-1} of the discrete model; (B,)."""
    i_rng, z_rng, dropout_rng = jax.random.split(rng, 3)
    i = jax.random.randint(i_rng, (x.shape[0],), 0, sde.N)
    z = jax.random.normal(z_rng, x.shape)
    coef, std = sde.discrete_noise(i)
    x_i = batch_broadcast(coef, x) * x + batch_broadcast(std, x) * z
    eps_hat = network_fn(model, params, sde, False, train=True, dropout_rng=dropout_rng)(x_i, i / (sde.N - 1))
    return _reduce((eps_hat - z) ** 2, reduce_mean)


def flow_times(rng: jax.Array, shape: tuple[int, ...], time_sampling: str = 'uniform', logit_mean: float = 0.0,
               logit_std: float = 1.0) -> jax.Array:
    """Training times of flow matching: U(0, 1) ('uniform') or sigmoid(m + s n), n ~ N(0, 1) ('logit_normal')."""
    if time_sampling == 'uniform':
        return jax.random.uniform(rng, shape)
    if time_sampling == 'logit_normal':
        return jax.nn.sigmoid(logit_mean + logit_std * jax.random.normal(rng, shape))
    raise ValueError(f'time_sampling={time_sampling!r} is not one of {", ".join(TIME_SAMPLINGS)}')


def flow_matching_loss(model: nn.Module, params: PyTree, sde: SDE, x: jax.Array, rng: jax.Array, *,
                       reduce_mean: bool = False, time_sampling: str = 'uniform', logit_mean: float = 0.0,
                       logit_std: float = 1.0) -> jax.Array:
    """|| v_theta(x_t, t) - (eps - x_0) ||^2 at x_t = (1 - t) x_0 + t eps (module docstring); per example (B,)."""
    if not isinstance(sde, RectifiedFlow):
        raise ValueError(f'flow matching trains the rectified flow, not {type(sde).__name__}')
    t_rng, z_rng, dropout_rng = jax.random.split(rng, 3)
    t = flow_times(t_rng, (x.shape[0],), time_sampling, logit_mean, logit_std)
    z = jax.random.normal(z_rng, x.shape)
    x_t = batch_broadcast(1.0 - t, x) * x + batch_broadcast(t, x) * z
    v_hat = network_fn(model, params, sde, True, train=True, dropout_rng=dropout_rng)(x_t, t)
    return _reduce((v_hat - (z - x)) ** 2, reduce_mean)


def check_loss_config(loss: ml_collections.ConfigDict, sde: SDE) -> None:
    """Raises a ConfigError for a loss that does not exist or does not fit the SDE."""
    if loss.type not in LOSS_TYPES:
        raise ConfigError(f'loss.type={loss.type!r} is not one of {", ".join(LOSS_TYPES)}')
    if (loss.type == 'flow_matching') != isinstance(sde, RectifiedFlow):
        raise ConfigError("loss.type='flow_matching' trains sde.type='rectified_flow', and that process trains only "
                          "with it: set both or neither")
    if loss.type != 'flow_matching' and loss.time_sampling != 'uniform':
        raise ConfigError(f"loss.time_sampling={loss.time_sampling!r} draws the times of loss.type='flow_matching'; "
                          "the score losses draw t uniformly (or by loss.importance_sampling)")
    if loss.weighting not in WEIGHTINGS:
        raise ConfigError(f'loss.weighting={loss.weighting!r} is not one of {", ".join(WEIGHTINGS)}')
    if loss.type == 'smld' and type(sde) is not VESDE:
        raise ConfigError("loss.type='smld' is the discrete loss of the VE SDE; set sde.type='vesde' or "
                          "loss.type='dsm'")
    if loss.type == 'ddpm' and type(sde) is not VPSDE:
        raise ConfigError("loss.type='ddpm' is the discrete loss of the VP SDE; set sde.type='vpsde' or "
                          "loss.type='dsm'")
    if loss.type != 'dsm' and loss.weighting != 'sigma2':
        raise ConfigError(f"loss.weighting='likelihood' needs the continuous loss.type='dsm', not {loss.type!r}")
    if loss.importance_sampling and (loss.type != 'dsm' or loss.weighting != 'likelihood'):
        raise ConfigError("loss.importance_sampling draws t for the likelihood weighting: set loss.type='dsm' and "
                          "loss.weighting='likelihood'")
    if loss.importance_sampling and not has_closed_form(sde):
        raise ConfigError("loss.importance_sampling has a closed form for the VP, sub-VP and VE SDEs (VE with "
                          "sde.ve_marginal_std='exact'); with 'sigma' the likelihood weight is constant and "
                          "uniform t is already exact")


def make_loss_fn(loss: ml_collections.ConfigDict, model: nn.Module,
                 sde: SDE) -> Callable[[PyTree, jax.Array, jax.Array], jax.Array]:
    """(params, x, rng) -> scalar batch loss, as `config.loss` describes."""
    check_loss_config(loss, sde)

    def loss_fn(params: PyTree, x: jax.Array, rng: jax.Array) -> jax.Array:
        if loss.type == 'flow_matching':
            per_example = flow_matching_loss(model, params, sde, x, rng, reduce_mean=loss.reduce_mean,
                                             time_sampling=loss.time_sampling, logit_mean=loss.logit_mean,
                                             logit_std=loss.logit_std)
        elif loss.type == 'dsm':
            per_example = dsm_loss(model, params, sde, x, rng, weighting=loss.weighting,
                                   reduce_mean=loss.reduce_mean, eps=loss.eps,
                                   importance_sampling=loss.importance_sampling)
        else:
            per_example = discrete_loss(model, params, sde, x, rng, reduce_mean=loss.reduce_mean)
        return jnp.mean(per_example)

    return loss_fn

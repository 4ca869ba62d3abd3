"""The discrete-time Gaussian diffusion of DDPM (Ho et al. 2020): forward process, parameterisations, losses, VLB.

x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps (eq. 4). The network predicts eps, x_0 or
v = sqrt(abar_t) eps - sqrt(1 - abar_t) x_0 (Salimans & Ho 2022, sec. 4); `split_prediction` turns any
of them into the pair (x_0, eps) the samplers need, each by its best-conditioned formula. The loss
L_simple (eq. 14) regresses the chosen target; the variational bound L_vlb = L_T + sum_{t>1} L_{t-1} + L_0
(eq. 5) is reported in bits per dimension, with L_0 the discretised Gaussian decoder of sec. 3.3.
The reverse variance is fixed (beta~_t or beta_t, DDPM sec. 3.2) or learned in improved DDPM's range
(Nichol & Dhariwal 2021, eq. 15): the network's second half of channels v gives
Sigma = exp(v' log beta_t + (1 - v') log beta~_t), v' = (v + 1) / 2, trained with the hybrid loss
L_simple + lambda L_vlb (eq. 16), whose L_vlb term sees the mean through a stopped gradient (sec. 3.1).
Images live in [-1, 1]; timesteps are integers 0..T-1 (index t here is DDPM's t+1).
"""

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import ndtr

from ldm_jax.schedule import Schedule, extract

PARAMETERIZATIONS = ('eps', 'x0', 'v')
VARIANCES = ('fixed_small', 'fixed_large', 'learned_range')
LOSSES = ('l2', 'l1')


def q_sample(s: Schedule, x0: jax.Array, t: jax.Array, noise: jax.Array) -> jax.Array:
    """A draw from q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I) (eq. 4)."""
    return (extract(s.sqrt_alphas_cumprod, t, x0.ndim) * x0
            + extract(s.sqrt_one_minus_alphas_cumprod, t, x0.ndim) * noise)


def training_target(parameterization: str, s: Schedule, x0: jax.Array, t: jax.Array, noise: jax.Array) -> jax.Array:
    """What the network regresses: eps, x_0 or v = sqrt(abar) eps - sqrt(1 - abar) x_0."""
    if parameterization == 'eps':
        return noise
    if parameterization == 'x0':
        return x0
    if parameterization == 'v':
        return (extract(s.sqrt_alphas_cumprod, t, x0.ndim) * noise
                - extract(s.sqrt_one_minus_alphas_cumprod, t, x0.ndim) * x0)
    raise ValueError(f'parameterization={parameterization!r} is not one of {", ".join(PARAMETERIZATIONS)}')


def split_prediction(parameterization: str, s: Schedule, x_t: jax.Array, t: jax.Array,
                     out: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(x_0, eps) implied by the network output `out` at (x_t, t)."""
    n = x_t.ndim
    if parameterization == 'eps':
        x0 = extract(s.sqrt_recip_alphas_cumprod, t, n) * x_t - extract(s.sqrt_recipm1_alphas_cumprod, t, n) * out
        return x0, out
    if parameterization == 'x0':
        eps = (x_t - extract(s.sqrt_alphas_cumprod, t, n) * out) / extract(s.sqrt_one_minus_alphas_cumprod, t, n)
        return out, eps
    if parameterization == 'v':
        a, b = extract(s.sqrt_alphas_cumprod, t, n), extract(s.sqrt_one_minus_alphas_cumprod, t, n)
        return a * x_t - b * out, a * out + b * x_t
    raise ValueError(f'parameterization={parameterization!r} is not one of {", ".join(PARAMETERIZATIONS)}')


def eps_to_x0(s: Schedule, x_t: jax.Array, t: jax.Array, eps: jax.Array) -> jax.Array:
    """x_0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)."""
    return split_prediction('eps', s, x_t, t, eps)[0]


def q_posterior(s: Schedule, x0: jax.Array, x_t: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean and clipped log-variance of q(x_{t-1} | x_t, x_0) (eqs. 6-7)."""
    n = x_t.ndim
    mean = extract(s.posterior_mean_coef1, t, n) * x0 + extract(s.posterior_mean_coef2, t, n) * x_t
    return mean, extract(s.posterior_log_variance_clipped, t, n)


def model_log_variance(s: Schedule, variance: str, t: jax.Array, ndim: int, v: jax.Array | None = None) -> jax.Array:
    """log sigma_t^2 of p(x_{t-1} | x_t): beta~_t ('fixed_small') or beta_t ('fixed_large'), DDPM sec. 3.2; or
    improved DDPM's learned range (eq. 15), v' log beta_t + (1 - v') log beta~_t with v' = (v + 1) / 2, from the
    network's variance output v (log beta~ clipped at t = 0 to its value at t = 1, as for 'fixed_small')."""
    if variance == 'fixed_small':
        return extract(s.posterior_log_variance_clipped, t, ndim)
    if variance == 'fixed_large':
        return extract(s.log_betas_large, t, ndim)
    if variance == 'learned_range':
        if v is None:
            raise ValueError("variance='learned_range' needs the network's variance output v")
        frac = (v + 1.0) / 2.0
        min_log = extract(s.posterior_log_variance_clipped, t, ndim)
        return frac * jnp.log(extract(s.betas, t, ndim)) + (1.0 - frac) * min_log
    raise ValueError(f'variance={variance!r} is not one of {", ".join(VARIANCES)}')


def output_channels(variance: str, channels: int) -> int:
    """Channels of the network output: the prediction's, and as many again for a learned variance's v."""
    return 2 * channels if variance == 'learned_range' else channels


def split_variance(variance: str, out: jax.Array) -> tuple[jax.Array, jax.Array | None]:
    """(prediction, v) of a network output (NHWC): its first and second half of channels with a learned
    variance, else (out, None)."""
    if variance != 'learned_range':
        return out, None
    prediction, v = jnp.split(out, 2, axis=-1)
    return prediction, v


class Prediction(NamedTuple):
    """What a network output says about x_{t-1}: the implied x_0 and eps, and log sigma_t^2 of p(x_{t-1} | x_t)."""

    x0: jax.Array
    eps: jax.Array
    log_variance: jax.Array


def predict(parameterization: str, variance: str, s: Schedule, x_t: jax.Array, t: jax.Array,
            out: jax.Array) -> Prediction:
    """The Prediction of a network output `out` (with a learned variance, its prediction and v halves)."""
    prediction, v = split_variance(variance, out)
    x0, eps = split_prediction(parameterization, s, x_t, t, prediction)
    return Prediction(x0, eps, model_log_variance(s, variance, t, x_t.ndim, v))


def loss_simple(out: jax.Array, target: jax.Array, kind: str = 'l2') -> jax.Array:
    """Per-example mean over all dimensions of (out - target)^2 (eq. 14) or |out - target| ('l1')."""
    axes = tuple(range(1, out.ndim))
    if kind == 'l2':
        return jnp.mean((out - target) ** 2, axis=axes)
    if kind == 'l1':
        return jnp.mean(jnp.abs(out - target), axis=axes)
    raise ValueError(f'loss={kind!r} is not one of {", ".join(LOSSES)}')


def normal_kl(mean1: jax.Array, logvar1: jax.Array, mean2: jax.Array, logvar2: jax.Array) -> jax.Array:
    """KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)) elementwise, in nats."""
    return 0.5 * (-1.0 + logvar2 - logvar1 + jnp.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * jnp.exp(-logvar2))


def discretized_gaussian_log_likelihood(x: jax.Array, mean: jax.Array, log_scale: jax.Array,
                                        levels: int = 256) -> jax.Array:
    """log P(x) of data x in [-1, 1] on `levels` bins under N(mean, e^(2 log_scale)) (DDPM sec. 3.3).

    Each bin has width 2/(levels-1); the outermost bins extend to -inf and +inf. Uses the exact normal
    CDF (DDPM's code uses a tanh approximation of it).
    """
    half_bin = 1.0 / (levels - 1)
    inv_std = jnp.exp(-log_scale)
    cdf_plus = ndtr(inv_std * (x - mean + half_bin))
    cdf_minus = ndtr(inv_std * (x - mean - half_bin))
    log_cdf_plus = jnp.log(jnp.maximum(cdf_plus, 1e-12))
    log_one_minus_cdf_min = jnp.log(jnp.maximum(1.0 - cdf_minus, 1e-12))
    log_delta = jnp.log(jnp.maximum(cdf_plus - cdf_minus, 1e-12))
    return jnp.where(x < -0.999, log_cdf_plus, jnp.where(x > 0.999, log_one_minus_cdf_min, log_delta))


def _per_example_bits(nats: jax.Array) -> jax.Array:
    return jnp.sum(nats, axis=tuple(range(1, nats.ndim))) / (math.prod(nats.shape[1:]) * math.log(2.0))


def prior_bpd(s: Schedule, x0: jax.Array) -> jax.Array:
    """L_T = KL(q(x_T | x_0) || N(0, I)) per example, in bits/dim."""
    t = jnp.full(x0.shape[:1], s.num_timesteps - 1)
    mean = extract(s.sqrt_alphas_cumprod, t, x0.ndim) * x0
    logvar = jnp.log(extract(1.0 - s.alphas_cumprod, t, x0.ndim))
    return _per_example_bits(normal_kl(mean, logvar, jnp.zeros_like(mean), jnp.zeros_like(mean)))


def vlb_term_bpd(s: Schedule, x0: jax.Array, x_t: jax.Array, t: jax.Array, x0_pred: jax.Array,
                 model_log_var: jax.Array, levels: int = 256) -> jax.Array:
    """L_{t-1} = KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t)) for t > 0 and the decoder NLL L_0 at t = 0, bits/dim,
    with p's mean from the predicted x_0 (eq. 7) and its log-variance `model_log_var` (model_log_variance)."""
    true_mean, true_logvar = q_posterior(s, x0, x_t, t)
    model_mean, _ = q_posterior(s, x0_pred, x_t, t)
    kl = _per_example_bits(normal_kl(true_mean, true_logvar, model_mean, model_log_var))
    decoder_nll = -_per_example_bits(discretized_gaussian_log_likelihood(x0, model_mean, 0.5 * model_log_var, levels))
    return jnp.where(t == 0, decoder_nll, kl)


def hybrid_vlb_term(s: Schedule, parameterization: str, x0: jax.Array, x_t: jax.Array, t: jax.Array,
                    out: jax.Array) -> jax.Array:
    """Improved DDPM's L_vlb term of the hybrid loss (Nichol & Dhariwal 2021, sec. 3.1): L_{t-1} (bits/dim) of
    a learned-range output `out`, its mean through a stopped gradient, so that only v learns from it."""
    prediction, v = split_variance('learned_range', out)
    x0_pred = split_prediction(parameterization, s, x_t, t, jax.lax.stop_gradient(prediction))[0]
    return vlb_term_bpd(s, x0, x_t, t, x0_pred, model_log_variance(s, 'learned_range', t, x0.ndim, v))


def vlb_bpd(model_fn: Callable[[jax.Array, jax.Array], tuple[jax.Array, jax.Array]], s: Schedule, x0: jax.Array,
            rng: jax.Array, levels: int = 256) -> dict[str, jax.Array]:
    """The full variational bound of data x0 (N, ...) in bits/dim, one network call per timestep.

    model_fn(x_t, t) is the model's (x_0 prediction, log-variance of p(x_{t-1} | x_t)). Returns per-example
    'total' (the NLL bound), 'prior' (L_T), 'decoder' (L_0) and 'kl' (sum of L_1..L_{T-1}). One fresh noise
    draw per timestep (a single-sample estimate of each expectation, as DDPM's evaluation does).
    """

    def term(carry: jax.Array, t_index: jax.Array) -> tuple[jax.Array, jax.Array]:
        t = jnp.full(x0.shape[:1], t_index)
        x_t = q_sample(s, x0, t, jax.random.normal(jax.random.fold_in(rng, t_index), x0.shape))
        x0_pred, log_var = model_fn(x_t, t)
        return carry, vlb_term_bpd(s, x0, x_t, t, x0_pred, log_var, levels)

    _, terms = jax.lax.scan(term, None, jnp.arange(s.num_timesteps))
    prior = prior_bpd(s, x0)
    return {'total': prior + jnp.sum(terms, axis=0), 'prior': prior, 'decoder': terms[0],
            'kl': jnp.sum(terms[1:], axis=0)}

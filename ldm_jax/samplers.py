"""Ancestral DDPM and DDIM sampling as one `lax.scan` each.

A denoiser maps (x_t, t) to the pair (x_0, eps) predicted by the network (after guidance), and for a
learned variance (improved DDPM) also its variance output v: (x_0, eps, v); DDIM reads only the pair. Step
noise for scan step i is N(0, I) drawn from fold_in(rng, i), so a run is reproducible whatever the
device count (jax's threefry is partitionable: a sharded draw equals the unsharded one).

- DDPM (Ho et al. 2020, Algorithm 2): x_{t-1} = mu~(x_0, x_t) + sigma_t z, with sigma_t^2 = beta~_t
  ('fixed_small'), beta_t ('fixed_large') or learned in their range ('learned_range', Nichol & Dhariwal 2021,
  eq. 15) and no noise at the last step; over all T steps, or strided over a subsequence of them with the
  respaced schedule (Nichol & Dhariwal 2021, sec. 4).
- DDIM (Song et al. 2021, eq. 12): x_prev = sqrt(abar_prev) x_0 + sqrt(1 - abar_prev - sigma^2) eps + sigma z
  with sigma = eta sqrt((1 - abar_prev)/(1 - abar_t)) sqrt(1 - abar_t/abar_prev), on a subsequence of
  timesteps spaced 'uniform' (exactly the steps asked for), 'uniform_ldm' or 'quad' (latent diffusion's
  own; its indices are shifted by +1 and the last step goes to abar_0).
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from ldm_jax.diffusion import model_log_variance, q_posterior
from ldm_jax.schedule import Schedule, extract, respace

Denoiser = Callable[[jax.Array, jax.Array], tuple[jax.Array, ...]]
SPACINGS = ('uniform', 'uniform_ldm', 'quad')


def ddim_timesteps(spacing: str, num_steps: int, num_timesteps: int) -> np.ndarray:
    """Ascending timestep indices of a DDIM run, after latent diffusion's `make_ddim_timesteps` (+1 shift).

    'uniform': 1, 1 + c, 1 + 2c, ... with c = T // num_steps, exactly num_steps of them;
    'uniform_ldm': the original's own, every c-th index below T: ceil(T / c) steps, more than num_steps
      when it does not divide T (30 -> 31, 64 -> 67);
    'quad': floor(linspace(0, sqrt(0.8 T), num_steps)^2) + 1, the original's (it repeats step 1 when
      the first squares fall below 2, e.g. at 50 steps: that step stays at the same noise level and
      leaves x unchanged unless x_0 is clipped).
    """
    if num_steps < 1:
        raise ValueError(f'num_steps={num_steps} must be at least 1')
    if spacing in ('uniform', 'uniform_ldm') and num_steps > num_timesteps:
        raise ValueError(f'num_steps={num_steps} is more DDIM steps than the {num_timesteps} timesteps')
    if spacing == 'uniform':
        steps = np.arange(num_steps) * (num_timesteps // num_steps) + 1
    elif spacing == 'uniform_ldm':
        steps = np.arange(0, num_timesteps, num_timesteps // num_steps) + 1
    elif spacing == 'quad':
        steps = (np.linspace(0, np.sqrt(num_timesteps * 0.8), num_steps) ** 2).astype(np.int64) + 1
    else:
        raise ValueError(f'spacing={spacing!r} is not one of {", ".join(SPACINGS)}')
    if steps[-1] >= num_timesteps:
        raise ValueError(f'num_steps={num_steps} is too many DDIM steps for {num_timesteps} '
                          f'timesteps with {spacing!r} spacing; use fewer')
    return steps


def ddpm_step(s: Schedule, x_t: jax.Array, t: jax.Array, x0: jax.Array, noise: jax.Array,
              variance: str = 'fixed_small', clip_denoised: bool = True, v: jax.Array | None = None) -> jax.Array:
    """x_{t-1} ~ p(x_{t-1} | x_t) given the predicted x_0 (and a learned variance's v); t is a batch of equal
    indices of `s`."""
    if clip_denoised:
        x0 = jnp.clip(x0, -1.0, 1.0)
    mean, _ = q_posterior(s, x0, x_t, t)
    log_var = model_log_variance(s, variance, t, x_t.ndim, v)
    nonzero = (t > 0).astype(x_t.dtype).reshape(t.shape + (1,) * (x_t.ndim - 1))
    return mean + nonzero * jnp.exp(0.5 * log_var) * noise


def ddim_step(s: Schedule, x_t: jax.Array, t: jax.Array, t_prev: jax.Array, x0: jax.Array, eps: jax.Array,
              noise: jax.Array, eta: float = 0.0, clip_denoised: bool = False) -> jax.Array:
    """x at index t_prev from x_t (Song et al. 2021, eq. 12); t_prev = 0 at the last step (abar_0), or
    -1 for alpha-bar = 1 (x_0 itself)."""
    if clip_denoised:
        x0 = jnp.clip(x0, -1.0, 1.0)
    a_t = extract(s.alphas_cumprod, t, x_t.ndim)
    to_one = (t_prev < 0).reshape(t_prev.shape + (1,) * (x_t.ndim - t_prev.ndim))
    a_prev = jnp.where(to_one, 1.0, extract(s.alphas_cumprod, jnp.maximum(t_prev, 0), x_t.ndim))
    sigma = eta * jnp.sqrt((1.0 - a_prev) / (1.0 - a_t) * (1.0 - a_t / a_prev))
    direction = jnp.sqrt(jnp.maximum(1.0 - a_prev - sigma**2, 0.0)) * eps
    return jnp.sqrt(a_prev) * x0 + direction + sigma * noise


def _constrain(x: jax.Array, sharding: jax.sharding.Sharding | None) -> jax.Array:
    return x if sharding is None else jax.lax.with_sharding_constraint(x, sharding)


def ddpm_sample(denoise: Denoiser, s: Schedule, x_T: jax.Array, rng: jax.Array, variance: str = 'fixed_small',
                clip_denoised: bool = True, sharding: jax.sharding.Sharding | None = None,
                trajectory: bool = False, timesteps: np.ndarray | None = None, stop_level: int = 0) -> jax.Array:
    """Runs the ancestral steps from x_T; returns x_0 (or every x_{t-1}, stacked, with `trajectory`).

    All T steps, or with `timesteps` (ascending, e.g. schedule.strided_timesteps) the strided chain: the
    network sees the original timestep t_k, the step uses the respaced schedule's index k. With `stop_level`
    s > 0 (all T steps only) the chain stops at x_{s-1}, a draw whose marginal is q(x at timestep s - 1):
    truncated conditioning augmentation (Ho et al. 2022, sec. 4.2).
    """
    if stop_level and timesteps is not None:
        raise ValueError('stop_level needs the whole chain (timesteps=None)')
    if not 0 <= stop_level <= s.num_timesteps:
        raise ValueError(f'stop_level={stop_level} is not in 0..{s.num_timesteps}')
    ts = np.arange(stop_level, s.num_timesteps) if timesteps is None else np.asarray(timesteps)
    chain = s if timesteps is None else respace(s, ts)
    K = len(ts)
    x_T = _constrain(x_T, sharding)

    def body(x: jax.Array, step: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array | None]:
        i, t_index = step
        out = denoise(x, jnp.full(x.shape[:1], t_index))
        v = out[2] if variance == 'learned_range' else None
        noise = _constrain(jax.random.normal(jax.random.fold_in(rng, i), x.shape, x.dtype), sharding)
        k = jnp.full(x.shape[:1], t_index if timesteps is None else K - 1 - i)
        x = _constrain(ddpm_step(chain, x, k, out[0], noise, variance, clip_denoised, v), sharding)
        return x, (x if trajectory else None)

    x, path = jax.lax.scan(body, x_T, (jnp.arange(K), jnp.asarray(ts[::-1], jnp.int32)))
    return path if trajectory else x


def ddim_sample(denoise: Denoiser, s: Schedule, x_T: jax.Array, rng: jax.Array, timesteps: np.ndarray,
                eta: float = 0.0, clip_denoised: bool = False, sharding: jax.sharding.Sharding | None = None,
                trajectory: bool = False, alpha_to_one: bool = False) -> jax.Array:
    """DDIM from x_T over the ascending `timesteps` (see `ddim_timesteps`), latest first; the last step ends
    at alpha-bar_0, or with `alpha_to_one` at alpha-bar = 1."""
    ts = np.asarray(timesteps)[::-1]
    prev = np.append(ts[1:], -1 if alpha_to_one else 0)
    x_T = _constrain(x_T, sharding)

    def body(x: jax.Array, step: tuple[jax.Array, jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array | None]:
        i, t_index, prev_index = step
        t = jnp.full(x.shape[:1], t_index)
        x0, eps = denoise(x, t)[:2]
        noise = _constrain(jax.random.normal(jax.random.fold_in(rng, i), x.shape, x.dtype), sharding)
        x = ddim_step(s, x, t, jnp.full(x.shape[:1], prev_index), x0, eps, noise, eta, clip_denoised)
        x = _constrain(x, sharding)
        return x, (x if trajectory else None)

    xs = (jnp.arange(len(ts)), jnp.asarray(ts, jnp.int32), jnp.asarray(prev, jnp.int32))
    x, path = jax.lax.scan(body, x_T, xs)
    return path if trajectory else x

"""Discrete-time noise schedules and the constants of the forward process derived from them.

Names of the schedules (`config.diffusion.schedule`):
- 'linear': beta linear in t from `linear_start` to `linear_end` (DDPM, Ho et al. 2020, sec. 4).
- 'sqrt_linear': sqrt(beta) linear in t, i.e. beta_t = (sqrt(b0) + t/(T-1) (sqrt(b1) - sqrt(b0)))^2. Latent
  diffusion's `make_beta_schedule` calls THIS one "linear" (and its own "sqrt_linear" is the plain
  linear one); diffusers calls it "scaled_linear".
- 'cosine': alpha_bar(t) = cos^2(((t/T) + s) / (1 + s) * pi/2), beta_t = min(1 - alpha_bar(t+1)/alpha_bar(t),
  0.999) (improved DDPM, Nichol & Dhariwal 2021, eq. 17).

Every constant is computed in float64 on the host and stored as float32 on the device.
"""

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gen_runtime.errors import config_terms

SCHEDULES = ('linear', 'sqrt_linear', 'cosine')


def beta_schedule(kind: str, num_timesteps: int, linear_start: float = 1e-4, linear_end: float = 2e-2,
                  cosine_s: float = 8e-3) -> np.ndarray:
    """beta_0 .. beta_{T-1} as float64."""
    if kind == 'linear':
        return np.linspace(linear_start, linear_end, num_timesteps, dtype=np.float64)
    if kind == 'sqrt_linear':
        return np.linspace(linear_start**0.5, linear_end**0.5, num_timesteps, dtype=np.float64) ** 2
    if kind == 'cosine':
        steps = np.arange(num_timesteps + 1, dtype=np.float64) / num_timesteps
        alpha_bar = np.cos((steps + cosine_s) / (1 + cosine_s) * np.pi / 2) ** 2
        return np.minimum(1.0 - alpha_bar[1:] / alpha_bar[:-1], 0.999)
    raise ValueError(f'schedule={kind!r} is not one of {", ".join(SCHEDULES)}')


class Schedule(flax.struct.PyTreeNode):
    """Per-timestep constants of q(x_t | x_0) and of the true posterior q(x_{t-1} | x_t, x_0), shape (T,)."""

    betas: jax.Array
    alphas_cumprod: jax.Array
    alphas_cumprod_prev: jax.Array
    sqrt_alphas_cumprod: jax.Array
    sqrt_one_minus_alphas_cumprod: jax.Array
    sqrt_recip_alphas_cumprod: jax.Array
    sqrt_recipm1_alphas_cumprod: jax.Array
    posterior_variance: jax.Array
    posterior_log_variance_clipped: jax.Array
    posterior_mean_coef1: jax.Array
    posterior_mean_coef2: jax.Array
    log_betas_large: jax.Array  # log of DDPM's "fixed large" variance: beta_t, with beta~_1 at t = 0

    @property
    def num_timesteps(self) -> int:
        return self.betas.shape[0]

    @classmethod
    def from_betas(cls, betas: np.ndarray) -> 'Schedule':
        """All constants from betas (float64 arithmetic, float32 results). DDPM eqs. 4, 6, 7."""
        betas = np.asarray(betas, np.float64)
        if betas.ndim != 1 or np.any(betas <= 0) or np.any(betas >= 1):
            raise ValueError('betas must be a 1-D schedule with 0 < beta < 1')
        alphas = 1.0 - betas
        ab = np.cumprod(alphas)
        ab_prev = np.append(1.0, ab[:-1])
        post_var = betas * (1.0 - ab_prev) / (1.0 - ab)
        # posterior variance is 0 at t = 0; the log is clipped to its value at t = 1 (as DDPM does)
        post_log_var = np.log(np.append(post_var[1], post_var[1:])) if len(betas) > 1 else np.log(betas)
        values = dict(
            betas=betas, alphas_cumprod=ab, alphas_cumprod_prev=ab_prev, sqrt_alphas_cumprod=np.sqrt(ab),
            sqrt_one_minus_alphas_cumprod=np.sqrt(1.0 - ab), sqrt_recip_alphas_cumprod=np.sqrt(1.0 / ab),
            sqrt_recipm1_alphas_cumprod=np.sqrt(1.0 / ab - 1.0), posterior_variance=post_var,
            posterior_log_variance_clipped=post_log_var,
            posterior_mean_coef1=betas * np.sqrt(ab_prev) / (1.0 - ab),
            posterior_mean_coef2=(1.0 - ab_prev) * np.sqrt(alphas) / (1.0 - ab),
            log_betas_large=np.log(np.append(post_var[1] if len(betas) > 1 else betas[0], betas[1:])),
        )
        return cls(**{k: jnp.asarray(v, jnp.float32) for k, v in values.items()})


def strided_timesteps(num_steps: int, num_timesteps: int) -> np.ndarray:
    """Ascending timesteps of improved DDPM's strided sampling (Nichol & Dhariwal 2021, sec. 4): num_steps
    evenly spaced indices from 0 to T - 1, rounded (their `space_timesteps` with one section; diffusers'
    'linspace' spacing)."""
    if not 1 <= num_steps <= num_timesteps:
        raise ValueError(f'num_steps={num_steps} must be in 1..{num_timesteps} (the timesteps)')
    return np.round(np.linspace(0, num_timesteps - 1, num_steps)).astype(np.int64)


def respace(s: Schedule, timesteps: np.ndarray) -> Schedule:
    """The schedule of the subsequence `timesteps` (ascending) of `s` (improved DDPM, sec. 4): betas
    beta'_k = 1 - abar_{t_k} / abar_{t_(k-1)} (abar before t_0 is 1), so that its abar'_k = abar_{t_k} and the
    posterior and learned-range variances are those of the strided chain. Needs concrete `s` (not traced)."""
    timesteps = np.asarray(timesteps)
    if timesteps.ndim != 1 or len(timesteps) == 0 or np.any(np.diff(timesteps) <= 0) or timesteps[0] < 0 \
            or timesteps[-1] >= s.num_timesteps:
        raise ValueError(f'timesteps must be ascending indices in 0..{s.num_timesteps - 1}')
    abar = np.asarray(s.alphas_cumprod, np.float64)[timesteps]
    return Schedule.from_betas(1.0 - abar / np.append(1.0, abar[:-1]))


def betas_from_config(diffusion: ml_collections.ConfigDict) -> np.ndarray:
    """The float64 betas a `config.diffusion` section describes."""
    with config_terms('diffusion', diffusion):
        return beta_schedule(diffusion.schedule, diffusion.num_timesteps, diffusion.linear_start,
                             diffusion.linear_end, diffusion.cosine_s)


def schedule_from_config(diffusion: ml_collections.ConfigDict) -> Schedule:
    """The Schedule a `config.diffusion` section describes."""
    with config_terms('diffusion', diffusion):
        return Schedule.from_betas(betas_from_config(diffusion))


def extract(values: jax.Array, t: jax.Array, ndim: int) -> jax.Array:
    """values[t] reshaped to broadcast against a batch of rank `ndim`."""
    return values[t].reshape(t.shape + (1,) * (ndim - t.ndim))

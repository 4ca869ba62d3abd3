"""The one convention for what score networks receive and what they return.

Input: every network is conditioned on a scalar noise label per example, `time_input(sde, t)`:
  - VE SDE: log sigma(t), the log of the geometric noise scale sigma_min (sigma_max/sigma_min)^t
    (NCSN++ embeds it with Gaussian Fourier features);
  - VP and sub-VP SDEs and the rectified flow: 999 t, DDPM's timestep index for N = 1000 (DDPM++ embeds it
    with sinusoidal positional features).
A model trained with a discrete loss (SMLD/DDPM) sees t rounded to its grid i / (N - 1).

Output: a network predicts the noise eps of x_t = mean_coef(t) x_0 + std(t) eps; the score is
s(x, t) = -net(x, label) / std(t) (`score_from_output`), i.e. the network's output is divided by the
marginal std, as in Song's tutorial and the VP models of the paper. For discretely trained models
std is that of the discrete noise level (`SDE.discrete_noise`). The rectified flow's network predicts its
velocity v = eps - x_0 instead (sde_jax.sde.VelocityScore converts it).
"""

import jax
import jax.numpy as jnp

from sde_jax.sde import SDE, VESDE, batch_broadcast

VP_TIME_SCALE = 999.0  # 999 t: DDPM's timestep for N = 1000, used for the VP and sub-VP SDEs


def time_input(sde: SDE, t: jax.Array) -> jax.Array:
    """The noise label fed to score networks at (continuous) time t, shape (B,)."""
    if isinstance(sde, VESDE):
        return jnp.log(sde.sigma(t))
    return VP_TIME_SCALE * t


def grid_index(sde: SDE, t: jax.Array) -> jax.Array:
    """Index i of the discrete noise level nearest to t on the grid t_i = i / (N - 1)."""
    return jnp.clip(jnp.round(t * (sde.N - 1)), 0, sde.N - 1).astype(jnp.int32)


def noise_std(sde: SDE, t: jax.Array, continuous: bool) -> jax.Array:
    """std(t) by which the network's output is divided: marginal (continuous) or discrete level."""
    if continuous:
        return sde.marginal_coefs(t)[1]
    return sde.discrete_noise(grid_index(sde, t))[1]


def network_time(sde: SDE, t: jax.Array, continuous: bool) -> jax.Array:
    """`time_input` of t, or of t snapped to the discrete grid for discretely trained models."""
    if continuous:
        return time_input(sde, t)
    return time_input(sde, grid_index(sde, t) / (sde.N - 1))


def score_from_output(output: jax.Array, std: jax.Array) -> jax.Array:
    """s(x, t) = -eps_hat / std(t) (the network predicts the noise)."""
    return -output / batch_broadcast(std, output)

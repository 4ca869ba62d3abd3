"""The probability-flow ODE (Song et al. 2021, eq. 13) solved on device with `jax.experimental.ode.odeint`.

odeint is adaptive Dormand-Prince RK45; the whole batch is one ODE state, as in the original code.
`NfeCounter` counts the drift evaluations the solver makes: each evaluation calls a host function
without arguments (`jax.debug.callback`, asynchronous, once per evaluation whatever the number of
devices), because odeint does not return its step count.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.experimental.ode import odeint

from sde_jax.sampling import denoise
from sde_jax.sde import SDE, ScoreFn

Drift = Callable[[jax.Array, jax.Array], jax.Array]


class NfeCounter:
    """Counts the function evaluations of the jitted solvers it `wrap`s (read after the result is ready)."""

    def __init__(self) -> None:
        self.count = 0

    def _increment(self) -> None:
        self.count += 1

    def wrap(self, fn: Callable) -> Callable:
        def counted(*args: jax.Array) -> jax.Array:
            jax.debug.callback(self._increment)
            return fn(*args)

        return counted

    def read_and_reset(self) -> int:
        jax.effects_barrier()
        count, self.count = self.count, 0
        return count


def probability_flow_drift(sde: SDE, score_fn: ScoreFn, t_min: float) -> Drift:
    """(x, t) -> f(x, t) - g(t)^2 s(x, t) / 2 with t a scalar, clamped to [t_min, T].

    odeint's last step overshoots the final time and is interpolated back; without the clamp its
    stages would evaluate the SDE beyond its time range (for VP-type SDEs at t < 0 the std is NaN,
    which silently stops the solver short of the final time).
    """
    reverse = sde.reverse(score_fn, probability_flow=True)

    def drift(x: jax.Array, t: jax.Array) -> jax.Array:
        return reverse.sde(x, jnp.full(x.shape[:1], jnp.clip(t, t_min, sde.T)))[0]

    return drift


def ode_sample(sde: SDE, score_fn: ScoreFn, shape: tuple[int, ...], rng: jax.Array, *, rtol: float = 1e-5,
               atol: float = 1e-5, eps: float = 1e-3, denoise_last: bool = True,
               counter: NfeCounter | None = None, init: jax.Array | None = None) -> jax.Array:
    """Samples by integrating the probability-flow ODE from a prior sample at T back to eps.

    `init` replaces the prior sample drawn from `rng` (e.g. to follow a given latent code)."""
    drift = probability_flow_drift(sde, score_fn, eps)

    def backwards(x: jax.Array, s: jax.Array) -> jax.Array:  # s = -t increases from -T to -eps
        return -drift(x, -s)

    if counter is not None:
        backwards = counter.wrap(backwards)
    x = sde.prior_sampling(rng, shape) if init is None else init
    x = odeint(backwards, x, jnp.array([-sde.T, -eps]), rtol=rtol, atol=atol)[-1]
    return denoise(sde, score_fn, x, jnp.full(shape[:1], eps)) if denoise_last else x

"""Predictor-corrector samplers (Song et al. 2021, Algorithms 1-5), jitted, as one `lax.fori_loop`.

Predictors take one step of the reverse process from t to t - dt: Euler-Maruyama on the reverse SDE
(eq. 6), reverse diffusion (the reverse of the forward discretisation, eq. 46) and ancestral sampling
(SMLD/DDPM, eq. 47). Correctors run `n_steps` of Langevin MCMC at fixed t with the step size set by
a signal-to-noise ratio (Algorithms 4-5: eps = 2 alpha (snr ||z|| / ||s||)^2 with both norms averaged
over the batch, as in the original; per-example norms would make the step explode near a mode in low
dimensions) or by the noise level (annealed Langevin dynamics of NCSN: eps = 2 alpha (snr std(t))^2).

The time grid runs from T down to eps in `num_steps` equal steps; the final denoising step is
Tweedie's formula E[x_0 | x_eps] = (x + std^2 s(x, eps)) / mean_coef(eps).
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from gen_runtime import few_step
from sde_jax.sde import SDE, ScoreFn, batch_broadcast

Step = Callable[[SDE, ScoreFn, jax.Array, jax.Array, float, jax.Array], tuple[jax.Array, jax.Array]]
Constraint = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]


def euler_maruyama(sde: SDE, score_fn: ScoreFn, x: jax.Array, t: jax.Array, dt: float,
                   rng: jax.Array) -> tuple[jax.Array, jax.Array]:
    """x_{t-dt} = x - [f - g^2 s] dt + g sqrt(dt) z (Euler-Maruyama on the reverse SDE)."""
    drift, diffusion = sde.reverse(score_fn).sde(x, t)
    x_mean = x - drift * dt
    return x_mean + batch_broadcast(diffusion * jnp.sqrt(dt), x) * jax.random.normal(rng, x.shape), x_mean


def reverse_diffusion(sde: SDE, score_fn: ScoreFn, x: jax.Array, t: jax.Array, dt: float,
                      rng: jax.Array) -> tuple[jax.Array, jax.Array]:
    """x_{t-dt} = x - f_i + G_i^2 s + G_i z with the forward discretisation (f_i, G_i) (eq. 46)."""
    f, g = sde.reverse(score_fn).discretize(x, t, dt)
    x_mean = x - f
    return x_mean + batch_broadcast(g, x) * jax.random.normal(rng, x.shape), x_mean


def ancestral_sampling(sde: SDE, score_fn: ScoreFn, x: jax.Array, t: jax.Array, dt: float,
                       rng: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The ancestral sampler of SMLD (VE) or DDPM (VP) (eq. 47)."""
    return sde.ancestral_step(x, score_fn(x, t), t, dt, jax.random.normal(rng, x.shape))


def no_step(sde: SDE, score_fn: ScoreFn, x: jax.Array, t: jax.Array, dt: float,
            rng: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Identity (predictor- or corrector-only sampling)."""
    return x, x


PREDICTORS: dict[str, Step] = {
    'euler_maruyama': euler_maruyama,
    'reverse_diffusion': reverse_diffusion,
    'ancestral_sampling': ancestral_sampling,
    'none': no_step,
}


def _norm(v: jax.Array) -> jax.Array:
    return jnp.sqrt(jnp.sum(v**2, axis=tuple(range(1, v.ndim))))


def langevin_corrector(snr: float, n_steps: int, annealed: bool) -> Step:
    """`n_steps` Langevin steps x <- x + eps s + sqrt(2 eps) z at fixed t (Algorithms 4-5)."""

    def correct(sde: SDE, score_fn: ScoreFn, x: jax.Array, t: jax.Array, dt: float,
                rng: jax.Array) -> tuple[jax.Array, jax.Array]:
        alpha = sde.langevin_alpha(t, dt)

        def body(i: int, carry: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
            x, _ = carry
            grad = score_fn(x, t)
            z = jax.random.normal(jax.random.fold_in(rng, i), x.shape)
            if annealed:
                step = 2.0 * alpha * (snr * sde.marginal_coefs(t)[1]) ** 2
            else:
                step = 2.0 * alpha * (snr * jnp.mean(_norm(z)) / jnp.mean(_norm(grad))) ** 2
            x_mean = x + batch_broadcast(step, x) * grad
            return x_mean + batch_broadcast(jnp.sqrt(2.0 * step), x) * z, x_mean

        return jax.lax.fori_loop(0, n_steps, body, (x, x))

    return correct


def get_predictor(name: str) -> Step:
    if name not in PREDICTORS:
        raise ValueError(f'predictor={name!r} is not one of {", ".join(PREDICTORS)}')
    return PREDICTORS[name]


def get_corrector(name: str, snr: float, n_steps: int) -> Step:
    if name == 'none' or n_steps == 0:
        return no_step
    if name not in ('langevin', 'ald'):
        raise ValueError(f"corrector={name!r} is not one of 'langevin', 'ald', 'none'")
    return langevin_corrector(snr, n_steps, annealed=name == 'ald')


def denoise(sde: SDE, score_fn: ScoreFn, x: jax.Array, t: jax.Array) -> jax.Array:
    """E[x_0 | x_t]: Tweedie's formula (x + std(t)^2 s(x, t)) / mean_coef(t), or the rectified flow's x - t v."""
    return sde.denoise(score_fn, x, t)


def pc_sample(sde: SDE, score_fn: ScoreFn, shape: tuple[int, ...], rng: jax.Array, *,
              predictor: Step, corrector: Step, num_steps: int, eps: float = 1e-3, denoise_last: bool = True,
              constraint: Constraint | None = None) -> jax.Array:
    """Samples of shape `shape` by the predictor-corrector method (Algorithm 1).

    `constraint(x, t, rng)`, if given, replaces the observed part of x with the data noised to time t
    after every step (inpainting and colorization, Appendix I).
    """
    dt = (sde.T - eps) / num_steps
    prior_rng, constraint_rng, loop_rng = jax.random.split(rng, 3)
    x = sde.prior_sampling(prior_rng, shape)
    if constraint is not None:
        x = constraint(x, jnp.full(shape[:1], sde.T), constraint_rng)

    def body(i: int, x: jax.Array) -> jax.Array:
        t = jnp.full(shape[:1], sde.T - i * dt)
        step_rng = jax.random.fold_in(loop_rng, i)
        c_rng, p_rng, k1, k2 = jax.random.split(step_rng, 4)
        x, _ = corrector(sde, score_fn, x, t, dt, c_rng)
        if constraint is not None:
            x = constraint(x, t, k1)
        x, _ = predictor(sde, score_fn, x, t, dt, p_rng)
        if constraint is not None:
            x = constraint(x, t - dt, k2)
        return x

    x = jax.lax.fori_loop(0, num_steps, body, x)
    t_end = jnp.full(shape[:1], eps)
    return denoise(sde, score_fn, x, t_end) if denoise_last else x


def few_step_sample(sde: SDE, score: ScoreFn, shape: tuple[int, ...], rng: jax.Array, times: np.ndarray,
                    method: str, eta: float = 0.0, order: int = 2, denoise_last: bool = True) -> jax.Array:
    """A sample of the probability-flow ODE from the prior by a few-step solver of gen_runtime.few_step
    ('ddim', 'dpm_solver_pp', 'heun') through `times` (decreasing, from T).

    The score's data prediction is Tweedie's x0 = (x + sigma_t^2 s(x, t)) / alpha_t for the SDE's kernel
    x_t = alpha_t x0 + sigma_t eps (VE: alpha = 1; VP and sub-VP: their marginal coefficients; the rectified
    flow: x - t v with alpha = 1 - t, sigma = t, so DDIM is Euler's method on dx/dt = v). With
    `denoise_last` the result is that x0 at the last time (one more score evaluation).
    """
    prior_rng, step_rng = jax.random.split(rng)
    ts = jnp.asarray(times, jnp.float32)
    alphas, sigmas = sde.heun_coefs(ts) if method == 'heun' else sde.marginal_coefs(ts)

    def x0_fn(x: jax.Array, t: jax.Array) -> jax.Array:
        return denoise(sde, score, x, t)

    x = few_step.solve(method, x0_fn, sde.prior_sampling(prior_rng, shape), ts, alphas, sigmas, eta=eta, order=order,
                       rng=step_rng)
    return x0_fn(x, jnp.full((shape[0],), ts[-1])) if denoise_last else x

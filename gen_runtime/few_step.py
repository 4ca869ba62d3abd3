"""Few-step samplers of diffusion models: DDIM, DPM-Solver++ (2M, 3M) and EDM's Heun, one implementation for
every family.

They live in the shared runtime because they need nothing of a family but three things, which both the
continuous score SDEs (sde_jax) and the discrete DDPM / latent-diffusion models (ldm_jax) provide:
- `x0_fn(x, t) -> x0_hat`, the model's prediction of the data (its "data-prediction" or denoiser form);
- the times `ts` to step through, from the noisiest to the cleanest (continuous t, or discrete indices);
- `alphas`, `sigmas`: the perturbation kernel x_t = alpha_t x_0 + sigma_t eps at those times.
Each sampler is one `lax.fori_loop` over a static number of steps (jit it with the model), and `nfe`
gives its network evaluations exactly: DDIM and DPM-Solver++ one per step, Heun two (one on a last step
that ends at sigma = 0).
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

X0Fn = Callable[[jax.Array, jax.Array], jax.Array]
METHODS = ('ddim', 'dpm_solver_pp', 'heun')
SPACINGS = ('uniform', 'logsnr', 'karras')


def _at(values: jax.Array, i: jax.Array, x: jax.Array) -> jax.Array:
    """values[i] as a batch of scalars, broadcastable against x."""
    return jnp.full((x.shape[0],) + (1,) * (x.ndim - 1), values[i], x.dtype)


def _times(ts: jax.Array, i: jax.Array, x: jax.Array) -> jax.Array:
    return jnp.full((x.shape[0],), ts[i], ts.dtype)


def nfe(method: str, num_steps: int, ends_at_zero: bool = False) -> int:
    """Network evaluations of `method` over `num_steps` steps (Heun skips its correction on a last step
    that ends at sigma = 0)."""
    if method == 'heun':
        return 2 * num_steps - int(ends_at_zero)
    return num_steps


def ddim(x0_fn: X0Fn, x: jax.Array, ts: jax.Array, alphas: jax.Array, sigmas: jax.Array,
         eta: float = 0.0, rng: jax.Array | None = None) -> jax.Array:
    """DDIM (Song, Meng & Ermon 2021, eq. 12) for a kernel x_t = alpha_t x_0 + sigma_t eps.

    From t to s: eps = (x_t - alpha_t x0) / sigma_t, c = eta sigma_s sqrt(1 - (alpha_t sigma_s / (alpha_s
    sigma_t))^2), x_s = alpha_s x0 + sqrt(sigma_s^2 - c^2) eps + c z; eta = 0 is the deterministic DDIM
    (the probability-flow ODE's first-order exponential integrator), eta = 1 DDPM's ancestral sampler.
    ts has num_steps + 1 entries; the last step ends at ts[-1] and returns x0_hat there if sigma is 0.
    """
    steps = ts.shape[0] - 1
    rng = jax.random.key(0) if rng is None else rng

    def body(i: jax.Array, x: jax.Array) -> jax.Array:
        a_t, s_t, a_s, s_s = (_at(v, j, x) for v, j in ((alphas, i), (sigmas, i), (alphas, i + 1), (sigmas, i + 1)))
        x0 = x0_fn(x, _times(ts, i, x))
        eps = (x - a_t * x0) / s_t
        c = eta * s_s * jnp.sqrt(jnp.clip(1.0 - (a_t * s_s / (a_s * s_t)) ** 2, 0.0, 1.0))
        noise = jax.random.normal(jax.random.fold_in(rng, i), x.shape, x.dtype)
        return a_s * x0 + jnp.sqrt(jnp.maximum(s_s**2 - c**2, 0.0)) * eps + c * noise

    return jax.lax.fori_loop(0, steps, body, x)


def dpm_solver_pp_step(x: jax.Array, m: tuple[jax.Array, jax.Array, jax.Array],
                       lambdas: tuple[jax.Array, jax.Array, jax.Array, jax.Array], alpha_next: jax.Array,
                       sigma_next: jax.Array, sigma_now: jax.Array, order: jax.Array | int) -> jax.Array:
    """One step of DPM-Solver++ (Lu et al. 2022, Algorithm 2 and its third-order multistep extension) in data
    prediction, from lambda_0 = log(alpha / sigma) now to lambda_next.

    m = (m_0, m_1, m_2) are the data predictions now and at the two steps before (at lambda_1, lambda_2);
    with h = lambda_next - lambda_0, r_0 = (lambda_0 - lambda_1) / h, r_1 = (lambda_1 - lambda_2) / h:
      x_next = (sigma_next / sigma_now) x - alpha_next (e^{-h} - 1) m_0 + [order 2] or [order 3],
      order 2 (2M): - alpha_next (e^{-h} - 1) D_1 / 2, D_1 = (m_0 - m_1) / r_0;
      order 3 (3M): + alpha_next ((e^{-h} - 1) / h + 1) D_1 + alpha_next (1 - 2 (e^{-h} - 1 + h) / h^2) D_2 with
        D_1' = (m_0 - m_1) / r_0, D_1'' = (m_1 - m_2) / r_1, D_1 = D_1' + r_0 / (r_0 + r_1) (D_1' - D_1''),
        D_2 = (D_1' - D_1'') / (r_0 + r_1).
    These are the terms of x_next = (sigma_next / sigma_now) x + alpha_next int_0^h e^{u - h} m(lambda_0 + u) du
    (Lu et al. 2022, eq. 9) with m expanded to second order: D_1 estimates h m' and D_2 estimates h^2 m'' / 2,
    whose exact weight is int_0^h u^2 e^{u - h} du / h^2 = 1 - 2 (e^{-h} - 1 + h) / h^2. (DPM-Solver's and
    diffusers' multistep third-order update weight D_2 by 1/2 - (e^{-h} - 1 + h) / h^2, half of that, which
    leaves their step's local error at O(h^3); tests/runtime/test_few_step.py measures both.) The local
    error of this step is O(h^(order + 1)). Predictions a lower order does not use may be anything finite.
    """
    m0, m1, m2 = m
    lam_next, lam0, lam1, lam2 = lambdas
    h = lam_next - lam0
    r0, r1 = (lam0 - lam1) / h, (lam1 - lam2) / h
    e = jnp.expm1(-h)
    first = -alpha_next * e * m0
    d1_0 = (m0 - m1) / r0
    second = first - 0.5 * alpha_next * e * d1_0
    d1_1 = (m1 - m2) / r1
    third = (first + alpha_next * (e / h + 1.0) * (d1_0 + r0 / (r0 + r1) * (d1_0 - d1_1))
             + alpha_next * (1.0 - 2.0 * (e + h) / h**2) * (d1_0 - d1_1) / (r0 + r1))
    update = jnp.where(order == 1, first, jnp.where(order == 2, second, third))
    return (sigma_next / sigma_now) * x + update


def dpm_solver_pp(x0_fn: X0Fn, x: jax.Array, ts: jax.Array, alphas: jax.Array, sigmas: jax.Array,
                  order: int = 2, lower_order_final: bool = True) -> jax.Array:
    """DPM-Solver++(2M) or (3M): the multistep solver of the probability-flow ODE in data prediction, one
    `dpm_solver_pp_step` per time step.

    Step i runs at order min(order, i + 1), the history it has, so the global error of 3M is still
    O(h^2) from its first step (as in Lu et al.'s multistep solvers; its later steps are third order).
    With `lower_order_final` the last step is first order and the one before at most second (diffusers'
    default below 15 steps; it keeps few-step runs stable). Order 1 is DPM-Solver++(1), the same map as DDIM
    with eta = 0. A final sigma of 0 (lambda = inf) returns the data prediction; a first alpha of 0 (lambda =
    -inf, the rectified flow's t = 1) makes the first step x_next = sigma_next x + alpha_next m_0.
    """
    if order not in (1, 2, 3):
        raise ValueError(f'order={order} is not 1, 2 or 3 (DPM-Solver++(1), (2M) or (3M))')
    steps = ts.shape[0] - 1
    if steps < order:
        raise ValueError(f'{steps} steps are too few for the order-{order} multistep DPM-Solver++; use at least '
                         f'{order} steps or a lower order')
    lambdas = jnp.log(alphas) - jnp.log(sigmas)

    def body(i: jax.Array, carry: tuple[jax.Array, jax.Array, jax.Array]) -> tuple[jax.Array, ...]:
        x, m1, m2 = carry
        m0 = x0_fn(x, _times(ts, i, x))
        k = jnp.minimum(order, i + 1)
        k = jnp.where(lower_order_final & (i == steps - 1), 1, k)
        k = jnp.where(lower_order_final & (i == steps - 2), jnp.minimum(k, 2), k)
        lam = (lambdas[i + 1], lambdas[i], lambdas[jnp.maximum(i - 1, 0)], lambdas[jnp.maximum(i - 2, 0)])
        step = dpm_solver_pp_step(x, (m0, m1, m2), lam, _at(alphas, i + 1, x), _at(sigmas, i + 1, x),
                                  _at(sigmas, i, x), k)
        return jnp.where(jnp.isfinite(lam[0]), step, m0), m0, m1

    zeros = jnp.zeros_like(x)
    return jax.lax.fori_loop(0, steps, body, (x, zeros, zeros))[0]


def heun(x0_fn: X0Fn, x: jax.Array, ts: jax.Array, alphas: jax.Array, sigmas: jax.Array) -> jax.Array:
    """EDM's deterministic Heun sampler (Karras et al. 2022, Algorithm 1, S_churn = 0) on any kernel.

    In EDM's variables x^ = x / alpha and sigma^ = sigma / alpha the probability-flow ODE is
    dx^/dsigma^ = (x^ - D(x^, sigma^)) / sigma^ with D the denoiser; each step is an Euler step followed by
    the trapezoidal correction, except the last one when it ends at sigma^ = 0.
    """
    steps = ts.shape[0] - 1
    s_hat = sigmas / alphas

    def slope(y: jax.Array, i: jax.Array) -> jax.Array:
        x0 = x0_fn(_at(alphas, i, y) * y, _times(ts, i, y))
        return (y - x0) / _at(s_hat, i, y)

    def body(i: jax.Array, y: jax.Array) -> jax.Array:
        dt = _at(s_hat, i + 1, y) - _at(s_hat, i, y)
        d = slope(y, i)
        euler = y + dt * d
        return jax.lax.cond(s_hat[i + 1] > 0, lambda: y + dt * 0.5 * (d + slope(euler, i + 1)), lambda: euler)

    y = jax.lax.fori_loop(0, steps, body, x / alphas[0])
    return alphas[-1] * y


def solve(method: str, x0_fn: X0Fn, x: jax.Array, ts: jax.Array, alphas: jax.Array, sigmas: jax.Array, *,
          eta: float = 0.0, order: int = 2, rng: jax.Array | None = None) -> jax.Array:
    """The few-step sampler `method` (one of METHODS) from x at ts[0] through `ts`: the one entry point every
    family calls (`eta` and `rng` are DDIM's, `order` DPM-Solver++'s)."""
    if method == 'ddim':
        return ddim(x0_fn, x, ts, alphas, sigmas, eta=eta, rng=rng)
    if method == 'dpm_solver_pp':
        return dpm_solver_pp(x0_fn, x, ts, alphas, sigmas, order=order)
    if method == 'heun':
        return heun(x0_fn, x, ts, alphas, sigmas)
    raise ValueError(f'method={method!r} is not one of {", ".join(METHODS)}')


def spaced_times(spacing: str, num_steps: int, t_max: float, t_min: float,
                 alpha_sigma: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], rho: float = 7.0,
                 grid: int = 100_001) -> np.ndarray:
    """num_steps + 1 decreasing times from t_max to t_min, spaced uniformly in t ('uniform'), in
    log-SNR lambda = log(alpha / sigma) ('logsnr', DPM-Solver's) or in sigma^(1/rho) with sigma =
    sigma_t / alpha_t ('karras', EDM eq. 5).

    The non-uniform spacings invert the schedule on a fine float64 grid (monotone interpolation), so any
    kernel works; the kernel is then evaluated exactly at the chosen times.
    """
    if spacing not in SPACINGS:
        raise ValueError(f'spacing={spacing!r} is not one of {", ".join(SPACINGS)}')
    if num_steps < 1:
        raise ValueError(f'num_steps={num_steps} must be at least 1')
    if spacing == 'uniform':
        return np.linspace(t_max, t_min, num_steps + 1)
    t = np.linspace(t_min, t_max, grid)
    alpha, sigma = (np.asarray(v, np.float64) for v in alpha_sigma(t))
    if spacing == 'logsnr':
        key = np.log(alpha) - np.log(sigma)  # decreasing in t
        targets = np.linspace(key[-1], key[0], num_steps + 1)
        return np.interp(targets, key[::-1], t[::-1])
    key = (sigma / alpha) ** (1.0 / rho)  # increasing in t
    targets = np.linspace(key[-1], key[0], num_steps + 1)
    return np.interp(targets, key, t)

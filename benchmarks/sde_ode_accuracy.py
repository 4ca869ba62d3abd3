"""Accuracy of the probability-flow ODE solver against scipy's RK45 (the original code's solver).

Gaussian data (mean (0.5, -1, 2), std (0.3, 1.5, 0.7)) with its exact score, for the VE, VP and sub-VP
SDEs at rtol = atol = 1e-3, 1e-4, 1e-5:
  - sampling: 500 prior samples integrated from T to eps = 1e-3; the error is the RMS distance to the
    closed-form flow (for Gaussian marginals the flow keeps (x - mean_t) / std_t fixed), relative to
    the data's RMS spread;
  - likelihood: the exact-trace log-density of data points at eps = 1e-5 with the exact p_T as prior;
    the error is the RMS of (ODE log p - closed-form log p_eps) per dimension over 16 points
    (one ODE per point in both).
scipy solves the same jitted drift (float32 network evaluations, float64 state). Run:
    python -m benchmarks.sde_ode_accuracy
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from scipy.integrate import solve_ivp

from sde_jax.likelihood import ode_log_likelihood
from sde_jax.ode import ode_sample, probability_flow_drift
from sde_jax.sde import VESDE, VPSDE, SubVPSDE
from tests.sde.analytic import DiagonalMixture

MEAN = np.array([[0.5, -1.0, 2.0]], np.float32)
STD = np.array([[0.3, 1.5, 0.7]], np.float32)
GAUSSIAN = DiagonalMixture(np.ones(1, np.float32), MEAN, STD)
SDES = {'VE': VESDE(sigma_min=0.01, sigma_max=50.0), 'VP': VPSDE(beta_min=0.1, beta_max=20.0),
        'sub-VP': SubVPSDE(beta_min=0.1, beta_max=20.0)}
TOLERANCES = (1e-3, 1e-4, 1e-5)
SAMPLE_EPS, LIKELIHOOD_EPS, LIKELIHOOD_POINTS = 1e-3, 1e-5, 16


def flow(sde, x_from: np.ndarray, t_from: float, t_to: float) -> np.ndarray:
    """The closed-form probability-flow map of Gaussian data from t_from to t_to."""
    def moments(t: float) -> tuple[np.ndarray, np.ndarray]:
        a, s = (float(v[0]) for v in sde.marginal_coefs(jnp.full((1,), t)))
        return a * MEAN, np.sqrt(a**2 * STD**2 + s**2)

    (m0, s0), (m1, s1) = moments(t_from), moments(t_to)
    return m1 + s1 * (x_from - m0) / s0


def sampling_errors(sde, tol: float, n: int = 500) -> tuple[float, int, float, int]:
    """(ours, our NFE, scipy's, scipy's NFE): relative RMS error of n ODE samples."""
    score = functools.partial(GAUSSIAN.score, sde)
    x_t = np.asarray(sde.prior_sampling(jax.random.key(1), (n, 3)))
    truth = flow(sde, x_t, sde.T, SAMPLE_EPS)
    spread = np.sqrt(np.mean((truth - MEAN) ** 2))
    ours, nfe = jax.jit(lambda x: ode_sample(sde, score, x.shape, jax.random.key(0), rtol=tol, atol=tol,
                                             eps=SAMPLE_EPS, denoise_last=False, init=x))(jnp.asarray(x_t))
    drift = jax.jit(probability_flow_drift(sde, score))
    result = solve_ivp(lambda t, y: np.asarray(drift(jnp.asarray(y.reshape(x_t.shape), jnp.float32),
                                                     jnp.float32(t))).ravel().astype(np.float64),
                       (sde.T, SAMPLE_EPS), x_t.ravel().astype(np.float64), rtol=tol, atol=tol)
    theirs = result.y[:, -1].reshape(x_t.shape)
    rms = [float(np.sqrt(np.mean((v - truth) ** 2)) / spread) for v in (np.asarray(ours), theirs)]
    return rms[0], int(nfe), rms[1], int(result.nfev)


def likelihood_errors(sde, tol: float, n: int = LIKELIHOOD_POINTS) -> tuple[float, float, float, float]:
    """(ours, our mean NFE, scipy's, scipy's mean NFE): RMS log p error per dimension over n points."""
    score = functools.partial(GAUSSIAN.score, sde)
    x = jnp.asarray(GAUSSIAN.sample(np.random.default_rng(0), n))
    prior = jax.jit(lambda z: GAUSSIAN.log_density(sde, z, jnp.full(z.shape[:1], sde.T)))
    truth = np.asarray(GAUSSIAN.log_density(sde, x, jnp.full((n,), LIKELIHOOD_EPS)))
    logp, _, nfe = jax.jit(lambda v: ode_log_likelihood(sde, score, v, jax.random.key(0), estimator='exact',
                                                        rtol=tol, atol=tol, eps=LIKELIHOOD_EPS,
                                                        prior_logp=prior))(x)
    drift = jax.jit(probability_flow_drift(sde, score))

    def augmented(t: float, y: np.ndarray) -> np.ndarray:
        dy, jvp = jax.linearize(lambda v: drift(v, jnp.float32(t)), jnp.asarray(y[:-1][None], jnp.float32))
        divergence = sum(float(jvp(jnp.eye(3)[d][None])[0, d]) for d in range(3))
        return np.concatenate([np.asarray(dy).ravel(), [divergence]]).astype(np.float64)

    errors, nfes = [], []
    for i in range(n):
        r = solve_ivp(augmented, (LIKELIHOOD_EPS, sde.T), np.concatenate([np.asarray(x[i]), [0.0]]), rtol=tol,
                      atol=tol)
        z = jnp.asarray(r.y[:-1, -1][None], jnp.float32)
        errors.append(float(prior(z)[0]) + r.y[-1, -1] - truth[i])
        nfes.append(r.nfev)
    ours = float(np.sqrt(np.mean((np.asarray(logp) - truth) ** 2)) / 3)
    return ours, float(np.mean(nfe)), float(np.sqrt(np.mean(np.square(errors))) / 3), float(np.mean(nfes))


def main() -> None:
    print('| SDE | tol | sample error ours (NFE) | scipy RK45 (NFE) | log p error/dim ours (NFE) | scipy RK45 (NFE) |')
    print('|---|---|---|---|---|---|')
    for name, sde in SDES.items():
        for tol in TOLERANCES:
            s = sampling_errors(sde, tol)
            lk = likelihood_errors(sde, tol)
            print(f'| {name} | {tol:g} | {s[0]:.2e} ({s[1]}) | {s[2]:.2e} ({s[3]}) | {lk[0]:.2e} ({lk[1]:.0f}) | '
                  f'{lk[2]:.2e} ({lk[3]:.0f}) |', flush=True)


if __name__ == '__main__':
    main()

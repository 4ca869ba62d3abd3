"""Closed-form truth for score-based models: Gaussian mixtures pushed through the forward SDEs.

If x(0) ~ sum_k w_k N(m_k, diag(s_k^2)) and the perturbation kernel is N(a(t) x(0), std(t)^2 I), then
x(t) ~ sum_k w_k N(a m_k, diag(a^2 s_k^2 + std^2)); its score and log-density are exact. A Gaussian is
the one-component case.
"""

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from sde_jax.sde import SDE


class DiagonalMixture(flax.struct.PyTreeNode):
    """A pytree, so that one compiled sampler serves every mixture with K components."""

    weights: np.ndarray  # (K,); a weight 0 switches a component off
    means: np.ndarray  # (K, D)
    stds: np.ndarray  # (K, D)

    def _components(self, sde: SDE, t: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Means (B, K, D) and variances (B, K, D) of the components of p_t."""
        a, std = sde.marginal_coefs(t)
        means = a[:, None, None] * self.means[None]
        variances = a[:, None, None] ** 2 * self.stds[None] ** 2 + std[:, None, None] ** 2
        return means, variances

    def _component_logp(self, sde: SDE, x: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        means, variances = self._components(sde, t)
        diff = x[:, None, :] - means
        logp = -0.5 * jnp.sum(diff**2 / variances + jnp.log(2 * np.pi * variances), axis=-1)
        return logp + jnp.log(self.weights)[None], diff, variances

    def log_density(self, sde: SDE, x: jax.Array, t: jax.Array) -> jax.Array:
        """log p_t(x) for x of shape (B, D)."""
        return logsumexp(self._component_logp(sde, x, t)[0], axis=1)

    def score(self, sde: SDE, x: jax.Array, t: jax.Array) -> jax.Array:
        """grad_x log p_t(x) (B, D), flattening any trailing shape of x."""
        flat = x.reshape(x.shape[0], -1)
        logp, diff, variances = self._component_logp(sde, flat, t)
        resp = jax.nn.softmax(logp, axis=1)
        return jnp.sum(resp[..., None] * (-diff / variances), axis=1).reshape(x.shape)

    def velocity(self, sde: SDE, x: jax.Array, t: jax.Array) -> jax.Array:
        """The probability-flow drift as E[d x_t / dt | x_t] = a'(t) E[x_0 | x_t] + std'(t) E[eps | x_t] (B, D), from
        each component's Gaussian posterior; finite where a(t) = 0 (the rectified flow's velocity at t = 1)."""
        flat = x.reshape(x.shape[0], -1)
        logp, diff, variances = self._component_logp(sde, flat, t)
        resp = jax.nn.softmax(logp, axis=1)[..., None]
        (a, std), (da, dstd) = jax.jvp(sde.marginal_coefs, (t,), (jnp.ones_like(t),))
        x0 = jnp.sum(resp * (self.means[None] + a[:, None, None] * self.stds[None] ** 2 * diff / variances), axis=1)
        eps = jnp.sum(resp * std[:, None, None] * diff / variances, axis=1)
        return (da[:, None] * x0 + dstd[:, None] * eps).reshape(x.shape)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        k = rng.choice(len(self.weights), size=n, p=self.weights)
        return (self.means[k] + self.stds[k] * rng.standard_normal((n, self.means.shape[1]))).astype(np.float32)

    def mean(self) -> np.ndarray:
        return self.weights @ self.means

    def variance(self) -> np.ndarray:
        return self.weights @ (self.stds**2 + self.means**2) - self.mean() ** 2

    def fourth_central_moment(self) -> np.ndarray:
        """E[(X - mu)^4] per dimension: sum_k w_k (d^4 + 6 d^2 s^2 + 3 s^4), d = m_k - mu."""
        d = self.means - self.mean()
        s2 = self.stds**2
        return self.weights @ (d**4 + 6 * d**2 * s2 + 3 * s2**2)


# A Gaussian N((0.5, -1), diag(0.3, 1.2)^2), padded with a weight-0 component to share compiled code.
GAUSSIAN = DiagonalMixture(np.array([1.0, 0.0]), np.array([[0.5, -1.0], [0.0, 0.0]]),
                           np.array([[0.3, 1.2], [1.0, 1.0]]))
MIXTURE = DiagonalMixture(np.array([0.3, 0.7]), np.array([[-1.0, 0.5], [1.0, -0.5]]),
                          np.array([[0.3, 0.4], [0.5, 0.3]]))


def moment_bounds(dist: DiagonalMixture, n: int, z: float = 5.0) -> tuple[np.ndarray, np.ndarray]:
    """z standard errors of the sample mean and the sample variance of n iid draws, per dimension.

    SE(mean) = sqrt(var / n); SE(sample variance) = sqrt((mu4 - var^2) / n) to first order
    (for a Gaussian, mu4 = 3 var^2 gives the familiar sqrt(2 / n) var).
    """
    var = dist.variance()
    return z * np.sqrt(var / n), z * np.sqrt((dist.fourth_central_moment() - var**2) / n)

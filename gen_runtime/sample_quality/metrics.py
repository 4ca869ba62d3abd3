"""The sample-quality metrics on Inception features: FID, KID, Inception Score, precision/recall."""

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from scipy.linalg import lapack

from gen_runtime.sample_quality.statistics import InceptionScoreSums


def _psd_factor(sigma: np.ndarray) -> np.ndarray:
    """F (n x rank) with F F^T = sigma for a symmetric PSD matrix: Cholesky with complete pivoting
    (LAPACK dpstrf, n^3 / 3 flops), which also handles singular covariances (fewer samples than
    dimensions) and stops at the numerical rank instead of taking square roots of round-off."""
    factor, pivots, rank, info = lapack.dpstrf(np.asarray(sigma, np.float64), lower=1)
    if info < 0:
        raise ValueError(f'pivoted Cholesky failed (LAPACK info {info})')
    out = np.empty((len(sigma), rank))
    out[pivots - 1] = np.tril(factor)[:, :rank]
    return out


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Frechet distance of two Gaussians (Heusel et al. 2017, eq. 6 / Dowson & Landau 1982):

        d^2 = |mu1 - mu2|^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2)).

    With F F^T = sigma1 (pivoted Cholesky), the nonzero spectrum of sigma1 sigma2 is that of the
    symmetric PSD matrix F^T sigma2 F, so Tr((sigma1 sigma2)^(1/2)) is the sum of the square roots of
    its (clipped) eigenvalues, in float64: no complex round-off and no failure on singular covariances,
    unlike a general sqrtm.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise ValueError(f'mismatched Gaussian statistics: means {mu1.shape}, {mu2.shape}; '
                         f'covariances {sigma1.shape}, {sigma2.shape}')
    factor = _psd_factor(sigma1)
    middle = factor.T @ sigma2 @ factor
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)).sum()
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt)


def polynomial_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with the kernel k(a, b) = (a.b / d + 1)^3 (Bińkowski et al. 2018, eq. 3 / KID)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    m, n, dim = len(x), len(y), x.shape[1]
    k_xx = (x @ x.T / dim + 1.0) ** 3
    k_yy = (y @ y.T / dim + 1.0) ** 3
    k_xy = (x @ y.T / dim + 1.0) ** 3
    return float((k_xx.sum() - np.trace(k_xx)) / (m * (m - 1)) + (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
                 - 2.0 * k_xy.mean())


def kernel_inception_distance(real: np.ndarray, fake: np.ndarray, num_subsets: int, subset_size: int,
                              seed: int = 0) -> tuple[float, float]:
    """KID: mean and standard deviation of `polynomial_mmd2` over `num_subsets` random subsets of
    `subset_size` rows of each set, each drawn without replacement (Bińkowski et al. 2018)."""
    if min(len(real), len(fake)) < subset_size or subset_size < 2:
        raise ValueError(f'KID subsets of {subset_size} need at least that many real ({len(real)}) and '
                         f'generated ({len(fake)}) feature vectors, and subset_size >= 2')
    rng = np.random.default_rng(seed)
    values = [polynomial_mmd2(real[rng.choice(len(real), subset_size, replace=False)],
                              fake[rng.choice(len(fake), subset_size, replace=False)])
              for _ in range(num_subsets)]
    return float(np.mean(values)), float(np.std(values))


def inception_score(sums: InceptionScoreSums) -> tuple[float, float]:
    """Inception Score (Salimans et al. 2016): mean and std over splits of exp(E_x KL(p(y|x) || p(y)))."""
    if np.any(sums.counts == 0):
        raise ValueError(f'the Inception Score over {sums.splits} splits needs at least {sums.splits} samples, '
                         f'got {sums.seen}')
    marginal = sums.prob_sums / sums.counts[:, None]
    log_marginal = np.log(np.where(marginal > 0, marginal, 1.0))
    mean_kl = sums.neg_entropy_sums / sums.counts - (marginal * log_marginal).sum(axis=-1)
    scores = np.exp(mean_kl)
    return float(np.mean(scores)), float(np.std(scores))


def _squared_distances(a: jax.Array, b: jax.Array) -> jax.Array:
    hi = jax.lax.Precision.HIGHEST
    return (jnp.sum(a * a, axis=1)[:, None] + jnp.sum(b * b, axis=1)[None, :]
            - 2.0 * jnp.matmul(a, b.T, precision=hi))


@functools.partial(jax.jit, static_argnames='k')
def _kth_neighbour_sq(queries: jax.Array, points: jax.Array, k: int) -> jax.Array:
    """Squared distance from each query (a member of `points`) to its k-th nearest other point."""
    nearest = -jax.lax.top_k(-_squared_distances(queries, points), k + 1)[0]
    return nearest[:, k]  # index 0 is the query itself


@jax.jit
def _inside_any_ball(queries: jax.Array, centres: jax.Array, radii_sq: jax.Array) -> jax.Array:
    return jnp.any(_squared_distances(queries, centres) <= radii_sq[None, :], axis=1)


def _blockwise(fn: Callable[[np.ndarray], jax.Array], queries: np.ndarray, block: int) -> np.ndarray:
    """fn over fixed-size row blocks of `queries` (the last one zero-padded), concatenated."""
    out = []
    block = min(block, len(queries))
    for start in range(0, len(queries), block):
        rows = queries[start:start + block]
        padded = np.zeros((block, queries.shape[1]), np.float32)
        padded[:len(rows)] = rows
        out.append(np.asarray(fn(padded))[:len(rows)])
    return np.concatenate(out)


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3, block: int = 512) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019, eqs. 1-3).

    The manifold of a set is the union of balls around its points with radius the distance to the
    k-th nearest neighbour in the set. Precision: fraction of generated points inside the real
    manifold; recall: fraction of real points inside the generated manifold.
    """
    for name, rows in (('real', real), ('generated', fake)):
        if len(rows) <= k:
            raise ValueError(f'precision/recall with k={k} needs more than {k} {name} feature vectors, got {len(rows)}')
    real_j, fake_j = jnp.asarray(real, jnp.float32), jnp.asarray(fake, jnp.float32)
    radii_real = _blockwise(functools.partial(_kth_neighbour_sq, points=real_j, k=k), real, block)
    radii_fake = _blockwise(functools.partial(_kth_neighbour_sq, points=fake_j, k=k), fake, block)
    precision = _blockwise(functools.partial(_inside_any_ball, centres=real_j, radii_sq=jnp.asarray(radii_real)),
                           fake, block).mean()
    recall = _blockwise(functools.partial(_inside_any_ball, centres=fake_j, radii_sq=jnp.asarray(radii_fake)),
                        real, block).mean()
    return float(precision), float(recall)

"""Vector quantisation (van den Oord et al. 2017, VQ-VAE) with the straight-through estimator.

z_q = e_k with k = argmin_j ||z - e_j||^2; the decoder sees z + sg(z_q - z), so gradients reach the
encoder unchanged (eq. 3 of the paper's loss: ||sg(z) - e||^2 + beta ||z - sg(e)||^2). Against
codebook collapse the codebook can instead follow exponential moving averages of its assigned
vectors (VQ-VAE appendix A.1) and can be initialised by k-means on the first batch.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp


def nearest_codes(z: jax.Array, codebook: jax.Array) -> jax.Array:
    """Index of the nearest codebook row for each vector of z (..., d); codebook (n, d)."""
    flat = z.reshape(-1, z.shape[-1])
    distances = (jnp.sum(flat**2, axis=1, keepdims=True) + jnp.sum(codebook**2, axis=1)[None, :]
                 - 2.0 * flat @ codebook.T)
    return jnp.argmin(distances, axis=1).reshape(z.shape[:-1])


def codebook_usage(indices: jax.Array, num_codes: int) -> dict[str, jax.Array]:
    """Perplexity exp(H(p)) of the code histogram p and the fraction of codes used at least once."""
    counts = jax.ops.segment_sum(jnp.ones(indices.size, jnp.float32), indices.reshape(-1), num_segments=num_codes)
    return usage_from_counts(counts)


def usage_from_counts(counts: jax.Array) -> dict[str, jax.Array]:
    """`codebook_usage` from a histogram of code counts."""
    probs = counts / jnp.sum(counts)
    perplexity = jnp.exp(-jnp.sum(probs * jnp.log(probs + 1e-10)))
    return {'perplexity': perplexity, 'codebook_usage': jnp.mean(counts > 0)}


class VectorQuantizer(nn.Module):
    """Quantises the last axis of z to the nearest of `num_codes` learned vectors.

    Returns (z_q with straight-through gradient, losses, indices): losses holds 'commitment'
    ||z - sg(e)||^2 and 'codebook' ||sg(z) - e||^2 (means over all elements), combined as
    beta * commitment + codebook (or, with `legacy_beta`, commitment + beta * codebook: the order
    taming-transformers' VectorQuantizer2 uses by default, kept to reproduce its checkpoints).
    """

    num_codes: int
    dim: int
    beta: float = 0.25
    legacy_beta: bool = False

    @nn.compact
    def __call__(self, z: jax.Array) -> tuple[jax.Array, dict[str, jax.Array], jax.Array]:
        limit = 1.0 / self.num_codes  # U(-1/n, 1/n), as taming initialises it
        codebook = self.param('embedding', lambda key, shape: jax.random.uniform(key, shape, jnp.float32, -limit,
                                                                                 limit), (self.num_codes, self.dim))
        indices = nearest_codes(z, codebook)
        z_q = codebook[indices]
        commitment = jnp.mean((z - jax.lax.stop_gradient(z_q)) ** 2)
        codebook_term = jnp.mean((jax.lax.stop_gradient(z) - z_q) ** 2)
        if self.legacy_beta:
            loss = commitment + self.beta * codebook_term
        else:
            loss = self.beta * commitment + codebook_term
        z_st = z + jax.lax.stop_gradient(z_q - z)
        return z_st, {'vq_loss': loss, 'commitment': commitment, 'codebook': codebook_term}, indices


def ema_codebook_update(stats: dict[str, jax.Array], z: jax.Array, indices: jax.Array, decay: float,
                        eps: float = 1e-5) -> tuple[dict[str, jax.Array], jax.Array]:
    """One EMA step of the codebook statistics (VQ-VAE appendix A.1); returns (stats, new codebook).

    N_i <- decay N_i + (1 - decay) n_i and m_i <- decay m_i + (1 - decay) sum_{k(z)=i} z, with
    Laplace smoothing of N so that unused codes do not divide by zero; e_i = m_i / N_i.
    """
    num_codes = stats['cluster_size'].shape[0]
    flat, idx = z.reshape(-1, z.shape[-1]), indices.reshape(-1)
    counts = jax.ops.segment_sum(jnp.ones(idx.shape, jnp.float32), idx, num_segments=num_codes)
    sums = jax.ops.segment_sum(flat, idx, num_segments=num_codes)
    cluster_size = decay * stats['cluster_size'] + (1.0 - decay) * counts
    embed_sum = decay * stats['embed_sum'] + (1.0 - decay) * sums
    total = jnp.sum(cluster_size)
    smoothed = (cluster_size + eps) / (total + num_codes * eps) * total
    return {'cluster_size': cluster_size, 'embed_sum': embed_sum}, embed_sum / smoothed[:, None]


def kmeans_codebook(z: jax.Array, num_codes: int, rng: jax.Array, iterations: int = 10) -> jax.Array:
    """k-means (Lloyd) codebook on the vectors of z (..., d), seeded by a random choice of them.

    Clusters that end up empty keep their seed vector, so every code starts on the data.
    """
    flat = z.reshape(-1, z.shape[-1])
    centres = flat[jax.random.choice(rng, flat.shape[0], (num_codes,), replace=flat.shape[0] < num_codes)]

    def lloyd(_: int, centres: jax.Array) -> jax.Array:
        idx = nearest_codes(flat, centres)
        counts = jax.ops.segment_sum(jnp.ones(idx.shape, jnp.float32), idx, num_segments=num_codes)
        sums = jax.ops.segment_sum(flat, idx, num_segments=num_codes)
        return jnp.where(counts[:, None] > 0, sums / jnp.maximum(counts, 1.0)[:, None], centres)

    return jax.lax.fori_loop(0, iterations, lloyd, centres)

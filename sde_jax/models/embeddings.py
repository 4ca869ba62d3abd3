"""Time (noise-level) features for score networks."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


class GaussianFourierProjection(nn.Module):
    """Random Fourier features [sin(2 pi W x), cos(2 pi W x)], W ~ N(0, scale^2) fixed (Tancik et al. 2020).

    W is stored with the parameters (as in the original architectures, whose parameter counts include
    it) but receives no gradient.
    """

    embedding_size: int = 256
    scale: float = 1.0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        w = self.param('W', jax.nn.initializers.normal(stddev=self.scale), (self.embedding_size,))
        proj = x[:, None] * jax.lax.stop_gradient(w)[None, :] * 2 * np.pi
        return jnp.concatenate([jnp.sin(proj), jnp.cos(proj)], axis=-1)

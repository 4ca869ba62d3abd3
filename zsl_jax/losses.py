"""The loss terms of GAZSL (Zhu et al., CVPR 2018, Eq. 2-5) as pure functions of arrays.

Each is the per-batch quantity the original training scripts compute, so the hand-computed values in
tests/zsl/test_losses.py check them one by one.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax


def wasserstein_critic_loss(critic_real: jax.Array, critic_fake: jax.Array) -> jax.Array:
    """E[D(G(z,t))] - E[D(x)]: the critic's WGAN loss (Eq. 2 without the penalty)."""
    return jnp.mean(critic_fake) - jnp.mean(critic_real)


def gradient_penalty(critic: Callable[[jax.Array], jax.Array], real: jax.Array, fake: jax.Array,
                     mix: jax.Array) -> jax.Array:
    """E[(||grad_x D(x_hat)||_2 - 1)^2] at x_hat = mix * real + (1 - mix) * fake (Gulrajani et al. 2017).

    `critic` maps a batch (B, D) to scores (B,) with rows independent, so the gradient of the summed
    scores is each row's own gradient; `mix` is (B, 1), uniform in [0, 1]. Multiply by lambda (10).
    """
    interpolates = mix * real + (1.0 - mix) * fake
    grads = jax.grad(lambda x: jnp.sum(critic(x)))(interpolates)
    return jnp.mean((jnp.sqrt(jnp.sum(grads**2, axis=-1)) - 1.0) ** 2)


def classification_loss(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy of the auxiliary classifier (Eq. 3, 4)."""
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))


def visual_pivot_loss(fake: jax.Array, labels: jax.Array, centroids: jax.Array) -> jax.Array:
    """The visual pivot regulariser (Eq. 5): (1/C) sum_c ||mean_{i: y_i = c} G_i - pivot_c||_2.

    Class means are segment means over the batch; classes absent from the batch add 0 but still
    count in the 1/C, as in the originals.
    """
    num_classes = centroids.shape[0]
    sums = jax.ops.segment_sum(fake, labels, num_segments=num_classes)
    counts = jax.ops.segment_sum(jnp.ones_like(labels, fake.dtype), labels, num_segments=num_classes)
    present = counts > 0
    diff = jnp.where(present[:, None], sums / jnp.maximum(counts, 1.0)[:, None] - centroids, 0.0)
    squared = jnp.sum(diff**2, axis=-1)
    distance = jnp.where(present, jnp.sqrt(jnp.where(present, squared, 1.0)), 0.0)
    return jnp.sum(distance) / num_classes


def weight_l2(kernels: list[jax.Array]) -> jax.Array:
    """sum ||W||_F^2 over the generator's weight matrices (biases excluded)."""
    return sum(jnp.sum(w**2) for w in kernels)


def group_l21(kernel: jax.Array) -> jax.Array:
    """||W||_{2,1} of the text-reduction kernel (in_dim, out_dim): the sum over input (text) dimensions
    of the L2 norm of their outgoing weights, which drives unused terms' weights to zero."""
    return jnp.sum(jnp.sqrt(jnp.sum(kernel**2, axis=1)))

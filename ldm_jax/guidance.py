"""Classifier-free guidance (Ho & Salimans 2022) and classifier guidance (Dhariwal & Nichol 2021).

Classifier-free: the network is trained with the label replaced by a null label with probability p;
at sampling the conditional and unconditional outputs come from ONE network call on the doubled
batch and are combined as out_u + w (out_c - out_u). For eps this is eq. 6 of the paper; since v and
x_0 are affine in eps at fixed x_t, the same combination is exact for every parameterisation.

Classifier guidance: eps^ = eps - w sqrt(1 - abar_t) grad_x log p_phi(y | x_t, t) (Dhariwal & Nichol,
sec. 4.2, Algorithm 2), with a classifier trained on noisy inputs.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp

from ldm_jax.schedule import Schedule, extract

ModelFn = Callable[[jax.Array, jax.Array, jax.Array | None], jax.Array]


def drop_labels(labels: jax.Array, null_label: int, p: float, rng: jax.Array) -> jax.Array:
    """Replaces each label by `null_label` with probability p (classifier-free guidance training)."""
    if p <= 0:
        return labels
    return jnp.where(jax.random.uniform(rng, labels.shape) < p, null_label, labels)


def classifier_free_output(model: ModelFn, x: jax.Array, t: jax.Array, labels: jax.Array, null_label: int,
                           scale: float, mixed_channels: int | None = None) -> jax.Array:
    """out_u + scale (out_c - out_u), both halves from a single call on the concatenated batch. With
    `mixed_channels` only the first that many output channels are mixed and the rest (a learned variance's v)
    are the conditional output's, as GLIDE does."""
    out = model(jnp.concatenate([x, x]), jnp.concatenate([t, t]),
                jnp.concatenate([labels, jnp.full_like(labels, null_label)]))
    out_c, out_u = jnp.split(out, 2)
    mixed = out_u + scale * (out_c - out_u)
    if mixed_channels is None:
        return mixed
    return jnp.concatenate([mixed[..., :mixed_channels], out_c[..., mixed_channels:]], axis=-1)


def classifier_log_prob_grad(logits_fn: Callable[[jax.Array, jax.Array], jax.Array], x: jax.Array, t: jax.Array,
                             labels: jax.Array) -> jax.Array:
    """grad_x log p(y | x_t, t) for each example (the examples are independent, so one grad of the sum)."""

    def total_log_prob(x: jax.Array) -> jax.Array:
        log_probs = jax.nn.log_softmax(logits_fn(x, t))
        return jnp.sum(jnp.take_along_axis(log_probs, labels[:, None], axis=1))

    return jax.grad(total_log_prob)(x)


def classifier_guided_eps(s: Schedule, eps: jax.Array, t: jax.Array, grad_log_prob: jax.Array,
                          scale: float | jax.Array) -> jax.Array:
    """eps - scale sqrt(1 - abar_t) grad_x log p(y | x_t)."""
    return eps - scale * extract(s.sqrt_one_minus_alphas_cumprod, t, eps.ndim) * grad_log_prob

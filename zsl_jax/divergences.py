"""Divergences of a class posterior from the uniform distribution: the creativity term of CIZSL.

Sharma-Mittal (Elhoseiny & Elfeki, ICCV 2019, Eq. 6):
  SM_{a,b}(p || q) = 1 / (b - 1) [ (sum_k p_k^a q_k^(1-a))^((1-b)/(1-a)) - 1 ],
with the limits Renyi (b -> 1), Tsallis (b = a), KL (a, b -> 1) and, at a = b = 1/2,
2 (1 - sum_k sqrt(p_k q_k)), the Bhattacharyya-coefficient form CIZSL calls "Bhattacharyya".

The CIZSL code (train_CIZSL.py, the run that produced the published numbers) raises the sum to
(1 - a) / (1 - b) instead, the reciprocal exponent (`sharma_mittal_cizsl_code`). The two agree at
a = b (Tsallis, Bhattacharyya) and differ elsewhere, in value and in the sign of the gradient with
respect to the learned orders; near b = 1 the code's form does not tend to Renyi: with b = 0.9999 (its
"Renyi" model 5) the exponent is ~10^4 (1 - a), the sum's power vanishes and every value is ~10^4.
"""

import jax
import jax.numpy as jnp

# The originals add 1e-5 to p before raising it to the power a.
PROB_EPS = 1e-5


def _alpha_sum(p: jax.Array, q: jax.Array, alpha: jax.Array, eps: float) -> jax.Array:
    return jnp.sum((p + eps) ** alpha * q ** (1.0 - alpha), axis=-1)


def sharma_mittal(p: jax.Array, q: jax.Array, alpha: jax.Array, beta: jax.Array, eps: float = 0.0) -> jax.Array:
    """SM_{alpha,beta}(p || q) over the last axis (alpha, beta != 1)."""
    return (_alpha_sum(p, q, alpha, eps) ** ((1.0 - beta) / (1.0 - alpha)) - 1.0) / (beta - 1.0)


def sharma_mittal_cizsl_code(p: jax.Array, q: jax.Array, alpha: jax.Array, beta: jax.Array,
                             eps: float = 0.0) -> jax.Array:
    """1 / (b - 1) [ (sum_k p_k^a q_k^(1-a))^((1-a)/(1-b)) - 1 ]: Sharma-Mittal as the CIZSL code computes it."""
    return (_alpha_sum(p, q, alpha, eps) ** ((1.0 - alpha) / (1.0 - beta)) - 1.0) / (beta - 1.0)


def renyi(p: jax.Array, q: jax.Array, alpha: jax.Array, eps: float = 0.0) -> jax.Array:
    """Renyi divergence of order alpha: log(sum p^a q^(1-a)) / (a - 1), the b -> 1 limit of SM."""
    return jnp.log(_alpha_sum(p, q, alpha, eps)) / (alpha - 1.0)


def tsallis(p: jax.Array, q: jax.Array, alpha: jax.Array, eps: float = 0.0) -> jax.Array:
    """Tsallis divergence of order alpha: (sum p^a q^(1-a) - 1) / (a - 1), SM at b = a."""
    return (_alpha_sum(p, q, alpha, eps) - 1.0) / (alpha - 1.0)


def kl(p: jax.Array, q: jax.Array) -> jax.Array:
    """KL(p || q) = sum p log(p / q), the a, b -> 1 limit of SM (0 log 0 = 0)."""
    return jnp.sum(jnp.where(p > 0, p * (jnp.log(jnp.where(p > 0, p, 1.0)) - jnp.log(q)), 0.0), axis=-1)


def order_from_logit(logit: jax.Array) -> jax.Array:
    """A learned order in (0.2, 0.8): 0.2 + sigmoid(w) / (5/3), CIZSL's parametrisation of alpha/beta."""
    return 0.2 + jax.nn.sigmoid(logit) / (5.0 / 3.0)


# Number of learned order parameters of each creativity divergence (alpha, beta).
LEARNED_ORDERS = {'sharma_mittal': 2, 'sharma_mittal_eq6': 2, 'renyi': 1, 'tsallis': 1, 'bhattacharyya': 0,
                  'kl': 0}


def divergence_from_uniform(name: str, logits: jax.Array, orders: jax.Array | None) -> jax.Array:
    """Per-sample divergence of softmax(logits) from the uniform distribution, as CIZSL's variants.

    sharma_mittal (model 2): SM_{a,b}(p || u) with learned a, b in the CIZSL code's form (the default:
    it produced the published numbers); sharma_mittal_eq6: the same in the paper's Eq. 6 (textbook)
    form; renyi (5): learned a (the original
    approximates it by SM with b = 0.9999; here the limit is exact); tsallis (4): learned a;
    bhattacharyya (3): SM_{1/2,1/2}(p || u); kl (1): KL(u || p), the original's mean log-posterior form
    (its cross-entropy from the uniform distribution minus log K). p gets the originals' +1e-5 inside
    the powers. `orders` holds the logits of the learned orders (see LEARNED_ORDERS).
    """
    num_classes = logits.shape[-1]
    uniform = jnp.full_like(logits, 1.0 / num_classes)
    if name == 'kl':
        return kl(uniform, jax.nn.softmax(logits, axis=-1))
    p = jax.nn.softmax(logits, axis=-1)
    if name == 'bhattacharyya':
        return sharma_mittal(p, uniform, 0.5, 0.5, PROB_EPS)
    alpha = order_from_logit(orders[0])
    if name == 'sharma_mittal':
        return sharma_mittal_cizsl_code(p, uniform, alpha, order_from_logit(orders[1]), PROB_EPS)
    if name == 'sharma_mittal_eq6':
        return sharma_mittal(p, uniform, alpha, order_from_logit(orders[1]), PROB_EPS)
    if name == 'renyi':
        return renyi(p, uniform, alpha, PROB_EPS)
    if name == 'tsallis':
        return tsallis(p, uniform, alpha, PROB_EPS)
    raise ValueError(f'unknown divergence {name!r}; choose one of {", ".join(LEARNED_ORDERS)}')


def minmax_normalized_mean(values: jax.Array) -> jax.Array:
    """mean((v - min v) / (max v - min v)) over the batch: how CIZSL scales its divergences."""
    low, high = jnp.min(values), jnp.max(values)
    return jnp.mean((values - low) / jnp.maximum(high - low, 1e-12))

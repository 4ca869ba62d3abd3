"""Sharma-Mittal and its limits (KL, Renyi, Tsallis, Bhattacharyya form) numerically, in float64."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from zsl_jax import divergences as d


@pytest.fixture
def pq():
    rng = np.random.default_rng(0)
    p, q = rng.dirichlet(np.ones(7), size=5), rng.dirichlet(np.ones(7), size=5)
    return p, q


def test_sharma_mittal_tends_to_kl(pq):
    p, q = pq
    with jax.enable_x64(True):
        kl = np.asarray(d.kl(jnp.asarray(p), jnp.asarray(q)))
        np.testing.assert_allclose(kl, np.sum(p * np.log(p / q), axis=1), rtol=1e-12)
        errors = [np.max(np.abs(np.asarray(d.sharma_mittal(p, q, 1 - e, 1 - 2 * e)) - kl)) for e in (1e-2, 1e-3, 1e-4)]
    assert errors[2] < 1e-3 * np.max(kl)
    assert errors[0] > errors[1] > errors[2]  # converges as a, b -> 1


def test_sharma_mittal_tends_to_renyi(pq):
    p, q = pq
    alpha = 0.35
    with jax.enable_x64(True):
        renyi = np.asarray(d.renyi(p, q, alpha))
        np.testing.assert_allclose(renyi, np.log(np.sum(p**alpha * q ** (1 - alpha), axis=1)) / (alpha - 1), rtol=1e-12)
        close = np.asarray(d.sharma_mittal(p, q, alpha, 1 - 1e-6))
    np.testing.assert_allclose(close, renyi, rtol=1e-5, atol=1e-6)


def test_sharma_mittal_at_beta_equal_alpha_is_tsallis(pq):
    p, q = pq
    with jax.enable_x64(True):
        for alpha in (0.3, 0.7, 1.5):
            tsallis = (np.sum(p**alpha * q ** (1 - alpha), axis=1) - 1) / (alpha - 1)
            np.testing.assert_allclose(np.asarray(d.sharma_mittal(p, q, alpha, alpha)), tsallis, rtol=1e-12)
            np.testing.assert_allclose(np.asarray(d.tsallis(p, q, alpha)), tsallis, rtol=1e-12)


def test_bhattacharyya_form_and_zero_at_equality(pq):
    p, q = pq
    with jax.enable_x64(True):
        np.testing.assert_allclose(np.asarray(d.sharma_mittal(p, q, 0.5, 0.5)),
                                   2 * (1 - np.sum(np.sqrt(p * q), axis=1)), rtol=1e-12)
        for value in (d.sharma_mittal(p, p, 0.4, 0.6), d.renyi(p, p, 0.4), d.tsallis(p, p, 0.4), d.kl(p, p)):
            np.testing.assert_allclose(np.asarray(value), 0.0, atol=1e-12)
        assert np.all(np.asarray(d.sharma_mittal(p, q, 0.4, 0.6)) > 0)


def test_divergences_from_uniform():
    logits = jnp.array([[2.0, 0.0, -1.0, 0.5], [0.0, 0.0, 0.0, 0.0]])
    p = np.asarray(jax.nn.softmax(logits))
    # The original's KL (model 1): -mean_k log p_k, i.e. KL(u || p) + log K.
    kl = np.asarray(d.divergence_from_uniform('kl', logits, None))
    np.testing.assert_allclose(kl, -np.mean(np.log(p), axis=1) - np.log(4), rtol=1e-5, atol=1e-6)
    assert abs(kl[1]) < 1e-6
    orders = jnp.array([0.0, 1.0])  # alpha = 0.2 + 0.6 * 0.5 = 0.5, beta = 0.2 + 0.6 * sigmoid(1)
    beta = 0.2 + 0.6 / (1 + np.exp(-1.0))
    s = np.sum((p + d.PROB_EPS) ** 0.5 * 0.25**0.5, axis=1)
    np.testing.assert_allclose(np.asarray(d.divergence_from_uniform('sharma_mittal_eq6', logits, orders)),
                               (s ** ((1 - beta) / 0.5) - 1) / (beta - 1), rtol=1e-5, atol=1e-6)
    # The default is the CIZSL code's form, exponent (1 - a) / (1 - b) (train_CIZSL.py, model 2).
    np.testing.assert_allclose(np.asarray(d.divergence_from_uniform('sharma_mittal', logits, orders)),
                               (s ** (0.5 / (1 - beta)) - 1) / (beta - 1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(d.divergence_from_uniform('tsallis', logits, orders)), (s - 1) / -0.5,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(d.divergence_from_uniform('renyi', logits, orders)), np.log(s) / -0.5,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(d.divergence_from_uniform('bhattacharyya', logits, None)), (s - 1) / -0.5,
                               rtol=1e-5, atol=1e-6)


def test_learned_orders_stay_in_the_published_range():
    orders = np.asarray(d.order_from_logit(jnp.array([-50.0, 0.0, 50.0])))
    np.testing.assert_allclose(orders, [0.2, 0.5, 0.8], atol=1e-6)


def test_minmax_normalized_mean_by_hand():
    assert float(d.minmax_normalized_mean(jnp.array([1.0, 3.0, 2.0, 5.0]))) == pytest.approx((0 + 0.5 + 0.25 + 1) / 4)


def test_the_two_sharma_mittal_forms_differ_except_at_equal_orders():
    """The code's exponent (1-a)/(1-b) and Eq. 6's (1-b)/(1-a): equal at a = b, different values and
    opposite d/d(alpha) at a = 0.5, b = 0.6; at b = 0.9999 (the code's "Renyi") the code's form is ~1e4
    for any posterior, Eq. 6's is Renyi's."""
    p = jnp.array([[0.7, 0.2, 0.05, 0.05]])
    u = jnp.full_like(p, 0.25)
    for a in (0.3, 0.5):
        np.testing.assert_allclose(np.asarray(d.sharma_mittal_cizsl_code(p, u, a, a)),
                                   np.asarray(d.sharma_mittal(p, u, a, a)), rtol=1e-6)
    code, eq6 = d.sharma_mittal_cizsl_code(p, u, 0.5, 0.6), d.sharma_mittal(p, u, 0.5, 0.6)
    assert abs(float(code[0]) - float(eq6[0])) > 1e-3
    grad_code = jax.grad(lambda a: d.sharma_mittal_cizsl_code(p, u, a, 0.6)[0])(0.5)
    grad_eq6 = jax.grad(lambda a: d.sharma_mittal(p, u, a, 0.6)[0])(0.5)
    assert float(grad_code) * float(grad_eq6) < 0
    near_renyi = np.asarray(d.sharma_mittal_cizsl_code(jnp.concatenate([p, u]), jnp.concatenate([u, u]), 0.5, 0.9999))
    np.testing.assert_allclose(near_renyi[0], 1e4, rtol=1e-3)
    np.testing.assert_allclose(np.asarray(d.sharma_mittal(p, u, 0.5, 0.9999)), np.asarray(d.renyi(p, u, 0.5)),
                               rtol=1e-3)

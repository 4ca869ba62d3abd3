"""Each GAZSL loss term against a hand computation; the gradient penalty against autodiff and torch."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from zsl_jax import losses


def test_wasserstein_critic_loss_by_hand():
    assert float(losses.wasserstein_critic_loss(jnp.array([1.0, 2.0]), jnp.array([3.0, 5.0]))) == pytest.approx(2.5)


def test_classification_loss_by_hand():
    logits = jnp.array([[0.0, np.log(3.0)], [0.0, 0.0]])
    # -log(3/4) for the first row (p = 3/4), -log(1/2) for the second.
    expected = (np.log(4 / 3) + np.log(2)) / 2
    assert float(losses.classification_loss(logits, jnp.array([1, 0]))) == pytest.approx(expected, rel=1e-6)


def test_visual_pivot_loss_by_hand():
    fake = jnp.array([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]])
    labels = jnp.array([0, 0, 2])
    centroids = jnp.array([[2.0, 3.0], [9.0, 9.0], [0.0, -2.0]])
    # class 0: mean (2, 0), distance 3; class 1 absent: 0; class 2: mean (0, 2), distance 4; divided by 3 classes.
    assert float(losses.visual_pivot_loss(fake, labels, centroids)) == pytest.approx(7.0 / 3.0)


def test_visual_pivot_loss_gradient_is_finite_with_absent_classes():
    grad = jax.grad(losses.visual_pivot_loss)(jnp.ones((2, 3)), jnp.array([0, 0]), jnp.zeros((4, 3)))
    assert np.all(np.isfinite(grad))
    # d/dx ||mean - c|| / C = (mean - c) / ||mean - c|| / (n_c C): each of the 2 rows gets 1/sqrt(3) / 8.
    np.testing.assert_allclose(grad, np.full((2, 3), 1 / np.sqrt(3) / 8), rtol=1e-6)


def test_weight_regularisers_by_hand():
    kernel = jnp.array([[3.0, 4.0], [0.0, 0.0], [1.0, 0.0]])
    assert float(losses.weight_l2([kernel, jnp.array([[2.0]])])) == pytest.approx(9 + 16 + 1 + 4)
    # L2,1 over input (text) dimensions: rows of the flax kernel (in, out): 5 + 0 + 1.
    assert float(losses.group_l21(kernel)) == pytest.approx(6.0)


def test_gradient_penalty_of_a_linear_critic_is_closed_form():
    w = jnp.array([0.6, 0.8, 2.0])
    rng = np.random.default_rng(0)
    real, fake = jnp.asarray(rng.normal(size=(4, 3))), jnp.asarray(rng.normal(size=(4, 3)))
    gp = losses.gradient_penalty(lambda x: x @ w + 1.0, real, fake, jnp.asarray(rng.uniform(size=(4, 1))))
    assert float(gp) == pytest.approx((np.linalg.norm(w) - 1.0) ** 2, rel=1e-6)


class _Critic(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(1, name='out')(nn.relu(nn.Dense(16, name='hidden')(x)))[:, 0]


def _setup():
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(6, 5)).astype(np.float32), rng.normal(size=(6, 5)).astype(np.float32)
    mix = rng.uniform(size=(6, 1)).astype(np.float32)
    critic = _Critic()
    params = critic.init(jax.random.key(0), jnp.zeros((1, 5)))
    return critic, params, real, fake, mix


def test_gradient_penalty_matches_per_sample_autodiff_of_the_definition():
    critic, params, real, fake, mix = _setup()

    def definition(p):
        x_hat = mix * real + (1 - mix) * fake
        per_sample = jax.vmap(jax.grad(lambda x: critic.apply(p, x[None])[0]))(x_hat)
        return jnp.mean((jnp.linalg.norm(per_sample, axis=1) - 1.0) ** 2)

    def ours(p):
        return losses.gradient_penalty(lambda x: critic.apply(p, x), real, fake, mix)

    np.testing.assert_allclose(ours(params), definition(params), rtol=1e-6)
    for a, b in zip(jax.tree.leaves(jax.grad(ours)(params)), jax.tree.leaves(jax.grad(definition)(params)),
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_gradient_penalty_and_its_parameter_gradient_match_torch_autograd():
    torch = pytest.importorskip('torch')
    critic, params, real, fake, mix = _setup()
    p = params['params']
    l0 = torch.nn.Linear(5, 16)
    l1 = torch.nn.Linear(16, 1)
    with torch.no_grad():
        for layer, name in ((l0, 'hidden'), (l1, 'out')):
            layer.weight.copy_(torch.from_numpy(np.asarray(p[name]['kernel']).T.copy()))
            layer.bias.copy_(torch.from_numpy(np.array(p[name]['bias'])))
    x_hat = torch.from_numpy(mix * real + (1 - mix) * fake).requires_grad_(True)
    out = l1(torch.relu(l0(x_hat)))
    grads = torch.autograd.grad(out, x_hat, torch.ones_like(out), create_graph=True)[0]
    gp_torch = ((grads.norm(2, dim=1) - 1) ** 2).mean()
    gp_torch.backward()

    def ours(q):
        return losses.gradient_penalty(lambda x: critic.apply(q, x), real, fake, mix)

    gp, g = jax.value_and_grad(ours)(params)
    assert float(gp) == pytest.approx(gp_torch.item(), rel=1e-5)
    np.testing.assert_allclose(g['params']['hidden']['kernel'], l0.weight.grad.numpy().T, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(g['params']['out']['kernel'], l1.weight.grad.numpy().T, rtol=1e-4, atol=1e-6)

"""gen_runtime.group_norm.GroupNorm is flax.linen.GroupNorm reordered: the same parameters, outputs and gradients
(to float32 rounding), in both variance modes, for images and sequences, in float32 and bfloat16."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gen_runtime.group_norm import GroupNorm


def _pair(groups: int, eps: float, fast: bool, dtype=None):
    return (nn.GroupNorm(num_groups=groups, epsilon=eps, use_fast_variance=fast, dtype=dtype),
            GroupNorm(num_groups=groups, epsilon=eps, use_fast_variance=fast, dtype=dtype))


@pytest.mark.parametrize('shape,groups', [((3, 8, 6, 32), 8), ((2, 5, 5, 64), 32), ((2, 7, 12), 4), ((2, 4, 4, 8), 2)])
@pytest.mark.parametrize('fast', [True, False])
def test_same_function_and_gradients_as_flax(shape, groups, fast):
    x = jax.random.normal(jax.random.key(0), shape) * 3.0 + 1.5
    plain, ours = _pair(groups, 1e-5, fast)
    params = plain.init(jax.random.key(1), x)
    assert jax.tree.map(jnp.shape, ours.init(jax.random.key(1), x)) == jax.tree.map(jnp.shape, params)
    params = jax.tree.map(lambda p: p + jax.random.normal(jax.random.key(2), p.shape), params)
    np.testing.assert_allclose(ours.apply(params, x), plain.apply(params, x), atol=2e-5, rtol=2e-5)

    weights = jax.random.normal(jax.random.key(3), shape)
    grads = [jax.grad(lambda p, v, m=m: jnp.sum(nn.silu(m.apply(p, v)) * weights), argnums=(0, 1))(params, x)
             for m in (plain, ours)]
    for a, b in zip(jax.tree.leaves(grads[0]), jax.tree.leaves(grads[1]), strict=True):
        np.testing.assert_allclose(b, a, atol=1e-4 * float(jnp.max(jnp.abs(a))), rtol=1e-4)


def test_bfloat16_output_with_float32_statistics():
    x = (jax.random.normal(jax.random.key(0), (2, 4, 4, 16)) * 2).astype(jnp.bfloat16)
    plain, ours = _pair(4, 1e-6, True, jnp.bfloat16)
    params = plain.init(jax.random.key(1), x)
    y = ours.apply(params, x)
    assert y.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.float32(y), np.float32(plain.apply(params, x)), atol=3e-2)


def test_a_large_mean_keeps_the_exact_variance_in_two_pass_mode():
    x = jax.random.normal(jax.random.key(0), (2, 8, 8, 8)) + 1e3
    plain, ours = _pair(2, 1e-6, False)
    params = plain.init(jax.random.key(1), x)
    y = ours.apply(params, x)
    np.testing.assert_allclose(y, plain.apply(params, x), atol=5e-4)
    assert abs(float(jnp.std(y)) - 1.0) < 1e-2


def test_channels_that_do_not_split_into_groups_are_refused():
    with pytest.raises(ValueError, match='12 channels do not split into 8 groups'):
        GroupNorm(num_groups=8).init(jax.random.key(0), jnp.ones((1, 2, 2, 12)))

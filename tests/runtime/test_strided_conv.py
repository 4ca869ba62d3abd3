"""gen_runtime.strided_conv: the same convolutions as lax's, outputs and derivatives in reverse and forward mode,
with the phase-wise input tangent at stride 2 (odd and even sides, every padding the networks use, float32 and
bfloat16)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from gen_runtime.strided_conv import DIMENSIONS, conv_general_dilated


@pytest.mark.parametrize('side, padding', [(26, 'VALID'), (5, 'VALID'), (12, 'VALID'), (8, 'SAME'), (7, 'SAME'),
                                           (8, ((0, 1), (0, 1))), (9, ((1, 1), (1, 1))), (6, ((1, 2), (0, 1)))])
def test_stride_two_equals_lax_in_value_gradients_and_tangents(side, padding):
    rng = np.random.default_rng(side)
    x = jnp.asarray(rng.standard_normal((2, side, side, 5)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((3, 3, 5, 7)) / 5, jnp.float32)
    dx, dw = (jnp.asarray(rng.standard_normal(v.shape), jnp.float32) for v in (x, w))

    def run(conv):
        fn = lambda a, k: conv(a, k, (2, 2), padding, dimension_numbers=DIMENSIONS)  # noqa: E731
        out, vjp = jax.vjp(fn, x, w)
        g = jnp.asarray(np.random.default_rng(0).standard_normal(out.shape), jnp.float32)
        return (out, *vjp(g), jax.jvp(fn, (x, w), (dx, dw))[1])

    for ours, theirs in zip(run(conv_general_dilated), run(lax.conv_general_dilated), strict=True):
        assert ours.shape == theirs.shape
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
    jaxpr = str(jax.make_jaxpr(jax.grad(lambda a: jnp.sum(conv_general_dilated(
        a, w, (2, 2), padding, dimension_numbers=DIMENSIONS))))(x))
    assert 'lhs_dilation=(2, 2)' not in jaxpr  # the input gradient is no input-dilated convolution


def test_bfloat16_and_other_convolutions_pass_through():
    x = jnp.ones((1, 9, 9, 4), jnp.bfloat16)
    w = jnp.full((3, 3, 4, 6), 0.5, jnp.bfloat16)

    def input_gradient(conv):
        return jax.grad(lambda a: jnp.sum(conv(a, w, (2, 2), 'SAME', dimension_numbers=DIMENSIONS)
                                          .astype(jnp.float32)))(x)

    ours = input_gradient(conv_general_dilated)
    assert ours.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(ours, np.float32), np.asarray(input_gradient(lax.conv_general_dilated),
                                                                        np.float32), rtol=1e-2)
    for stride, kernel in (((1, 1), (3, 3, 4, 6)), ((2, 2), (1, 1, 4, 6))):
        jaxpr = str(jax.make_jaxpr(lambda a, k, s=stride: conv_general_dilated(
            a, k, s, 'SAME', dimension_numbers=DIMENSIONS))(x, jnp.ones(kernel, jnp.bfloat16)))
        assert 'custom_jvp' not in jaxpr


def test_flax_conv_keeps_its_parameters():
    module = nn.Conv(8, (3, 3), strides=2, padding=((0, 1), (0, 1)), conv_general_dilated=conv_general_dilated)
    x = jnp.ones((1, 8, 8, 3))
    params = module.init(jax.random.key(0), x)
    assert jax.tree.map(jnp.shape, params) == {'params': {'kernel': (3, 3, 3, 8), 'bias': (8,)}}
    plain = nn.Conv(8, (3, 3), strides=2, padding=((0, 1), (0, 1)))
    np.testing.assert_allclose(module.apply(params, x), plain.apply(params, x), rtol=1e-6)

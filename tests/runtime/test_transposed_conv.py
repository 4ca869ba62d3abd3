"""gen_runtime.transposed_conv: the stride-2 3x3 transposed convolution, phase by phase, equals lax's (an
input-dilated convolution), forward and through jax's derivatives in both modes."""

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from gen_runtime.transposed_conv import DIMENSIONS, transposed_conv3x3_stride2


def _lax_transposed(x: jax.Array, w: jax.Array) -> jax.Array:
    """y[2i + k] += x[i] w[k] as lax's input-dilated convolution (flipped kernel), padded to side 2n + 2."""
    y = lax.conv_general_dilated(x, w[::-1, ::-1], (1, 1), ((2, 2), (2, 2)), lhs_dilation=(2, 2),
                                 dimension_numbers=DIMENSIONS)
    return jnp.pad(y, ((0, 0), (0, 1), (0, 1), (0, 0)))


def test_equals_the_input_dilated_convolution_with_its_derivatives():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((2, 5, 6, 4)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((3, 3, 4, 3)) / 6, jnp.float32)
    ours, theirs = transposed_conv3x3_stride2(x, w), _lax_transposed(x, w)
    assert ours.shape == (2, 12, 14, 3)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    assert not np.any(ours[:, -1]) and not np.any(ours[:, :, -1])
    g = jnp.asarray(rng.standard_normal(ours.shape), jnp.float32)
    for a, b in zip(jax.vjp(transposed_conv3x3_stride2, x, w)[1](g), jax.vjp(_lax_transposed, x, w)[1](g),
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    tangent = jax.jvp(transposed_conv3x3_stride2, (x, w), (x, w))[1]  # forward mode (the exact trace's linearize)
    np.testing.assert_allclose(tangent, jax.jvp(_lax_transposed, (x, w), (x, w))[1], rtol=1e-5, atol=1e-5)


def test_bfloat16_stays_bfloat16():
    x, w = jnp.ones((1, 3, 3, 2), jnp.bfloat16), jnp.ones((3, 3, 2, 5), jnp.bfloat16)
    y = transposed_conv3x3_stride2(x, w)
    assert y.dtype == jnp.bfloat16 and y.shape == (1, 8, 8, 5)
    np.testing.assert_allclose(np.asarray(y, np.float32), np.asarray(_lax_transposed(x, w), np.float32))

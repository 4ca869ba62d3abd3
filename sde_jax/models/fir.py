"""FIR resampling of StyleGAN2 (Karras et al. 2020) used by NCSN++: upfirdn2d and fused conv variants.

`upfirdn2d` upsamples by zero insertion, pads, filters with a 2-D FIR kernel (per channel) and
downsamples by striding. Resampling filters are normalised so a constant image stays constant.
All functions work on NHWC arrays.
"""

import jax
import jax.numpy as jnp
import numpy as np


def fir_kernel(taps: tuple[int, ...]) -> np.ndarray:
    """The separable 2-D kernel outer(taps, taps) normalised to sum 1."""
    k = np.asarray(taps, np.float32)
    k = np.outer(k, k)
    return k / k.sum()


def upfirdn2d(x: jax.Array, kernel: np.ndarray, up: int = 1, down: int = 1,
              pad: tuple[int, int] = (0, 0)) -> jax.Array:
    """Zero-insertion upsampling by `up`, padding (before, after), FIR filtering, subsampling by `down`.

    Output side: (side * up + pad[0] + pad[1] - kernel_side) // down + 1.
    """
    channels = x.shape[-1]
    flipped = np.asarray(kernel[::-1, ::-1], np.float32)
    w = jnp.tile(jnp.asarray(flipped)[:, :, None, None], (1, 1, 1, channels))
    padding = ((pad[0], pad[1] + up - 1),) * 2  # up - 1 zeros follow the last sample too
    return jax.lax.conv_general_dilated(x, w.astype(x.dtype), window_strides=(down, down), padding=padding,
                                        lhs_dilation=(up, up), dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
                                        feature_group_count=channels)


def upsample_2d(x: jax.Array, taps: tuple[int, ...], factor: int = 2) -> jax.Array:
    """FIR upsampling by `factor` (side x factor)."""
    k = fir_kernel(taps) * factor**2
    p = k.shape[0] - factor
    return upfirdn2d(x, k, up=factor, pad=((p + 1) // 2 + factor - 1, p // 2))


def downsample_2d(x: jax.Array, taps: tuple[int, ...], factor: int = 2) -> jax.Array:
    """FIR downsampling by `factor` (side / factor)."""
    k = fir_kernel(taps)
    p = k.shape[0] - factor
    return upfirdn2d(x, k, down=factor, pad=((p + 1) // 2, p // 2))


def upsample_conv_2d(x: jax.Array, w: jax.Array, taps: tuple[int, ...], factor: int = 2) -> jax.Array:
    """Transposed convolution with stride `factor` and HWIO kernel w, then FIR filtering (fused upsampling)."""
    size = w.shape[0]
    y = jax.lax.conv_general_dilated(x, w, window_strides=(1, 1), padding=((size - 1, size - 1),) * 2,
                                     lhs_dilation=(factor, factor), dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    k = fir_kernel(taps) * factor**2
    p = (k.shape[0] - factor) - (size - 1)
    return upfirdn2d(y, k, pad=((p + 1) // 2 + factor - 1, p // 2 + 1))


def conv_downsample_2d(x: jax.Array, w: jax.Array, taps: tuple[int, ...], factor: int = 2) -> jax.Array:
    """FIR filtering then a strided convolution with HWIO kernel w (fused downsampling)."""
    k = fir_kernel(taps)
    p = (k.shape[0] - factor) + (w.shape[0] - 1)
    x = upfirdn2d(x, k, pad=((p + 1) // 2, p // 2))
    return jax.lax.conv_general_dilated(x, w, window_strides=(factor, factor), padding='VALID',
                                        dimension_numbers=('NHWC', 'HWIO', 'NHWC'))


def naive_upsample_2d(x: jax.Array, factor: int = 2) -> jax.Array:
    """Nearest-neighbour upsampling."""
    return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)


def naive_downsample_2d(x: jax.Array, factor: int = 2) -> jax.Array:
    """Average pooling over factor x factor blocks."""
    b, h, w, c = x.shape
    return x.reshape(b, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))

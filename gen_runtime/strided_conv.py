"""Stride-2 3x3 convolutions whose input gradient XLA:CPU computes fast: an exact reformulation of the derivative.

A stride-2 convolution's input gradient is a stride-2 transposed convolution of the output gradient, which XLA
computes as an input-dilated convolution (three of every four multiply-adds with inserted zeros), and XLA:CPU runs
some of these shapes very slowly: on this CPU (2 cores, float32) the tutorial U-Net's last downsampling,
32x5x5x128 -> 256 channels, takes 25.6 ms for its gradients, of which the kernel's is 0.5 ms.

`conv_general_dilated` is lax.conv_general_dilated with a custom JVP for 3x3 kernels at stride 2 (NHWC/HWIO, no
dilation, one group): the primal output is XLA's strided convolution; the tangent in the input splits the padded
input into its four phases (even/odd rows x even/odd columns, strided slices) and convolves each at stride 1 with
the kernel taps that fall on it (2x2, 2x1, 1x2 and 1x1: the nine taps, no zeros); the tangent in the kernel is
XLA's strided convolution. Reverse mode transposes that tangent map, so the input gradient becomes four ordinary
convolutions and a scatter back to the phases, and the kernel gradient stays XLA's own; forward mode (the exact
trace's `jax.linearize`) computes the tangent as written. Every other convolution passes through unchanged. Flax's
nn.Conv takes it as its `conv_general_dilated`, so a network's parameters keep their names and values
(tests/runtime/test_strided_conv.py: outputs and derivatives equal lax's in both modes).
"""

import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

DIMENSIONS = ('NHWC', 'HWIO', 'NHWC')
# Kernel taps that fall on the even and the odd phase of the padded input: y[i] = sum_k x[2i + k] w[k], so the even
# phase x[2j] meets taps 0 (j = i) and 2 (j = i + 1), the odd phase x[2j + 1] tap 1 (j = i).
_TAPS = {0: (0, 2), 1: (1,)}
Padding = tuple[tuple[int, int], tuple[int, int]]


def _phase_conv(x: jax.Array, w: jax.Array, padding: Padding) -> jax.Array:
    """The stride-2 convolution of x with w as four stride-1 convolutions over the phases of the padded x."""
    (top, bottom), (left, right) = padding
    padded = jnp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    rows, cols = (padded.shape[1] - 3) // 2 + 1, (padded.shape[2] - 3) // 2 + 1
    out = None
    for row_phase, row_taps in _TAPS.items():
        for col_phase, col_taps in _TAPS.items():
            kernel = jnp.stack([jnp.stack([w[r, c] for c in col_taps]) for r in row_taps])
            phase = padded[:, row_phase::2, col_phase::2][:, :rows + len(row_taps) - 1, :cols + len(col_taps) - 1]
            term = lax.conv_general_dilated(phase, kernel, (1, 1), 'VALID', dimension_numbers=DIMENSIONS)
            out = term if out is None else out + term
    return out


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _conv3x3_stride2(x: jax.Array, w: jax.Array, padding: Padding) -> jax.Array:
    return lax.conv_general_dilated(x, w, (2, 2), padding, dimension_numbers=DIMENSIONS)


@_conv3x3_stride2.defjvp
def _conv3x3_stride2_jvp(padding: Padding, primals: tuple, tangents: tuple) -> tuple[jax.Array, jax.Array]:
    (x, w), (dx, dw) = primals, tangents
    out = _conv3x3_stride2(x, w, padding)
    return out, _phase_conv(dx, w, padding) + lax.conv_general_dilated(x, dw, (2, 2), padding,
                                                                      dimension_numbers=DIMENSIONS)


def conv_general_dilated(lhs: jax.Array, rhs: jax.Array, window_strides: Sequence[int], padding: str | Sequence,
                         lhs_dilation: Sequence[int] | None = None, rhs_dilation: Sequence[int] | None = None,
                         dimension_numbers: Any = None, feature_group_count: int = 1, batch_group_count: int = 1,
                         precision: Any = None, preferred_element_type: Any = None) -> jax.Array:
    """lax.conv_general_dilated; a 3x3, stride-2 NHWC/HWIO convolution without dilation or groups gets the custom
    JVP of the module docstring."""
    if (lhs.ndim != 4 or tuple(window_strides) != (2, 2) or rhs.shape[:2] != (3, 3) or feature_group_count != 1
            or batch_group_count != 1 or precision is not None or preferred_element_type is not None
            or any(d != 1 for d in (*(lhs_dilation or ()), *(rhs_dilation or ())))
            or lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
            != lax.conv_dimension_numbers(lhs.shape, rhs.shape, DIMENSIONS)):
        return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                                        dimension_numbers, feature_group_count, batch_group_count, precision=precision,
                                        preferred_element_type=preferred_element_type)
    pads = lax.padtype_to_pads(lhs.shape[1:3], (3, 3), (2, 2), padding) if isinstance(padding, str) else padding
    return _conv3x3_stride2(lhs, rhs, tuple((int(lo), int(hi)) for lo, hi in pads))

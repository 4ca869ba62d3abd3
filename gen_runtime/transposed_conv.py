"""The stride-2 3x3 transposed convolution as ordinary convolutions: an exact reformulation XLA:CPU runs fast.

XLA computes a strided transposed convolution as an input-dilated convolution, three of every four multiply-adds
with inserted zeros, and XLA:CPU differentiates it 3-5x slower than an ordinary one (benchmarked at 12x12x128 ->
26x26x32, batch 64). `transposed_conv3x3_stride2` computes y[2i + k] += x[i] w[k] (PyTorch's ConvTranspose2d,
stride 2, no padding) as four ordinary convolutions, one per output phase (even/odd row x even/odd column) with
only the taps that phase uses (2x2, 2x1, 1x2 and 1x1: nine in all, no multiply-add with a zero), interleaved
afterwards. One 2x2 convolution with all four phases as its outputs and zeros for the taps a phase does not use
(this function's first form) took 35-50% longer (6x6 to 32x32 inputs, 64-256 channels, this CPU).
"""

import jax
import jax.numpy as jnp
from jax import lax

DIMENSIONS = ('NHWC', 'HWIO', 'NHWC')
# For the even / odd outputs of a stride-2 transposed convolution: (position in a 2-tap window over
# [x[m - 1], x[m]], kernel tap) pairs; y[2m] = x[m - 1] w[2] + x[m] w[0], y[2m + 1] = x[m] w[1].
_PHASE_TAPS = {0: ((0, 2), (1, 0)), 1: ((1, 1),)}


def transposed_conv3x3_stride2(x: jax.Array, w: jax.Array) -> jax.Array:
    """y[2i + k] += x[i] w[k] for x (b, n, m, in) and w (3, 3, in, out): the full output, (b, 2n + 2, 2m + 2, out),
    whose last row and column are zero."""
    padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    rows = []
    for row in (0, 1):
        phases = []
        for col in (0, 1):
            row_taps, col_taps = _PHASE_TAPS[row], _PHASE_TAPS[col]
            kernel = jnp.stack([jnp.stack([w[kr, kc] for _, kc in col_taps]) for _, kr in row_taps])
            window = padded[:, row_taps[0][0]:row_taps[0][0] + x.shape[1] + 1 + len(row_taps) - 1,
                            col_taps[0][0]:col_taps[0][0] + x.shape[2] + 1 + len(col_taps) - 1]
            phases.append(lax.conv_general_dilated(window, kernel, (1, 1), 'VALID', dimension_numbers=DIMENSIONS))
        rows.append(jnp.stack(phases, axis=3))  # (b, n + 1, m + 1, 2 columns, out)
    y = jnp.stack(rows, axis=2)  # (b, n + 1, 2 rows, m + 1, 2 columns, out)
    return y.reshape(x.shape[0], 2 * x.shape[1] + 2, 2 * x.shape[2] + 2, w.shape[-1])

"""The 3x3 convolution alone, at the widths of the library's convolutional networks: GFLOP/s of XLA:CPU's two
convolution paths (YNNPACK, XLA's default in jaxlib 0.10, and Eigen, which gen_runtime.xla_cpu selects) in
float32 and bfloat16, beside PyTorch's (oneDNN, channels-last) in float32 and bfloat16, forward and backward. The
YNNPACK path is XLA's default compile, the Eigen path the library's (tests/runtime/test_benchmarks.py compares the
optimised HLO of each with its own).

    python -m benchmarks.conv_kernels [--repeats 10] [--tiny] [--out DIR]

Shapes (batch x height x width x channels, 3x3 kernel, stride 1, 'SAME'): the tutorial U-Net's levels (16x28x28x32,
16x14x14x64: the sde_sampling row's batch) and the latent UNet's (4x64x64x128, 4x32x32x256: the DDIM row's).
`forward` is the convolution; `backward` the gradients of sum(conv * g) with respect to input and kernel (what a
training step computes for each convolution, twice the forward's multiply-adds). XLA's path is chosen per compile
(`compiler_options`, so both run in one process); PyTorch's bfloat16 is the tensors in bfloat16 (oneDNN picks
AMX where the CPU has it). Every XLA float32 output is checked against PyTorch's float32 before timing. GFLOP/s is
the convolution's multiply-adds x 2 over the median time; the table names the matmul peak of the same machine.
Writes DIR/conv_kernels.json and DIR/conv_kernels.md (default benchmarks/results); docs/speed.md quotes it.
"""

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import torch

from benchmarks.harness import (
    RESULTS_DIR,
    jax_sync,
    machine,
    machine_line,
    matmul_peak,
    median_wall,
    same_network,
    save_table,
)
from gen_runtime.xla_cpu import YNN_OPTION

SHAPES = ((16, 28, 32), (16, 14, 64), (4, 64, 128), (4, 32, 256))
TINY_SHAPES = ((2, 8, 32),)  # YNNPACK takes convolutions of 32 channels or more
# XLA:CPU's convolution paths as per-compile options: jaxlib 0.10.2's default YNNPACK fusion types (XLA's default
# compile, same optimised HLO), and the same without individual convolutions (the library's, gen_runtime.xla_cpu).
_YNN_TYPES = 'LIBRARY_FUSION_TYPE_DOT,LIBRARY_FUSION_TYPE_REDUCE,LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT'
XLA_PATHS = {'YNNPACK': {YNN_OPTION: f'{_YNN_TYPES},LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION'},
             'Eigen': {YNN_OPTION: _YNN_TYPES}}
DIMENSIONS = ('NHWC', 'HWIO', 'NHWC')


def warm_median(fn: Callable[[], Any], sync: Callable[[Any], Any], repeats: int) -> float:
    """One warm-up call (compiles ours), then harness.median_wall."""
    sync(fn())
    return median_wall(fn, sync, repeats)


def xla_conv(path: str, dtype: Any, backward: bool, x: np.ndarray, w: np.ndarray, g: np.ndarray) -> Callable:
    """The convolution (or its two gradients) compiled on XLA:CPU's `path`, as a thunk over fixed inputs. Raises
    if the compiled program does not take that path (XLA leaves small convolutions to Eigen on either)."""
    def conv(a: jax.Array, k: jax.Array) -> jax.Array:
        return jax.lax.conv_general_dilated(a, k, (1, 1), 'SAME', dimension_numbers=DIMENSIONS)

    def grads(a: jax.Array, k: jax.Array, c: jax.Array) -> tuple[jax.Array, jax.Array]:
        return jax.grad(lambda a_, k_: jnp.sum(conv(a_, k_).astype(jnp.float32) * c), argnums=(0, 1))(a, k)

    args = [jnp.asarray(v, dtype) for v in (x, w)] + ([jnp.asarray(g)] if backward else [])
    compiled = jax.jit(grads if backward else conv).lower(*args).compile(compiler_options=XLA_PATHS[path])
    if ('__ynn' in compiled.as_text()) != (path == 'YNNPACK'):
        raise AssertionError(f'the {path} compile of {x.shape} ({jnp.dtype(dtype).name}) took the other path')
    return lambda: compiled(*args)


def torch_conv(dtype: torch.dtype, backward: bool, x: np.ndarray, w: np.ndarray, g: np.ndarray) -> Callable:
    """PyTorch's convolution (channels-last) or its two gradients, as a thunk over fixed inputs."""
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).to(dtype).contiguous(memory_format=torch.channels_last)
    wt = torch.from_numpy(w).permute(3, 2, 0, 1).to(dtype).contiguous()
    gt = torch.from_numpy(g).permute(0, 3, 1, 2).to(dtype).contiguous(memory_format=torch.channels_last)
    if not backward:
        def forward() -> torch.Tensor:
            with torch.no_grad():
                return torch.nn.functional.conv2d(xt, wt, padding=1)
        return forward
    xt.requires_grad_(True)
    wt.requires_grad_(True)

    def gradients() -> tuple[torch.Tensor, torch.Tensor]:
        out = torch.nn.functional.conv2d(xt, wt, padding=1)
        return torch.autograd.grad(out, (xt, wt), gt)
    return gradients


def as_nhwc(result: Any) -> np.ndarray:
    first = result[0] if isinstance(result, tuple) else result
    array = first.detach().float().numpy() if isinstance(first, torch.Tensor) else np.asarray(first, np.float32)
    return array.transpose(0, 2, 3, 1) if isinstance(first, torch.Tensor) else array


def measure(shape: tuple[int, int, int], backward: bool, repeats: int) -> dict:
    batch, side, channels = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, side, side, channels)).astype(np.float32)
    w = (rng.standard_normal((3, 3, channels, channels)) / np.sqrt(9 * channels)).astype(np.float32)
    g = rng.standard_normal((batch, side, side, channels)).astype(np.float32)
    flops = 2.0 * batch * side * side * channels * channels * 9 * (2 if backward else 1)
    reference = as_nhwc(torch_conv(torch.float32, backward, x, w, g)())
    row = {'shape': f'{batch}x{side}x{side}x{channels}', 'pass': 'backward' if backward else 'forward',
           'flops': flops, 'gflops': {}, 'same_function': {}}
    for path in XLA_PATHS:
        for dtype in (jnp.float32, jnp.bfloat16):
            fn = xla_conv(path, dtype, backward, x, w, g)
            if dtype == jnp.float32:
                row['same_function'][path] = same_network(as_nhwc(fn()), reference, what=f'{path} vs PyTorch')
            row['gflops'][f'XLA {path} {jnp.dtype(dtype).name}'] = flops / warm_median(fn, jax_sync, repeats) / 1e9
    for dtype in (torch.float32, torch.bfloat16):
        fn = torch_conv(dtype, backward, x, w, g)
        row['gflops'][f'PyTorch {str(dtype).split(".")[1]}'] = flops / warm_median(fn, lambda r: r, repeats) / 1e9
    return row


def markdown(rows: list[dict], peak: dict, about: dict, command: str) -> str:
    columns = list(rows[0]['gflops'])
    lines = ['| convolution | pass | ' + ' | '.join(columns) + ' |', '|---|---|' + '---|' * len(columns)]
    for row in rows:
        lines.append(f"| {row['shape']}, 3x3 | {row['pass']} | "
                     + ' | '.join(f"{row['gflops'][c]:.0f}" for c in columns) + ' |')
    lines += ['', 'GFLOP/s (higher is faster). The float32 matmul peak of this machine (1024^2): '
              f"XLA {peak['xla_gflops']:.0f}, torch {peak['torch_gflops']:.0f} GFLOP/s.", '',
              machine_line(about, time.strftime('%Y-%m-%d'), command)]
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=10)
    parser.add_argument('--tiny', action='store_true', help='one small shape, two repeats (CI)')
    parser.add_argument('--out', default=RESULTS_DIR)
    args = parser.parse_args(argv)
    shapes, repeats = (TINY_SHAPES, 2) if args.tiny else (SHAPES, args.repeats)
    rows = [measure(shape, backward, repeats) for backward in (False, True) for shape in shapes]
    for row in rows:
        print(row['shape'], row['pass'], {k: round(v) for k, v in row['gflops'].items()}, flush=True)
    command = ' '.join(['python -m benchmarks.conv_kernels', *(argv if argv is not None else sys.argv[1:])])
    peak, about = matmul_peak(), machine()
    save_table(args.out, 'conv_kernels', {'command': command, 'machine': about, 'matmul_peak': peak, 'results': rows},
               markdown(rows, peak, about, command))
    return rows


if __name__ == '__main__':
    main(sys.argv[1:])

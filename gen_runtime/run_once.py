"""Computations that run once (initialisers), compiled for their compile time rather than their run time.

A network's initialiser draws every parameter from its own threefry stream; on the CPU, XLA compiles each
stream separately and LLVM's optimisation of that code is most of the compile (a tiny NCSN++: 19 s at XLA's
default level, 4 s at level 0; the parameters agree to float32 rounding, tests/runtime/test_run_once.py). A
function that runs once gains nothing from that optimisation, so on the CPU it is compiled at level 0, with
XLA:CPU's older (elemental) fusion emitters, which at level 0 compile faster than its MLIR ones (4.4 s -> 3.8 s).
Elsewhere (GPU, TPU) it is compiled as any jit.
"""

from collections.abc import Callable
from typing import Any

import jax

# XLA debug options for a one-shot compile on the CPU: no LLVM optimisation of the generated code, the elemental
# fusion emitters.
CPU_ONCE_OPTIONS = {'xla_backend_optimization_level': 0, 'xla_cpu_use_fusion_emitters': False}


def compile_once(fn: Callable[..., Any], *args: Any, out_shardings: Any = None) -> jax.stages.Compiled:
    """`jax.jit(fn, out_shardings=out_shardings)` (jit's default placement where None) compiled for `args`, with
    CPU_ONCE_OPTIONS when the backend is the CPU: for a computation run once or a few times."""
    lowered = jax.jit(fn, **({} if out_shardings is None else {'out_shardings': out_shardings})).lower(*args)
    options = CPU_ONCE_OPTIONS if jax.default_backend() == 'cpu' else None
    return lowered.compile(compiler_options=options)


def run_once(fn: Callable[..., Any], *args: Any, out_shardings: Any = None) -> Any:
    """`jax.jit(fn, out_shardings=out_shardings)(*args)`, compiled by `compile_once`."""
    return compile_once(fn, *args, out_shardings=out_shardings)(*args)

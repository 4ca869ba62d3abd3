"""Computations that run once (initialisers), compiled for their compile time rather than their run time.

A network's initialiser draws every parameter from its own threefry stream; on the CPU, XLA compiles each
stream separately and LLVM's optimisation of that code is most of the compile (a tiny NCSN++: 19 s at XLA's
default level, 4 s at level 0; the parameters agree to float32 rounding, tests/runtime/test_run_once.py). A
function that runs once gains nothing from that optimisation, so on the CPU it is compiled at level 0.
Elsewhere (GPU, TPU) it is compiled as any jit.
"""

from collections.abc import Callable
from typing import Any

import jax

# XLA debug options for a one-shot compile on the CPU: no LLVM optimisation of the generated code.
CPU_ONCE_OPTIONS = {'xla_backend_optimization_level': 0}


def run_once(fn: Callable[..., Any], *args: Any, out_shardings: Any = None) -> Any:
    """`jax.jit(fn, out_shardings=out_shardings)(*args)` (jit's default placement where None), compiled with
    CPU_ONCE_OPTIONS when the backend is the CPU."""
    lowered = jax.jit(fn, **({} if out_shardings is None else {'out_shardings': out_shardings})).lower(*args)
    options = CPU_ONCE_OPTIONS if jax.default_backend() == 'cpu' else None
    return lowered.compile(compiler_options=options)(*args)

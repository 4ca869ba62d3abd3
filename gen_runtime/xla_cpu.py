"""XLA:CPU runs convolutions with its own (Eigen) kernels rather than YNNPACK's: the one XLA flag the library sets.

jaxlib 0.10 lowers each convolution on the CPU to a YNNPACK fusion by default. On the CPUs this project runs on
(2 cores of an Intel Xeon with AVX-512 and AMX), XLA's Eigen convolution kernels are faster for every network of
the three families that convolves, forward and backward, and the other YNNPACK fusions (dots, reductions) stay
as they are. Measured 2026-12-06 (ms per call, median of 5, `python -m benchmarks.profile_ops`'s cases):

    tutorial U-Net forward, batch 16              8.2 ->   6.8
    tutorial U-Net training step, batch 32        103 ->    85
    latent UNet forward, batch 4, 64x64x3         148 ->   108
    latent UNet training step, batch 8, 64x64    1298 ->   769

The results are the same functions up to float32 rounding (another summation order; every benchmark's
same-network check against PyTorch holds). XLA reads its flags once, when jax starts its first backend, so
`prefer_eigen_convolutions` runs when gen_runtime is imported and adds the flag to XLA_FLAGS unless the user's
XLA_FLAGS already say something of xla_cpu_experimental_ynn_fusion_type (theirs wins), a backend has already
started (a program that ran jax computations before importing the library keeps XLA's default), or jaxlib is
outside the versions known to take it (an unknown flag aborts the process). The option touches only
the CPU backend: on a GPU or TPU nothing changes.
"""

import importlib.metadata
import os
import sys

YNN_OPTION = 'xla_cpu_experimental_ynn_fusion_type'
EIGEN_CONVOLUTIONS_FLAG = f'--{YNN_OPTION}=-individual_convolution'
# jaxlib versions whose XLA is known to take the flag as written (0.10.2, this project's pin; later versions are left
# to XLA's default until measured: an unknown flag or value would abort every process at its first computation).
KNOWN_JAXLIB = ((0, 10), (0, 11))


def prefer_eigen_convolutions() -> bool:
    """Adds EIGEN_CONVOLUTIONS_FLAG to the XLA_FLAGS environment variable where it can take effect (see the
    module docstring); returns whether XLA_FLAGS now carry it."""
    flags = os.environ.get('XLA_FLAGS', '')
    if YNN_OPTION in flags:
        return EIGEN_CONVOLUTIONS_FLAG in flags.split()
    if 'jax' in sys.modules:  # not imported yet: no backend can have started (and importing it costs 0.4 s)
        from jax._src import xla_bridge

        if xla_bridge.backends_are_initialized():
            return False
    try:
        version = tuple(int(part) for part in importlib.metadata.version('jaxlib').split('.')[:2])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return False
    if not KNOWN_JAXLIB[0] <= version < KNOWN_JAXLIB[1]:
        return False
    os.environ['XLA_FLAGS'] = f'{flags} {EIGEN_CONVOLUTIONS_FLAG}'.strip()
    return True

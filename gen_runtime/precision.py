"""Mixed precision: the computation dtype of the networks (`runtime.compute_dtype`).

With 'bfloat16' the networks run their convolutions, dense layers and attention in bfloat16 while
parameters, optimiser state and EMA stay float32 (each Flax layer casts its float32 parameters at use, so
gradients arrive in float32); GroupNorm computes its statistics in float32 (Flax promotes them), the
noise-level features are formed in float32 before their first dense layer, and each network returns
float32, so losses and the SDE / ODE / sampler state are float32.
"""

import jax.numpy as jnp

from gen_runtime.errors import ConfigError

COMPUTE_DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


def compute_dtype(name: str) -> type:
    """The dtype `runtime.compute_dtype` names."""
    if name not in COMPUTE_DTYPES:
        raise ConfigError(f'runtime.compute_dtype={name!r} is not one of {", ".join(COMPUTE_DTYPES)}')
    return COMPUTE_DTYPES[name]

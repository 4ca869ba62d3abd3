"""The sinusoidal embedding of diffusion timesteps, shared by the score networks of every family."""

import math

import jax
import jax.numpy as jnp


def timestep_embedding(t: jax.Array, dim: int, flip_sin_to_cos: bool = True, freq_shift: float = 0.0,
                       max_period: float = 10000.0) -> jax.Array:
    """Sinusoidal embedding of (possibly fractional) timesteps, shape (N, dim).

    Frequencies are max_period^(-i / (dim/2 - freq_shift)), i = 0..dim/2-1 (Transformer positional
    encoding, Vaswani et al. 2017, sec. 3.5). DDPM's original uses [sin, cos] with freq_shift=1;
    latent diffusion's openaimodel uses [cos, sin] with freq_shift=0 (the defaults here).
    """
    half = dim // 2
    exponent = -math.log(max_period) * jnp.arange(half, dtype=jnp.float32) / (half - freq_shift)
    args = jnp.asarray(t, jnp.float32)[:, None] * jnp.exp(exponent)[None, :]
    emb = jnp.concatenate([jnp.sin(args), jnp.cos(args)], axis=-1)
    if flip_sin_to_cos:
        emb = jnp.concatenate([emb[:, half:], emb[:, :half]], axis=-1)
    if dim % 2:
        emb = jnp.pad(emb, ((0, 0), (0, 1)))
    return emb

"""Cascaded diffusion (Ho et al. 2022): a super-resolution stage's low-resolution condition and its augmentation.

A super-resolution stage models p(x | z), z the image at `cascade.low_resolution`; its network sees x_t beside
the bilinearly upsampled z (channel concatenation, sec. 2.2) and an augmentation level s (embedded as a second
timestep). Gaussian conditioning augmentation (sec. 4.1): in training z is replaced by z_s ~ q(z_s | z) of the
stage's own forward process at a level s drawn uniformly from 0..max_level (0: the clean z; s >= 1: timestep
s - 1); at sampling s is a setting. The truncated variant (sec. 4.2) conditions instead on the base model's
reverse chain stopped at level s, which has the same marginal as the noised base sample.
"""

import jax
import jax.numpy as jnp

from ldm_jax.diffusion import q_sample
from ldm_jax.schedule import Schedule


def downsample(x: jax.Array, size: int) -> jax.Array:
    """x (N, H, W, C) averaged over (H / size) x (W / size) blocks: the low-resolution image z."""
    n, h, w, c = x.shape
    if h % size or w % size:
        raise ValueError(f'an image of {h}x{w} does not average down to {size}x{size}: the side must divide it')
    return x.reshape(n, size, h // size, size, w // size, c).mean(axis=(2, 4))


def upsample(z: jax.Array, size: int) -> jax.Array:
    """z (N, h, w, C) resized bilinearly to size x size: what the network sees beside x_t."""
    return jax.image.resize(z, (z.shape[0], size, size, z.shape[-1]), 'bilinear')


def augment(s: Schedule, z: jax.Array, level: jax.Array, noise: jax.Array) -> jax.Array:
    """z_s: z itself at level 0, else a draw from q(z_s | z) at timestep level - 1 (eq. 4 of DDPM), per example."""
    noised = q_sample(s, z, jnp.maximum(level - 1, 0), noise)
    return jnp.where((level > 0).reshape(level.shape + (1,) * (z.ndim - 1)), noised, z)


def training_condition(s: Schedule, x0: jax.Array, low_resolution: int, max_level: int,
                       rng: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(upsampled condition, level) for a batch of high-resolution x0: z = downsample(x0), a level drawn uniformly
    from 0..max_level per example (max_level 0: no augmentation), z_s upsampled to x0's side."""
    level_rng, noise_rng = jax.random.split(rng)
    z = downsample(x0, low_resolution)
    level = jax.random.randint(level_rng, x0.shape[:1], 0, max_level + 1)
    z_s = augment(s, z, level, jax.random.normal(noise_rng, z.shape))
    return upsample(z_s, x0.shape[1]), level

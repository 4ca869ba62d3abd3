"""Controllable generation with the PC sampler (Song et al. 2021, Section 5 and Appendix I).

Inpainting and colorization constrain part of x: after every predictor and corrector step the
observed part is replaced by the observation perturbed to the current time, mean_coef(t) y +
std(t) z (the forward process acts on each coordinate independently, so the observed coordinates
have exactly this marginal). Inpainting observes the pixels where mask = 1; colorization observes
the grey-level coordinate (R + G + B) / sqrt(3) of an orthonormal colour basis, leaving the two
orthogonal chroma coordinates to the sampler.
"""

import jax
import jax.numpy as jnp
import numpy as np

from sde_jax.sampling import Constraint, Step, pc_sample
from sde_jax.sde import SDE, ScoreFn, batch_broadcast

# Orthonormal colour basis (columns): grey (1, 1, 1)/sqrt(3) and two chroma directions.
COLOUR_BASIS = np.stack([np.array([1.0, 1.0, 1.0]) / np.sqrt(3.0), np.array([1.0, -1.0, 0.0]) / np.sqrt(2.0),
                         np.array([1.0, 1.0, -2.0]) / np.sqrt(6.0)], axis=1).astype(np.float32)


def _noised(sde: SDE, y: jax.Array, t: jax.Array, rng: jax.Array) -> jax.Array:
    coef, std = sde.marginal_coefs(t)
    return batch_broadcast(coef, y) * y + batch_broadcast(std, y) * jax.random.normal(rng, y.shape)


def inpainting_constraint(sde: SDE, data: jax.Array, mask: jax.Array) -> Constraint:
    """Keeps x where mask = 0 and sets the observed pixels (mask = 1) to the noised data."""

    def constrain(x: jax.Array, t: jax.Array, rng: jax.Array) -> jax.Array:
        return x * (1.0 - mask) + _noised(sde, data, t, rng) * mask

    return constrain


def to_decoupled(x: jax.Array) -> jax.Array:
    """RGB -> (grey, chroma 1, chroma 2) coordinates in the orthonormal colour basis."""
    return x @ COLOUR_BASIS


def from_decoupled(y: jax.Array) -> jax.Array:
    return y @ COLOUR_BASIS.T


def colorization_constraint(sde: SDE, grey: jax.Array) -> Constraint:
    """Sets the grey coordinate of x to that of the noised observation `grey` (B, H, W, 1 or 3)."""
    observed = to_decoupled(jnp.broadcast_to(grey, grey.shape[:-1] + (3,)))[..., :1]

    def constrain(x: jax.Array, t: jax.Array, rng: jax.Array) -> jax.Array:
        y = to_decoupled(x)
        return from_decoupled(jnp.concatenate([_noised(sde, observed, t, rng), y[..., 1:]], axis=-1))

    return constrain


def constrained_pc_sample(sde: SDE, score_fn: ScoreFn, constraint: Constraint, shape: tuple[int, ...],
                          rng: jax.Array, *, predictor: Step, corrector: Step, num_steps: int, eps: float,
                          denoise_last: bool) -> jax.Array:
    """PC sampling under `constraint`; the observed part of the result equals the clean observation."""
    sample_rng, final_rng = jax.random.split(rng)
    x = pc_sample(sde, score_fn, shape, sample_rng, predictor=predictor, corrector=corrector, num_steps=num_steps,
                  eps=eps, denoise_last=denoise_last, constraint=constraint)
    return constraint(x, jnp.zeros(shape[:1]), final_rng)


def inpainting_mask(name: str, image_shape: tuple[int, int, int]) -> np.ndarray:
    """A (H, W, 1) mask of observed pixels: 'left_half', 'right_half', 'top_half', 'bottom_half' or 'center'
    (observed everywhere except a centred square of half the side)."""
    h, w, _ = image_shape
    mask = np.zeros((h, w, 1), np.float32)
    if name == 'left_half':
        mask[:, : w // 2] = 1
    elif name == 'right_half':
        mask[:, w // 2:] = 1
    elif name == 'top_half':
        mask[: h // 2] = 1
    elif name == 'bottom_half':
        mask[h // 2:] = 1
    elif name == 'center':
        mask[:] = 1
        mask[h // 4: h // 4 + h // 2, w // 4: w // 4 + w // 2] = 0
    else:
        raise ValueError(f"inpaint_mask={name!r} is not one of 'left_half', 'right_half', 'top_half', "
                          "'bottom_half', 'center'")
    return mask

"""Inpainting and colorization with the exact score of Gaussian data with independent coordinates.

Independence makes the truth simple: the unobserved coordinates must keep their own marginal law
whatever is observed, and the observed ones must equal the observation exactly. Moment bounds: 5
standard errors for n samples (tests/sde/analytic.py).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from sde_jax import controllable
from sde_jax.sampling import get_corrector, get_predictor
from sde_jax.sde import VPSDE
from tests.sde.analytic import DiagonalMixture, moment_bounds

N = 4000
SDE = VPSDE(N=300)


def _sample(dist: DiagonalMixture, constraint, shape) -> np.ndarray:
    score = functools.partial(dist.score, SDE)
    run = jax.jit(lambda rng: controllable.constrained_pc_sample(SDE, score, constraint, shape, rng,
                                                    predictor=get_predictor('reverse_diffusion'),
                                                    corrector=get_corrector('langevin', 0.16, 1), num_steps=SDE.N,
                                                    eps=1e-3, denoise_last=True))
    return np.asarray(run(jax.random.key(0)))


def _check(samples: np.ndarray, mean: np.ndarray, std: np.ndarray) -> None:
    marginal = DiagonalMixture(np.ones(1), mean[None], std[None])
    mean_tol, var_tol = moment_bounds(marginal, len(samples))
    np.testing.assert_array_less(np.abs(samples.mean(0) - mean), mean_tol)
    np.testing.assert_array_less(np.abs(samples.var(0) - std**2), var_tol)


def test_inpainting_keeps_observed_pixels_and_samples_the_others():
    shape = (N, 2, 2, 1)
    mean, std = np.array([0.5, -0.5, 0.2, 0.8]), np.array([0.3, 0.6, 0.4, 0.5])
    dist = DiagonalMixture(np.ones(1), mean[None], std[None])
    mask = jnp.asarray(controllable.inpainting_mask('right_half', shape[1:]))
    data = jnp.asarray(dist.sample(np.random.default_rng(0), N).reshape(shape))
    out = _sample(dist, controllable.inpainting_constraint(SDE, data, mask), shape)
    observed = np.asarray(mask).reshape(-1) == 1
    np.testing.assert_allclose(out.reshape(N, -1)[:, observed], np.asarray(data).reshape(N, -1)[:, observed],
                               atol=1e-6)
    _check(out.reshape(N, -1)[:, ~observed], mean[~observed], std[~observed])


def test_colorization_keeps_the_grey_level_and_samples_the_chroma():
    """Channels independent with equal std: the orthonormal (grey, chroma) coordinates are independent too."""
    shape = (N, 1, 1, 3)
    rgb_mean, s = np.array([0.6, 0.1, -0.4]), 0.4
    dist = DiagonalMixture(np.ones(1), rgb_mean[None], np.full((1, 3), s))
    data = jnp.asarray(dist.sample(np.random.default_rng(1), N).reshape(shape))
    out = _sample(dist, controllable.colorization_constraint(SDE, data.mean(axis=-1, keepdims=True)), shape)
    decoupled_out = np.asarray(controllable.to_decoupled(out))
    decoupled_data = np.asarray(controllable.to_decoupled(data))
    np.testing.assert_allclose(decoupled_out[..., 0], decoupled_data[..., 0], atol=1e-5)
    chroma_mean = np.asarray(controllable.to_decoupled(jnp.asarray(rgb_mean, jnp.float32)))[1:]
    _check(decoupled_out.reshape(N, 3)[:, 1:], chroma_mean, np.full(2, s))

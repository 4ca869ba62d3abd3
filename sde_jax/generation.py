"""Drawing samples as `config.sampling` says: PC, the adaptive probability-flow ODE, or a few-step ODE solver
(DDIM, DPM-Solver++, Heun: gen_runtime/few_step.py), jitted, batch sharded over all devices."""

import math
from collections.abc import Callable, Iterator

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from tqdm import tqdm

from gen_runtime import few_step, parallel
from gen_runtime.errors import ConfigError, config_terms
from gen_runtime.pytree import PyTree
from gen_runtime.rng import stream
from sde_jax import controllable
from sde_jax.experiment import Experiment
from sde_jax.ode import ode_sample
from sde_jax.sampling import Step, few_step_sample, get_corrector, get_predictor, pc_sample
from sde_jax.sde import SDE, RectifiedFlow, shift_times


def batch_parallel_jit(fn: Callable[..., jax.Array], replicated_after: int = 1) -> Callable:
    """jit of fn(params, batch, rng, ...) -> per-example output, with params and the `replicated_after` arguments
    after the batch (the rng, and any others) replicated and the batch (and the output) sharded over all
    devices."""
    mesh = parallel.make_mesh()
    sharded, replicated = parallel.batch_sharded(mesh), parallel.replicated(mesh)
    return jax.jit(fn, in_shardings=(replicated, sharded, *[replicated] * replicated_after), out_shardings=sharded)


METHODS = ('pc', 'ode', *few_step.METHODS)
# The spacing each few-step solver's paper uses ('auto').
PAPER_SPACING = {'ddim': 'uniform', 'dpm_solver_pp': 'logsnr', 'heun': 'karras'}


def num_sampling_steps(exp: Experiment) -> int:
    return exp.config.sampling.num_steps or exp.sde.N


def few_step_times(exp: Experiment) -> np.ndarray:
    """The num_steps + 1 times (T down to sampling.eps) a few-step solver steps through (the rectified flow's:
    uniform, then shifted by sampling.shift)."""
    sampling, sde = exp.config.sampling, exp.sde
    steps = num_sampling_steps(exp)
    if sampling.method == 'dpm_solver_pp' and steps < sampling.order:
        raise ConfigError(f'sampling.num_steps={steps} is too few for the order-{sampling.order} multistep '
                          f'DPM-Solver++; use at least {sampling.order} or a lower sampling.order')
    if isinstance(sde, RectifiedFlow):
        if sampling.spacing not in ('auto', 'uniform'):
            raise ConfigError(f"sampling.spacing={sampling.spacing!r} needs finite log-SNRs; the rectified flow's is "
                              "-inf at t = 1: its few-step times are 'uniform' (or 'auto'), then sampling.shift")
        return shift_times(np.linspace(sde.T, sampling.eps, steps + 1), sampling.shift)
    spacing = PAPER_SPACING[sampling.method] if sampling.spacing == 'auto' else sampling.spacing

    def coefs(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return tuple(np.asarray(c, np.float64) for c in sde.marginal_coefs(jnp.asarray(t, jnp.float32)))

    with config_terms('sampling', {'spacing', 'num_steps'}):
        return few_step.spaced_times(spacing, steps, sde.T, sampling.eps, coefs, rho=sampling.rho)


def check_sampling(exp: Experiment) -> None:
    """Raises a ConfigError for any `sampling` setting that `sample_batches` would refuse."""
    Sampler(exp, exp.config.sampling.batch_size)


def pc_steps(exp: Experiment) -> tuple[Step, Step]:
    """The predictor and corrector `exp.config.sampling` names, checked against the SDE."""
    sampling = exp.config.sampling
    if isinstance(exp.sde, RectifiedFlow):
        raise ConfigError("sde.type='rectified_flow' is sampled through its probability-flow ODE, not by the PC "
                          "samplers (its reverse SDE is singular at t = 1): use sampling.method 'ode', 'ddim' (Euler), "
                          "'dpm_solver_pp' or 'heun'")
    with config_terms('sampling', sampling):
        predictor = get_predictor(sampling.predictor)
        corrector = get_corrector(sampling.corrector, sampling.snr, sampling.n_steps_each)
    if sampling.predictor == 'ancestral_sampling' and type(exp.sde).ancestral_step is SDE.ancestral_step:
        raise ConfigError(f"sampling.predictor='ancestral_sampling' is defined for the VE and VP SDEs only, not "
                          f"sde.type={exp.config.sde.type!r}; use 'reverse_diffusion' or 'euler_maruyama'")
    return predictor, corrector


class Sampler:
    """`sample(params, rng)` -> one batch of images in [0, 1], NHWC, sharded over the batch axis."""

    def __init__(self, exp: Experiment, batch_size: int) -> None:
        sampling = exp.config.sampling
        parallel.check_batch_size(batch_size, 'sampling.batch_size')
        if sampling.method not in METHODS:
            raise ConfigError(f'sampling.method={sampling.method!r} is not one of {", ".join(METHODS)}')
        flow_steps = isinstance(exp.sde, RectifiedFlow) and sampling.method in few_step.METHODS
        if sampling.shift != 1.0 and not flow_steps:
            raise ConfigError(f"sampling.shift={sampling.shift} shifts the few-step times of "
                              f"sde.type='rectified_flow'; with sde.type={exp.config.sde.type!r} and "
                              f"sampling.method={sampling.method!r} leave it 1")
        self.exp = exp
        self.shape = (batch_size, *exp.image_shape)
        self._last_nfe: int | None = None
        if sampling.method == 'pc':
            self._predictor, self._corrector = pc_steps(exp)
        if sampling.method in few_step.METHODS:
            self._times = few_step_times(exp)
        mesh = parallel.make_mesh()
        self._sample = jax.jit(self._sample_batch,
                               out_shardings=(parallel.batch_sharded(mesh), parallel.replicated(mesh)))

    def evaluations_per_batch(self) -> int | None:
        """Score evaluations of the last batch: counted for the ODE, (1 + corrector steps) x N for PC, the
        solver's exact count for the few-step solvers (+ 1 for the final denoising)."""
        if self._last_nfe is not None:
            return self._last_nfe
        sampling = self.exp.config.sampling
        if sampling.method in few_step.METHODS:
            return few_step.nfe(sampling.method, len(self._times) - 1) + int(sampling.noise_removal)
        corrector_steps = 0 if sampling.corrector == 'none' else sampling.n_steps_each
        predictor_steps = 0 if sampling.predictor == 'none' else 1
        return (predictor_steps + corrector_steps) * num_sampling_steps(self.exp) + int(sampling.noise_removal)

    def _sample_batch(self, params: PyTree, rng: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(images, drift evaluations counted in the solve; -1 for PC, whose count is fixed)."""
        exp, sampling = self.exp, self.exp.config.sampling
        score = exp.score_fn(params)
        if sampling.method == 'ode':
            x, nfe = ode_sample(exp.sde, score, self.shape, rng, rtol=sampling.rtol, atol=sampling.atol,
                                eps=sampling.eps, denoise_last=sampling.noise_removal)
        elif sampling.method in few_step.METHODS:
            x = few_step_sample(exp.sde, score, self.shape, rng, self._times, sampling.method, eta=sampling.eta,
                                order=sampling.order, denoise_last=sampling.noise_removal)
            nfe = jnp.array(-1, jnp.int32)
        else:
            x = pc_sample(exp.sde, score, self.shape, rng, predictor=self._predictor, corrector=self._corrector,
                          num_steps=num_sampling_steps(exp), eps=sampling.eps, denoise_last=sampling.noise_removal)
            nfe = jnp.array(-1, jnp.int32)
        return exp.to_image_space(x), nfe

    def __call__(self, params: PyTree, rng: jax.Array) -> jax.Array:
        images, nfe = self._sample(params, rng)
        if self.exp.config.sampling.method == 'ode':
            self._last_nfe = int(jax.device_get(nfe))
        return images


def sample_batches(exp: Experiment, params: PyTree, num_samples: int, batch_size: int, seed: int,
                   progress: bool = True, stats: dict | None = None) -> Iterator[np.ndarray]:
    """Yields `num_samples` images in [0, 1] (NHWC numpy, gathered on every host) in batches.

    If `stats` is given, it receives 'score_evaluations_per_batch' (list) as batches are drawn.
    """
    sampler = Sampler(exp, batch_size)
    batches = math.ceil(num_samples / batch_size)
    bar = tqdm(total=num_samples, desc='sample', unit='img', dynamic_ncols=True,
               disable=not (progress and jax.process_index() == 0 and exp.config.runtime.progress_bar))
    rng = stream(seed, 'sampling')
    try:
        for b in range(batches):
            images = parallel.to_host(sampler(params, jax.random.fold_in(rng, b)))
            if stats is not None:
                stats.setdefault('score_evaluations_per_batch', []).append(sampler.evaluations_per_batch())
            images = images[:num_samples - b * batch_size]
            bar.update(len(images))
            yield images
    finally:
        bar.close()


def sampling_summary(sampling: ml_collections.ConfigDict, stats: dict) -> dict:
    """Method and cost of a sampling run for metrics.json."""
    evals = stats.get('score_evaluations_per_batch', [])
    summary = {'method': sampling.method}
    if sampling.method == 'pc':
        summary.update(predictor=sampling.predictor, corrector=sampling.corrector)
    if sampling.method in few_step.METHODS:
        summary.update(num_steps=sampling.num_steps, spacing=sampling.spacing)
    if evals:
        summary['score_evaluations_per_batch'] = evals
        summary['mean_score_evaluations'] = float(np.mean(evals))
    return summary


class ConstrainedSampler:
    """Jitted inpainting or colorization of a batch with the PC sampler (sde_jax.controllable)."""

    def __init__(self, exp: Experiment, kind: str) -> None:
        sampling = exp.config.sampling
        if kind not in ('inpaint', 'colorize'):
            raise ConfigError(f"unknown controllable task {kind!r}; 'inpaint' or 'colorize'")
        if kind == 'colorize' and exp.image_shape[-1] != 3:
            raise ConfigError('colorization needs colour images: data.num_channels=3')
        self.exp, self.kind = exp, kind
        self._predictor, self._corrector = pc_steps(exp)
        self.mask = None
        if kind == 'inpaint':
            with config_terms('sampling', sampling):
                self.mask = controllable.inpainting_mask(sampling.inpaint_mask, exp.image_shape)
        self._fn = batch_parallel_jit(self._run)

    def _run(self, params: PyTree, images: jax.Array, rng: jax.Array) -> jax.Array:
        exp, sampling = self.exp, self.exp.config.sampling
        data = exp.to_model_space(images)
        if self.kind == 'inpaint':
            constraint = controllable.inpainting_constraint(exp.sde, data, self.mask)
        else:
            constraint = controllable.colorization_constraint(exp.sde, data.mean(axis=-1, keepdims=True))
        x = controllable.constrained_pc_sample(exp.sde, exp.score_fn(params), constraint, data.shape, rng,
                                               predictor=self._predictor, corrector=self._corrector,
                                               num_steps=num_sampling_steps(exp), eps=sampling.eps,
                                               denoise_last=sampling.noise_removal)
        return exp.to_image_space(x)

    def observation(self, images: np.ndarray) -> np.ndarray:
        """What the sampler sees, for display: masked pixels grey, or the grey-level image."""
        if self.kind == 'inpaint':
            return images * self.mask + 0.5 * (1.0 - self.mask)
        return np.repeat(images.mean(axis=-1, keepdims=True), 3, axis=-1)

    def __call__(self, params: PyTree, images: jax.Array, rng: jax.Array) -> jax.Array:
        return self._fn(params, images, rng)

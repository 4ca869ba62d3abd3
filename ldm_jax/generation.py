"""Sampling from a trained run: DDPM or DDIM, classifier-free and classifier guidance, first-stage decoding.

One jitted function draws a global batch: x_T and all step noise from the batch's key, the scan of
the chosen sampler with the sample batch sharded over every device and the parameters replicated,
then (latent diffusion) the first stage's decoder on latent / scale_factor, and the map to [0, 1].
"""

import math
from collections.abc import Callable, Iterator

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gen_runtime import few_step, parallel
from gen_runtime.errors import ConfigError, config_terms
from gen_runtime.pytree import PyTree
from gen_runtime.rng import stream
from ldm_jax.cascade import augment, upsample
from ldm_jax.data import to_unit_range
from ldm_jax.diffusion import eps_to_x0, split_prediction, split_variance
from ldm_jax.experiment import Experiment
from ldm_jax.guidance import classifier_free_output, classifier_guided_eps, classifier_log_prob_grad
from ldm_jax.samplers import ddim_sample, ddim_timesteps, ddpm_sample
from ldm_jax.schedule import Schedule, strided_timesteps

# ldm's own DDIM (CompVis's, x_0 clipping and all), DDPM (all steps, or improved DDPM's strided chain), and two
# of the shared few-step solvers.
SHARED_SOLVERS = ('dpm_solver_pp', 'heun')
FEW_STEP_SPACINGS = ('uniform', 'logsnr', 'karras')
METHODS = ('ddim', 'ddpm', 'ddpm_strided', *SHARED_SOLVERS)


def few_step_timesteps(spacing: str, num_steps: int, alphas_cumprod: np.ndarray, rho: float = 7.0) -> np.ndarray:
    """The num_steps descending integer timesteps the shared few-step solvers evaluate the model at (the last
    step then goes to x_0), as diffusers places them: 'uniform' is its 'linspace' spacing, round(linspace(T - 1,
    0, num_steps + 1)) without its last entry; 'logsnr' (its use_lu_lambdas) and 'karras' (use_karras_sigmas)
    put num_steps points from T - 1 to 0 by gen_runtime.few_step.spaced_times, with alpha-bar interpolated
    between timesteps, rounded to timesteps. The solver then uses the kernel at those timesteps, the one the
    model was trained at (diffusers keeps the unrounded sigmas). Raises ValueError where rounding merges two."""
    num_timesteps = len(alphas_cumprod)
    if spacing == 'uniform':
        return np.round(np.linspace(num_timesteps - 1, 0, num_steps + 1)).astype(np.int32)[:-1]
    grid = np.arange(num_timesteps, dtype=np.float64)

    def alpha_sigma(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        abar = np.interp(t, grid, np.asarray(alphas_cumprod, np.float64))
        return np.sqrt(abar), np.sqrt(1.0 - abar)

    ts = few_step.spaced_times(spacing, num_steps - 1, num_timesteps - 1, 0.0, alpha_sigma, rho)
    ts = np.round(ts).astype(np.int32)
    if np.any(np.diff(ts) >= 0):
        raise ValueError(f'{num_steps} steps with {spacing!r} spacing put two steps on one of the {num_timesteps} '
                         "timesteps; use fewer steps or 'uniform'")
    return ts


def check_sampling(exp: Experiment) -> None:
    """Raises a ConfigError for `sampling` settings that `Sampler` and the trained model cannot honour."""
    config = exp.config
    sampling = config.sampling
    if sampling.method in SHARED_SOLVERS:
        _check_few_step(exp)
    if sampling.guidance_scale != 1.0 and config.diffusion.label_dropout <= 0:
        raise ConfigError('sampling.guidance_scale != 1 needs a model trained for classifier-free guidance '
                          '(diffusion.label_dropout > 0)')
    parallel.check_batch_size(sampling.batch_size, 'sampling.batch_size')
    if config.cascade.low_resolution:
        _check_cascade(exp)
    if sampling.method == 'ddim':
        with config_terms('sampling', sampling):
            ddim_timesteps(sampling.spacing, sampling.num_steps, config.diffusion.num_timesteps)
    if sampling.method == 'ddpm_strided':
        if sampling.spacing != 'uniform':
            raise ConfigError(f"sampling.spacing={sampling.spacing!r}: sampling.method='ddpm_strided' spaces its "
                              "steps evenly (improved DDPM's strided sampling); set sampling.spacing='uniform'")
        if not 2 <= sampling.num_steps <= config.diffusion.num_timesteps:
            raise ConfigError(f'sampling.num_steps={sampling.num_steps} must be in 2..diffusion.num_timesteps for '
                              "sampling.method='ddpm_strided'")


def _check_cascade(exp: Experiment) -> None:
    """A super-resolution stage samples from its base run: the base's images and, truncated, its chain."""
    config, cascade, base = exp.config, exp.config.cascade, exp.base
    if base is None:
        raise ConfigError('this run is a super-resolution stage (cascade.low_resolution > 0): sampling draws its '
                          'condition from the base model, so set cascade.base_workdir to its run')
    want = (cascade.low_resolution, cascade.low_resolution, exp.space.shape[-1])
    if base.space.latent or tuple(base.space.shape) != want:
        raise ConfigError(f'cascade.base_workdir {cascade.base_workdir} diffuses {tuple(base.space.shape)}'
                          f'{" latents" if base.space.latent else " images"}; this stage needs {want} images')
    if config.model.num_classes != base.config.model.num_classes:
        raise ConfigError(f'cascade.base_workdir {cascade.base_workdir} has model.num_classes='
                          f'{base.config.model.num_classes} and this stage {config.model.num_classes}: the '
                          'cascade passes one label to both')
    if cascade.truncated:
        if not np.allclose(np.asarray(base.schedule.betas), np.asarray(exp.schedule.betas)):
            raise ConfigError('cascade.truncated needs the base model and this stage on the same noise schedule '
                              '(diffusion.*), so that a level means the same noise in both')
    check_sampling(base)


def _check_few_step(exp: Experiment) -> None:
    config = exp.config
    sampling = config.sampling
    if not 2 <= sampling.num_steps <= config.diffusion.num_timesteps:
        raise ConfigError(f'sampling.num_steps={sampling.num_steps} must be in 2..diffusion.num_timesteps for '
                          f'sampling.method={sampling.method!r}')
    if sampling.spacing not in FEW_STEP_SPACINGS:
        raise ConfigError(f'sampling.spacing={sampling.spacing!r} is not one of {", ".join(FEW_STEP_SPACINGS)} '
                          f'for sampling.method={sampling.method!r}')
    if sampling.method == 'dpm_solver_pp' and not 1 <= sampling.order <= min(3, sampling.num_steps):
        raise ConfigError(f'sampling.order={sampling.order} must be 1, 2 or 3 and at most sampling.num_steps='
                          f'{sampling.num_steps} (DPM-Solver++(1), (2M), (3M))')
    with config_terms('sampling', {'spacing', 'num_steps'}):
        few_step_timesteps(sampling.spacing, sampling.num_steps, exp.schedule.alphas_cumprod, sampling.rho)


def sample_labels(config: ml_collections.ConfigDict, start: int, count: int) -> np.ndarray:
    """Class labels of samples start..start+count-1: sampling.class_label, or 0, 1, 2, ... cycling."""
    classes = config.model.num_classes or (config.classifier.num_classes if config.sampling.classifier_scale else 0)
    if not classes:
        return np.zeros(count, np.int32)
    if config.sampling.class_label >= 0:
        if config.sampling.class_label >= classes:
            raise ConfigError(f'sampling.class_label={config.sampling.class_label} is not below {classes} classes')
        return np.full(count, config.sampling.class_label, np.int32)
    return (np.arange(start, start + count) % classes).astype(np.int32)


class Sampler:
    """`sampler(params, rng[, labels])` -> one batch of `batch_size` images in [0, 1], NHWC, sharded over the batch
    axis, drawn as `exp.config.sampling` says (checked by the mode's check, ldm_jax.checks). Pure: `params` are
    the trained networks {'unet', 'scale_factor'[, 'first_stage'][, 'classifier']} (ldm_jax.modes.trained_networks
    loads them from workdirs); x_T and every step's noise come from `rng`."""

    def __init__(self, exp: Experiment, batch_size: int) -> None:
        self.exp, self.batch_size, self.shape = exp, batch_size, exp.space.shape
        self.mesh = parallel.make_mesh()
        batch = parallel.batch_sharded(self.mesh)
        fn = _sample_fn(exp, batch)

        def from_key(params: PyTree, rng: jax.Array, labels: jax.Array) -> jax.Array:
            x_rng, step_rng = jax.random.split(rng)
            return fn(params, jax.random.normal(x_rng, (labels.shape[0], *exp.space.shape)), step_rng, labels)

        rep = parallel.replicated(self.mesh)
        self._fn = jax.jit(from_key, in_shardings=(rep, rep, batch), out_shardings=batch)
        self._from_noise = jax.jit(fn, in_shardings=(rep, batch, rep, batch), out_shardings=batch)

    def __call__(self, params: PyTree, rng: jax.Array, labels: np.ndarray | None = None) -> jax.Array:
        """A batch with `labels` (this host's rows of the global batch's; default: those of the first batch of
        sample_labels)."""
        if labels is None:
            labels = sample_labels(self.exp.config, 0, self.batch_size)[parallel.host_slice(self.batch_size)]
        return self._fn(params, rng, parallel.host_local_to_global(np.asarray(labels, np.int32), self.mesh))

    def from_noise(self, params: PyTree, x_T: np.ndarray, labels: np.ndarray | None = None,
                   seed: int = 0) -> np.ndarray:
        """Images NHWC in [0, 1] from given initial noise x_T (N, *shape), e.g. the original code's, with
        step noise (DDPM, DDIM eta > 0) from `seed`; labels default to those of `sample_batches`."""
        x_T = np.asarray(x_T, np.float32)
        if x_T.ndim != 4 or x_T.shape[1:] != tuple(self.shape):
            raise ValueError(f'x_T of shape {x_T.shape} is not (N, {", ".join(map(str, self.shape))})')
        labels = sample_labels(self.exp.config, 0, len(x_T)) if labels is None else np.asarray(labels, np.int32)
        parallel.check_batch_size(len(x_T), 'the number of x_T rows')
        rows, rng = parallel.host_slice(len(x_T)), jax.random.split(jax.random.key(seed))[1]
        images = self._from_noise(params, parallel.host_local_to_global(x_T[rows], self.mesh), rng,
                                  parallel.host_local_to_global(labels[rows], self.mesh))
        return parallel.to_host(images)


def sample_batches(exp: Experiment, params: PyTree, num_samples: int, batch_size: int,
                   seed: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yields `num_samples` (images NHWC in [0, 1], labels), gathered on every host, in global batches of
    `batch_size`, the last one cut; batch i from fold_in(stream(seed, 'sampling'), i)."""
    sampler = Sampler(exp, batch_size)
    rows, rng = parallel.host_slice(batch_size), stream(seed, 'sampling')
    for index in range(math.ceil(num_samples / batch_size)):
        labels = sample_labels(exp.config, index * batch_size, batch_size)
        images = sampler(params, jax.random.fold_in(rng, index), labels[rows])
        keep = min(batch_size, num_samples - index * batch_size)
        yield parallel.to_host(images)[:keep], labels[:keep]


def few_step_from_noise(method: str, denoise: Callable, schedule: Schedule, x_T: jax.Array, timesteps: np.ndarray,
                        clip: bool, order: int = 2) -> jax.Array:
    """A shared few-step solver (gen_runtime.few_step) on the discrete schedule: kernel alpha_t = sqrt(abar_t),
    sigma_t = sqrt(1 - abar_t) at `timesteps` (few_step_timesteps), then (alpha, sigma) = (1, 0), i.e. x_0."""
    abar = jnp.asarray(schedule.alphas_cumprod)[timesteps]
    alphas = jnp.append(jnp.sqrt(abar), 1.0)
    sigmas = jnp.append(jnp.sqrt(1.0 - abar), 0.0)

    def x0_fn(x: jax.Array, t: jax.Array) -> jax.Array:
        x0 = denoise(x, t.astype(jnp.int32))[0]
        return jnp.clip(x0, -1.0, 1.0) if clip else x0

    times = jnp.asarray(np.append(timesteps, 0), jnp.int32)
    return few_step.solve(method, x0_fn, x_T, times, alphas, sigmas, order=order)


def _sample_fn(exp: Experiment, sharding: jax.sharding.Sharding):  # noqa: ANN202 - (params, x_T, rng, labels) -> images
    draw = _draw_fn(exp, sharding)

    def sample(params: PyTree, x_T: jax.Array, step_rng: jax.Array, labels: jax.Array) -> jax.Array:
        x = draw(params, x_T, step_rng, labels)
        if exp.first_stage is not None:
            x = exp.first_stage.decode(params['first_stage'], x / params['scale_factor'])
        return to_unit_range(x).astype(jnp.float32)

    return sample


def _stage_condition(exp: Experiment, sharding: jax.sharding.Sharding):  # noqa: ANN202 - (params, rng, labels) -> (cond, level)
    """A super-resolution stage's condition: the base run's sample (in [-1, 1]) noised at cascade.sample_level, or
    with cascade.truncated its ancestral chain stopped at that level; upsampled to this stage's side."""
    cascade, base = exp.config.cascade, exp.base
    draw_base = _draw_fn(base, sharding, stop_level=cascade.sample_level if cascade.truncated else 0)

    def condition(params: PyTree, rng: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
        x_rng, step_rng, noise_rng = jax.random.split(rng, 3)
        z_T = jax.random.normal(x_rng, (labels.shape[0], *base.space.shape))
        z = draw_base(params['base'], z_T, step_rng, labels)
        level = jnp.full(labels.shape, cascade.sample_level, jnp.int32)
        if not cascade.truncated:
            z = augment(exp.schedule, z, level, jax.random.normal(noise_rng, z.shape))
        return upsample(z, exp.space.shape[0]), level

    return condition


def _draw_fn(exp: Experiment, sharding: jax.sharding.Sharding, stop_level: int = 0):  # noqa: ANN202 - (params, x_T, rng, labels) -> x
    """The sampler of `exp` in its own space (pixels in [-1, 1] or scaled latents, not decoded); with `stop_level`
    s > 0 its whole ancestral DDPM chain (whatever sampling.method says) stopped at level s instead of x_0."""
    config, classifier = exp.config, exp.guide
    sampling, diffusion, unet, schedule = config.sampling, config.diffusion, exp.network, exp.schedule
    conditional = config.model.num_classes > 0
    clip = sampling.clip_denoised and exp.first_stage is None
    condition = _stage_condition(exp, sharding) if exp.base is not None else None

    def draw(params: PyTree, x_T: jax.Array, step_rng: jax.Array, labels: jax.Array) -> jax.Array:
        stage = {}
        if condition is not None:
            step_rng, cond_rng = jax.random.split(step_rng)
            cond, level = condition(params, cond_rng, labels)
            stage = {'cond': cond, 'level': level}

        def model(x: jax.Array, t: jax.Array, y: jax.Array | None) -> jax.Array:
            copies = x.shape[0] // x_T.shape[0]  # classifier-free guidance calls on the doubled batch
            extra = {k: jnp.concatenate([v] * copies) for k, v in stage.items()}
            return unet.apply({'params': params['unet']}, x, t, y, **extra)

        def denoise(x: jax.Array, t: jax.Array) -> tuple[jax.Array, ...]:
            if sampling.guidance_scale != 1.0:
                learned = x.shape[-1] if diffusion.variance == 'learned_range' else None
                out = classifier_free_output(model, x, t, labels, config.model.num_classes, sampling.guidance_scale,
                                             learned)
            else:
                out = model(x, t, labels if conditional else None)
            out, v = split_variance(diffusion.variance, out)
            x0, eps = split_prediction(diffusion.parameterization, schedule, x, t, out)
            if classifier is not None:
                grad = classifier_log_prob_grad(lambda x, t: classifier.logits(params['classifier'], x, t), x, t,
                                                labels)
                scale = sampling.classifier_scale * (t < classifier.max_timestep).astype(x.dtype)[:, None, None, None]
                eps = classifier_guided_eps(schedule, eps, t, grad, scale)
                x0 = eps_to_x0(schedule, x, t, eps)
            return (x0, eps) if v is None else (x0, eps, v)

        if stop_level or sampling.method in ('ddpm', 'ddpm_strided'):
            strided = strided_timesteps(sampling.num_steps, diffusion.num_timesteps) \
                if sampling.method == 'ddpm_strided' and not stop_level else None
            return ddpm_sample(denoise, schedule, x_T, step_rng, diffusion.variance, clip, sharding, timesteps=strided,
                               stop_level=stop_level)
        if sampling.method in SHARED_SOLVERS:
            timesteps = few_step_timesteps(sampling.spacing, sampling.num_steps, schedule.alphas_cumprod, sampling.rho)
            return few_step_from_noise(sampling.method, denoise, schedule, x_T, timesteps, clip, sampling.order)
        steps = ddim_timesteps(sampling.spacing, sampling.num_steps, diffusion.num_timesteps)
        return ddim_sample(denoise, schedule, x_T, step_rng, steps, sampling.eta, clip, sharding,
                           alpha_to_one=sampling.alpha_to_one)

    return draw

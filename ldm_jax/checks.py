"""Every setting each ldm_jax mode reads, checked before any work (gen_runtime.modes calls these).

Each check builds only what is cheap: the networks' shapes (traced, not run), the schedule, the DDIM
steps, and the config of a first stage or classifier run the config points to. No data, no weights.
"""

import ml_collections

from gen_runtime import parallel
from gen_runtime.errors import ConfigError
from gen_runtime.sample_quality.evaluate import check_eval_settings
from gen_runtime.trainer import check_builds, check_train_settings
from ldm_jax.autoencoder_task import autoencoder_initialiser, check_autoencoder_training
from ldm_jax.data import image_shape
from ldm_jax.experiment import Experiment, classifier_max_timestep, initialiser, make_experiment
from ldm_jax.generation import check_sampling, sample_labels


def check_model(config: ml_collections.ConfigDict) -> Experiment:
    """The network `task` names (the denoiser in pixel or first-stage latent space, or the noise-conditional
    classifier and the timesteps it is trained on), its schedule, and the runs it reads."""
    if config.task == 'classifier':
        max_t = classifier_max_timestep(config)
        if not 0 < max_t <= config.diffusion.num_timesteps:
            raise ConfigError(f'classifier.max_timestep={max_t} must be in 1..diffusion.num_timesteps')
    _check_stage(config)
    exp = make_experiment(config)
    check_builds(initialiser(exp), 'model' if config.task == 'diffusion' else 'classifier')
    return exp


def _check_stage(config: ml_collections.ConfigDict) -> None:
    """A cascade's super-resolution stage: its condition's side and augmentation levels."""
    cascade, side, T = config.cascade, config.data.image_size, config.diffusion.num_timesteps
    if not cascade.low_resolution:
        return
    if config.latent.first_stage_workdir:
        raise ConfigError('cascade.low_resolution: a super-resolution stage diffuses pixels; set '
                          'latent.first_stage_workdir to empty')
    if cascade.low_resolution >= side or side % cascade.low_resolution:
        raise ConfigError(f'cascade.low_resolution={cascade.low_resolution} must be smaller than data.image_size='
                          f'{side} and divide it')
    for field in ('max_level', 'sample_level'):
        if cascade[field] > T:
            raise ConfigError(f'cascade.{field}={cascade[field]} is above diffusion.num_timesteps={T}')


def check_diffusion(config: ml_collections.ConfigDict) -> Experiment:
    """check_model for a mode that needs the denoiser."""
    if config.task != 'diffusion':
        raise ConfigError(f"this mode uses the diffusion model; task={config.task!r} trains a classifier (set "
                          "task='diffusion' and the denoiser's workdir)")
    return check_model(config)


def check_train(config: ml_collections.ConfigDict) -> None:
    """train: what `task` names, and the training and optimiser settings."""
    check_train_settings(config)
    check_model(config)


def check_autoencoder(config: ml_collections.ConfigDict) -> None:
    """The VQ autoencoder and its discriminator (shapes), and latent.encode_batch_size."""
    check_builds(autoencoder_initialiser(config, image_shape(config)), 'autoencoder')
    parallel.check_batch_size(config.latent.encode_batch_size, 'latent.encode_batch_size')


def check_train_autoencoder(config: ml_collections.ConfigDict) -> None:
    check_autoencoder_training(config)
    check_train_settings(config)
    check_autoencoder(config)


def check_sample(config: ml_collections.ConfigDict) -> None:
    """sample: the sampler's settings against the model they sample."""
    check_sampling(check_diffusion(config))
    sample_labels(config, 0, 1)


def check_eval(config: ml_collections.ConfigDict) -> None:
    check_sample(config)
    check_eval_settings(config)


def check_likelihood(config: ml_collections.ConfigDict) -> None:
    if check_diffusion(config).space.latent:
        raise ConfigError('--mode likelihood gives bits/dim of pixel-space models; this config diffuses latents')
    parallel.check_batch_size(config.likelihood.batch_size, 'likelihood.batch_size')


def check_preprocess(config: ml_collections.ConfigDict) -> None:
    if not config.preprocess.input:
        raise ConfigError('preprocess.input is empty; give the folder of images to resize')

"""Trained models of other workdirs: the first stage of a latent diffusion run and a guidance classifier.

Each is rebuilt from the config.json its own run saved, so the architecture is always the one the
weights were trained with, and restored from that run's newest readable checkpoint.
"""

import dataclasses
import json
import os

import jax
import ml_collections

from gen_runtime.config import CONFIG_FILE, flatten
from gen_runtime.errors import ConfigError
from gen_runtime.pytree import PyTree
from gen_runtime.trainer import load_trained_state
from ldm_jax.autoencoder_task import autoencoder_initialiser
from ldm_jax.data import image_shape
from ldm_jax.diffusion_task import DataSpace, classifier_initialiser
from ldm_jax.models import autoencoder_from_config, classifier_from_config
from ldm_jax.nn.autoencoder import VQModel
from ldm_jax.nn.unet import EncoderUNet

# Fields a guidance classifier must share with the diffusion model it guides.
SHARED_WITH_CLASSIFIER = ('diffusion.num_timesteps', 'diffusion.schedule', 'diffusion.linear_start',
                          'diffusion.linear_end', 'diffusion.cosine_s', 'data.image_size', 'data.num_channels',
                          'latent.first_stage_workdir', 'latent.scale_factor', 'latent.use_ema')



def run_config(workdir: str, what: str) -> ml_collections.ConfigDict:
    """The config a run saved in `workdir` (read-only)."""
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.isfile(path):
        raise ConfigError(f'{what} {workdir!r} holds no run ({path} is missing); train it first')
    with open(path) as f:
        return ml_collections.ConfigDict(json.load(f))


@dataclasses.dataclass(frozen=True)
class FirstStage:
    """A trained VQ autoencoder: encode images in [-1, 1] to pre-quantisation latents, decode latents."""

    model: VQModel
    params: PyTree
    step: int
    image_shape: tuple[int, int, int]

    def encode(self, params: PyTree, x: jax.Array) -> jax.Array:
        return self.model.apply({'params': params}, x, method=VQModel.encode)

    def decode(self, params: PyTree, z: jax.Array) -> jax.Array:
        return self.model.apply({'params': params}, z, method=VQModel.decode)


def _first_stage_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    workdir = config.latent.first_stage_workdir
    fs_config = run_config(workdir, 'latent.first_stage_workdir')
    if image_shape(fs_config) != image_shape(config):
        raise ConfigError(f'the first stage in {workdir} works on {image_shape(fs_config)} images but '
                          f'data.image_size/num_channels here give {image_shape(config)}')
    return fs_config


def data_space(config: ml_collections.ConfigDict) -> DataSpace:
    """Pixels of data.image_size, or the latent grid of the first stage (no weights are loaded)."""
    if not config.latent.first_stage_workdir:
        return DataSpace(image_shape(config), latent=False)
    ae = _first_stage_config(config).autoencoder
    factor = 2 ** (len(ae.ch_mult) - 1)
    return DataSpace((config.data.image_size // factor, config.data.image_size // factor, ae.embed_dim), latent=True)


def load_first_stage(config: ml_collections.ConfigDict) -> FirstStage:
    """The autoencoder trained in `config.latent.first_stage_workdir` (its EMA params if latent.use_ema)."""
    workdir = config.latent.first_stage_workdir
    fs_config = _first_stage_config(config)
    shape = image_shape(fs_config)
    step, state = load_trained_state(fs_config, workdir, autoencoder_initialiser(fs_config, shape))
    generator = state['generator']
    params = generator.ema_params if config.latent.use_ema else generator.params
    return FirstStage(autoencoder_from_config(fs_config), params, step, shape)


@dataclasses.dataclass(frozen=True)
class Classifier:
    """A trained noise-conditional classifier: logits of p(y | x_t, t), trained on t < max_timestep."""

    model: EncoderUNet
    params: PyTree
    max_timestep: int

    def logits(self, params: PyTree, x: jax.Array, t: jax.Array) -> jax.Array:
        return self.model.apply({'params': params}, x, t)


def load_classifier(config: ml_collections.ConfigDict) -> Classifier:
    """The classifier trained (task='classifier') in `config.sampling.classifier_workdir`, EMA params."""
    workdir = config.sampling.classifier_workdir
    clf_config = run_config(workdir, 'sampling.classifier_workdir')
    if clf_config.get('task') != 'classifier':
        raise ConfigError(f'sampling.classifier_workdir {workdir} holds a task={clf_config.get("task")!r} run, '
                          "not task='classifier'")
    ours, theirs = flatten(json.loads(config.to_json_best_effort())), flatten(clf_config.to_dict())
    for field in SHARED_WITH_CLASSIFIER:
        if ours.get(field) != theirs.get(field):
            raise ConfigError(f'the classifier in {workdir} was trained with {field}={theirs.get(field)!r}, this model '
                              f'with {ours.get(field)!r}; guidance needs the same noise schedule and data space')
    _, state = load_trained_state(clf_config, workdir, classifier_initialiser(clf_config, data_space(clf_config)))
    max_t = clf_config.classifier.max_timestep or clf_config.diffusion.num_timesteps
    return Classifier(classifier_from_config(clf_config), state.ema_params, max_t)

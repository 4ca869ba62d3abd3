"""The networks a run reads from other workdirs: the first stage of a latent diffusion run and a guidance classifier.

Each is described by the config.json its own run saved, so the architecture is always the one the weights were
trained with; this module reads configs only (ldm_jax.modes loads the weights, gen_runtime.trainer.trained_params).
"""

import dataclasses
import json
import os

import jax
import ml_collections

from gen_runtime.config import CONFIG_FILE, flatten
from gen_runtime.errors import ConfigError
from gen_runtime.pytree import PyTree
from ldm_jax.data import image_shape
from ldm_jax.models import autoencoder_from_config, classifier_from_config
from ldm_jax.nn.autoencoder import VQModel
from ldm_jax.nn.unet import EncoderUNet

# Fields a guidance classifier must share with the diffusion model it guides.
SHARED_WITH_CLASSIFIER = ('diffusion.num_timesteps', 'diffusion.schedule', 'diffusion.linear_start',
                          'diffusion.linear_end', 'diffusion.cosine_s', 'data.image_size', 'data.num_channels',
                          'latent.first_stage_workdir', 'latent.scale_factor')


def run_config(workdir: str, what: str) -> ml_collections.ConfigDict:
    """The config a run saved in `workdir` (read-only)."""
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.isfile(path):
        raise ConfigError(f'{what} {workdir!r} holds no run ({path} is missing); train it first')
    with open(path) as f:
        return ml_collections.ConfigDict(json.load(f))


@dataclasses.dataclass(frozen=True)
class FirstStage:
    """The VQ autoencoder of the run in `workdir` (its saved `config`): encodes images in [-1, 1] to
    pre-quantisation latents and decodes latents."""

    model: VQModel
    config: ml_collections.ConfigDict
    workdir: str
    image_shape: tuple[int, int, int]

    def latent_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of its latents: the image side over 2^(levels - 1), embed_dim channels."""
        ae = self.config.autoencoder
        side = self.image_shape[0] // 2 ** (len(ae.ch_mult) - 1)
        return side, side, ae.embed_dim

    def encode(self, params: PyTree, x: jax.Array) -> jax.Array:
        return self.model.apply({'params': params}, x, method=VQModel.encode)

    def decode(self, params: PyTree, z: jax.Array) -> jax.Array:
        return self.model.apply({'params': params}, z, method=VQModel.decode)


def first_stage_of(config: ml_collections.ConfigDict) -> FirstStage | None:
    """The first stage in `config.latent.first_stage_workdir` (None in pixel space); no weights are read."""
    workdir = config.latent.first_stage_workdir
    if not workdir:
        return None
    fs_config = run_config(workdir, 'latent.first_stage_workdir')
    if image_shape(fs_config) != image_shape(config):
        raise ConfigError(f'the first stage in {workdir} works on {image_shape(fs_config)} images but '
                          f'data.image_size/num_channels here give {image_shape(config)}')
    return FirstStage(autoencoder_from_config(fs_config), fs_config, workdir, image_shape(fs_config))


@dataclasses.dataclass(frozen=True)
class GuidanceClassifier:
    """The noise-conditional classifier of the run in `workdir` (its saved `config`): logits of p(y | x_t, t),
    trained on t < max_timestep."""

    model: EncoderUNet
    config: ml_collections.ConfigDict
    workdir: str
    max_timestep: int

    def logits(self, params: PyTree, x: jax.Array, t: jax.Array) -> jax.Array:
        return self.model.apply({'params': params}, x, t)


def guidance_classifier_of(config: ml_collections.ConfigDict) -> GuidanceClassifier | None:
    """The classifier (task='classifier') in `config.sampling.classifier_workdir` when classifier guidance is on
    (sampling.classifier_scale > 0), checked to share the noise schedule and data space; no weights are read."""
    if config.sampling.classifier_scale <= 0:
        return None
    workdir = config.sampling.classifier_workdir
    if not workdir:
        raise ConfigError('sampling.classifier_scale > 0 needs sampling.classifier_workdir (a task=classifier run)')
    clf_config = run_config(workdir, 'sampling.classifier_workdir')
    if clf_config.get('task') != 'classifier':
        raise ConfigError(f'sampling.classifier_workdir {workdir} holds a task={clf_config.get("task")!r} run, '
                          "not task='classifier'")
    ours, theirs = flatten(json.loads(config.to_json_best_effort())), flatten(clf_config.to_dict())
    for field in SHARED_WITH_CLASSIFIER:
        if ours.get(field) != theirs.get(field):
            raise ConfigError(f'the classifier in {workdir} was trained with {field}={theirs.get(field)!r}, this model '
                              f'with {ours.get(field)!r}; guidance needs the same noise schedule and data space')
    max_t = clf_config.classifier.max_timestep or clf_config.diffusion.num_timesteps
    return GuidanceClassifier(classifier_from_config(clf_config), clf_config, workdir, max_t)

"""What a config describes: the SDE, the network, the data scaling, and the training task."""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gen_runtime.data import Dataset, TrainBatches, image_preprocessor, load_dataset
from gen_runtime.errors import ConfigError, DataError
from gen_runtime.train_state import TrainState
from gen_runtime.trainer import Initialiser, TrainTask
from sde_jax.losses import DISCRETE_LOSSES, make_loss_fn
from sde_jax.models import get_model
from sde_jax.score_model import score_fn
from sde_jax.sde import SDE, ScoreFn, get_sde


@dataclasses.dataclass(frozen=True)
class Experiment:
    """The parts of a config's model, shared by every mode."""

    config: ml_collections.ConfigDict
    sde: SDE
    model: nn.Module
    continuous: bool  # trained with a continuous-time loss ('dsm', 'flow_matching') rather than a discrete one
    image_shape: tuple[int, int, int]  # (H, W, C) of the model's inputs
    centered: bool  # model space is [-1, 1] (True) or [0, 1]

    def to_model_space(self, images: jax.Array) -> jax.Array:
        """Images in [0, 1] -> the model's data space."""
        return images * 2.0 - 1.0 if self.centered else images

    def to_image_space(self, x: jax.Array) -> jax.Array:
        """Model-space samples -> images in [0, 1] (clipped)."""
        return jnp.clip((x + 1.0) / 2.0 if self.centered else x, 0.0, 1.0)

    def model_scale(self) -> float:
        """a in x_model = a x_image + b; the bits/dim offset depends on it."""
        return 2.0 if self.centered else 1.0

    def init_params(self, rng: jax.Array) -> dict:
        x = jnp.zeros((1, *self.image_shape), jnp.float32)
        return self.model.init({'params': rng, 'dropout': rng}, x, jnp.zeros((1,)), train=False)['params']

    def score_fn(self, params: dict) -> ScoreFn:
        return score_fn(self.model, params, self.sde, self.continuous)


def make_experiment(config: ml_collections.ConfigDict) -> Experiment:
    size = config.data.image_size
    if size <= 0:
        raise ConfigError('sde_jax needs data.image_size, the side of the (square) images the model sees')
    if config.data.num_channels not in (1, 3):
        raise ConfigError(f'data.num_channels={config.data.num_channels} must be 1 or 3')
    return Experiment(config=config, sde=get_sde(config.sde), model=get_model(config),
                      continuous=config.loss.type not in DISCRETE_LOSSES,
                      image_shape=(size, size, config.data.num_channels), centered=config.data.centered)


def load_images(config: ml_collections.ConfigDict, split: str, image_shape: tuple[int, int, int]) -> Dataset:
    """The split's data set, checked against the model's image shape."""
    dataset = load_dataset(config, split)
    stored = dataset.gather(np.arange(1))['image'].shape[1:]
    if stored[:2] != image_shape[:2] or stored[2] not in (1, image_shape[2]):
        raise DataError(f'the {split!r} images are {stored}, the model expects {image_shape}; set '
                        'data.image_size / data.num_channels to match the data (or resize with data.image_size)')
    return dataset


def initialiser(exp: Experiment) -> Initialiser:
    """rng -> the score network's initial TrainState (what its checkpoints hold)."""

    def init_state(rng: jax.Array) -> TrainState:
        return TrainState.from_config(exp.init_params(rng), exp.config)

    return init_state


def training_batches(exp: Experiment) -> TrainBatches:
    """The training split's batches, preprocessed as `config.data` says."""
    config = exp.config
    dataset = load_images(config, config.data.train_split, exp.image_shape)
    return TrainBatches(dataset, config.training.batch_size, config.seed,
                        image_preprocessor(config.data, dataset.levels))


def train_task(exp: Experiment, batches: TrainBatches) -> TrainTask:
    """The runtime's TrainTask: init, one DSM/SMLD/DDPM step, and the data stream."""
    loss_fn = make_loss_fn(exp.config.loss, exp.model, exp.sde)

    def update(state: TrainState, batch: dict, rng: jax.Array) -> tuple[TrainState, dict]:
        x = exp.to_model_space(batch['image'])
        loss, grads = jax.value_and_grad(loss_fn)(state.params, x, rng)
        grad_norm = jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree.leaves(grads)))
        return state.apply_gradients(grads), {'loss': loss, 'grad_norm': grad_norm}

    return TrainTask(init_state=initialiser(exp), update=update, host_batches=batches.host_batches)

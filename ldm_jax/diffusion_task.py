"""Training steps of the diffusion model (pixel or latent space) and of the noise-conditional classifier.

Diffusion (DDPM Algorithm 1 with L_simple, eq. 14): t ~ U{0..T-1}, eps ~ N(0, I),
x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, loss = mean ||target - net(x_t, t[, y])||^2 with target eps,
x_0 or v. With classifier-free guidance the label is replaced by the null label with probability p.
Classifier (Dhariwal & Nichol 2021, sec. 4): cross-entropy of p_phi(y | x_t, t) on the same noisy inputs.
x_0 is the image mapped to [-1, 1], or the first-stage latent times the scale factor (kept in the state's
`extra`, so that sampling uses the factor the model was trained with).
"""

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import optax

from gen_runtime.data import Batch, TrainBatches
from gen_runtime.errors import ConfigError
from gen_runtime.train_state import TrainState
from gen_runtime.trainer import Initialiser, TrainTask
from ldm_jax.data import to_model_range
from ldm_jax.diffusion import loss_simple, q_sample, training_target
from ldm_jax.guidance import drop_labels
from ldm_jax.models import classifier_from_config, unet_from_config
from ldm_jax.schedule import schedule_from_config


@dataclasses.dataclass(frozen=True)
class DataSpace:
    """Where diffusion runs: (H, W, C) of x_0 and whether it is a first-stage latent."""

    shape: tuple[int, int, int]
    latent: bool


def model_input(batch: Batch, scale_factor: jax.Array) -> jax.Array:
    """x_0 of a batch: scaled latents, or images in [0, 1] mapped to [-1, 1]."""
    if 'latent' in batch:
        return batch['latent'] * scale_factor
    return to_model_range(batch['image'])


def _initial_state(config: ml_collections.ConfigDict, params: dict, scale_factor: float) -> TrainState:
    return TrainState.from_config(params, config, extra={'scale_factor': jnp.asarray(scale_factor, jnp.float32)})


def diffusion_initialiser(config: ml_collections.ConfigDict, space: DataSpace,
                          scale_factor: float = 1.0) -> Initialiser:
    """rng -> the denoiser's initial TrainState (what its checkpoints hold)."""
    unet = unet_from_config(config, space.shape[-1])
    conditional = config.model.num_classes > 0

    def init_state(rng: jax.Array) -> TrainState:
        labels = jnp.zeros((1,), jnp.int32) if conditional else None
        params = unet.init(rng, jnp.zeros((1, *space.shape)), jnp.zeros((1,), jnp.int32), labels)['params']
        return _initial_state(config, params, scale_factor)

    return init_state


def diffusion_task(config: ml_collections.ConfigDict, batches: TrainBatches, space: DataSpace,
                   scale_factor: float = 1.0) -> TrainTask:
    """The TrainTask of the denoiser (`config.model`, `config.diffusion`)."""
    diffusion = config.diffusion
    unet = unet_from_config(config, space.shape[-1])
    schedule = schedule_from_config(diffusion)
    conditional = config.model.num_classes > 0
    null_label = config.model.num_classes

    def update(state: TrainState, batch: Batch, rng: jax.Array) -> tuple[TrainState, dict[str, jax.Array]]:
        x0 = model_input(batch, state.extra['scale_factor'])
        t_rng, noise_rng, label_rng, dropout_rng = jax.random.split(rng, 4)
        t = jax.random.randint(t_rng, x0.shape[:1], 0, diffusion.num_timesteps)
        noise = jax.random.normal(noise_rng, x0.shape)
        x_t = q_sample(schedule, x0, t, noise)
        labels = drop_labels(batch['label'], null_label, diffusion.label_dropout, label_rng) if conditional else None
        target = training_target(diffusion.parameterization, schedule, x0, t, noise)

        def loss_fn(params: dict) -> jax.Array:
            out = unet.apply({'params': params}, x_t, t, labels, train=True, rngs={'dropout': dropout_rng})
            return jnp.mean(loss_simple(out, target, diffusion.loss))

        loss, grads = jax.value_and_grad(loss_fn)(state.params)
        return state.apply_gradients(grads), {'loss': loss, 'grad_norm': optax.global_norm(grads)}

    return TrainTask(diffusion_initialiser(config, space, scale_factor), update, batches.host_batches)


def classifier_initialiser(config: ml_collections.ConfigDict, space: DataSpace,
                           scale_factor: float = 1.0) -> Initialiser:
    """rng -> the noise-conditional classifier's initial TrainState."""
    classifier = classifier_from_config(config)

    def init_state(rng: jax.Array) -> TrainState:
        params = classifier.init(rng, jnp.zeros((1, *space.shape)), jnp.zeros((1,), jnp.int32))['params']
        return _initial_state(config, params, scale_factor)

    return init_state


def classifier_task(config: ml_collections.ConfigDict, batches: TrainBatches, space: DataSpace,
                    scale_factor: float = 1.0) -> TrainTask:
    """The TrainTask of the noise-conditional classifier (`config.classifier`)."""
    classifier = classifier_from_config(config)
    schedule = schedule_from_config(config.diffusion)
    max_t = config.classifier.max_timestep or config.diffusion.num_timesteps
    if not 0 < max_t <= config.diffusion.num_timesteps:
        raise ConfigError(f'classifier.max_timestep={max_t} must be in 1..diffusion.num_timesteps')

    def update(state: TrainState, batch: Batch, rng: jax.Array) -> tuple[TrainState, dict[str, jax.Array]]:
        x0 = model_input(batch, state.extra['scale_factor'])
        t_rng, noise_rng, dropout_rng = jax.random.split(rng, 3)
        t = jax.random.randint(t_rng, x0.shape[:1], 0, max_t)
        x_t = q_sample(schedule, x0, t, jax.random.normal(noise_rng, x0.shape))

        def loss_fn(params: dict) -> tuple[jax.Array, jax.Array]:
            logits = classifier.apply({'params': params}, x_t, t, train=True, rngs={'dropout': dropout_rng})
            return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, batch['label'])), logits

        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        accuracy = jnp.mean(jnp.argmax(logits, -1) == batch['label'])
        return state.apply_gradients(grads), {'loss': loss, 'accuracy': accuracy,
                                              'grad_norm': optax.global_norm(grads)}

    return TrainTask(classifier_initialiser(config, space, scale_factor), update, batches.host_batches)

"""What a config describes: where diffusion runs (pixels or a first stage's latents), the noise schedule, the
network the run trains (the denoiser, or the noise-conditional classifier of classifier guidance), the networks
it reads from other runs, and the training task.

Diffusion (DDPM Algorithm 1 with L_simple, eq. 14): t ~ U{0..T-1}, eps ~ N(0, I),
x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, loss = mean ||target - net(x_t, t[, y])||^2 with target eps,
x_0 or v; with a learned variance (improved DDPM's hybrid loss, eq. 16) plus lambda T L_{t-1}, one uniform draw
of T L_vlb's terms. With classifier-free guidance the label is replaced by the null label with probability p.
Classifier (Dhariwal & Nichol 2021, sec. 4): cross-entropy of p_phi(y | x_t, t) on the same noisy inputs.
x_0 is the image mapped to [-1, 1], or the first-stage latent times the scale factor (kept in the state's
`extra`, so that sampling uses the factor the model was trained with).
"""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from gen_runtime.data import Batch, TrainBatches
from gen_runtime.train_state import TrainState
from gen_runtime.trainer import Initialiser, TrainTask
from ldm_jax.cascade import training_condition
from ldm_jax.data import image_shape, to_model_range
from ldm_jax.diffusion import hybrid_vlb_term, loss_simple, output_channels, q_sample, split_variance, training_target
from ldm_jax.guidance import drop_labels
from ldm_jax.models import classifier_from_config, unet_from_config
from ldm_jax.pretrained import FirstStage, GuidanceClassifier, first_stage_of, guidance_classifier_of, run_config
from ldm_jax.schedule import Schedule, schedule_from_config


@dataclasses.dataclass(frozen=True)
class DataSpace:
    """Where diffusion runs: (H, W, C) of x_0 and whether it is a first-stage latent."""

    shape: tuple[int, int, int]
    latent: bool


@dataclasses.dataclass(frozen=True)
class Experiment:
    """The parts of a config's model, shared by every mode."""

    config: ml_collections.ConfigDict
    space: DataSpace
    schedule: Schedule
    network: nn.Module  # what the run trains: the denoiser (task='diffusion') or the classifier (task='classifier')
    first_stage: FirstStage | None  # latent diffusion: the autoencoder of latent.first_stage_workdir
    guide: GuidanceClassifier | None  # classifier guidance (sampling.classifier_scale > 0)
    base: 'Experiment | None' = None  # a cascade's super-resolution stage: the base run's (cascade.base_workdir)


def make_experiment(config: ml_collections.ConfigDict) -> Experiment:
    """The Experiment of `config`; reads the saved configs of the runs it names, no weights."""
    first_stage = first_stage_of(config)
    if first_stage is None:
        space = DataSpace(image_shape(config), latent=False)
    else:
        space = DataSpace(first_stage.latent_shape(), latent=True)
    if config.task == 'diffusion':
        cond_channels = space.shape[-1] if config.cascade.low_resolution else 0
        network = unet_from_config(config, output_channels(config.diffusion.variance, space.shape[-1]), cond_channels)
        guide = guidance_classifier_of(config)
    else:
        network, guide = classifier_from_config(config), None
    base = None
    if config.task == 'diffusion' and config.cascade.low_resolution and config.cascade.base_workdir:
        base = make_experiment(run_config(config.cascade.base_workdir, 'cascade.base_workdir'))
    return Experiment(config, space, schedule_from_config(config.diffusion), network, first_stage, guide, base)


def model_input(batch: Batch, scale_factor: jax.Array) -> jax.Array:
    """x_0 of a batch: scaled latents, or images in [0, 1] mapped to [-1, 1]."""
    if 'latent' in batch:
        return batch['latent'] * scale_factor
    return to_model_range(batch['image'])


def stage_inputs(exp: Experiment, x: jax.Array) -> dict[str, jax.Array]:
    """The extra inputs of a cascade's super-resolution stage for a batch like x (zeros: shapes only), else {}."""
    if not exp.config.cascade.low_resolution:
        return {}
    return {'cond': jnp.zeros_like(x), 'level': jnp.zeros(x.shape[:1], jnp.int32)}


def initialiser(exp: Experiment, scale_factor: float = 1.0) -> Initialiser:
    """rng -> the initial TrainState of the network the run trains (what its checkpoints hold)."""
    x = jnp.zeros((1, *exp.space.shape))
    t = jnp.zeros((1,), jnp.int32)
    if exp.config.task == 'diffusion':
        labels = jnp.zeros((1,), jnp.int32) if exp.config.model.num_classes > 0 else None

        cond = stage_inputs(exp, x)

        def init_params(rng: jax.Array) -> dict:
            return exp.network.init(rng, x, t, labels, **cond)['params']
    else:
        def init_params(rng: jax.Array) -> dict:
            return exp.network.init(rng, x, t)['params']

    def init_state(rng: jax.Array) -> TrainState:
        extra = {'scale_factor': jnp.asarray(scale_factor, jnp.float32)}
        return TrainState.from_config(init_params(rng), exp.config, extra=extra)

    return init_state


def train_task(exp: Experiment, batches: TrainBatches, scale_factor: float = 1.0) -> TrainTask:
    """The TrainTask of the network the run trains: the denoiser (`config.model`, `config.diffusion`) or the
    noise-conditional classifier (`config.classifier`)."""
    update = _diffusion_update(exp) if exp.config.task == 'diffusion' else _classifier_update(exp)
    return TrainTask(initialiser(exp, scale_factor), update, batches.host_batches)


def _diffusion_update(exp: Experiment):  # noqa: ANN202 - the TrainTask's update
    diffusion, unet, schedule, cascade = exp.config.diffusion, exp.network, exp.schedule, exp.config.cascade
    conditional = exp.config.model.num_classes > 0
    null_label = exp.config.model.num_classes

    def update(state: TrainState, batch: Batch, rng: jax.Array) -> tuple[TrainState, dict[str, jax.Array]]:
        x0 = model_input(batch, state.extra['scale_factor'])
        t_rng, noise_rng, label_rng, dropout_rng = jax.random.split(rng, 4)
        t = jax.random.randint(t_rng, x0.shape[:1], 0, diffusion.num_timesteps)
        noise = jax.random.normal(noise_rng, x0.shape)
        x_t = q_sample(schedule, x0, t, noise)
        labels = drop_labels(batch['label'], null_label, diffusion.label_dropout, label_rng) if conditional else None
        target = training_target(diffusion.parameterization, schedule, x0, t, noise)
        stage = {}
        if cascade.low_resolution:
            cond, level = training_condition(schedule, x0, cascade.low_resolution, cascade.max_level,
                                             jax.random.fold_in(rng, 1))
            stage = {'cond': cond, 'level': level}

        def loss_fn(params: dict) -> tuple[jax.Array, dict[str, jax.Array]]:
            out = unet.apply({'params': params}, x_t, t, labels, train=True, rngs={'dropout': dropout_rng}, **stage)
            simple = jnp.mean(loss_simple(split_variance(diffusion.variance, out)[0], target, diffusion.loss))
            if diffusion.variance != 'learned_range':
                return simple, {}
            vlb = jnp.mean(hybrid_vlb_term(schedule, diffusion.parameterization, x0, x_t, t, out))
            return simple + diffusion.vlb_weight * diffusion.num_timesteps * vlb, {'loss_simple': simple,
                                                                                    'loss_vlb_term': vlb}

        (loss, parts), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        return state.apply_gradients(grads), {'loss': loss, **parts, 'grad_norm': optax.global_norm(grads)}

    return update


def classifier_max_timestep(config: ml_collections.ConfigDict) -> int:
    """The classifier trains on t < this (classifier.max_timestep, 0: all of diffusion.num_timesteps)."""
    return config.classifier.max_timestep or config.diffusion.num_timesteps


def _classifier_update(exp: Experiment):  # noqa: ANN202 - the TrainTask's update
    classifier, schedule = exp.network, exp.schedule
    max_t = classifier_max_timestep(exp.config)

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

    return update

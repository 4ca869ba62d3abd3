"""What a config describes on one zero-shot problem: the generator and discriminator of `model.variant` sized to
the problem (feature and text dimensions, seen classes), their training task, and the feature sampler."""

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gen_runtime.data import ArrayDataset, TrainBatches
from gen_runtime.precision import compute_dtype
from gen_runtime.pytree import PyTree
from gen_runtime.trainer import Initialiser, TrainTask
from zsl_jax.evaluation import generate
from zsl_jax.gan import draws_per_step, make_init_state, make_update
from zsl_jax.models import Discriminator, Generator, make_models
from zsl_jax.problem import ZslProblem


@dataclasses.dataclass(frozen=True)
class Experiment:
    """The parts of a config's model on `problem`, shared by every mode."""

    config: ml_collections.ConfigDict
    problem: ZslProblem
    generator: Generator
    discriminator: Discriminator


def make_experiment(config: ml_collections.ConfigDict, problem: ZslProblem) -> Experiment:
    """The Experiment of `config` on `problem` (zsl_jax.data.load_problem: its sizes fix the networks')."""
    generator, discriminator = make_models(config.model, problem.feature_dim, problem.num_seen,
                                           compute_dtype(config.runtime.compute_dtype))
    return Experiment(config, problem, generator, discriminator)


def initialiser(exp: Experiment) -> Initialiser:
    """rng -> the players' initial TrainStates and the seen classes' text and pivots (what checkpoints hold)."""
    return make_init_state(exp.config, exp.problem, exp.generator, exp.discriminator)


def training_batches(exp: Experiment) -> TrainBatches:
    """Batches of the seen classes' training features: every draw of one iteration in one global batch."""
    config, problem = exp.config, exp.problem
    dataset = ArrayDataset({'feature': problem.train_features, 'label': problem.train_labels.astype(np.int32)})
    return TrainBatches(dataset, config.training.batch_size * draws_per_step(config), config.seed)


def train_task(exp: Experiment, batches: TrainBatches) -> TrainTask:
    """The TrainTask of `model.variant` (without evaluation; zsl_jax.protocol adds it)."""
    return TrainTask(initialiser(exp), make_update(exp.config, exp.generator, exp.discriminator), batches.host_batches)


def evaluated_params(config: ml_collections.ConfigDict, state: PyTree) -> PyTree:
    """The generator parameters evaluation uses: the EMA ones if eval.use_ema, else the raw ones."""
    generator = state['generator']
    return generator.ema_params if config.eval.use_ema else generator.params


class Sampler:
    """`sampler(params, rng)` -> (U * per_class, D) generated features of the problem's unseen classes, class-major
    (row i belongs to unseen class i // per_class): what the zero-shot classifiers are fitted to. Pure and jitted;
    `params` are the generator's."""

    def __init__(self, exp: Experiment, per_class: int) -> None:
        text = jnp.asarray(exp.problem.unseen_text)
        noise_dim = exp.config.model.noise_dim
        self._fn = jax.jit(lambda params, rng: generate(exp.generator, params, text, per_class, noise_dim, rng))

    def __call__(self, params: PyTree, rng: jax.Array) -> jax.Array:
        return self._fn(params, rng)

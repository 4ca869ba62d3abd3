"""A tiny real training problem for the runtime's tests: linear regression through the runtime.

Run as a script it trains in `--workdir` and writes the final parameters to `--out` (npz), so tests
can compare runs across device counts, processes and restarts.
"""

import argparse

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from configs import common
from gen_runtime import data, trainer
from gen_runtime.parallel import init_distributed
from gen_runtime.train_state import TrainState

DIM = 8


def toy_config(**training: int | str) -> ml_collections.ConfigDict:
    config = common.get_config()
    config.family = 'toy'
    config.training.update({'batch_size': 16, 'num_steps': 40, 'log_every': 10, 'checkpoint_every': 20, **training})
    config.optim.learning_rate = 0.05
    config.runtime.progress_bar = False
    config.runtime.tensorboard = False
    return config


def toy_dataset(n: int = 256) -> data.ArrayDataset:
    x = np.random.default_rng(0).normal(size=(n, DIM)).astype(np.float32)
    return data.ArrayDataset({'x': x, 'y': x @ np.linspace(-1.0, 1.0, DIM, dtype=np.float32) + 0.5})


def toy_task(config: ml_collections.ConfigDict, noise: float = 0.0, nan_after: int = -1) -> trainer.TrainTask:
    """Regression y = w.x + b with an MLP; `noise` adds rng-driven input noise (exercises step rngs).

    With `nan_after` >= 0 the loss turns NaN once the state has taken that many steps.
    """
    model = nn.Sequential([nn.Dense(16), nn.tanh, nn.Dense(1)])

    def init_state(rng: jax.Array) -> TrainState:
        return TrainState.from_config(model.init(rng, jnp.zeros((1, DIM))), config)

    def update(state: TrainState, batch: dict, rng: jax.Array) -> tuple[TrainState, dict]:
        x = batch['x'] + noise * jax.random.normal(rng, batch['x'].shape)

        def loss_fn(params: dict) -> jax.Array:
            return jnp.mean((model.apply(params, x)[:, 0] - batch['y']) ** 2)

        loss, grads = jax.value_and_grad(loss_fn)(state.params)
        if nan_after >= 0:
            loss = jnp.where(state.step >= nan_after, jnp.nan, loss)
        return state.apply_gradients(grads), {'loss': loss}

    batches = data.TrainBatches(toy_dataset(), config.training.batch_size, config.seed)
    return trainer.TrainTask(init_state, update, batches.host_batches)


def flat_params(state: TrainState) -> dict[str, np.ndarray]:
    leaves = jax.tree_util.tree_flatten_with_path(state.params)[0]
    return {jax.tree_util.keystr(path): np.asarray(jax.device_get(v)) for path, v in leaves}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('--workdir', required=True)
    parser.add_argument('--out', required=True)
    parser.add_argument('--num_steps', type=int, default=40)
    parser.add_argument('--steps_per_call', type=int, default=1)
    parser.add_argument('--noise', type=float, default=0.1)
    parser.add_argument('--coordinator', default='')
    parser.add_argument('--num_processes', type=int, default=0)
    parser.add_argument('--process_id', type=int, default=-1)
    args = parser.parse_args()
    config = toy_config(num_steps=args.num_steps, steps_per_call=args.steps_per_call)
    if args.coordinator:
        config.runtime.update(distributed=True, coordinator_address=args.coordinator,
                              num_processes=args.num_processes, process_id=args.process_id)
    init_distributed(config.runtime)
    state = trainer.train(config, args.workdir, toy_task(config, args.noise))
    np.savez(args.out, devices=jax.device_count(), processes=jax.process_count(), **flat_params(state))


if __name__ == '__main__':
    main()

"""Benchmark: one sde_jax training step (DSM loss, backward, Adam, parameter EMA) against the same network and
step in PyTorch, same batch size.

Row: the MNIST tutorial U-Net (configs/sde/mnist_tutorial.py: VE SDE, batch 32, Adam 1e-4, EMA with warm-up)
against benchmarks/sde_torch_baseline.py's `TorchTutorialUNet` with our parameters copied in and
`TorchDSMTrainer`'s step. Ours is the step sde_jax.experiment.train_task runs (the config's loss, value_and_grad,
TrainState.apply_gradients) under jit. Before timing, the loss and its gradient at the same times and noise
are checked to agree (forward and backward of the same network). DDPM++ cont. has no row here: no PyTorch
DDPM++ is written for it (the score_sde_pytorch code is not imported), see benchmarks/device_suite.py for ours.

    python -m benchmarks.sde_training [--batch 32] [--repeats 5] [--tiny] [--out DIR] [--no-readme]

`--tiny` (CI): batch 2, one repeat.
"""

import argparse
import sys

import jax
import jax.numpy as jnp
import numpy as np
import torch

from benchmarks.harness import compare, merge_checks, parse_arguments, record_from_args, same_network
from benchmarks.sde_sampling import tutorial_pair
from benchmarks.sde_torch_baseline import TorchDSMTrainer, TorchVESDE
from gen_runtime.pytree import count_params
from gen_runtime.train_state import TrainState
from sde_jax.conditioning import time_input
from sde_jax.losses import make_loss_fn
from sde_jax.sde import batch_broadcast


def gradient_check(exp, params, trainer: TorchDSMTrainer, x: np.ndarray) -> dict:
    """The DSM loss, the global gradient norm and the output bias's gradient at the same (t, z) on both sides."""
    rng = np.random.default_rng(1)
    t = rng.uniform(1e-5, 1.0, x.shape[0]).astype(np.float32)
    z = rng.standard_normal(x.shape).astype(np.float32)

    def loss_fn(p: dict) -> jax.Array:
        x_t = x + batch_broadcast(exp.sde.marginal_prob(x, t)[1], x) * z
        residual = (exp.model.apply({'params': p}, x_t, time_input(exp.sde, jnp.asarray(t)), train=True) - z) ** 2
        axes = (1, 2, 3)
        return jnp.mean(jnp.mean(residual, axes) if exp.config.loss.reduce_mean else 0.5 * jnp.sum(residual, axes))

    loss, grads = jax.jit(jax.value_and_grad(loss_fn))(params)
    norm = jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree.leaves(grads)))
    nchw = (0, 3, 1, 2)
    trainer.model.zero_grad(set_to_none=True)
    theirs = trainer.loss(torch.from_numpy(x).permute(*nchw), torch.from_numpy(t), torch.from_numpy(z).permute(*nchw))
    theirs.backward()
    theirs_norm = torch.sqrt(sum((p.grad**2).sum() for p in trainer.params)).item()
    bias_grad = trainer.model.out.bias.grad.numpy().copy()
    trainer.model.zero_grad(set_to_none=True)
    return merge_checks(
        same_network([float(loss), float(norm)], [theirs.item(), theirs_norm], what='DSM loss and gradient norm'),
        same_network(grads['Conv_4']['bias'], bias_grad, what='output bias gradient'))


def training_pair(batch: int) -> tuple:
    """(ours, theirs, same-network record, parameter count): one training step each of the tutorial U-Net
    (ours: the library's loss under jit with TrainState.apply_gradients; theirs: TorchDSMTrainer.step)."""
    exp, params, torch_model, forward_check, _ = tutorial_pair(batch)
    config = exp.config
    optim = config.optim
    assert optim.optimizer == 'adam' and optim.grad_clip == 0 and optim.warmup_steps == 0 and \
        optim.schedule == 'constant', 'the PyTorch step implements constant-rate Adam without clipping'
    assert config.loss.type == 'dsm' and config.loss.weighting == 'sigma2' and config.sde.ve_marginal_std == 'exact'
    trainer = TorchDSMTrainer(torch_model, TorchVESDE(exp.sde.sigma_min, exp.sde.sigma_max), lr=optim.learning_rate,
                              betas=(optim.beta1, optim.beta2), adam_eps=optim.eps, ema_rate=optim.ema_rate,
                              ema_warmup=optim.ema_warmup, loss_eps=config.loss.eps,
                              reduce_mean=config.loss.reduce_mean)
    images = np.random.default_rng(2).uniform(size=(batch, 28, 28, 1)).astype(np.float32)
    x = np.asarray(exp.to_model_space(images))
    check = merge_checks(forward_check, gradient_check(exp, params, trainer, x))

    loss_fn = make_loss_fn(config.loss, exp.model, exp.sde)

    @jax.jit
    def update(state: TrainState, x: jax.Array, rng: jax.Array) -> tuple[TrainState, jax.Array]:
        loss, grads = jax.value_and_grad(loss_fn)(state.params, x, rng)
        return state.apply_gradients(grads), loss

    holder = {'state': TrainState.from_config(params, config), 'step': 0}
    x_jax = jnp.asarray(x)

    def ours() -> jax.Array:
        holder['state'], loss = update(holder['state'], x_jax, jax.random.key(holder['step']))
        holder['step'] += 1
        return loss

    ours.lower = lambda: update.lower(holder['state'], x_jax, jax.random.key(0))  # for benchmarks.profile_ops
    x_torch = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    generator = torch.Generator().manual_seed(0)
    count = count_params(params)
    return ours, lambda: trainer.step(x_torch, generator), check, count


def tutorial_training(batch: int, repeats: int, warmup: int) -> dict:
    ours, theirs, check, count = training_pair(batch)
    return compare(f'training step, tutorial U-Net, batch {batch}', ours, theirs, repeats=repeats, warmup=warmup,
                   unit='examples', work_per_call=batch,
                   details={'same_network': check, 'parameters': count, 'batch': batch,
                            'torch_threads': torch.get_num_threads()})


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batch', type=int, default=32, help='the tutorial config trains at batch 32')
    parser.add_argument('--repeats', type=int, default=5)
    args = parse_arguments(parser, argv)
    if args.tiny:
        args.batch, args.repeats = 2, 1
    rows = [tutorial_training(args.batch, args.repeats, 0 if args.tiny else 1)]
    record_from_args('sde_training', rows, ' '.join(['python -m benchmarks.sde_training', *argv]), args)


if __name__ == '__main__':
    main(sys.argv[1:])

"""Benchmark: one sde_jax training step (DSM loss, backward, Adam, parameter EMA) against the same network and
step in PyTorch, same batch size.

Rows:
- the MNIST tutorial U-Net (configs/sde/mnist_tutorial.py: VE SDE, batch 32, Adam 1e-4, EMA with warm-up)
  against benchmarks/sde_torch_baseline.py's `TorchTutorialUNet` with our parameters copied in;
- DDPM++ cont. (configs/sde/cifar10_ddpmpp_continuous.py: VP SDE, 32x32x3, ~62M parameters, dropout 0.1,
  clipping at 1, Adam warm-up) against benchmarks/ddpmpp_torch.py's `TorchDDPMpp`, whose parameters our own
  importer (sde_jax.convert.ncsnpp_from_pytorch) maps to ours.
Theirs is `TorchDSMTrainer`'s step; ours the step sde_jax.experiment.train_task runs (the config's loss,
value_and_grad, TrainState.apply_gradients) under jit. Before timing, the loss and its gradient at the same times
and noise are checked to agree (forward and backward of the same network; DDPM++ without dropout for the check).

    python -m benchmarks.sde_training [--batch 32] [--ddpmpp-batch 8] [--repeats 5] [--tiny] [--out DIR]
                                      [--no-readme]

`--tiny` (CI): batch 2, one repeat, DDPM++ at 8x8 with nf 16 and two levels.
"""

import argparse
import sys

import jax
import jax.numpy as jnp
import numpy as np
import torch

from benchmarks.ddpmpp_torch import TorchDDPMpp
from benchmarks.harness import compare, merge_checks, parse_arguments, record_from_args, same_network
from benchmarks.sde_sampling import tutorial_pair
from benchmarks.sde_torch_baseline import TorchDSMTrainer, TorchVESDE, TorchVPSDE
from gen_runtime.config import load_config_file
from gen_runtime.pytree import count_params
from gen_runtime.train_state import TrainState
from sde_jax import convert
from sde_jax.conditioning import time_input
from sde_jax.experiment import Experiment, make_experiment
from sde_jax.losses import make_loss_fn
from sde_jax.sde import batch_broadcast

NCHW = (0, 3, 1, 2)
# configs/sde/cifar10_ddpmpp_continuous.py's network shrunk for --tiny at 8x8: two levels (both resampling
# blocks), attention at 4x4.
TINY_DDPMPP = {'nf': 16, 'ch_mult': (1, 2), 'num_res_blocks': 1, 'attn_resolutions': (4,)}


def gradient_check(exp: Experiment, params: dict, trainer: TorchDSMTrainer, x: np.ndarray,
                   output_bias: tuple[str, torch.Tensor], train: bool) -> dict:
    """The DSM loss, the global gradient norm and the gradient of the output convolution's bias (`output_bias`:
    our module's name, their bias) at the same (t, z) on both sides; `train=False` checks without dropout (both
    sides in eval mode)."""
    rng = np.random.default_rng(1)
    t = rng.uniform(1e-5, 1.0, x.shape[0]).astype(np.float32)
    z = rng.standard_normal(x.shape).astype(np.float32)

    def loss_fn(p: dict) -> jax.Array:
        mean, std = exp.sde.marginal_prob(x, t)
        x_t = mean + batch_broadcast(std, x) * z
        residual = (exp.model.apply({'params': p}, x_t, time_input(exp.sde, jnp.asarray(t)), train=train) - z) ** 2
        axes = (1, 2, 3)
        return jnp.mean(jnp.mean(residual, axes) if exp.config.loss.reduce_mean else 0.5 * jnp.sum(residual, axes))

    loss, grads = jax.jit(jax.value_and_grad(loss_fn))(params)
    norm = jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree.leaves(grads)))
    trainer.model.zero_grad(set_to_none=True)
    trainer.model.train(train)
    theirs = trainer.loss(torch.from_numpy(x).permute(*NCHW), torch.from_numpy(t), torch.from_numpy(z).permute(*NCHW))
    theirs.backward()
    trainer.model.train()
    theirs_norm = torch.sqrt(sum((p.grad**2).sum() for p in trainer.params)).item()
    bias_grad = output_bias[1].grad.numpy().copy()
    trainer.model.zero_grad(set_to_none=True)
    return merge_checks(
        same_network([float(loss), float(norm)], [theirs.item(), theirs_norm], what='DSM loss and gradient norm'),
        same_network(grads[output_bias[0]]['bias'], bias_grad, what='output bias gradient'))


def torch_trainer(exp: Experiment, model: torch.nn.Module) -> TorchDSMTrainer:
    """TorchDSMTrainer with the config's loss and optimiser (Adam, constant rate after a linear warm-up)."""
    config, optim = exp.config, exp.config.optim
    assert optim.optimizer == 'adam' and optim.schedule == 'constant', \
        'the PyTorch step implements Adam at a constant rate after its warm-up'
    assert config.loss.type == 'dsm' and config.loss.weighting == 'sigma2'
    if config.sde.type == 'vesde':
        assert config.sde.ve_marginal_std == 'exact', 'TorchVESDE has the exact marginal std'
        sde = TorchVESDE(exp.sde.sigma_min, exp.sde.sigma_max)
    else:
        assert config.sde.type == 'vpsde', 'the PyTorch step implements the VE and VP SDEs'
        sde = TorchVPSDE(config.sde.beta_min, config.sde.beta_max)
    return TorchDSMTrainer(model, sde, lr=optim.learning_rate, betas=(optim.beta1, optim.beta2), adam_eps=optim.eps,
                           ema_rate=optim.ema_rate, ema_warmup=optim.ema_warmup, loss_eps=config.loss.eps,
                           reduce_mean=config.loss.reduce_mean, grad_clip=optim.grad_clip,
                           warmup_steps=optim.warmup_steps)


def step_pair(exp: Experiment, params: dict, trainer: TorchDSMTrainer, x: np.ndarray) -> tuple:
    """(ours, theirs): one training step each (ours: the library's loss under jit with
    TrainState.apply_gradients; theirs: TorchDSMTrainer.step on its model's device), on the same batch `x` (NHWC,
    model space)."""
    loss_fn = make_loss_fn(exp.config.loss, exp.model, exp.sde)

    @jax.jit
    def update(state: TrainState, x: jax.Array, rng: jax.Array) -> tuple[TrainState, jax.Array]:
        loss, grads = jax.value_and_grad(loss_fn)(state.params, x, rng)
        return state.apply_gradients(grads), loss

    holder = {'state': TrainState.from_config(params, exp.config), 'step': 0}
    x_jax = jnp.asarray(x)

    def ours() -> jax.Array:
        holder['state'], loss = update(holder['state'], x_jax, jax.random.key(holder['step']))
        holder['step'] += 1
        return loss

    def lowered_with_args() -> tuple:
        """For benchmarks.profile_ops: the step lowered, and the arguments of one step for its compiled form."""
        args = (holder['state'], x_jax, jax.random.key(0))
        return update.lower(*args), args

    ours.lowered_with_args = lowered_with_args
    device = trainer.params[0].device
    x_torch = torch.from_numpy(x).permute(*NCHW).contiguous().to(device)
    generator = torch.Generator(device=device).manual_seed(0)
    return ours, lambda: trainer.step(x_torch, generator)


def training_pair(batch: int) -> tuple:
    """(ours, theirs, same-network record, parameter count): one training step each of the tutorial U-Net."""
    exp, params, torch_model, forward_check, _ = tutorial_pair(batch)
    trainer = torch_trainer(exp, torch_model)
    images = np.random.default_rng(2).uniform(size=(batch, 28, 28, 1)).astype(np.float32)
    x = np.asarray(exp.to_model_space(images))
    output_bias = ('Conv_4', torch_model.out.bias)
    check = merge_checks(forward_check, gradient_check(exp, params, trainer, x, output_bias, train=True))
    return (*step_pair(exp, params, trainer, x), check, count_params(params))


def ddpmpp_experiment(tiny: dict | None = None, dtype: str = 'float32') -> Experiment:
    """configs/sde/cifar10_ddpmpp_continuous.py computing in `dtype`; `tiny` (model fields such as TINY_DDPMPP):
    that network at 8x8."""
    config = load_config_file('configs/sde/cifar10_ddpmpp_continuous.py')
    config.runtime.compute_dtype = dtype
    if tiny:
        config.model.update(tiny)
        config.data.image_size = 8
    return make_experiment(config)


def torch_ddpmpp(exp: Experiment) -> TorchDDPMpp:
    """TorchDDPMpp of the experiment's network (the configuration benchmarks/ddpmpp_torch.py implements)."""
    model = exp.config.model
    implemented = {'name': 'ncsnpp', 'resblock_type': 'biggan', 'fir': False, 'progressive': 'none',
                   'progressive_input': 'none', 'embedding_type': 'positional', 'skip_rescale': True,
                   'resamp_with_conv': True}
    differs = {k: model[k] for k, v in implemented.items() if model[k] != v}
    assert not differs and exp.config.data.centered, f'TorchDDPMpp implements DDPM++ cont. only, not {differs}'
    return TorchDDPMpp(exp.config.data.num_channels, exp.config.data.image_size, model.nf, model.ch_mult,
                       model.num_res_blocks, model.attn_resolutions, model.dropout)


def ddpmpp_params(exp: Experiment, model: TorchDDPMpp) -> dict:
    """Our parameters of the same function as `model`: its state dict mapped by
    sde_jax.convert.ncsnpp_from_pytorch (the importer of score_sde_pytorch checkpoints)."""
    side, channels = exp.config.data.image_size, exp.config.data.num_channels
    x, label = jnp.zeros((1, side, side, channels)), jnp.zeros((1,))
    shapes = jax.eval_shape(lambda: exp.model.init(jax.random.key(0), x, label))['params']
    state_dict = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    return jax.tree.map(jnp.asarray, convert.ncsnpp_from_pytorch(state_dict, shapes, convert.call_order(exp.model, x,
                                                                                                        label)))


def ddpmpp_pair(batch: int, tiny: bool = False) -> tuple:
    """(experiment, our parameters, TorchDDPMpp with the same function, same-network record): outputs compared
    without dropout on `batch` inputs."""
    exp = ddpmpp_experiment(TINY_DDPMPP if tiny else None)
    torch.manual_seed(0)
    model = torch_ddpmpp(exp)
    params = ddpmpp_params(exp, model)
    side = exp.config.data.image_size
    x = np.random.default_rng(0).standard_normal((batch, side, side, exp.config.data.num_channels)).astype(np.float32)
    label = np.linspace(0.0, 999.0, batch).astype(np.float32)
    ours = jax.jit(lambda p, v, s: exp.model.apply({'params': p}, v, s))(params, jnp.asarray(x), jnp.asarray(label))
    with torch.no_grad():
        theirs = model.eval()(torch.from_numpy(x).permute(*NCHW), torch.from_numpy(label)).permute(0, 2, 3, 1)
    return exp, params, model.train(), same_network(ours, theirs.numpy(), what='DDPM++ outputs')


def ddpmpp_training_pair(batch: int, tiny: bool = False) -> tuple:
    """(ours, theirs, same-network record, parameter count): one training step each of DDPM++ cont."""
    exp, params, model, forward_check = ddpmpp_pair(batch, tiny)
    trainer = torch_trainer(exp, model)
    side = exp.config.data.image_size
    images = np.random.default_rng(2).uniform(size=(batch, side, side, 3)).astype(np.float32)
    x = np.asarray(exp.to_model_space(images))
    output_bias = (convert.call_order(exp.model, jnp.asarray(x), jnp.zeros((batch,)))[-1], model.all_modules[-1].bias)
    check = merge_checks(forward_check, gradient_check(exp, params, trainer, x, output_bias, train=False))
    return (*step_pair(exp, params, trainer, x), check, count_params(params))


def training_row(name: str, pair: tuple, batch: int, repeats: int, warmup: int) -> dict:
    ours, theirs, check, count = pair
    return compare(f'training step, {name}, batch {batch}', ours, theirs, repeats=repeats, warmup=warmup,
                   unit='examples', work_per_call=batch,
                   details={'same_network': check, 'parameters': count, 'batch': batch,
                            'torch_threads': torch.get_num_threads()})


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batch', type=int, default=32, help='the tutorial config trains at batch 32')
    parser.add_argument('--ddpmpp-batch', type=int, default=8, help='DDPM++ cont. (the config trains at 128)')
    parser.add_argument('--repeats', type=int, default=5)
    args = parse_arguments(parser, argv)
    if args.tiny:
        args.batch, args.ddpmpp_batch, args.repeats = 2, 2, 1
    warmup = 0 if args.tiny else 1
    rows = [training_row('tutorial U-Net', training_pair(args.batch), args.batch, args.repeats, warmup),
            training_row(f'DDPM++ cont.{" (tiny)" if args.tiny else ""}',
                         ddpmpp_training_pair(args.ddpmpp_batch, args.tiny), args.ddpmpp_batch, args.repeats, warmup)]
    record_from_args('sde_training', rows, ' '.join(['python -m benchmarks.sde_training', *argv]), args)


if __name__ == '__main__':
    main(sys.argv[1:])

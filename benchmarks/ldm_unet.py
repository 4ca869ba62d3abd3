"""The ~5M-parameter latent-diffusion UNet (configs/ldm/celebahq_ldm_small.py) on 3x64x64 latents, ours vs
diffusers' PyTorch UNet2DModel of the same architecture and the same weights: one training step (forward,
L_simple, backward, Adam, parameter EMA) and 50-step DDIM sampling, same batch.

    python -m benchmarks.ldm_unet [--batch 8] [--sample-batch 4] [--repeats 3] [--tiny] [--out DIR] [--no-readme]

Before timing, both UNets' noise predictions on the same latents and timesteps are checked to agree.
`--tiny` (CI): width 32, two levels (channel_mult (1, 2), attention at the second) on 16x16x3 latents, batch 2,
2 DDIM steps, one repeat.
"""

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import torch
from diffusers import DDIMScheduler, UNet2DModel

from benchmarks.harness import compare, merge_checks, parse_arguments, record_from_args, same_network
from configs.ldm import celebahq_ldm_small
from gen_runtime.data import ArrayDataset, TrainBatches
from gen_runtime.pytree import count_params
from ldm_jax import convert
from ldm_jax.diffusion import split_prediction
from ldm_jax.experiment import DataSpace, Experiment, train_task
from ldm_jax.models import unet_from_config
from ldm_jax.samplers import ddim_sample, ddim_timesteps
from ldm_jax.schedule import schedule_from_config

SHAPE = (64, 64, 3)
DDIM_STEPS = 50


def torch_unet(config, shape: tuple[int, int, int] = SHAPE) -> UNet2DModel:
    """diffusers' UNet2DModel with the small config's architecture (attention at downsampling factors 4 and 8)."""
    m = config.model
    widths = tuple(m.model_channels * k for k in m.channel_mult)
    attention = [2**level in m.attention_resolutions for level in range(len(widths))]
    down = tuple('AttnDownBlock2D' if a else 'DownBlock2D' for a in attention)
    up = tuple('AttnUpBlock2D' if a else 'UpBlock2D' for a in reversed(attention))
    return UNet2DModel(sample_size=shape[0], in_channels=3, out_channels=3, block_out_channels=widths,
                       layers_per_block=m.num_res_blocks, down_block_types=down, up_block_types=up,
                       attention_head_dim=m.num_head_channels, norm_eps=m.norm_eps)


def training_step_pair(config, batch: int, shape: tuple[int, int, int] = SHAPE) -> tuple:
    """(ours, theirs, parameter count, (our UNet, our state holder, the torch UNet)): one training step each
    (forward, L_simple, backward, Adam, parameter EMA) of the same network with the same weights on the same
    latents. Ours is the library's own update under jit; theirs is built and runs on torch's default device
    (call this inside `with torch.device(...)` to choose it)."""
    config.training.batch_size = batch
    config.optim.learning_rate = 1e-4
    config.optim.optimizer = 'adam'
    config.optim.grad_clip = 0.0
    config.optim.ema_warmup = False
    torch.manual_seed(0)
    baseline = torch_unet(config, shape)
    ours = unet_from_config(config, 3)
    shapes = convert.param_shapes(ours, jnp.zeros((1, *shape)), jnp.zeros((1,), jnp.int32))
    params = convert.unet_from_diffusers({k: v.cpu().numpy() for k, v in baseline.state_dict().items()}, shapes)
    count = sum(p.numel() for p in baseline.parameters())
    assert count == count_params(params)

    latents = np.random.default_rng(0).standard_normal((batch, *shape)).astype(np.float32)
    exp = Experiment(config, DataSpace(shape, latent=True), schedule_from_config(config.diffusion), ours, None, None)
    task = train_task(exp, TrainBatches(ArrayDataset({'latent': latents}), batch, 0))
    holder = {'state': task.init_state(jax.random.key(0)).replace(params=params, ema_params=params), 'step': 0}
    batch_arrays = {'latent': jnp.asarray(latents)}
    update = jax.jit(task.update)

    def our_train_step():
        holder['state'], metrics = update(holder['state'], batch_arrays, jax.random.key(holder['step']))
        holder['step'] += 1
        return metrics['loss']

    def lowered_with_args() -> tuple:
        """For benchmarks.profile_ops: the step lowered, and the arguments of one step for its compiled form."""
        args = (holder['state'], batch_arrays, jax.random.key(0))
        return update.lower(*args), args

    our_train_step.lowered_with_args = lowered_with_args
    device = torch.empty(0).device
    baseline.to(device).train()
    abar = torch.from_numpy(np.array(schedule_from_config(config.diffusion).alphas_cumprod)).to(device)
    optimizer = torch.optim.Adam(baseline.parameters(), lr=1e-4)
    ema = [p.detach().clone() for p in baseline.parameters()]
    x0 = torch.from_numpy(latents).permute(0, 3, 1, 2).contiguous().to(device)

    def torch_train_step():
        t = torch.randint(0, 1000, (batch,), device=device)
        noise = torch.randn_like(x0)
        a = abar[t].view(-1, 1, 1, 1)
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
        loss = torch.mean((baseline(x_t, t).sample.float() - noise) ** 2)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():  # the EMA our TrainState keeps
            torch._foreach_mul_(ema, config.optim.ema_rate)
            torch._foreach_add_(ema, [p.detach() for p in baseline.parameters()], alpha=1 - config.optim.ema_rate)
        return loss.item()

    return our_train_step, torch_train_step, count, (ours, holder, baseline)


def forward_check(ours, params, baseline: UNet2DModel, batch: int, shape: tuple[int, int, int]) -> dict:
    """Both UNets' outputs on the same latents and timesteps (eval mode: no dropout)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((batch, *shape)).astype(np.float32)
    t = np.linspace(0, 999, batch).astype(np.int32)
    mine = jax.jit(lambda p, v, s: ours.apply({'params': p}, v, s))(params, jnp.asarray(x), jnp.asarray(t))
    baseline.eval()
    device = next(baseline.parameters()).device
    with torch.no_grad():
        theirs = baseline(torch.from_numpy(x).permute(0, 3, 1, 2).to(device),
                          torch.from_numpy(t.astype(np.int64)).to(device)).sample.permute(0, 2, 3, 1).cpu().numpy()
    baseline.train()
    return same_network(mine, theirs, what='latent UNet outputs')


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--sample-batch', type=int, default=4)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--ddim-steps', type=int, default=DDIM_STEPS)
    args = parse_arguments(parser, argv)
    config = celebahq_ldm_small.get_config()
    shape = SHAPE
    if args.tiny:
        args.batch, args.sample_batch, args.repeats, args.ddim_steps = 2, 1, 1, 2
        config.model.model_channels, config.model.channel_mult, shape = 32, (1, 2), (16, 16, 3)
        config.model.attention_resolutions = (2,)  # attention at the second level, as the small config has
    our_train_step, torch_train_step, count, (ours, holder, baseline) = training_step_pair(config, args.batch, shape)
    assert args.tiny or count == 5_072_643
    params = holder['state'].params
    check = forward_check(ours, params, baseline, 2, shape)
    schedule = schedule_from_config(config.diffusion)
    warmup = 0 if args.tiny else 1
    train = compare(f'training step (batch {args.batch})', our_train_step, torch_train_step, repeats=args.repeats,
                    warmup=warmup, unit='examples', work_per_call=args.batch,
                    details={'parameters': count, 'batch': args.batch, 'latent_shape': shape,
                             'same_network': merge_checks(check)})

    # DDIM sampling (eta = 0, 50 steps), uniform spacing, as latent diffusion samples
    steps = ddim_timesteps('uniform', args.ddim_steps, 1000)

    @jax.jit
    def our_sampler(params, rng):
        def denoise(x, t):
            return split_prediction('eps', schedule, x, t, ours.apply({'params': params}, x, t))

        x_T = jax.random.normal(rng, (args.sample_batch, *shape))
        return ddim_sample(denoise, schedule, x_T, rng, steps, eta=0.0)

    scheduler = DDIMScheduler(num_train_timesteps=1000, beta_start=0.0015, beta_end=0.0195,
                              beta_schedule='scaled_linear', clip_sample=False, set_alpha_to_one=False,
                              steps_offset=1)
    baseline.eval()

    @torch.no_grad()
    def torch_sampler():
        scheduler.set_timesteps(args.ddim_steps)
        x = torch.randn(args.sample_batch, 3, *shape[:2])
        for t in scheduler.timesteps:
            x = scheduler.step(baseline(x, t).sample, t, x).prev_sample
        return x

    sample = compare(f'DDIM {args.ddim_steps} steps (batch {args.sample_batch})',
                     lambda: our_sampler(params, jax.random.key(1)), torch_sampler, repeats=args.repeats,
                     warmup=warmup, unit='images', work_per_call=args.sample_batch,
                     details={'parameters': count, 'batch': args.sample_batch, 'ddim_steps': args.ddim_steps,
                              'same_network': merge_checks(check)})
    command = (f'python -m benchmarks.ldm_unet --batch {args.batch} --sample-batch {args.sample_batch} '
               f'--repeats {args.repeats}')
    record_from_args('ldm_unet', [train, sample], command, args)


if __name__ == '__main__':
    import sys

    main(sys.argv[1:])

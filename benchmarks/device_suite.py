"""The benchmarks at accelerator sizes in one run, float32 and bfloat16, ours against the PyTorch baselines on
the same device (scripts/device_check.sh runs it).

    python -m benchmarks.device_suite --out DIR [--tiny] [--repeats 3]

Rows (ours with runtime.compute_dtype float32 and bfloat16; PyTorch in float32 and under bf16 autocast):
- DDPM++ cont. (configs/sde/cifar10_ddpmpp_continuous.py) training step at batch 128, 32x32: ours only (no
  PyTorch DDPM++ here; the score_sde_pytorch code is not imported).
- The ~5M latent UNet (configs/ldm/celebahq_ldm_small.py) training step at batch 128 on 64x64x3 latents,
  against diffusers' UNet2DModel with the same weights (benchmarks/ldm_unet.py).
- CIZSL iterations at CUB-easy sizes against benchmarks/zsl_cizsl_torch.py.
- Euler-Maruyama 1000 steps of the MNIST tutorial U-Net at batch 128 against benchmarks/sde_torch_baseline.py,
  and DPM-Solver++ (2M) 20 steps of the same network (ours only: the few-step row to read against EM).
- Bits/dim through the probability-flow ODE (rtol = atol = 1e-5, batch 128) against the original's host-side
  scipy RK45 (benchmarks/sde_likelihood.py; float32 only).
`--tiny` shrinks every size so the whole suite runs on a CPU in about a minute (the CI check of the script).
Writes DIR/device_suite.json and DIR/device_suite.md; never touches the README.
"""

import argparse
import contextlib
import functools
import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import torch

from benchmarks.harness import compare, jax_sync, machine
from gen_runtime.config import load_config_file

DTYPES = ('float32', 'bfloat16')


def torch_device() -> str:
    return 'cuda' if torch.cuda.is_available() else 'cpu'


def autocast(dtype: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on the torch device for 'bfloat16', nothing for 'float32'."""
    if dtype == 'bfloat16':
        return torch.autocast(torch_device(), dtype=torch.bfloat16)
    return contextlib.nullcontext()


def on_torch_device(fn: Callable[[], Any], dtype: str) -> Callable[[], Any]:
    """fn run with the torch device as default device and under `dtype`'s autocast."""
    def run() -> Any:
        with torch.device(torch_device()), autocast(dtype):
            return fn()
    return run


def ours_only(name: str, fn: Callable[[], Any], repeats: int, unit: str, work: float) -> dict:
    """A row without a PyTorch baseline: the first call (compile) and the median of `repeats` calls."""
    def timed() -> float:
        start = time.perf_counter()
        jax_sync(fn())
        return time.perf_counter() - start

    first = timed()
    times = [timed() for _ in range(repeats)]
    median = statistics.median(times)
    return {'name': name, 'ours_median_s': median, 'baseline_median_s': None, 'speedup': None,
            'ours_per_s': work / median, 'unit': unit, 'ours_first_call_s': first, 'ours_all_s': times}


def _config(path: str, dtype: str, **overrides: Any) -> Any:
    config = load_config_file(path)
    config.runtime.compute_dtype = dtype
    for key, value in overrides.items():
        section, field = key.split('.')
        config[section][field] = value
    return config


def ddpmpp_training(dtype: str, tiny: bool, repeats: int) -> dict:
    from sde_jax.experiment import make_experiment
    from sde_jax.losses import make_loss_fn

    sizes = ({'model.nf': 16, 'model.ch_mult': (1,), 'model.num_res_blocks': 1, 'model.attn_resolutions': (8,),
              'data.image_size': 8} if tiny else {})
    batch = 4 if tiny else 128
    exp = make_experiment(_config('configs/sde/cifar10_ddpmpp_continuous.py', dtype, **sizes))
    loss_fn = make_loss_fn(exp.config.loss, exp.model, exp.sde)
    side = exp.config.data.image_size
    x = exp.to_model_space(jax.random.uniform(jax.random.key(1), (batch, side, side, 3)))

    @functools.partial(jax.jit, donate_argnums=0)
    def step(state: Any, rng: jax.Array) -> tuple[Any, jax.Array]:
        loss, grads = jax.value_and_grad(loss_fn)(state.params, x, rng)
        return state.apply_gradients(grads), loss

    holder = {'state': jax.jit(exp.init_state)(jax.random.key(0)), 'step': 0}

    def ours() -> jax.Array:
        holder['state'], loss = step(holder['state'], jax.random.key(holder['step']))
        holder['step'] += 1
        return loss

    return ours_only(f'DDPM++ cont. training step, batch {batch}, {side}x{side}', ours, repeats, 'examples', batch)


def latent_unet_training(dtype: str, tiny: bool, repeats: int) -> dict:
    from benchmarks.ldm_unet import training_step_pair
    from configs.ldm import celebahq_ldm_small

    config = celebahq_ldm_small.get_config()
    config.runtime.compute_dtype = dtype
    batch, shape = (2, (16, 16, 3)) if tiny else (128, (64, 64, 3))
    if tiny:
        config.model.channel_mult = (1, 2)
    with torch.device(torch_device()):
        ours, theirs, count, _ = training_step_pair(config, batch, shape)
    return compare(f'latent UNet ({count / 1e6:.1f}M) training step, batch {batch}, {shape[0]}x{shape[1]}x3', ours,
                   on_torch_device(theirs, dtype), repeats=repeats, unit='examples', work_per_call=batch,
                   details={'parameters': count})


def cizsl_iterations(dtype: str, tiny: bool, repeats: int) -> dict:
    from benchmarks.zsl_cizsl import cub_easy_sized_problem
    from benchmarks.zsl_cizsl_torch import TorchCizsl
    from configs.zsl import base
    from zsl_jax import gan

    config = base.use_cizsl(base.get_config())
    config.runtime.compute_dtype = dtype
    if tiny:
        config.training.batch_size, config.model.hidden_dim, config.model.text_reduction_dim = 32, 64, 16
    problem = cub_easy_sized_problem(tiny=tiny)
    task = gan.make_task(config, problem)
    holder = {'state': jax.jit(task.init_state)(jax.random.key(0)), 'step': 0}
    update = jax.jit(task.update)

    def ours() -> jax.Array:
        batch = jax.tree.map(lambda v: v[0], task.host_batches(holder['step'], 1))
        holder['state'], metrics = update(holder['state'], batch, jax.random.key(holder['step']))
        holder['step'] += 1
        return metrics['loss']

    with torch.device(torch_device()):
        baseline = TorchCizsl(problem.train_features, problem.train_labels, problem.seen_text,
                              batch_size=config.training.batch_size, hidden=config.model.hidden_dim,
                              reduced=config.model.text_reduction_dim,
                              creativity_weight=config.cizsl.creativity_weight)
    return compare(f'CIZSL iteration, batch {config.training.batch_size}, hidden {config.model.hidden_dim}', ours,
                   on_torch_device(baseline.step, dtype), repeats=repeats, unit='iterations')


def _tutorial(dtype: str, tiny: bool) -> tuple[Any, dict, int]:
    from sde_jax.experiment import make_experiment

    exp = make_experiment(_config('configs/sde/mnist_tutorial.py', dtype))
    return exp, jax.jit(exp.init_params)(jax.random.key(0)), 4 if tiny else 128


def euler_maruyama_sampling(dtype: str, tiny: bool, repeats: int) -> dict:
    from benchmarks.sde_torch_baseline import TorchTutorialUNet, TorchVESDE, euler_maruyama, load_flax_params
    from sde_jax.sampling import get_corrector, get_predictor, pc_sample

    exp, params, batch = _tutorial(dtype, tiny)
    steps, eps = (10 if tiny else 1000), 1e-3
    sample = jax.jit(functools.partial(pc_sample, exp.sde, exp.score_fn(params), (batch, 28, 28, 1),
                                       predictor=get_predictor('euler_maruyama'), corrector=get_corrector('none', 0, 0),
                                       num_steps=steps, eps=eps, denoise_last=False))
    device = torch_device()
    model = load_flax_params(TorchTutorialUNet(), jax.device_get(params)).to(device)
    torch_sde = TorchVESDE(exp.sde.sigma_min, exp.sde.sigma_max)
    generator = torch.Generator(device=device).manual_seed(0)
    counter = iter(range(10**6))
    return compare(f'Euler-Maruyama {steps} steps, tutorial U-Net, batch {batch}',
                   lambda: sample(jax.random.key(next(counter))),
                   on_torch_device(lambda: euler_maruyama(model, torch_sde, (batch, 1, 28, 28), steps, eps, generator),
                                   dtype), repeats=repeats, unit='samples', work_per_call=batch)


def dpm_solver_sampling(dtype: str, tiny: bool, repeats: int) -> dict:
    from sde_jax.generation import few_step_times
    from sde_jax.sampling import few_step_sample

    exp, params, batch = _tutorial(dtype, tiny)
    exp.config.sampling.method, exp.config.sampling.num_steps = 'dpm_solver_pp', 20
    sample = jax.jit(functools.partial(few_step_sample, exp.sde, exp.score_fn(params), (batch, 28, 28, 1),
                                       times=few_step_times(exp), method='dpm_solver_pp'))
    counter = iter(range(10**6))
    return ours_only(f'DPM-Solver++(2M) 20 steps (21 NFE), tutorial U-Net, batch {batch}',
                     lambda: sample(jax.random.key(next(counter))), repeats, 'samples', batch)


def likelihood(dtype: str, tiny: bool, repeats: int) -> dict:
    from benchmarks.sde_likelihood import EPS, scipy_log_likelihood
    from sde_jax.likelihood import draw_probes, ode_log_likelihood

    exp, params, batch = _tutorial(dtype, tiny)
    tol = 1e-3 if tiny else 1e-5
    x = exp.to_model_space(jax.random.uniform(jax.random.key(2), (batch, 28, 28, 1)))
    probes = draw_probes(jax.random.key(1), 'rademacher', 1, x.shape)
    ours = jax.jit(lambda p: ode_log_likelihood(exp.sde, exp.score_fn(p), x, jax.random.key(1), rtol=tol, atol=tol,
                                                 eps=EPS, probes=probes)[0])
    name = f'bits/dim, probability-flow ODE, rtol=atol={tol:g}, tutorial U-Net, batch {batch}'
    if dtype != 'float32':
        return ours_only(name, lambda: ours(params), repeats, 'images', batch)
    return compare(name, lambda: ours(params), lambda: scipy_log_likelihood(exp, params, np.asarray(x), probes, tol),
                   repeats=repeats, baseline_sync=lambda r: r, unit='images', work_per_call=batch)


CASES = (ddpmpp_training, latent_unet_training, cizsl_iterations, euler_maruyama_sampling, dpm_solver_sampling,
         likelihood)


def markdown(rows: list[dict], about: dict) -> str:
    lines = ['| benchmark | dtype | ours (median) | PyTorch (median) | PyTorch time / ours | ours first call |',
             '|---|---|---|---|---|---|']
    for r in rows:
        theirs = (f"{r['baseline_median_s']:.4g} s" if r['baseline_median_s'] is not None else 'none')
        ratio = f"{r['speedup']:.2f}x" if r['speedup'] is not None else '-'
        lines.append(f"| {r['name']} | {r['dtype']} | {r['ours_median_s']:.4g} s ({r['ours_per_s']:.4g} "
                     f"{r['unit']}/s) | {theirs} | {ratio} | {r['ours_first_call_s']:.3g} s |")
    lines += ['', f"Measured {about['date']} on {about['jax_devices']} (torch on {about['torch_device']}) with "
              f"`{about['command']}`."]
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', required=True, help='folder for device_suite.json and device_suite.md')
    parser.add_argument('--tiny', action='store_true', help='CPU sizes (the CI check of the script)')
    parser.add_argument('--repeats', type=int, default=3)
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    rows = []
    for case in CASES:
        for dtype in DTYPES:
            start = time.perf_counter()
            row = case(dtype, args.tiny, args.repeats)
            row['dtype'], row['case_wall_s'] = dtype, time.perf_counter() - start
            rows.append(row)
            print(f"{row['name']} [{dtype}]: ours {row['ours_median_s']:.4g} s, PyTorch "
                  f"{row['baseline_median_s'] if row['baseline_median_s'] is not None else 'none'} "
                  f"({row['case_wall_s']:.0f} s in all)", flush=True)
    about = {**machine(), 'torch_device': torch_device(), 'date': time.strftime('%Y-%m-%d'),
             'command': 'python -m benchmarks.device_suite ' + ' '.join(argv if argv is not None else [])}
    with open(os.path.join(args.out, 'device_suite.json'), 'w') as f:
        json.dump({'machine': about, 'results': rows}, f, indent=2)
    table = markdown(rows, about)
    with open(os.path.join(args.out, 'device_suite.md'), 'w') as f:
        f.write(table + '\n')
    print(table)


if __name__ == '__main__':
    import sys

    main(sys.argv[1:])

"""The benchmarks at accelerator sizes in one run, float32 and bfloat16, ours against the PyTorch baselines on
the same device (scripts/device_check.sh runs it).

    python -m benchmarks.device_suite --out DIR [--tiny] [--repeats 3] [--cases euler_maruyama,latent_unet,...]
    python -m benchmarks.device_suite --readme RUN1/device_suite.json [RUN2/device_suite.json ...]

Rows (ours with runtime.compute_dtype float32 and bfloat16; PyTorch in float32 and under bf16 autocast, each
both eager and with its networks under `torch.compile` (nn.Module.compile(): what a PyTorch user would pick
today), so each row has two ratios, PyTorch eager / ours and PyTorch compiled / ours):
- DDPM++ cont. (configs/sde/cifar10_ddpmpp_continuous.py) training step at batch 128, 32x32, against
  benchmarks/ddpmpp_torch.py with the same weights and TorchDSMTrainer's step (benchmarks/sde_training.py).
- The ~5M latent UNet (configs/ldm/celebahq_ldm_small.py) training step at batch 128 on 64x64x3 latents,
  against diffusers' UNet2DModel with the same weights (benchmarks/ldm_unet.py).
- CIZSL iterations at CUB-easy sizes against benchmarks/zsl_cizsl_torch.py.
- Euler-Maruyama 1000 steps of the MNIST tutorial U-Net at batch 128 against benchmarks/sde_torch_baseline.py,
  and DPM-Solver++ (2M) 20 steps of the same network (ours only: the few-step row to read against EM).
- Bits/dim through the probability-flow ODE (rtol = atol = 1e-5, batch 128) against the original's host-side
  scipy RK45 (benchmarks/sde_likelihood.py; float32 only).
`--tiny` shrinks every size so the whole suite runs on a CPU in a few minutes (the CI check of the script): every
row in float32 and only the first row also in bfloat16 (the dtype path is the same code for every row; the bf16
networks themselves are tests/runtime/test_mixed_precision.py's).
torch.compile needs a working Inductor (a C++ compiler on a CPU, Triton on a GPU): where it fails, the row keeps
its eager figures and says why in `compiled_note` and under the table; `--no-compile` skips it. On a CPU Inductor
takes minutes per network, so the CI check (`--tiny` in scripts/device_check.sh) passes `--compile-backend
aot_eager`: the same capture (dynamo, AOTAutograd) without Inductor's code generation.
Writes DIR/device_suite.json and DIR/device_suite.md; never touches the README.
"""

import argparse
import contextlib
import functools
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any, NoReturn

import jax
import numpy as np
import torch

from benchmarks.harness import (
    chosen_cases,
    jax_sync,
    machine,
    machine_line,
    one_torch_thread_if_tiny,
    replace_readme_table,
    torch_sync,
)
from gen_runtime.config import load_config_file
from gen_runtime.run_once import run_once

DTYPES = ('float32', 'bfloat16')
COMPILE = {'enabled': True, 'backend': 'inductor'}  # main's --no-compile and --compile-backend set these


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


def _timed(fn: Callable[[], Any], sync: Callable[[Any], Any]) -> float:
    start = time.perf_counter()
    sync(fn())
    return time.perf_counter() - start


NO_COMPILED = {'compiled_median_s': None, 'compiled_speedup': None, 'compiled_first_call_s': None,
               'compiled_note': None}


def ours_only(name: str, fn: Callable[[], Any], repeats: int, unit: str, work: float) -> dict:
    """A row without a PyTorch baseline: the first call (compile) and the median of `repeats` calls."""
    first = _timed(fn, jax_sync)
    times = [_timed(fn, jax_sync) for _ in range(repeats)]
    median = statistics.median(times)
    return {'name': name, 'ours_median_s': median, 'baseline': None, 'baseline_median_s': None, 'speedup': None,
            'ours_per_s': work / median, 'unit': unit, 'ours_first_call_s': first, 'ours_all_s': times,
            **NO_COMPILED}


COMPILED_SCOPE = ('CIZSL: torch.compile wraps the generator only: the critic\'s gradient penalty differentiates '
                  'through it twice (create_graph=True), which compiled backward graphs refuse.')


def compile_options() -> dict:
    return {'backend': COMPILE['backend']}


def _failure(e: BaseException) -> str:
    lines = [line for line in str(e).splitlines() if line.strip()]
    return f'{type(e).__name__}: {lines[0][:200] if lines else ""}'.rstrip(': ')


def compare_torch(name: str, ours: Callable[[], Any], eager: Callable[[], Any],
                  compiled: Callable[[], Callable[[], Any]] | None, dtype: str, *, repeats: int, unit: str,
                  work_per_call: float = 1.0, details: dict | None = None) -> dict:
    """Ours against PyTorch eager and, where `compiled` builds it (a fresh baseline whose networks are under
    torch.compile), PyTorch compiled; both on the torch device under `dtype`'s autocast. The first call of
    each compiling side is timed apart (jit / Inductor compile), one more call of each warms up, then the
    sides alternate `repeats` times. A torch.compile that fails (no C++ compiler, an unsupported op) leaves
    the eager figures and a one-line `compiled_note`."""
    eager = on_torch_device(eager, dtype)
    first = _timed(ours, jax_sync)
    _timed(ours, jax_sync)
    _timed(eager, torch_sync)
    sides = {'ours': (ours, jax_sync), 'eager': (eager, torch_sync)}
    row = {'name': name, 'baseline': 'PyTorch', **NO_COMPILED, **(details or {})}
    if compiled is None or not COMPILE['enabled']:
        row['compiled_note'] = 'torch.compile not run (--no-compile)' if compiled is not None else None
    else:
        try:
            with torch.device(torch_device()):
                fn = on_torch_device(compiled(), dtype)
            row['compiled_first_call_s'] = _timed(fn, torch_sync)
            _timed(fn, torch_sync)
            sides['compiled'] = (fn, torch_sync)
        except Exception as e:  # noqa: BLE001 - any failure of torch.compile leaves the eager baseline
            row['compiled_note'] = f'torch.compile failed: {_failure(e)}'
            print(f'{name} [{dtype}]: {row["compiled_note"]}', flush=True)
    times: dict[str, list[float]] = {side: [] for side in sides}
    for _ in range(repeats):
        for side, (fn, sync) in sides.items():
            times[side].append(_timed(fn, sync))
    median = {side: statistics.median(t) for side, t in times.items()}
    row.update({'ours_median_s': median['ours'], 'baseline_median_s': median['eager'],
                'speedup': median['eager'] / median['ours'], 'ours_per_s': work_per_call / median['ours'],
                'baseline_per_s': work_per_call / median['eager'], 'unit': unit, 'ours_first_call_s': first,
                'repeats': repeats, 'ours_all_s': times['ours'], 'baseline_all_s': times['eager']})
    if 'compiled' in median:
        row.update({'compiled_median_s': median['compiled'], 'compiled_speedup': median['compiled'] / median['ours'],
                    'compiled_all_s': times['compiled']})
    return row


def _config(path: str, dtype: str) -> Any:
    config = load_config_file(path)
    config.runtime.compute_dtype = dtype
    return config


def ddpmpp_training(dtype: str, tiny: bool, repeats: int) -> dict:
    from benchmarks.sde_training import ddpmpp_experiment, ddpmpp_params, step_pair, torch_ddpmpp, torch_trainer

    batch = 4 if tiny else 128
    # --tiny: one level without resampling, attention at 8x8 (the CI check of this path; the network's
    # resampling and the same-network check are benchmarks.sde_training's, in CI at its own tiny size).
    tiny_sizes = {'nf': 16, 'ch_mult': (1,), 'num_res_blocks': 1, 'attn_resolutions': (8,)}
    exp = ddpmpp_experiment(tiny_sizes if tiny else None, dtype)
    side = exp.config.data.image_size
    x = np.asarray(exp.to_model_space(np.random.default_rng(2).uniform(size=(batch, side, side, 3))), np.float32)

    def pair() -> tuple[Callable[[], Any], Callable[[], Any], torch.nn.Module]:
        with torch.device(torch_device()):
            torch.manual_seed(0)
            model = torch_ddpmpp(exp)
        params = ddpmpp_params(exp, model)
        return *step_pair(exp, params, torch_trainer(exp, model), x), model

    ours, eager, model = pair()

    def compiled() -> Callable[[], Any]:
        _, step, baseline = pair()  # a second, same-seeded baseline
        baseline.compile(**compile_options())
        return step

    count = sum(p.numel() for p in model.parameters())
    return compare_torch(f'DDPM++ cont. ({count / 1e6:.1f}M) training step, batch {batch}, {side}x{side}', ours,
                         eager, compiled, dtype, repeats=repeats, unit='examples', work_per_call=batch,
                         details={'parameters': count})


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

    def compiled() -> Callable[[], Any]:
        _, step, _, (_, _, unet) = training_step_pair(config, batch, shape)  # a second, same-seeded baseline
        unet.compile(**compile_options())
        return step

    return compare_torch(f'latent UNet ({count / 1e6:.1f}M) training step, batch {batch}, {shape[0]}x{shape[1]}x3',
                         ours, theirs, compiled, dtype, repeats=repeats, unit='examples', work_per_call=batch,
                         details={'parameters': count})


def cizsl_iterations(dtype: str, tiny: bool, repeats: int) -> dict:
    from benchmarks.zsl_cizsl import cub_easy_sized_problem
    from benchmarks.zsl_cizsl_torch import TorchCizsl
    from configs.zsl import base
    from zsl_jax.experiment import make_experiment, train_task, training_batches

    config = base.use_cizsl(base.get_config())
    config.runtime.compute_dtype = dtype
    if tiny:
        config.training.batch_size, config.model.hidden_dim, config.model.text_reduction_dim = 32, 64, 16
    problem = cub_easy_sized_problem(tiny=tiny)
    exp = make_experiment(config, problem)
    task = train_task(exp, training_batches(exp))
    holder = {'state': run_once(task.init_state, jax.random.key(0)), 'step': 0}
    update = jax.jit(task.update)

    def ours() -> jax.Array:
        batch = jax.tree.map(lambda v: v[0], task.host_batches(holder['step'], 1))
        holder['state'], metrics = update(holder['state'], batch, jax.random.key(holder['step']))
        holder['step'] += 1
        return metrics['loss']

    def baseline() -> TorchCizsl:
        return TorchCizsl(problem.train_features, problem.train_labels, problem.seen_text,
                          batch_size=config.training.batch_size, hidden=config.model.hidden_dim,
                          reduced=config.model.text_reduction_dim, creativity_weight=config.cizsl.creativity_weight)

    def compiled() -> Callable[[], Any]:
        players = baseline()
        players.g.compile(**compile_options())  # the critic stays eager: see COMPILED_SCOPE
        return players.step

    with torch.device(torch_device()):
        eager = baseline()
    return compare_torch(f'CIZSL iteration, batch {config.training.batch_size}, hidden {config.model.hidden_dim}',
                         ours, eager.step, compiled, dtype, repeats=repeats, unit='iterations')


def _tutorial(dtype: str, tiny: bool) -> tuple[Any, dict, int]:
    from sde_jax.experiment import make_experiment

    exp = make_experiment(_config('configs/sde/mnist_tutorial.py', dtype))
    return exp, run_once(exp.init_params, jax.random.key(0)), 4 if tiny else 128


def euler_maruyama_sampling(dtype: str, tiny: bool, repeats: int) -> dict:
    from benchmarks.sde_torch_baseline import TorchTutorialUNet, TorchVESDE, euler_maruyama, load_flax_params
    from sde_jax.sampling import get_corrector, get_predictor, pc_sample

    exp, params, batch = _tutorial(dtype, tiny)
    steps, eps = (10 if tiny else 1000), 1e-3
    sample = jax.jit(functools.partial(pc_sample, exp.sde, exp.score_fn(params), (batch, 28, 28, 1),
                                       predictor=get_predictor('euler_maruyama'), corrector=get_corrector('none', 0, 0),
                                       num_steps=steps, eps=eps, denoise_last=False))
    device = torch_device()
    torch_sde = TorchVESDE(exp.sde.sigma_min, exp.sde.sigma_max)

    def baseline(compile_model: bool = False) -> Callable[[], Any]:
        model = load_flax_params(TorchTutorialUNet(), jax.device_get(params)).to(device)
        if compile_model:
            model.compile(**compile_options())
        generator = torch.Generator(device=device).manual_seed(0)
        return lambda: euler_maruyama(model, torch_sde, (batch, 1, 28, 28), steps, eps, generator)

    counter = iter(range(10**6))
    return compare_torch(f'Euler-Maruyama {steps} steps, tutorial U-Net, batch {batch}',
                         lambda: sample(jax.random.key(next(counter))), baseline(),
                         functools.partial(baseline, compile_model=True), dtype, repeats=repeats, unit='samples',
                         work_per_call=batch)


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
    tol = 1e-1 if tiny else 1e-5  # --tiny: as benchmarks.sde_likelihood's (the scipy baseline's steps dominate)
    x = exp.to_model_space(jax.random.uniform(jax.random.key(2), (batch, 28, 28, 1)))
    probes = draw_probes(jax.random.key(1), 'rademacher', 1, x.shape)
    ours = jax.jit(lambda p: ode_log_likelihood(exp.sde, exp.score_fn(p), x, jax.random.key(1), rtol=tol, atol=tol,
                                                 eps=EPS, probes=probes)[0])
    name = f'bits/dim, probability-flow ODE, rtol=atol={tol:g}, tutorial U-Net, batch {batch}'
    if dtype != 'float32':
        return ours_only(name, lambda: ours(params), repeats, 'images', batch)
    first = _timed(lambda: ours(params), jax_sync)
    theirs = functools.partial(scipy_log_likelihood, exp, params, np.asarray(x), probes, tol)
    _timed(theirs, lambda r: r)
    ours_t, theirs_t = [], []
    for _ in range(repeats):
        ours_t.append(_timed(lambda: ours(params), jax_sync))
        theirs_t.append(_timed(theirs, lambda r: r))
    mine, base = statistics.median(ours_t), statistics.median(theirs_t)
    return {'name': name, 'baseline': 'scipy RK45 (host)', 'ours_median_s': mine, 'baseline_median_s': base,
            'speedup': base / mine, 'ours_per_s': batch / mine, 'baseline_per_s': batch / base, 'unit': 'images',
            'ours_first_call_s': first, 'repeats': repeats, 'ours_all_s': ours_t, 'baseline_all_s': theirs_t,
            **NO_COMPILED}


# In the order they run: the DDPM++ step (its XLA compile takes 70-90 s on an H200) last, so that a run stopped
# at its time limit has the others.
CASES = {'euler_maruyama': euler_maruyama_sampling, 'dpm_solver': dpm_solver_sampling,
         'latent_unet': latent_unet_training, 'cizsl': cizsl_iterations, 'likelihood': likelihood,
         'ddpmpp': ddpmpp_training}


def markdown(rows: list[dict], about: dict, runs: list[dict] | None = None) -> str:
    """The table of `rows`; its last line names the machine and the command (one line per run in `runs`)."""
    lines = ['| benchmark | dtype | ours (median) | PyTorch eager (median) | eager / ours | PyTorch torch.compile '
             '(median) | compiled / ours | ours first call | compiled first call |',
             '|---|---|---|---|---|---|---|---|---|']
    notes = []
    for r in rows:
        theirs, ratio = 'none', '-'
        if r['baseline_median_s'] is not None:
            theirs = f"{r['baseline_median_s']:.4g} s" + (' (scipy, host)' if r['baseline'] != 'PyTorch' else '')
            ratio = f"{r['speedup']:.2f}x"
        compiled, compiled_ratio, compiled_first = '-', '-', '-'
        if r['compiled_median_s'] is not None:
            compiled, compiled_ratio = f"{r['compiled_median_s']:.4g} s", f"{r['compiled_speedup']:.2f}x"
            compiled_first = f"{r['compiled_first_call_s']:.3g} s"
        elif r['compiled_note'] and r['compiled_note'].endswith('(--no-compile)'):
            compiled = 'not run'
        elif r['compiled_note']:
            compiled = f'not timed ({len(notes) + 1})'
            notes.append(f"({len(notes) + 1}) {r['name']} [{r['dtype']}]: {r['compiled_note']}")
        lines.append(f"| {r['name']} | {r['dtype']} | {r['ours_median_s']:.4g} s ({r['ours_per_s']:.4g} "
                     f"{r['unit']}/s) | {theirs} | {ratio} | {compiled} | {compiled_ratio} | "
                     f"{r['ours_first_call_s']:.3g} s | {compiled_first} |")
    lines += [''] + ([*notes, ''] if notes else [])
    lines += ['Ratios are PyTorch time / ours (> 1: ours is faster). PyTorch runs under bf16 autocast in the bfloat16 '
              'rows; torch.compile (default mode; Inductor unless the command names another backend) wraps its '
              'networks (nn.Module.compile()); the loop, loss and optimiser step around them stay eager. '
              + COMPILED_SCOPE, '',
              '\n\n'.join(machine_line(run, run['date'], run['command']) for run in (runs or [about]))]
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', help='folder for device_suite.json and device_suite.md (required unless --readme)')
    parser.add_argument('--tiny', action='store_true', help='CPU sizes (the CI check of the script)')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--no-compile', action='store_true', help='time PyTorch eager only (no torch.compile)')
    parser.add_argument('--compile-backend', default='inductor',
                        help='torch.compile backend (aot_eager: the capture without code generation, fast on a CPU)')
    parser.add_argument('--cases', default=','.join(CASES), help=f'comma-separated rows to run (default all: '
                        f'{",".join(CASES)})')
    parser.add_argument('--readme', nargs='+', metavar='JSON', help="only rewrite README.md's device table from "
                        'these device_suite.json files (runs of parts of the suite, in order); runs nothing')
    args = parser.parse_args(argv)
    if args.readme:
        readme_table(args.readme)
        return
    if not args.out:
        parser.error('--out is required (where device_suite.json and device_suite.md go)')
    cases = chosen_cases(parser, args.cases, CASES)
    one_torch_thread_if_tiny(args.tiny)
    COMPILE.update(enabled=not args.no_compile, backend=args.compile_backend)
    os.makedirs(args.out, exist_ok=True)
    about = {**machine(), 'torch_device': torch_device(), 'torch_version': torch.__version__,
             'compile_backend': COMPILE['backend'] if COMPILE['enabled'] else 'none',
             'date': time.strftime('%Y-%m-%d'),
             'command': 'python -m benchmarks.device_suite ' + ' '.join(argv if argv is not None else [])}
    rows = []
    for index, case in enumerate(cases):
        for dtype in DTYPES if index == 0 or not args.tiny else DTYPES[:1]:
            start = time.perf_counter()
            row = CASES[case](dtype, args.tiny, args.repeats)
            row['dtype'], row['case_wall_s'] = dtype, time.perf_counter() - start
            rows.append(row)
            print(f"{row['name']} [{dtype}]: ours {row['ours_median_s']:.4g} s, PyTorch eager "
                  f"{row['baseline_median_s'] if row['baseline_median_s'] is not None else 'none'}, compiled "
                  f"{row['compiled_median_s'] if row['compiled_median_s'] is not None else 'none'} "
                  f"({row['case_wall_s']:.0f} s in all)", flush=True)
            table = write(args.out, rows, about)  # after every row: a run stopped at its time limit keeps them
    print(table)


def write(out: str, rows: list[dict], about: dict) -> str:
    """DIR/device_suite.json and DIR/device_suite.md of the rows so far; returns the table."""
    with open(os.path.join(out, 'device_suite.json'), 'w') as f:
        json.dump({'machine': about, 'results': rows}, f, indent=2)
    table = markdown(rows, about)
    with open(os.path.join(out, 'device_suite.md'), 'w') as f:
        f.write(table + '\n')
    return table


def _refuse(message: str) -> NoReturn:
    print(f'error: {message}', file=sys.stderr)
    raise SystemExit(2)


def readme_table(paths: list[str]) -> str:
    """README.md's `device_suite` table from the rows of several runs' device_suite.json, one footer line each;
    every file is read and checked before the README is touched."""
    rows, runs = [], []
    for path in paths:
        try:
            with open(path) as f:
                payload = json.load(f)
            rows += payload['results']
            runs.append(payload['machine'])
            markdown(payload['results'], payload['machine'], [payload['machine']])
        except (OSError, ValueError, KeyError, TypeError) as e:
            _refuse(f'{path} is not a device_suite.json written by this suite ({type(e).__name__}: {e}); '
                    'pass the files that `--out DIR` wrote')
    table = markdown(rows, runs[0], runs)
    if not replace_readme_table('device_suite', table):
        _refuse('README.md has no <!-- bench:device_suite --> markers to put the table between')
    print(table)
    return table

if __name__ == '__main__':
    main(sys.argv[1:])

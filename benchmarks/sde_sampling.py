"""Benchmark: Euler-Maruyama sampling, 1000 steps, sde_jax against PyTorch, same network and loop.

The network is the MNIST tutorial U-Net (1.1M parameters) with the VE SDE of configs/sde/mnist_tutorial.py;
PyTorch runs benchmarks/sde_torch_baseline.py with our parameters copied in (the two networks agree
to float32 tolerance, checked before timing). Ours: `sde_jax.sampling.pc_sample` (one jitted
lax.fori_loop); PyTorch: a Python loop under torch.no_grad. Same batch, same machine, alternately.

    python -m benchmarks.sde_sampling [--batch 16] [--steps 1000] [--repeats 3] [--torch-threads N]
        [--tiny] [--out DIR] [--no-readme]

`--tiny` (CI): batch 2, 3 steps, one repeat, the same network and the same check.
"""

import argparse
import functools
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import torch

from benchmarks.harness import compare, parse_arguments, record_from_args, same_network
from benchmarks.sde_torch_baseline import TorchTutorialUNet, TorchVESDE, euler_maruyama, load_flax_params
from gen_runtime.config import load_config_file
from gen_runtime.run_once import run_once
from sde_jax.experiment import make_experiment
from sde_jax.sampling import get_corrector, get_predictor, pc_sample


def fastest_torch_threads(model: torch.nn.Module, *inputs: torch.Tensor) -> int:
    """1 or os.cpu_count() threads, whichever runs the network faster here (on a shared machine
    PyTorch's spinning OpenMP threads can be 10x slower than one thread)."""
    timings = {}
    for threads in sorted({1, os.cpu_count() or 1}):
        torch.set_num_threads(threads)
        with torch.no_grad():
            model(*inputs)
            start = time.perf_counter()
            for _ in range(3):
                model(*inputs)
        timings[threads] = time.perf_counter() - start
    print(f'torch forward time by thread count: {timings}')
    return min(timings, key=timings.get)


@functools.cache
def tutorial_experiment() -> tuple:
    """(experiment, parameters) of configs/sde/mnist_tutorial.py, initialised once per process."""
    exp = make_experiment(load_config_file('configs/sde/mnist_tutorial.py'))
    return exp, run_once(exp.init_params, jax.random.key(0))


def tutorial_pair(batch: int) -> tuple:
    """(experiment, parameters, the torch U-Net with them, same-network record, (x NHWC, labels)): the
    tutorial U-Net on both sides, checked to compute the same function on `batch` inputs."""
    exp, params = tutorial_experiment()
    torch_model = load_flax_params(TorchTutorialUNet(), jax.device_get(params))
    x = np.random.default_rng(0).standard_normal((batch, 28, 28, 1)).astype(np.float32)
    label = np.linspace(-1.0, 2.0, batch).astype(np.float32)
    ours = jax.jit(lambda p, v, s: exp.model.apply({'params': p}, v, s))(params, jnp.asarray(x), jnp.asarray(label))
    with torch.no_grad():
        theirs = torch_model(torch.from_numpy(x).permute(0, 3, 1, 2), torch.from_numpy(label)).permute(0, 2, 3, 1)
    check = same_network(ours, theirs.numpy(), what='tutorial U-Net outputs')
    return exp, params, torch_model, check, (x, label)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batch', type=int, default=16)
    parser.add_argument('--steps', type=int, default=1000)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--torch-threads', type=int, default=0,
                        help='PyTorch intra-op threads; 0 picks the faster of 1 and all cores for this network')
    args = parse_arguments(parser, argv)
    if args.tiny:
        args.batch, args.steps, args.repeats, args.torch_threads = 2, 3, 1, args.torch_threads or 1

    exp, params, torch_model, check, (x, label) = tutorial_pair(args.batch)
    eps, shape = 1e-3, (args.batch, 28, 28, 1)
    torch_sde = TorchVESDE(exp.sde.sigma_min, exp.sde.sigma_max)
    threads = args.torch_threads or fastest_torch_threads(torch_model, torch.from_numpy(x).permute(0, 3, 1, 2),
                                                          torch.from_numpy(label))
    torch.set_num_threads(threads)
    sample = jax.jit(functools.partial(pc_sample, exp.sde, exp.score_fn(params), shape,
                                       predictor=get_predictor('euler_maruyama'), corrector=get_corrector('none', 0, 0),
                                       num_steps=args.steps, eps=eps, denoise_last=False))
    counter = iter(range(10**6))
    generator = torch.Generator().manual_seed(0)
    result = compare(
        f'Euler-Maruyama {args.steps} steps, tutorial U-Net, batch {args.batch}',
        lambda: sample(jax.random.key(next(counter))),
        lambda: euler_maruyama(torch_model, torch_sde, (args.batch, 1, 28, 28), args.steps, eps, generator),
        repeats=args.repeats, warmup=0 if args.tiny else 1, unit='samples', work_per_call=args.batch,
        details={'same_network': check, 'torch_threads': threads})
    record_from_args('sde_sampling', [result], ' '.join(['python -m benchmarks.sde_sampling', *argv]), args)


if __name__ == '__main__':
    main(sys.argv[1:])

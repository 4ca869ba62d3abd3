"""Benchmark: bits/dim through the probability-flow ODE, on-device odeint against host-side scipy RK45.

Ours: `sde_jax.likelihood.ode_log_likelihood`, one jitted call (sde_jax.ode.dopri5, Dormand-Prince
in a lax.while_loop, vmapped so that each example is its own ODE). Baseline, the original score_sde's
approach: scipy.integrate.solve_ivp(method='RK45') on the host over the whole batch as one ODE,
calling a jitted JAX function for the drift and the Hutchinson divergence at every evaluation. Same
network (the MNIST tutorial U-Net; trained weights from --workdir if given, else a random init),
same images (dequantised MNIST test images if JAXGEN_DATA_ROOT is set, else uniform noise), same
Rademacher probes, same rtol/atol. Reports wall time, function evaluations and both bits/dim.

    python -m benchmarks.sde_likelihood [--batch 16] [--tol 1e-5] [--repeats 2] [--workdir runs/sde_mnist]
        [--tiny] [--out DIR] [--no-readme]

Both sides evaluate the same jitted JAX network (the solver is what differs), so the same-network record
says so; the two bits/dim are reported side by side. `--tiny` (CI): batch 2, rtol = atol = 0.1, one repeat.
"""

import argparse
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
from scipy import integrate

from benchmarks.harness import compare, parse_arguments, record_from_args
from gen_runtime import trainer
from gen_runtime.config import load_config_file
from gen_runtime.data import image_preprocessor, load_dataset
from gen_runtime.run_once import run_once
from sde_jax.experiment import initialiser, make_experiment
from sde_jax.likelihood import bits_per_dim, draw_probes, hutchinson_divergence, ode_log_likelihood
from sde_jax.ode import probability_flow_drift

EPS = 1e-5


def images(config, batch: int) -> tuple[np.ndarray, str]:
    """The first `batch` dequantised test images of the config's data set, in [0, 1]."""
    if not os.environ.get('JAXGEN_DATA_ROOT'):
        side, channels = config.data.image_size, config.data.num_channels
        return np.random.default_rng(0).uniform(size=(batch, side, side, channels)).astype(np.float32), \
            'uniform noise'
    dataset = load_dataset(config, 'test')
    data = config.data.to_dict()
    data.update(dequantize=True)
    preprocess = image_preprocessor(type(config.data)(data), dataset.levels)
    return preprocess(dataset.gather(np.arange(batch)), np.random.default_rng(0))['image'], \
        f'{config.data.path or config.data.name} test images'


def scipy_log_likelihood(exp, params, x: np.ndarray, probes: jax.Array, tol: float) -> tuple[np.ndarray, int]:
    """The original's method: solve_ivp RK45 on the host, a jitted drift + divergence per call."""
    drift = probability_flow_drift(exp.sde, exp.score_fn(params))
    divergence = hutchinson_divergence(probes)

    @jax.jit
    def augmented(y: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array]:
        dy, jvp = jax.linearize(lambda v: drift(v, t), y)
        return dy, divergence(jvp, y)

    shape, n = x.shape, x.shape[0]

    def ode(t: float, state: np.ndarray) -> np.ndarray:
        dx, ddelta = augmented(jnp.asarray(state[:-n].reshape(shape), jnp.float32), jnp.float32(t))
        return np.concatenate([np.asarray(dx, np.float64).reshape(-1), np.asarray(ddelta, np.float64)])

    init = np.concatenate([x.reshape(-1).astype(np.float64), np.zeros(n)])
    solution = integrate.solve_ivp(ode, (EPS, exp.sde.T), init, rtol=tol, atol=tol, method='RK45')
    z = jnp.asarray(solution.y[:-n, -1].reshape(shape), jnp.float32)
    logp = np.asarray(exp.sde.prior_logp(z)) + solution.y[-n:, -1]
    return logp, solution.nfev


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batch', type=int, default=16)
    parser.add_argument('--tol', type=float, default=1e-5)
    parser.add_argument('--repeats', type=int, default=2)
    parser.add_argument('--workdir', default='', help='a trained configs/sde/mnist_tutorial.py run')
    args = parse_arguments(parser, argv)
    if args.tiny:
        args.batch, args.tol, args.repeats = 2, 1e-1, 1

    config = load_config_file('configs/sde/mnist_tutorial.py')
    exp = make_experiment(config)
    if args.workdir:
        step, state = trainer.load_trained_state(config, args.workdir, initialiser(exp))
        params, weights = state.ema_params, f'{args.workdir} (step {step}, EMA)'
    else:
        params, weights = run_once(exp.init_params, jax.random.key(0)), 'random init'
    x_unit, source = images(config, args.batch)
    x = exp.to_model_space(x_unit)
    probes = draw_probes(jax.random.key(1), 'rademacher', 1, x.shape)
    dims = int(np.prod(x.shape[1:]))

    ours = jax.jit(lambda p, x: ode_log_likelihood(exp.sde, exp.score_fn(p), x, jax.random.key(1), rtol=args.tol,
                                                    atol=args.tol, eps=EPS, probes=probes))
    stats: dict = {}

    def run_ours() -> jax.Array:
        logp, _, nfe = ours(params, x)
        jax.block_until_ready(logp)
        stats['ours_nfe'] = int(np.max(nfe))
        stats['ours_bpd'] = float(bits_per_dim(logp, dims, 256, exp.model_scale()).mean())
        return logp

    def run_scipy() -> np.ndarray:
        logp, stats['scipy_nfe'] = scipy_log_likelihood(exp, params, np.asarray(x), probes, args.tol)
        stats['scipy_bpd'] = float(bits_per_dim(logp, dims, 256, exp.model_scale()).mean())
        return logp

    result = compare(f'bits/dim, probability-flow ODE, rtol=atol={args.tol:g}, batch {args.batch}', run_ours,
                     run_scipy, repeats=args.repeats, warmup=0 if args.tiny else 1, baseline_sync=lambda r: r,
                     unit='images', work_per_call=args.batch,
                     details={'weights': weights, 'images': source,
                              'same_network': {'what': 'one jitted JAX drift and divergence on both sides', 'passed':
                                               True}})
    result.update(stats)
    print(f"NFE: ours {stats['ours_nfe']} (max over examples), scipy RK45 {stats['scipy_nfe']}; bits/dim: ours "
          f"{stats['ours_bpd']:.4f}, scipy {stats['scipy_bpd']:.4f}")
    record_from_args('sde_likelihood', [result], ' '.join(['python -m benchmarks.sde_likelihood', *argv]), args)


if __name__ == '__main__':
    main(sys.argv[1:])

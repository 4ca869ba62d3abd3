"""Sample quality against network evaluations (NFE) for every sampler, on a 2-D mixture with an exact score.

The data are a two-component Gaussian mixture in 2-D; the VP SDE (beta 0.1..20) perturbs it, and so does the
rectified flow x_t = (1 - t) x_0 + t eps of flow matching; the exact score (VP) and velocity (flow) of every p_t
are known in closed form (tests/sde/analytic.py), so the only errors are the samplers' own. The VP SDE's
few-step solvers use their papers' spacings, the flow's uniform times (flow matching's). Distance: the sliced
Wasserstein-1 distance (the mean over 256 random directions of
the 1-D W1 between sorted projections) of N samples to N fresh draws from the data; its floor is the
distance between two independent data sets of that size, reported beside it.

    python -m benchmarks.few_step_quality [--samples 20000] [--out benchmarks/results/few_step_quality.json]
      [--plot docs/few_step_quality.png]

Prints a Markdown table; writes the numbers as JSON and a plot of distance against NFE.
"""

import argparse
import functools
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.nfe_plot import plot_against_nfe
from gen_runtime import few_step
from sde_jax.ode import ode_sample
from sde_jax.sampling import few_step_sample, get_corrector, get_predictor, pc_sample
from sde_jax.sde import VPSDE, RectifiedFlow, VelocityScore
from tests.sde.analytic import MIXTURE

SDE = VPSDE(beta_min=0.1, beta_max=20.0, N=1000)
FLOW = RectifiedFlow()
EPS = 1e-3
SPACING = {'ddim': 'uniform', 'dpm_solver_pp': 'logsnr', 'heun': 'karras'}
STEPS = {'euler_maruyama': (20, 50, 100, 200, 500, 1000), 'ddim': (5, 10, 20, 50, 100, 200),
         'dpm_solver_pp': (3, 5, 10, 20, 50), 'heun': (3, 5, 10, 20, 50)}
ODE_TOLERANCES = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5)
FLOW_STEPS = {'ddim': (3, 5, 10, 20, 50, 100), 'dpm_solver_pp': (3, 5, 10, 20, 50), 'heun': (3, 5, 10, 20, 50)}


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, directions: np.ndarray) -> float:
    """Mean over unit `directions` of the 1-D Wasserstein-1 distance between the projections of a and b."""
    pa, pb = np.sort(a @ directions.T, axis=0), np.sort(b @ directions.T, axis=0)
    return float(np.mean(np.abs(pa - pb)))


def _coefs(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return tuple(np.asarray(c, np.float64) for c in SDE.marginal_coefs(jnp.asarray(t, jnp.float32)))


def draw(method: str, setting: float, n: int, rng: jax.Array, process: str = 'vp') -> tuple[np.ndarray, int]:
    """(samples, NFE) of one sampler at one setting (steps, or the ODE tolerance) on the VP SDE or the flow."""
    shape = (n, 2)
    if process == 'flow':
        velocity = VelocityScore(functools.partial(MIXTURE.velocity, FLOW))
        if method == 'ode':
            x, nfe = jax.jit(lambda r: ode_sample(FLOW, velocity, shape, r, rtol=setting, atol=setting, eps=EPS))(rng)
            return np.asarray(x), int(nfe)
        times = np.linspace(FLOW.T, EPS, int(setting) + 1)
        fn = jax.jit(lambda r: few_step_sample(FLOW, velocity, shape, r, times, method))
        return np.asarray(fn(rng)), few_step.nfe(method, int(setting)) + 1
    score = functools.partial(MIXTURE.score, SDE)
    if method == 'euler_maruyama':
        fn = jax.jit(lambda r: pc_sample(SDE, score, shape, r, predictor=get_predictor('euler_maruyama'),
                                         corrector=get_corrector('none', 0.16, 1), num_steps=int(setting), eps=EPS))
        return np.asarray(fn(rng)), int(setting) + 1
    if method == 'ode':
        fn = jax.jit(lambda r: ode_sample(SDE, score, shape, r, rtol=setting, atol=setting, eps=EPS))
        x, nfe = fn(rng)
        return np.asarray(x), int(nfe)
    times = few_step.spaced_times(SPACING[method], int(setting), SDE.T, EPS, _coefs)
    fn = jax.jit(lambda r: few_step_sample(SDE, score, shape, r, times, method))
    return np.asarray(fn(rng)), few_step.nfe(method, int(setting)) + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--samples', type=int, default=20000)
    parser.add_argument('--out', default='benchmarks/results/few_step_quality.json')
    parser.add_argument('--plot', default='docs/few_step_quality.png')
    args = parser.parse_args()
    data_rng = np.random.default_rng(0)
    reference, other = MIXTURE.sample(data_rng, args.samples), MIXTURE.sample(data_rng, args.samples)
    angles = data_rng.uniform(0, np.pi, 256)
    directions = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    floor = sliced_wasserstein(other, reference, directions)
    rows = []
    settings = {'vp': {**STEPS, 'ode': ODE_TOLERANCES}, 'flow': {**FLOW_STEPS, 'ode': ODE_TOLERANCES}}
    for process, methods in settings.items():
        for method, values in methods.items():
            for value in values:
                start = time.perf_counter()
                samples, nfe = draw(method, value, args.samples, jax.random.key(1), process)
                rows.append({'process': process, 'method': method, 'setting': value, 'nfe': nfe,
                             'sliced_w1': sliced_wasserstein(samples, reference, directions),
                             'seconds_with_compile': time.perf_counter() - start})
    result = {'data': '2-D two-component Gaussian mixture (tests/sde/analytic.py MIXTURE), exact score / velocity',
              'sde': 'VP, beta 0.1..20, eps 1e-3', 'flow': 'rectified flow x_t = (1 - t) x_0 + t eps, eps 1e-3',
              'samples': args.samples, 'floor_sliced_w1': floor, 'spacings': {**SPACING, 'flow': 'uniform'},
              'rows': rows}
    os.makedirs(os.path.dirname(args.out) or '.', exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(result, f, indent=2)
    print(f'| process | sampler | setting | NFE | sliced W1 (floor {floor:.4f}) |\n|---|---|---|---|---|')
    for r in rows:
        setting = f'tol {r["setting"]:g}' if r['method'] == 'ode' else f'{r["setting"]} steps'
        print(f'| {r["process"]} | {r["method"]} | {setting} | {r["nfe"]} | {r["sliced_w1"]:.4f} |')
    labelled = [{**r, 'method': f'{r["process"]} {r["method"]}'} for r in rows]
    plot_against_nfe(labelled, 'sliced_w1', floor, 'two data sets (floor)', 'sliced Wasserstein-1 to the data',
                     f'2-D mixture, exact score / velocity, VP SDE and flow, {args.samples} samples', args.plot)


if __name__ == '__main__':
    main()

"""Sample quality against network evaluations for every sampler on a trained model: the quickstart digits.

The model is the quickstart (configs/quickstart.py: VP SDE, tutorial-style U-Net, 8x8 digits), trained by
`python main.py --config configs/quickstart.py --workdir runs/quickstart`. Each sampler draws `--samples`
images with the EMA parameters; the distance to the test split is the Frechet distance of Gaussians
fitted to the raw 64 pixels (in [0, 1]). An Inception network sees nothing in 8x8 digits, while the
64-pixel Gaussian is cheap, exact to compute and sensitive to blur, noise and wrong stroke statistics;
its floor is the distance of the training split to the test split.

    python -m benchmarks.few_step_digits [--workdir runs/quickstart] [--samples 2000] [--seeds 3]
      [--flow-workdir runs/quickstart_flow] [--out benchmarks/results/few_step_digits.json]
      [--plot docs/few_step_digits.png]

With `--flow-workdir`, the same network trained as a rectified flow by flow matching
(`python main.py --config configs/sde/quickstart_flow.py --workdir runs/quickstart_flow`) is sampled too, with
the flow's samplers (the adaptive ODE; DDIM, which is Euler's method on the flow, DPM-Solver++ and Heun on
uniform times), in rows of their own (`process`: 'vp' or 'flow').

Each setting is drawn with `--seeds` sampling seeds; prints a Markdown table (NFE, seconds, the distance's
mean and standard deviation over the seeds) and the fewest NFE at which each sampler's mean distance is
within the 1000-step Euler-Maruyama mean plus one standard deviation.
"""

import argparse
import json
import os
import time

import jax
import ml_collections
import numpy as np

from benchmarks.nfe_plot import plot_against_nfe
from gen_runtime import trainer
from gen_runtime.config import load_config_file
from gen_runtime.data import load_dataset
from gen_runtime.sample_quality.metrics import frechet_distance
from sde_jax.experiment import initialiser, make_experiment
from sde_jax.generation import sample_batches

# (method, its settings): steps for the step-based samplers, the tolerance for the adaptive ODE
# ('ddim_eta1': DDIM with eta = 1, the stochastic DDPM-like member of the family)
SETTINGS = {'euler_maruyama': (100, 250, 1000), 'ode': (1e-2, 1e-3), 'ddim': (10, 20, 50, 100),
            'ddim_eta1': (20, 50, 100, 250), 'dpm_solver_pp': (5, 10, 20, 50), 'heun': (5, 10, 20)}
FLOW_SETTINGS = {'ode': (1e-2, 1e-3), 'ddim': (5, 10, 20, 50, 100), 'dpm_solver_pp': (5, 10, 20, 50),
                 'heun': (5, 10, 20)}


def pixel_statistics(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    flat = images.reshape(len(images), -1).astype(np.float64)
    return flat.mean(axis=0), np.cov(flat, rowvar=False)


def _images_in_unit_range(config: ml_collections.ConfigDict, split: str) -> np.ndarray:
    dataset = load_dataset(config, split)
    return dataset.gather(np.arange(len(dataset)))['image'] / (dataset.levels - 1)


def sampler_config(base: ml_collections.ConfigDict, method: str, setting: float) -> ml_collections.ConfigDict:
    config = base.copy_and_resolve_references()
    config.unlock()
    sampling = config.sampling
    if method == 'euler_maruyama':
        sampling.update(method='pc', predictor='euler_maruyama', corrector='none', num_steps=int(setting))
    elif method == 'ode':
        sampling.update(method='ode', rtol=setting, atol=setting)
    elif method == 'ddim_eta1':
        sampling.update(method='ddim', eta=1.0, num_steps=int(setting))
    else:
        sampling.update(method=method, num_steps=int(setting))
    config.lock()
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--workdir', default='runs/quickstart')
    parser.add_argument('--flow-workdir', default='', help='configs/sde/quickstart_flow.py trained here (optional)')
    parser.add_argument('--samples', type=int, default=2000)
    parser.add_argument('--batch', type=int, default=500)
    parser.add_argument('--seeds', type=int, default=3)
    parser.add_argument('--out', default='benchmarks/results/few_step_digits.json')
    parser.add_argument('--plot', default='docs/few_step_digits.png')
    args = parser.parse_args()
    base = load_config_file('configs/quickstart.py')
    models = [('vp', base, args.workdir, SETTINGS)]
    if args.flow_workdir:
        models.append(('flow', load_config_file('configs/sde/quickstart_flow.py'), args.flow_workdir, FLOW_SETTINGS))
    test, train = (_images_in_unit_range(base, split) for split in ('test', 'train'))
    test_stats = pixel_statistics(test)
    floor = frechet_distance(*pixel_statistics(train), *test_stats)
    rows, steps = [], {}
    for process, model_config, workdir, settings in models:
        steps[process], state = trainer.load_trained_state(model_config, workdir,
                                                           initialiser(make_experiment(model_config)))
        for method, values in settings.items():
            for value in values:
                exp = make_experiment(sampler_config(model_config, method, value))
                distances, seconds, nfe = [], 0.0, 0.0
                for seed in range(args.seeds):
                    stats: dict = {}
                    start = time.perf_counter()
                    images = np.concatenate(list(sample_batches(exp, state.ema_params, args.samples, args.batch,
                                                                seed=seed + 1, progress=False, stats=stats)))
                    seconds = seconds or time.perf_counter() - start  # the first seed's, compilation included
                    nfe = float(np.mean(stats['score_evaluations_per_batch']))
                    distances.append(frechet_distance(*pixel_statistics(images), *test_stats))
                rows.append({'process': process, 'method': method, 'setting': value, 'nfe': nfe,
                             'seconds_with_compile': seconds, 'frechet_pixels': float(np.mean(distances)),
                             'frechet_pixels_std': float(np.std(distances)), 'frechet_pixels_per_seed': distances})
                print(rows[-1], flush=True)
    reference = next(r for r in rows if r['method'] == 'euler_maruyama' and r['setting'] == 1000)
    bar = reference['frechet_pixels'] + reference['frechet_pixels_std']
    matches = {}
    for process, _, _, settings in models:
        for method in settings:
            good = [r for r in rows if (r['process'], r['method']) == (process, method) and r['frechet_pixels'] <= bar]
            matches[f'{process} {method}'] = min(good, key=lambda r: r['nfe']) if good else None
    trained = f'configs/quickstart.py trained in {args.workdir} (step {steps["vp"]})'
    if args.flow_workdir:
        trained += f', configs/sde/quickstart_flow.py in {args.flow_workdir} (step {steps["flow"]})'
    result = {'model': f'{trained}, EMA parameters',
              'distance': 'Frechet distance of 64-pixel Gaussians to the digits test split',
              'samples': args.samples, 'seeds': args.seeds, 'floor_train_vs_test': floor, 'rows': rows,
              'fewest_nfe_matching_em_1000': matches, 'jax_devices': str(jax.devices())}
    os.makedirs(os.path.dirname(args.out) or '.', exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(result, f, indent=2)
    print(f'| process | sampler | setting | NFE | seconds (with compile) | Frechet, pixels (floor {floor:.4f}) |')
    print('|---|---|---|---|---|---|')
    for r in rows:
        setting = f'tol {r["setting"]:g}' if r['method'] == 'ode' else f'{r["setting"]} steps'
        print(f'| {r["process"]} | {r["method"]} | {setting} | {r["nfe"]:.0f} | {r["seconds_with_compile"]:.1f} | '
              f'{r["frechet_pixels"]:.4f} +- {r["frechet_pixels_std"]:.4f} |')
    for method, r in matches.items():
        print(f'{method}: ' + (f'{r["nfe"]:.0f} NFE, {r["seconds_with_compile"]:.1f} s' if r else 'not matched'))
    labelled = [{**r, 'method': f'{r["process"]} {r["method"]}'} for r in rows]
    plot_against_nfe(labelled, 'frechet_pixels', floor, 'train vs test split',
                     'Frechet distance (64 pixels) to the test split',
                     f'quickstart digits model, {args.samples} samples per sampler, mean of {args.seeds} seeds',
                     args.plot)


if __name__ == '__main__':
    main()

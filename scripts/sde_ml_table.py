"""The table, plot and summary of scripts/sde_mnist_ml.sh's three variants (docs/sde.md, "Maximum-likelihood
training").

    python -m scripts.sde_ml_table ROOT

Reads ROOT/<variant>/likelihood/step_<N>/likelihood.json (the newest step) for sigma2, likelihood and
likelihood_is; writes ROOT/results/summary.json, table.md and sde_mnist_ml.png (bits/dim through the ODE and the
variational bound of each variant, with their standard errors).
"""

import glob
import os

import matplotlib.pyplot as plt

from scripts.result_files import read_json, run, write_results

VARIANTS = {'sigma2': 'sigma^2 weighting (DSM)', 'likelihood': 'likelihood weighting, uniform t',
            'likelihood_is': 'likelihood weighting, importance-sampled t'}


def newest_likelihood(workdir: str) -> dict | None:
    """The likelihood.json of the newest step evaluated in `workdir`, with its step; None if there is none."""
    found = glob.glob(os.path.join(workdir, 'likelihood', 'step_*', 'likelihood.json'))
    if not found:
        return None
    path = max(found, key=lambda p: int(p.split('step_')[-1].split(os.sep)[0]))
    return {**read_json(path), 'step': int(path.split('step_')[-1].split(os.sep)[0])}


def summary(root: str) -> dict:
    return {'variants': {v: newest_likelihood(os.path.join(root, v)) for v in VARIANTS}}


def table(s: dict) -> str:
    rows = ['| objective | steps | bits/dim, ODE (+- s.e.) | bound, bits/dim (+- s.e.) | test images | mean NFE '
            '| seconds per image (ODE) |', '|---|---|---|---|---|---|---|']
    for variant, name in VARIANTS.items():
        r = s['variants'][variant]
        if r is None:
            rows.append(f'| {name} | - | - | - | - | - | - |')
            continue
        bound = '-' if 'bound_bpd' not in r else f"{r['bound_bpd']:.3f} +- {r['bound_bpd_standard_error']:.3f}"
        rows.append(f"| {name} | {r['step']} | {r['bpd']:.3f} +- {r['bpd_standard_error']:.3f} | {bound} | "
                    f"{r['num_examples']} | {r['mean_nfe_per_batch']:.0f} | {r['seconds_per_example']:.2f} |")
    return '\n'.join(rows) + '\n'


def plot(s: dict, ax: plt.Axes) -> None:
    """Bits/dim (ODE) and the bound per objective, with two standard errors."""
    names = [v for v in VARIANTS if s['variants'][v] is not None]
    for offset, key, label in ((-0.12, 'bpd', 'ODE bits/dim'), (0.12, 'bound_bpd', 'variational bound')):
        points = [(i, s['variants'][v]) for i, v in enumerate(names) if key in s['variants'][v]]
        ax.errorbar([i + offset for i, _ in points], [r[key] for _, r in points],
                    yerr=[2 * r[f'{key}_standard_error'] for _, r in points], marker='o', ls='none', capsize=4,
                    label=label)
    ax.set_xticks(range(len(names)), [VARIANTS[v].replace(', ', ',\n') for v in names], fontsize=8)
    ax.set_ylabel('bits/dim (test images, +- 2 s.e.)')
    ax.legend(fontsize=8)


def main(root: str) -> None:
    s = summary(root)
    results = os.path.join(root, 'results')
    os.makedirs(results, exist_ok=True)
    write_results(results, s, table(s), plot, 'MNIST, VE SDE, tutorial U-Net: training objective', 'sde_mnist_ml.png')


if __name__ == '__main__':
    run(main, 'python -m scripts.sde_ml_table ROOT')

"""The table, plot and summary of scripts/iddpm_mnist.sh (docs/ldm.md, "Learned variances").

    python -m scripts.iddpm_table ROOT

Reads ROOT/results: bound_<variant>.json (--mode likelihood), kid_<variant>_<steps>.json (--mode eval) and
kid_floor.json (the held-out test images against the same reference); writes ROOT/results/summary.json,
table.md and iddpm_mnist.png (KID against sampling steps, the bound of each variant in its legend).
"""

import os

import matplotlib.pyplot as plt

from scripts.result_files import read_json, run, write_results

VARIANTS = {'fixed': 'fixed beta~ (L_simple)', 'learned': 'learned range (L_hybrid)'}
STEPS = (50, 100)


def summary(results: str) -> dict:
    """Every measured number of the run, by variant; missing items are None."""
    out = {'floor': read_json(os.path.join(results, 'kid_floor.json')), 'variants': {}}
    for variant in VARIANTS:
        out['variants'][variant] = {
            'bound': read_json(os.path.join(results, f'bound_{variant}.json')),
            'kid': {n: read_json(os.path.join(results, f'kid_{variant}_{n}.json')) for n in STEPS},
        }
    return out


def _kid(record: dict | None) -> str:
    return '-' if record is None else f"{record['kid'] * 1e3:.2f} +- {record['kid_std'] * 1e3:.2f}"


def table(s: dict) -> str:
    rows = ['| variance (loss) | steps trained | bound, bits/dim (+- s.e.) | KID x 1e3, 50 steps '
            '| KID x 1e3, 100 steps |', '|---|---|---|---|---|']
    for variant, name in VARIANTS.items():
        v = s['variants'][variant]
        bound = v['bound']
        b = '-' if bound is None else (f"{bound['bpd']:.3f} +- {bound['bpd_stderr']:.3f} "
                                       f"({bound['num_examples']} images)")
        step = '-' if bound is None else str(bound['step'])
        rows.append(f"| {name} | {step} | {b} | {_kid(v['kid'][50])} | {_kid(v['kid'][100])} |")
    if s['floor'] is not None:
        rows.append(f"| floor: test images | - | - | {_kid(s['floor'])} | {_kid(s['floor'])} |")
    return '\n'.join(rows) + '\n'


def plot(s: dict, ax: plt.Axes) -> None:
    """KID against the strided steps, one line per variant, its bound in the legend."""
    for variant, name in VARIANTS.items():
        v = s['variants'][variant]
        points = [(n, v['kid'][n]) for n in STEPS if v['kid'][n] is not None]
        bound = '' if v['bound'] is None else f" (bound {v['bound']['bpd']:.3f} bits/dim)"
        if points:
            ax.errorbar([n for n, _ in points], [r['kid'] * 1e3 for _, r in points],
                        yerr=[r['kid_std'] * 1e3 for _, r in points], marker='o', capsize=3, label=name + bound)
    if s['floor'] is not None:
        ax.axhline(s['floor']['kid'] * 1e3, color='gray', ls='--', label='floor (test images)')
    ax.set_xlabel('strided sampling steps')
    ax.set_ylabel('KID x 1e3 (lower is better)')
    ax.set_xticks(STEPS)
    ax.legend(fontsize=7)


def main(root: str) -> None:
    results = os.path.join(root, 'results')
    s = summary(results)
    write_results(results, s, table(s), plot, 'MNIST: fixed vs learned reverse variances', 'iddpm_mnist.png')


if __name__ == '__main__':
    run(main, 'python -m scripts.iddpm_table ROOT')

"""The table, plot and summary of scripts/iddpm_mnist.sh (docs/ldm.md, "Learned variances").

    python -m scripts.iddpm_table ROOT

Reads ROOT/results: bound_<variant>.json (--mode likelihood), kid_<variant>_<steps>.json (--mode eval) and
kid_floor.json (the held-out test images against the same reference); writes ROOT/results/summary.json,
table.md and iddpm_mnist.png (KID against sampling steps beside the bound of each variant).
"""

import json
import os
import sys

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

VARIANTS = {'fixed': 'fixed beta~ (L_simple)', 'learned': 'learned range (L_hybrid)'}
STEPS = (50, 100)


def _read(path: str) -> dict | None:
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def summary(results: str) -> dict:
    """Every measured number of the run, by variant; missing items are None."""
    out = {'floor': _read(os.path.join(results, 'kid_floor.json')), 'variants': {}}
    for variant in VARIANTS:
        out['variants'][variant] = {
            'bound': _read(os.path.join(results, f'bound_{variant}.json')),
            'kid': {n: _read(os.path.join(results, f'kid_{variant}_{n}.json')) for n in STEPS},
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


def plot(s: dict, path: str) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    for variant, name in VARIANTS.items():
        v = s['variants'][variant]
        points = [(n, v['kid'][n]) for n in STEPS if v['kid'][n] is not None]
        if points:
            left.errorbar([n for n, _ in points], [r['kid'] * 1e3 for _, r in points],
                          yerr=[r['kid_std'] * 1e3 for _, r in points], marker='o', capsize=3, label=name)
        if v['bound'] is not None:
            right.bar(name, v['bound']['bpd'], yerr=v['bound']['bpd_stderr'], capsize=4)
    if s['floor'] is not None:
        left.axhline(s['floor']['kid'] * 1e3, color='gray', ls='--', label='floor (test images)')
    left.set_xlabel('strided sampling steps')
    left.set_ylabel('KID x 1e3 (lower is better)')
    left.set_xticks(STEPS)
    left.legend(fontsize=8)
    right.set_ylabel('variational bound, bits/dim')
    fig.suptitle('MNIST: fixed vs learned reverse variances (improved DDPM)')
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(root: str) -> None:
    results = os.path.join(root, 'results')
    s = summary(results)
    with open(os.path.join(results, 'summary.json'), 'w') as f:
        json.dump(s, f, indent=2)
    with open(os.path.join(results, 'table.md'), 'w') as f:
        f.write(table(s))
    plot(s, os.path.join(results, 'iddpm_mnist.png'))
    print(table(s))


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit('usage: python -m scripts.iddpm_table ROOT')
    main(sys.argv[1])

"""The table, plot and summary of scripts/cascade_mnist.sh (docs/ldm.md, "Cascaded diffusion").

    python -m scripts.cascade_table ROOT

Reads ROOT/results/kid_<variant>_<level>[_truncated].json (--mode eval of the cascade) and kid_floor.json (held-out
test images against the same reference); writes ROOT/results/summary.json, table.md and cascade_mnist.png (KID
against the sampling level, one line per stage and conditioning).
"""

import glob
import os
import re

import matplotlib.pyplot as plt

from scripts.result_files import read_json, run, write_results

ROWS = {('stage', False): 'augmented (levels 0..250), noised base sample',
        ('stage', True): 'augmented (levels 0..250), truncated base chain',
        ('stage_noaug', False): 'no augmentation, noised base sample'}
_NAME = re.compile(r'kid_(stage(?:_noaug)?)_(\d+)(_truncated)?\.json$')


def summary(results: str) -> dict:
    """{'floor': ..., 'rows': {row name: {level: record}}} of every result file present."""
    rows: dict[str, dict[int, dict]] = {}
    for path in sorted(glob.glob(os.path.join(results, 'kid_stage*.json'))):
        match = _NAME.search(os.path.basename(path))
        if match is None:
            continue
        variant, level, truncated = match.group(1), int(match.group(2)), bool(match.group(3))
        rows.setdefault(ROWS[variant, truncated], {})[level] = read_json(path)
    floor = read_json(os.path.join(results, 'kid_floor.json'))
    return {'floor': floor, 'rows': {name: dict(sorted(levels.items())) for name, levels in rows.items()}}


def table(s: dict) -> str:
    levels = sorted({level for row in s['rows'].values() for level in row})
    lines = ['| stage, condition | ' + ' | '.join(f'KID x 1e3 at level {lv}' for lv in levels) + ' |',
             '|---|' + '---|' * len(levels)]
    for name, row in s['rows'].items():
        cells = [f"{row[lv]['kid'] * 1e3:.2f} +- {row[lv]['kid_std'] * 1e3:.2f}" if lv in row else '-' for lv in levels]
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    if s['floor'] is not None:
        floor = f"{s['floor']['kid'] * 1e3:.2f} +- {s['floor']['kid_std'] * 1e3:.2f}"
        lines.append('| floor: test images | ' + ' | '.join([floor] * len(levels)) + ' |')
    return '\n'.join(lines) + '\n'


def plot(s: dict, ax: plt.Axes) -> None:
    """KID against the sampling level, one line per stage and conditioning."""
    for name, row in s['rows'].items():
        ax.errorbar(list(row), [r['kid'] * 1e3 for r in row.values()], yerr=[r['kid_std'] * 1e3 for r in row.values()],
                    marker='o', capsize=3, label=name)
    if s['floor'] is not None:
        ax.axhline(s['floor']['kid'] * 1e3, color='gray', ls='--', label='floor (test images)')
    ax.set_xlabel('conditioning level s at sampling')
    ax.set_ylabel('KID x 1e3 (lower is better)')
    ax.legend(fontsize=7)


def main(root: str) -> None:
    results = os.path.join(root, 'results')
    s = summary(results)
    write_results(results, s, table(s), plot, 'MNIST cascade 14 -> 28: conditioning augmentation', 'cascade_mnist.png')


if __name__ == '__main__':
    run(main, 'python -m scripts.cascade_table ROOT')

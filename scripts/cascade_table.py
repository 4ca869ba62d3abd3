"""The table, plot and summary of scripts/cascade_mnist.sh (docs/ldm.md, "Cascaded diffusion").

    python -m scripts.cascade_table ROOT

Reads ROOT/results/kid_<variant>_<level>[_truncated].json (--mode eval of the cascade) and kid_floor.json (held-out
test images against the same reference); writes ROOT/results/summary.json, table.md and cascade_mnist.png (KID
against the sampling level, one line per stage and conditioning).
"""

import glob
import json
import os
import re
import sys

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

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
        with open(path) as f:
            rows.setdefault(ROWS[variant, truncated], {})[level] = json.load(f)
    floor_path = os.path.join(results, 'kid_floor.json')
    floor = json.load(open(floor_path)) if os.path.isfile(floor_path) else None
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


def plot(s: dict, path: str) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, row in s['rows'].items():
        ax.errorbar(list(row), [r['kid'] * 1e3 for r in row.values()], yerr=[r['kid_std'] * 1e3 for r in row.values()],
                    marker='o', capsize=3, label=name)
    if s['floor'] is not None:
        ax.axhline(s['floor']['kid'] * 1e3, color='gray', ls='--', label='floor (test images)')
    ax.set_xlabel('conditioning level s at sampling')
    ax.set_ylabel('KID x 1e3 (lower is better)')
    ax.legend(fontsize=7)
    ax.set_title('MNIST cascade 14 -> 28: conditioning augmentation')
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(root: str) -> None:
    results = os.path.join(root, 'results')
    s = summary(results)
    with open(os.path.join(results, 'summary.json'), 'w') as f:
        json.dump(s, f, indent=2)
    with open(os.path.join(results, 'table.md'), 'w') as f:
        f.write(table(s))
    plot(s, os.path.join(results, 'cascade_mnist.png'))
    print(table(s))


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit('usage: python -m scripts.cascade_table ROOT')
    main(sys.argv[1])

"""Results of a protocol: a JSON file, a Markdown table (per seed, mean and std) and the seen-unseen curve."""

import json
import os

import ml_collections
import numpy as np

from gen_runtime.outputs import write_json
from zsl_jax.protocol import PROTOCOLS, SeedResult

METRIC_NAMES = {
    'zsl_top1': 'ZSL top-1 (per sample) %',
    'zsl_top1_per_class': 'ZSL top-1 (per class) %',
    'gzsl_auc': 'seen-unseen AUC %',
    'gbu_u': 'GBU u %',
    'gbu_s': 'GBU s %',
    'gbu_h': 'GBU H %',
}


def summarise(results: list[SeedResult]) -> dict[str, dict[str, float]]:
    """{metric: {'mean', 'std'}} over seeds (population std, 0 for one seed)."""
    names = [m for m in METRIC_NAMES if m in results[0].metrics]
    return {m: {'mean': float(np.mean([r.metrics[m] for r in results])),
                'std': float(np.std([r.metrics[m] for r in results]))} for m in names}


def markdown(title: str, protocol: str, results: list[SeedResult], summary: dict) -> str:
    names = list(summary)
    lines = [f'## {title}', '', f'Protocol: `{protocol}` ({PROTOCOLS[protocol]}).', '',
             '| seed | ' + ' | '.join(METRIC_NAMES[m] for m in names) + ' | selection |',
             '|---|' + '---|' * len(names) + '---|']
    for r in results:
        if 'selected_step' in r.details:
            chosen = f"step {r.details['selected_step']}"
            if r.details.get('creativity_weight') is not None:
                chosen += f", creativity weight {r.details['creativity_weight']:g}"
        else:
            chosen = ', '.join(f'{m} at step {s}' for m, s in r.details.get('best_step', {}).items()) or '-'
        lines.append(f'| {r.seed} | ' + ' | '.join(f'{r.metrics[m]:.2f}' for m in names) + f' | {chosen} |')
    lines.append('| mean ± std | ' + ' | '.join(f"{summary[m]['mean']:.2f} ± {summary[m]['std']:.2f}" for m in names)
                 + ' | |')
    return '\n'.join(lines) + '\n'


def plot_curves(results: list[SeedResult], title: str, path: str) -> None:
    # A Figure of its own (no pyplot): writing the PNG leaves the caller's matplotlib backend alone.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    for r in results:
        if r.curve is not None:
            ax.plot(r.curve.acc_unseen, r.curve.acc_seen, label=f'seed {r.seed}: AUC {r.metrics["gzsl_auc"]:.2f}%')
    ax.set_xlabel('unseen accuracy (unseen test images among all classes)')
    ax.set_ylabel('seen accuracy')
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def write_results(config: ml_collections.ConfigDict, workdir: str, results: list[SeedResult], params: dict,
                  benchmark: str, name: str = 'results', extra: dict | None = None) -> dict:
    """Writes <name>.json, <name>.md and <name>_seen_unseen.png into `workdir` and prints the summary as one
    JSON line (title, protocol, the metrics' mean and spread over seeds, extra); returns the JSON payload.

    `benchmark` names the problem in the title; `extra` entries are added to the JSON and listed under
    the table.
    """
    summary = summarise(results)
    title = f'{config.model.variant.upper()} on {benchmark}'
    payload = {
        'title': title, 'protocol': config.eval.protocol, 'protocol_description': PROTOCOLS[config.eval.protocol],
        'parameters': params, 'summary': summary, **(extra or {}),
        'seeds': [{'seed': r.seed, 'metrics': r.metrics, **r.details} for r in results],
        'curves': [{'seed': r.seed, 'lambda': r.curve.lambdas.tolist(), 'acc_seen': r.curve.acc_seen.tolist(),
                    'acc_unseen': r.curve.acc_unseen.tolist()} for r in results if r.curve is not None],
    }
    os.makedirs(workdir, exist_ok=True)
    write_json(os.path.join(workdir, f'{name}.json'), payload)
    table = markdown(title, config.eval.protocol, results, summary)
    table += ''.join(f'\n{key}: {value:.2f}\n' if isinstance(value, float) else f'\n{key}: {value}\n'
                     for key, value in (extra or {}).items())
    with open(os.path.join(workdir, f'{name}.md'), 'w') as f:
        f.write(table)
    plot_curves(results, f'{title}\n{config.eval.protocol}', os.path.join(workdir, f'{name}_seen_unseen.png'))
    print(json.dumps({'title': title, 'protocol': config.eval.protocol, 'summary': summary, **(extra or {}),
                      'results': os.path.join(workdir, f'{name}.json')}))
    return payload

"""The quality-against-NFE plot of the sampling benchmarks (few_step_quality, few_step_digits)."""

import os


def plot_against_nfe(rows: list[dict], distance: str, floor: float, floor_label: str, ylabel: str, title: str,
                     path: str) -> None:
    """One line per method of `rows` ({'method', 'nfe', distance}), log-log, with the floor dashed."""
    # A Figure of its own (no pyplot): writing the PNG leaves the caller's matplotlib backend alone.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4.2))
    ax = fig.subplots()
    for method in dict.fromkeys(r['method'] for r in rows):
        mine = [r for r in rows if r['method'] == method]
        ax.plot([r['nfe'] for r in mine], [r[distance] for r in mine], marker='o', label=method)
    ax.axhline(floor, color='grey', linestyle='--', label=floor_label)
    ax.set_xscale('log')
    ax.set_yscale('log')
    ax.set_xlabel('network evaluations (NFE)')
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    fig.savefig(path, dpi=120)

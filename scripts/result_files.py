"""What the MNIST comparison tables (scripts/iddpm_table.py, scripts/cascade_table.py) share: reading a mode's JSON
and writing a run's summary.json, table.md and plot beside its results."""

import json
import os
import sys
from collections.abc import Callable

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402


def read_json(path: str) -> dict | None:
    """The JSON record at `path`, None if there is none yet."""
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def write_results(results: str, summary: dict, table: str, plot: Callable[[dict, plt.Axes], None], title: str,
                  png: str) -> None:
    """results/summary.json, results/table.md and results/<png> (one axes drawn by `plot`); prints the table."""
    with open(os.path.join(results, 'summary.json'), 'w') as f:
        json.dump(summary, f, indent=2)
    with open(os.path.join(results, 'table.md'), 'w') as f:
        f.write(table)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    plot(summary, ax)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(os.path.join(results, png), dpi=110)
    plt.close(fig)
    print(table)


def run(main: Callable[[str], None], usage: str) -> None:
    """The command line of a table script: one argument, the run folder."""
    if len(sys.argv) != 2:
        sys.exit(f'usage: {usage}')
    main(sys.argv[1])

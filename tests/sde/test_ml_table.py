"""scripts/sde_ml_table.py: the maximum-likelihood comparison's table and plot from --mode likelihood's JSON."""

import json

from scripts import sde_ml_table


def _likelihood(folder, step, bpd, **extra):
    path = folder / 'likelihood' / f'step_{step}'
    path.mkdir(parents=True)
    record = {'bpd': bpd, 'bpd_standard_error': 0.02, 'num_examples': 300, 'mean_nfe_per_batch': 180.4,
              'seconds_per_example': 1.5, **extra}
    (path / 'likelihood.json').write_text(json.dumps(record))


def test_table_takes_each_variants_newest_step_and_marks_missing_ones(tmp_path):
    _likelihood(tmp_path / 'sigma2', 1000, 9.9)
    _likelihood(tmp_path / 'sigma2', 2000, 1.234, bound_bpd=1.5, bound_bpd_standard_error=0.01)
    _likelihood(tmp_path / 'likelihood', 2000, 1.1)
    sde_ml_table.main(str(tmp_path))
    lines = (tmp_path / 'results' / 'table.md').read_text().splitlines()
    assert lines[2] == '| sigma^2 weighting (DSM) | 2000 | 1.234 +- 0.020 | 1.500 +- 0.010 | 300 | 180 | 1.50 |'
    assert lines[3] == '| likelihood weighting, uniform t | 2000 | 1.100 +- 0.020 | - | 300 | 180 | 1.50 |'
    assert lines[4] == '| likelihood weighting, importance-sampled t | - | - | - | - | - | - |'
    assert json.loads((tmp_path / 'results' / 'summary.json').read_text())['variants']['likelihood_is'] is None
    assert (tmp_path / 'results' / 'sde_mnist_ml.png').stat().st_size > 0

"""scripts/iddpm_table.py: the table and plot of scripts/iddpm_mnist.sh from the JSON the modes write."""

import json

from scripts import iddpm_table


def _write(path, record):
    path.write_text(json.dumps(record))


def test_table_reads_every_result_and_marks_missing_ones(tmp_path):
    results = tmp_path / 'results'
    results.mkdir()
    _write(results / 'bound_fixed.json', {'step': 1500, 'bpd': 1.234, 'bpd_stderr': 0.01, 'num_examples': 100})
    _write(results / 'kid_fixed_50.json', {'kid': 0.0123, 'kid_std': 0.001})
    _write(results / 'kid_floor.json', {'kid': -0.0001, 'kid_std': 0.0002})
    iddpm_table.main(str(tmp_path))
    table = (results / 'table.md').read_text().splitlines()
    assert table[2] == '| fixed beta~ (L_simple) | 1500 | 1.234 +- 0.010 (100 images) | 12.30 +- 1.00 | - |'
    assert table[3] == '| learned range (L_hybrid) | - | - | - | - |'
    assert table[4].startswith('| floor: test images | - | - | -0.10 +- 0.20 |')
    assert json.loads((results / 'summary.json').read_text())['variants']['learned']['bound'] is None
    assert (results / 'iddpm_mnist.png').stat().st_size > 0

"""scripts/iddpm_table.py and scripts/cascade_table.py: the MNIST scripts' tables and plots from the modes' JSON."""

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


def test_cascade_table_has_a_row_per_conditioning_and_a_column_per_level(tmp_path):
    from scripts import cascade_table

    results = tmp_path / 'results'
    results.mkdir()
    _write(results / 'kid_stage_0.json', {'kid': 0.02, 'kid_std': 0.001})
    _write(results / 'kid_stage_100.json', {'kid': 0.01, 'kid_std': 0.001})
    _write(results / 'kid_stage_100_truncated.json', {'kid': 0.009, 'kid_std': 0.002})
    _write(results / 'kid_stage_noaug_0.json', {'kid': 0.05, 'kid_std': 0.003})
    cascade_table.main(str(tmp_path))
    lines = (results / 'table.md').read_text().splitlines()
    assert lines[0] == '| stage, condition | KID x 1e3 at level 0 | KID x 1e3 at level 100 |'
    assert '| augmented (levels 0..250), noised base sample | 20.00 +- 1.00 | 10.00 +- 1.00 |' in lines
    assert '| augmented (levels 0..250), truncated base chain | - | 9.00 +- 2.00 |' in lines
    assert '| no augmentation, noised base sample | 50.00 +- 3.00 | - |' in lines
    assert (results / 'cascade_mnist.png').stat().st_size > 0

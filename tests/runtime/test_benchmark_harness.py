"""The benchmark harness's bookkeeping (not a timing test: it checks what is recorded, not how fast), and the
quality benchmark's distance."""

import json

import jax.numpy as jnp
import numpy as np
import torch

from benchmarks import harness


def test_compare_and_record_write_consistent_results(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, 'RESULTS_DIR', str(tmp_path))
    readme = tmp_path / 'README.md'
    readme.write_text('intro\n<!-- bench:demo -->\nold table\n<!-- /bench:demo -->\nrest\n')
    monkeypatch.setattr(harness, 'README', str(readme))
    x = jnp.ones((64, 64))
    t = torch.ones((64, 64))
    result = harness.compare('matmul 64', lambda: x @ x, lambda: t @ t, repeats=3, unit='matmul', work_per_call=1)
    assert len(result['ours_all_s']) == len(result['baseline_all_s']) == 3
    assert result['speedup'] == result['baseline_median_s'] / result['ours_median_s']
    harness.record('demo', [result], 'pytest', update_readme=True)
    saved = json.loads((tmp_path / 'demo.json').read_text())
    assert saved['results'][0]['name'] == 'matmul 64' and saved['matmul_peak']['xla_gflops'] > 0
    text = readme.read_text()
    assert 'old table' not in text and '| matmul 64 |' in text and text.endswith('<!-- /bench:demo -->\nrest\n')


def test_sliced_wasserstein_of_a_shift_is_the_mean_projected_shift():
    from benchmarks.few_step_quality import sliced_wasserstein

    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 2))
    angles = rng.uniform(0, np.pi, 64)
    directions = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    shift = np.array([0.3, -0.1])
    assert sliced_wasserstein(a, a[::-1], directions) == 0.0  # the same points in another order
    np.testing.assert_allclose(sliced_wasserstein(a + shift, a, directions), np.mean(np.abs(directions @ shift)))


def test_same_network_passes_within_tolerance_and_names_the_difference_otherwise():
    check = harness.same_network(np.ones(3), np.ones(3) + 1e-6, what='demo')
    assert check['passed'] and check['max_abs_difference'] < 1e-5
    try:
        harness.same_network(np.ones(3), np.array([1.0, 2.55, 1.0]))
    except AssertionError as error:
        assert 'same network: max abs difference 1.55' in str(error)
    else:
        raise AssertionError('a difference of 1.55 passed')


def test_cpu_info_reads_model_and_isa_extensions(tmp_path):
    cpuinfo = tmp_path / 'cpuinfo'
    cpuinfo.write_text('processor\t: 0\nmodel name\t: Example CPU 9000\nflags\t\t: fpu avx2 fma avx512f amx_tile\n\n'
                       'processor\t: 1\nmodel name\t: Example CPU 9000\nflags\t\t: fpu avx2\n')
    info = harness.cpu_info(str(cpuinfo))
    assert info == {'cpu_model': 'Example CPU 9000', 'isa': ['AVX2', 'FMA', 'AVX-512', 'AMX']}
    line = harness.machine_line({**info, 'usable_cores': 2, 'gpus': ['H200, driver 560.1'], 'jax': '1',
                                 'jaxlib': '2', 'flax': '3', 'torch': '4'}, '2026-01-01', 'cmd')
    assert line == ('Measured 2026-01-01 on Example CPU 9000 (2 cores; AVX2, FMA, AVX-512, AMX) with H200, driver '
                    '560.1; jax 1, jaxlib 2, flax 3, torch 4; `cmd`.')


def test_record_into_a_folder_leaves_the_readme_alone(tmp_path, monkeypatch):
    readme = tmp_path / 'README.md'
    readme.write_text('<!-- bench:demo -->\nold table\n<!-- /bench:demo -->\n')
    monkeypatch.setattr(harness, 'README', str(readme))
    row = {'name': 'row', 'ours_median_s': 1.0, 'baseline_median_s': 2.0, 'speedup': 2.0, 'ours_per_s': 1.0,
           'baseline_per_s': 0.5, 'unit': 'call', 'ours_first_call_s': 1.0}
    harness.record('demo', [row], 'cmd', update_readme=False, results_dir=str(tmp_path / 'out'), peak_n=64)
    assert json.loads((tmp_path / 'out' / 'demo.json').read_text())['results'][0]['name'] == 'row'
    assert 'old table' in readme.read_text()

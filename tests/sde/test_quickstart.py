"""The quickstart end to end through main.py, tiny: train, its samples and metrics.json, ODE sampling into
its own folder, inpainting."""

import json

import numpy as np
from PIL import Image

from tests.conftest import run_python

TINY = ['--config.training.num_steps=8', '--config.training.batch_size=16', '--config.training.log_every=4',
        '--config.training.checkpoint_every=4', '--config.sampling.num_steps=10',
        '--config.sampling.num_samples=16', '--config.sampling.batch_size=16']


def test_tiny_quickstart_trains_samples_and_resamples(tmp_path):
    workdir = tmp_path / 'qs'
    args = ['main.py', '--config', 'configs/quickstart.py', '--workdir', str(workdir)]
    run_python(args + TINY)
    metrics = json.loads((workdir / 'metrics.json').read_text())
    assert metrics['step'] == 8
    assert np.isfinite(metrics['final_logged']['loss'])
    assert metrics['samples']['num_samples'] == 16
    grid = np.asarray(Image.open(workdir / 'train' / 'step_8' / 'samples.png'))
    assert grid.shape == (4 * 10 + 2, 4 * 10 + 2)  # 4x4 grid of 8x8 images with 2-pixel padding
    with np.load(workdir / 'train' / 'step_8' / 'samples.npz') as f:
        assert f['images'].shape == (16, 8, 8, 1) and f['images'].dtype == np.uint8
    logged = [json.loads(line)['step'] for line in (workdir / 'metrics.jsonl').read_text().splitlines()]
    assert logged == [4, 8]

    run_python(args + TINY + ['--mode', 'sample', '--config.sampling.method=ode', '--config.sampling.rtol=1e-3',
                              '--config.sampling.atol=1e-3'])
    sampling = json.loads((workdir / 'sample' / 'step_8' / 'sampling.json').read_text())
    assert sampling['step'] == 8 and sampling['method'] == 'ode'
    assert sampling['score_evaluations_per_batch'][0] >= 8  # odeint: 2 + 6 per attempted step
    assert metrics['samples']['grid'] == str(workdir / 'train' / 'step_8' / 'samples.png')  # not overwritten
    with np.load(workdir / 'train' / 'step_8' / 'samples.npz') as f:
        assert f['images'].shape == (16, 8, 8, 1)  # the pc samples of training, beside the ode ones

    run_python(args + TINY + ['--mode', 'sample', '--config.sampling.method=dpm_solver_pp',
                              '--config.sampling.num_steps=5'])
    sampling = json.loads((workdir / 'sample' / 'step_8' / 'sampling.json').read_text())
    assert sampling['method'] == 'dpm_solver_pp' and sampling['score_evaluations_per_batch'] == [6]  # 5 + denoising
    with np.load(workdir / 'sample' / 'step_8' / 'samples.npz') as f:
        assert f['images'].shape == (16, 8, 8, 1)

    run_python(args + TINY + ['--mode', 'inpaint', '--config.sampling.num_samples=4', '--config.sampling.batch_size=4'])
    with np.load(workdir / 'inpaint' / 'step_8' / 'inpaint.npz') as f:
        originals, results = f['originals'], f['results']
    assert originals.shape == results.shape == (4, 8, 8, 1)
    np.testing.assert_allclose(results[:, :, 4:], originals[:, :, 4:], atol=1e-5)  # the observed right half
    assert (workdir / 'inpaint' / 'step_8' / 'inpaint.png').exists()

"""The modes end to end on tiny configs: CelebA-HQ preprocessing, VQ autoencoder -> latent diffusion -> samples,
and sampling on two devices through main.py (pixel diffusion: test_end_to_end_pixel.py)."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from configs.ldm import tiny
from gen_runtime.errors import ConfigError
from gen_runtime.modes import run_mode
from tests.conftest import run_python


def _run(config, workdir, mode):
    run_mode(config, str(workdir), mode)


def _newest_samples(workdir):
    steps = sorted(os.listdir(workdir / 'sample'), key=lambda s: int(s.split('_')[1]))
    with np.load(workdir / 'sample' / steps[-1] / 'samples.npz') as f:
        return f['images'], f['labels'], workdir / 'sample' / steps[-1]


@pytest.mark.data
def test_preprocess_resizes_celebahq_to_256(data_root, tmp_path):
    config = tiny.get_config('vq')
    config.preprocess.input = str(data_root / 'celebahq_samples')
    config.preprocess.output = str(tmp_path / 'celebahq256')
    _run(config, tmp_path / 'run', 'preprocess')
    outputs = sorted(os.listdir(tmp_path / 'celebahq256'))
    assert len(outputs) == 56 and all(name.endswith('.png') for name in outputs)
    first = np.asarray(Image.open(tmp_path / 'celebahq256' / outputs[0]))
    assert first.shape == (256, 256, 3)
    with Image.open(data_root / 'celebahq_samples' / outputs[0].replace('.png', '.jpg')) as original:
        assert original.size == (1024, 1024)
        want = np.asarray(original.convert('RGB').resize((256, 256), Image.Resampling.BICUBIC, reducing_gap=None))
    np.testing.assert_array_equal(first, want)


def _tiny(variant, steps=4, **fields):
    config = tiny.get_config(variant)
    config.training.num_steps = steps
    config.training.log_every = steps
    config.training.checkpoint_every = steps
    for path, value in fields.items():
        section, key = path.split('__')
        config[section][key] = value
    return config


@pytest.mark.fast_compile
@pytest.mark.slow
@pytest.mark.data
def test_latent_diffusion_end_to_end(data_root, tmp_path, monkeypatch):
    vq_dir, ldm_dir = tmp_path / 'vq', tmp_path / 'ldm'
    vq = _tiny('vq')
    _run(vq, vq_dir, 'train_autoencoder')
    metrics = [json.loads(line) for line in open(vq_dir / 'metrics.jsonl')]
    assert metrics[-1]['step'] == 4 and 0 < metrics[-1]['perplexity'] <= 64
    _run(vq, vq_dir, 'reconstruct')
    rec = json.load(open(vq_dir / 'reconstruct' / 'step_4' / 'metrics.json'))
    assert rec['psnr'] > 5 and 0 < rec['codebook_usage'] <= 1

    ldm = _tiny('ldm', latent__first_stage_workdir=str(vq_dir))
    _run(ldm, ldm_dir, 'train')
    with np.load(ldm_dir / 'latents' / 'train.npz') as f:
        assert f['latent'].shape == (56, 16, 16, 3) and f['latent_flipped'].shape == (56, 16, 16, 3)
    assert json.loads(open(ldm_dir / 'metrics.jsonl').readline())['step'] == 4
    seen = []

    def fake_evaluate(config, workdir, batches, **summary):
        seen.extend(batches)
        return {'fid': 1.0}

    import gen_runtime.sample_quality as sample_quality
    monkeypatch.setattr(sample_quality, 'evaluate_samples', fake_evaluate)
    _run(ldm, ldm_dir, 'eval')
    evaluated = np.concatenate(seen)
    assert evaluated.shape == (8, 32, 32, 3) and evaluated.dtype == np.float32
    assert 0 <= evaluated.min() and evaluated.max() <= 1 and evaluated.std() > 0

    # `sample` through main.py with the batch sharded over two devices draws the same images as `eval`
    proc = run_python(['main.py', '--config', 'configs/ldm/tiny.py:ldm', '--workdir', str(ldm_dir), '--mode', 'sample',
                       '--config.training.num_steps=4', '--config.training.log_every=4',
                       '--config.training.checkpoint_every=4', f'--config.latent.first_stage_workdir={vq_dir}'],
                      devices=2, env={'JAXGEN_DATA_ROOT': str(data_root)})
    printed = json.loads(proc.stdout.strip().splitlines()[-1])  # the summary, as sampling.json holds it
    assert printed == json.load(open(ldm_dir / 'sample' / 'step_4' / 'sampling.json'))
    assert printed['step'] == 4 and printed['num_samples'] == 8
    images, _, out = _newest_samples(ldm_dir)
    assert images.shape == (8, 32, 32, 3) and images.dtype == np.uint8 and (out / 'samples.png').exists()
    assert np.abs(images.astype(float) - evaluated * 255).max() <= 1.0

    _run(ldm, ldm_dir, 'memorization')
    report = json.load(open(ldm_dir / 'memorization' / 'step_4' / 'memorization.json'))
    assert report['training_images'] == 56 and report['samples'] == 8
    assert report['sample_to_nearest_training_psnr_mean'] > 0


def test_configuration_errors_are_clear(tmp_path):
    ldm = _tiny('ldm', latent__first_stage_workdir=str(tmp_path / 'nowhere'))
    with pytest.raises(ConfigError, match='holds no run'):
        _run(ldm, tmp_path / 'ldm', 'train')
    unguided = _tiny('ddpm', diffusion__label_dropout=0.0)
    with pytest.raises(ConfigError, match='label_dropout'):
        _run(unguided, tmp_path / 'ddpm', 'sample')
    unknown_task = _tiny('ddpm')
    unknown_task.task = 'gan'
    with pytest.raises(ConfigError, match='task='):
        _run(unknown_task, tmp_path / 'gan', 'train')

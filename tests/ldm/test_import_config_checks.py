"""Issue 22: what a latent-diffusion `.ckpt` or a diffusers folder fixes and its tensors cannot show (time
embedding order and shift, GroupNorm eps and groups, every config.json field) is the config's too, or the
import is refused in one line naming the field and both values, before anything is written."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from diffusers import UNet2DModel

from gen_runtime.errors import ConfigError
from gen_runtime.modes import run_mode
from tests.ldm.test_compvis_checkpoints import FIXTURES, _unet_config, _vq_config
from tests.ldm.test_networks import _randomise, small_torch_vq

ROOT = Path(__file__).resolve().parents[2]

# A config field, a wrong value, and what a CompVis openaimodel UNet always has.
COMPVIS_UNET_CASES = [('flip_sin_to_cos', False, 'True'), ('freq_shift', 1.0, '0.0'), ('norm_eps', 1e-6, '1e-05'),
                      ('norm_groups', 16, '32')]


def _nothing_written(workdir: Path) -> None:
    assert not (workdir / 'checkpoints').exists() and not (workdir / 'import.json').exists()


@pytest.mark.parametrize('field,wrong,theirs', COMPVIS_UNET_CASES)
def test_compvis_unet_under_another_embedding_or_normalisation_is_refused(field, wrong, theirs, tmp_path):
    config = _unet_config('head_channels')
    config.model[field] = wrong
    message = (rf"^a latent-diffusion \(CompVis\) checkpoint has model\.{field}={re.escape(theirs)} where this "
               rf'config has {re.escape(repr(wrong))}; pass --config\.model\.{field}={re.escape(theirs)}$')
    with pytest.raises(ConfigError, match=message):
        run_mode(config, str(tmp_path), 'import_weights')
    _nothing_written(tmp_path)


def test_compvis_first_stage_with_other_group_count_is_refused(tmp_path):
    config = _vq_config('vq_attention', os.path.join(FIXTURES, 'vq_attention.ckpt'), '')
    config.autoencoder.norm_groups = 16
    with pytest.raises(ConfigError, match=r'CompVis\) checkpoint has autoencoder\.norm_groups=32 where this config '
                                          r'has 16; pass --config\.autoencoder\.norm_groups=32$'):
        run_mode(config, str(tmp_path), 'import_autoencoder')
    _nothing_written(tmp_path)


def test_cifar10_ddpm_config_with_a_compvis_checkpoint_fails_in_one_line_through_main(tmp_path):
    """The issue's case: DDPM's TF-style embedding and GroupNorm eps under a CompVis checkpoint: exit 2."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / 'main.py'), '--config', str(ROOT / 'configs/ldm/cifar10_ddpm.py'),
         '--workdir', str(tmp_path / 'run'), '--mode', 'import_weights',
         f'--config.weights.path={FIXTURES}/unet_heads.ckpt', '--config.model.model_channels=32',
         '--config.model.channel_mult=(1,2)', '--config.model.num_res_blocks=1'],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('error: a latent-diffusion (CompVis) checkpoint has model.flip_sin_to_cos=True, '
                           'model.freq_shift=0.0, model.norm_eps=1e-05 where this config has False, 1.0, 1e-06; '
                           'pass --config.model.flip_sin_to_cos=True'), last
    assert 'Traceback' not in proc.stderr
    assert not (tmp_path / 'run' / 'checkpoints').exists()


# ------------------------------------------------------------------------------------------------ diffusers


def _diffusers_unet(tmp_path: Path, **kwargs) -> Path:
    torch_model = _randomise(UNet2DModel(sample_size=8, block_out_channels=(32, 64), layers_per_block=1,
                                         down_block_types=('DownBlock2D', 'AttnDownBlock2D'),
                                         up_block_types=('AttnUpBlock2D', 'UpBlock2D'), **kwargs))
    torch_model.save_pretrained(tmp_path / 'unet')
    return tmp_path / 'unet'


def _diffusers_config(folder: Path):
    config = _unet_config('head_channels')
    # num_heads is unused with a head width (diffusers' attention_head_dim)
    config.model.update(channel_mult=(1, 2), num_res_blocks=1, num_head_channels=8, num_heads=4, scale_shift_norm=False,
                        num_classes=0)
    config.weights.update(path=str(folder), layout='diffusers')
    return config


@pytest.mark.parametrize('field,wrong,theirs', [('flip_sin_to_cos', True, 'False'), ('freq_shift', 0.0, '1.0'),
                                                ('norm_eps', 1e-5, '1e-06'), ('norm_groups', 32, '16')])
def test_diffusers_folder_under_another_embedding_or_normalisation_is_refused(field, wrong, theirs, tmp_path):
    folder = _diffusers_unet(tmp_path, flip_sin_to_cos=False, freq_shift=1, norm_eps=1e-6, norm_num_groups=16)
    config = _diffusers_config(folder)
    config.model.update(flip_sin_to_cos=False, freq_shift=1.0, norm_eps=1e-6, norm_groups=16)
    run_mode(config, str(tmp_path / 'ok'), 'import_weights')
    config.model[field] = wrong
    with pytest.raises(ConfigError, match=rf'^the diffusers folder has model\.{field}={re.escape(theirs)} where this '
                                          rf'config has {re.escape(repr(wrong))}; pass --config\.model\.{field}='):
        run_mode(config, str(tmp_path / 'run'), 'import_weights')
    _nothing_written(tmp_path / 'run')


def test_diffusers_weights_file_is_read_with_its_config_json_and_refused_without(tmp_path):
    folder = _diffusers_unet(tmp_path, norm_eps=1e-6)
    config = _diffusers_config(folder / 'diffusion_pytorch_model.safetensors')
    with pytest.raises(ConfigError, match=r'^the diffusers folder has model\.norm_eps=1e-06 where this config has '):
        run_mode(config, str(tmp_path / 'run'), 'import_weights')
    bare = tmp_path / 'bare' / 'unet.safetensors'
    bare.parent.mkdir()
    shutil.copy(folder / 'diffusion_pytorch_model.safetensors', bare)
    config.weights.path = str(bare)
    with pytest.raises(ConfigError, match=r'is a diffusers state dict without its config\.json.*norm_eps'):
        run_mode(config, str(tmp_path / 'run2'), 'import_weights')
    _nothing_written(tmp_path / 'run')
    _nothing_written(tmp_path / 'run2')


def test_diffusers_config_json_field_we_do_not_know_is_refused(tmp_path):
    folder = _diffusers_unet(tmp_path)
    cfg = (folder / 'config.json').read_text()
    (folder / 'config.json').write_text(cfg.replace('"norm_eps"', '"resnet_out_scale_factor": 2.0, "norm_eps"'))
    with pytest.raises(ConfigError, match=r'^config\.json resnet_out_scale_factor=2\.0: a field this importer does '
                                          'not know'):
        run_mode(_diffusers_config(folder), str(tmp_path / 'run'), 'import_weights')
    _nothing_written(tmp_path / 'run')


def test_diffusers_vq_folder_with_other_group_count_is_refused(tmp_path):
    small_torch_vq().save_pretrained(tmp_path / 'vq')
    config = _vq_config('vq', str(tmp_path / 'vq'), '')
    config.autoencoder.update(ch_mult=(1, 2), num_codes=16, norm_groups=16)
    config.weights.layout = 'diffusers'
    with pytest.raises(ConfigError, match=r'^the diffusers folder has autoencoder\.norm_groups=32 where this config '
                                          r'has 16; pass --config\.autoencoder\.norm_groups=32$'):
        run_mode(config, str(tmp_path / 'run'), 'import_autoencoder')
    _nothing_written(tmp_path / 'run')

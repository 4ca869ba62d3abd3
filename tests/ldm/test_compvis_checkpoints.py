"""CompVis latent-diffusion `.ckpt` files imported by `--mode import_weights` / `import_autoencoder` and
proven against the original code's own outputs on them.

The fixtures in tests/ldm/fixtures/compvis/ were written by running CompVis/latent-diffusion and
taming-transformers (`make_compvis_fixtures.py`, which takes their checkouts' paths; half-precision
weights): openaimodel UNets (num_heads; num_head_channels with use_scale_shift_norm and class labels), a
stand-alone VQModel with attention, and a whole LatentDiffusion (sqrt-linear schedule buffers, a
scale_factor buffer, VQModelInterface first stage, the UNet's LitEma copy) sampled by the original
DDIMSampler (eta = 0, 30 steps which the original makes 31). The checkpoints are Lightning pickles
naming a Lightning class, read here without torch and without Lightning.
"""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs.ldm import tiny
from gen_runtime.errors import ConfigError
from gen_runtime.modes import run_mode
from gen_runtime.trainer import load_trained_state
from ldm_jax.autoencoder_task import autoencoder_initialiser
from ldm_jax.diffusion import eps_to_x0
from ldm_jax.experiment import initialiser, make_experiment
from ldm_jax.generation import Sampler
from ldm_jax.models import autoencoder_from_config
from ldm_jax.modes import trained_networks
from ldm_jax.nn.autoencoder import VQModel
from ldm_jax.samplers import ddim_sample, ddim_timesteps

FIXTURES = os.path.join(os.path.dirname(__file__), 'fixtures', 'compvis')
REFERENCE = dict(np.load(os.path.join(FIXTURES, 'reference.npz')))

# Our config for each fixture UNet (the originals' settings are in make_compvis_fixtures.UNETS).
UNETS = {
    'heads': dict(image_size=8, channels=4, model=dict(channel_mult=(1, 2), num_res_blocks=1,
                                                        attention_resolutions=(2,), num_heads=4,
                                                        num_head_channels=-1)),
    'head_channels': dict(image_size=8, channels=3, model=dict(channel_mult=(1, 1), num_res_blocks=2,
                                                               attention_resolutions=(2,), num_head_channels=16,
                                                               scale_shift_norm=True, num_classes=5)),
}


def _unet_config(name: str):
    config = tiny.get_config('ddpm')
    spec = UNETS[name]
    config.data.image_size, config.data.num_channels = spec['image_size'], spec['channels']
    config.model.num_classes = 0
    config.model.update(spec['model'])
    config.diffusion.label_dropout, config.sampling.guidance_scale = 0.0, 1.0
    config.weights.path = os.path.join(FIXTURES, f'unet_{name}.ckpt')
    return config


@pytest.mark.parametrize('name', sorted(UNETS))
def test_imported_unet_gives_the_original_eps(name, tmp_path):
    config = _unet_config(name)
    run_mode(config, str(tmp_path), 'import_weights')
    exp = make_experiment(config)
    step, state = load_trained_state(config, str(tmp_path), initialiser(exp))
    assert step == 0
    with open(tmp_path / 'import.json') as f:
        assert json.load(f)['original_step'] == 5000
    _check_eps(exp.network, state, name)


def _check_eps(unet, state, name: str) -> None:
    """The original's eps with the raw weights and, where the checkpoint has a LitEma copy, with the EMA's
    (without one, the EMA parameters are the raw ones)."""
    x, t, y = REFERENCE[f'{name}/x'], REFERENCE[f'{name}/t'], REFERENCE.get(f'{name}/y')
    apply = jax.jit(unet.apply)
    ema_key = f'{name}/eps_ema' if f'{name}/eps_ema' in REFERENCE else f'{name}/eps'
    for params, key in ((state.params, f'{name}/eps'), (state.ema_params, ema_key)):
        got = np.asarray(apply({'params': params}, x, t, y))
        np.testing.assert_allclose(got, REFERENCE[key], rtol=1e-5, atol=1e-5, err_msg=key)


def _vq_config(name: str, path: str, prefix: str):
    config = tiny.get_config('vq')
    config.data.image_size = 16
    config.autoencoder.num_codes = 32
    config.autoencoder.ch_mult = (1, 2) if name == 'vq_attention' else (1, 1, 1)
    config.autoencoder.attn_resolutions = (8,) if name == 'vq_attention' else ()
    config.weights.path, config.weights.prefix = path, prefix
    return config


def _check_vq(config, workdir: str, name: str) -> None:
    shape = (config.data.image_size, config.data.image_size, config.data.num_channels)
    _, state = load_trained_state(config, workdir, autoencoder_initialiser(config, shape))
    params = {'params': state['generator'].params}
    model = autoencoder_from_config(config)
    latents = model.apply(params, REFERENCE[f'{name}/x'], method=VQModel.encode)
    np.testing.assert_allclose(np.asarray(latents), REFERENCE[f'{name}/latents'], rtol=1e-5, atol=1e-5)
    _, _, indices = model.apply(params, latents, method=VQModel.quantize)
    np.testing.assert_array_equal(np.asarray(indices).reshape(REFERENCE[f'{name}/indices'].shape),
                                  REFERENCE[f'{name}/indices'])
    assert len(np.unique(REFERENCE[f'{name}/indices'])) > 3
    decoded = model.apply(params, latents, method=VQModel.decode)
    np.testing.assert_allclose(np.asarray(decoded), REFERENCE[f'{name}/decoded'], rtol=1e-5, atol=1e-5)


def test_stand_alone_vq_model_encodes_quantises_and_decodes_as_the_original(tmp_path):
    config = _vq_config('vq_attention', os.path.join(FIXTURES, 'vq_attention.ckpt'), '')
    run_mode(config, str(tmp_path), 'import_autoencoder')
    _check_vq(config, str(tmp_path), 'vq_attention')


def _ldm_configs(tmp_path):
    ckpt = os.path.join(FIXTURES, 'ldm.ckpt')
    vq = _vq_config('ldm_first_stage', ckpt, 'first_stage_model.')
    config = tiny.get_config('ldm')
    config.data.image_size = 16
    config.latent.first_stage_workdir = str(tmp_path / 'vq')
    config.model.update(channel_mult=(1, 1), num_res_blocks=1, attention_resolutions=(1, 2), num_head_channels=16)
    config.diffusion.update(num_timesteps=1000, schedule='sqrt_linear', linear_start=0.0015, linear_end=0.0195)
    config.sampling.update(method='ddim', num_steps=30, spacing='uniform_ldm', eta=0.0,
                           batch_size=2, num_samples=2)
    config.weights.path = ckpt
    return vq, config


def test_latent_diffusion_checkpoint_samples_with_ddim_as_the_original(tmp_path):
    """The whole .ckpt: first stage, UNet (EMA), scale_factor; the original DDIMSampler's 31 steps."""
    vq, config = _ldm_configs(tmp_path)
    run_mode(vq, str(tmp_path / 'vq'), 'import_autoencoder')
    _check_vq(vq, str(tmp_path / 'vq'), 'ldm_first_stage')
    run_mode(config, str(tmp_path / 'ldm'), 'import_weights')
    steps = ddim_timesteps('uniform_ldm', 30, 1000)
    np.testing.assert_array_equal(steps, REFERENCE['ldm/ddim_timesteps'])
    exp = make_experiment(config)
    _, state = load_trained_state(config, str(tmp_path / 'ldm'), initialiser(exp))
    assert float(state.extra['scale_factor']) == pytest.approx(0.8)
    unet, schedule = exp.network, exp.schedule
    _check_eps(unet, state, 'ldm_unet')
    assert np.abs(REFERENCE['ldm_unet/eps'] - REFERENCE['ldm_unet/eps_ema']).max() > 1e-2

    def denoise(x, t):
        eps = unet.apply({'params': state.ema_params}, x, t)
        return eps_to_x0(schedule, x, t, eps), eps

    latents = jax.jit(lambda x_T: ddim_sample(denoise, schedule, x_T, jax.random.key(0), steps))(REFERENCE['ldm/x_T'])
    np.testing.assert_allclose(np.asarray(latents), REFERENCE['ldm/latents'], rtol=1e-4, atol=1e-4)
    assert config.eval.use_ema and not vq.eval.use_ema  # the UNet's EMA, the first stage's raw parameters
    _, params = trained_networks(exp, str(tmp_path / 'ldm'))
    images = Sampler(exp, 2).from_noise(params, REFERENCE['ldm/x_T'])
    want = np.clip((REFERENCE['ldm/decoded'] + 1) / 2, 0, 1)
    np.testing.assert_allclose(images, want, atol=1e-4)


def test_a_checkpoint_whose_schedule_differs_from_the_config_is_refused_before_any_import(tmp_path):
    _, config = _ldm_configs(tmp_path)
    config.latent.first_stage_workdir = ''
    config.data.image_size = 4
    config.diffusion.schedule = 'linear'
    with pytest.raises(ConfigError, match=r"^the checkpoint's betas differ from diffusion.schedule='linear' .*"
                                          r"'sqrt_linear' here$"):
        run_mode(config, str(tmp_path / 'ldm'), 'import_weights')
    config.diffusion.update(schedule='sqrt_linear', num_timesteps=500)
    with pytest.raises(ConfigError, match='1000 diffusion steps where diffusion.num_timesteps=500'):
        run_mode(config, str(tmp_path / 'ldm'), 'import_weights')
    assert not (tmp_path / 'ldm').exists()  # refused before any work: no workdir, checkpoint or import.json


def test_lightning_objects_are_read_as_inert_stand_ins():
    from gen_runtime.torch_archive import ForeignObject, load_archive

    root = load_archive(os.path.join(FIXTURES, 'vq_attention.ckpt'), foreign_objects=True)
    (key,) = root['callbacks']
    assert issubclass(key, ForeignObject)
    assert key.qualified_name == 'pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint'
    assert root['global_step'] == 700 and isinstance(root['state_dict']['quant_conv.weight'], np.ndarray)
    with pytest.raises(Exception, match='pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint'):
        load_archive(os.path.join(FIXTURES, 'vq_attention.ckpt'))
    assert jnp.asarray(root['state_dict']['quant_conv.weight']).shape == (3, 3, 1, 1)

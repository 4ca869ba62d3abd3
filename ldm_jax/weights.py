"""Importing PyTorch weights into a workdir: `--mode import_weights` (the UNet) and `import_autoencoder`.

weights.path is a latent-diffusion / taming `.ckpt` (Lightning's torch.save, read without torch: tensors
only, its other objects inert), any torch file of a state dict (`.pt`, `.pth`, `.bin`), an `.npz` or
`.safetensors` state dict, or a diffusers `save_pretrained` folder (config.json checked against the run's
config, see ldm_jax.diffusers_folder; a diffusers weights file is read with the config.json beside it,
never without one). Layouts: latent diffusion's (`model.diffusion_model.*` with its `model_ema.*` copy,
`first_stage_model.*`, or a stand-alone VQGAN with weights.prefix='') or diffusers' (UNet2DModel /
VQModel). A latent-diffusion checkpoint's schedule buffers (`betas`) must equal the run's schedule, and its
`scale_factor` buffer becomes the run's. What its tensors cannot show but the original code always uses
(openaimodel's [cos, sin] time embedding with frequency shift 0 and GroupNorm(32, eps=1e-5), taming's 32
GroupNorm groups; `COMPVIS_UNET`, `COMPVIS_AUTOENCODER`) must be the config's too, else the import is
refused in one line before the file is read. The attention's head count is the config's
(model.num_heads / num_head_channels): no file records it. The converted parameters become step 0 of the
workdir, so `sample`, `eval` and `reconstruct` use them and `train` fine-tunes from them.
"""

import os
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gen_runtime import state_dicts
from gen_runtime.config import resolve_data_path
from gen_runtime.errors import ConfigError
from gen_runtime.import_checks import refuse_mismatches
from gen_runtime.imported import save_imported_state
from gen_runtime.run_once import run_once
from gen_runtime.torch_archive import load_archive
from gen_runtime.train_state import TrainState
from gen_runtime.trainer import Initialiser
from ldm_jax import convert, diffusers_folder
from ldm_jax.autoencoder_task import autoencoder_initialiser
from ldm_jax.data import image_shape
from ldm_jax.diffusion import output_channels
from ldm_jax.experiment import initialiser, make_experiment
from ldm_jax.models import autoencoder_from_config
from ldm_jax.nn.layers import num_attention_heads
from ldm_jax.schedule import betas_from_config

LAYOUTS = ('ldm', 'diffusers')


# What latent diffusion's openaimodel UNetModel always uses (util.timestep_embedding: [cos, sin], frequencies
# max_period^(-i / half); normalization(): GroupNorm32(32, channels), torch's eps 1e-5): model.* here.
COMPVIS_UNET = {'flip_sin_to_cos': True, 'freq_shift': 0.0, 'norm_eps': 1e-5, 'norm_groups': 32}
# taming / latent diffusion's first stage (model.py Normalize: GroupNorm(32, eps=1e-6), the eps ours uses).
COMPVIS_AUTOENCODER = {'norm_groups': 32}
COMPVIS = 'a latent-diffusion (CompVis) checkpoint'


def read_checkpoint(path: str) -> tuple[dict[str, np.ndarray], dict]:
    """(name -> array, facts such as the original `global_step`) of a torch, .npz or .safetensors file."""
    if not path.endswith(state_dicts.TORCH_SUFFIXES):
        return state_dicts.read_state_dict(path), {}
    root = load_archive(path, foreign_objects=True)
    facts = {k: root[k] for k in ('global_step', 'epoch') if isinstance(root, dict) and isinstance(root.get(k), int)}
    return state_dicts.torch_state_dict(root, path), facts


def check_schedule(sd: dict[str, np.ndarray], diffusion: ml_collections.ConfigDict) -> None:
    """Refuses a latent-diffusion checkpoint whose `betas` buffer is not the config's schedule."""
    if 'betas' not in sd:
        return
    theirs = np.asarray(sd['betas'], np.float64)
    ours = betas_from_config(diffusion)
    if theirs.shape != ours.shape:
        raise ConfigError(f'the checkpoint has {theirs.size} diffusion steps where diffusion.num_timesteps='
                          f'{diffusion.num_timesteps}; set --config.diffusion.num_timesteps={theirs.size}')
    bad = np.flatnonzero(~np.isclose(theirs, ours, rtol=1e-5, atol=1e-9))
    if bad.size:
        t = int(bad[0])
        raise ConfigError(f"the checkpoint's betas differ from diffusion.schedule={diffusion.schedule!r} "
                          f'linear_start={diffusion.linear_start} linear_end={diffusion.linear_end} (beta_{t} = '
                          f'{theirs[t]:.6g} there, {ours[t]:.6g} here; from {theirs[0]:.6g} to {theirs[-1]:.6g}); '
                          "latent diffusion's 'linear' is diffusion.schedule='sqrt_linear' here")


def _read_weights(config: ml_collections.ConfigDict, check_folder: Callable[[dict, str], None],
                  check_ldm: Callable[[], None]) -> tuple[dict[str, np.ndarray], dict]:
    """(tensors, facts) of weights.path: a checkpoint file (its settings checked by `check_ldm()` for the ldm
    layout, before it is read), or a diffusers folder whose config.json `check_folder(folder config, path)`
    checks against the config."""
    w = config.weights
    if w.layout not in LAYOUTS:
        raise ConfigError(f'weights.layout={w.layout!r} is not one of {", ".join(LAYOUTS)}')
    path = resolve_data_path(config, w.path)
    if not os.path.isdir(path):
        if not os.path.isfile(path):
            raise ConfigError(f'weights.path {path} does not exist')
        if w.layout == 'ldm':
            check_ldm()
            return read_checkpoint(path)
        path = _diffusers_folder_of(path)
    if w.layout != 'diffusers':
        raise ConfigError(f'weights.path {path} is a diffusers folder: pass --config.weights.layout=diffusers')
    cfg, sd = diffusers_folder.read_folder(path)
    check_folder(cfg, path)
    return sd, {}


def _diffusers_folder_of(path: str) -> str:
    """The save_pretrained folder of a diffusers weights file: its config.json fixes the time embedding,
    GroupNorm and attention settings that the tensors cannot show, so a file without one is refused."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.basename(path) in diffusers_folder.WEIGHT_FILES and os.path.isfile(os.path.join(folder, 'config.json')):
        return folder
    raise ConfigError(f'weights.path {path} is a diffusers state dict without its config.json, which fixes what the '
                      'tensors cannot show (flip_sin_to_cos, freq_shift, norm_eps, norm_num_groups, '
                      'attention_head_dim); give the save_pretrained folder that holds both as weights.path')


def _save(config: ml_collections.ConfigDict, workdir: str, initialiser: Initialiser, state: object,
          facts: dict) -> None:
    record = {'path': config.weights.path, 'layout': config.weights.layout}
    if 'global_step' in facts:
        record['original_step'] = facts['global_step']
    save_imported_state(config, workdir, initialiser, state, record)


def import_unet(config: ml_collections.ConfigDict, workdir: str) -> None:
    """The UNet (and its EMA, if the checkpoint has one) of weights.path as step 0 of `workdir`."""
    w, exp = config.weights, make_experiment(config)
    space = exp.space

    def check_folder(cfg: dict, path: str) -> None:
        settings = diffusers_folder.unet_settings(cfg)
        if config.diffusion.label_dropout > 0 and settings['num_classes']:
            settings['num_classes'] -= 1  # the null label's row
        # num_heads only counts without a head width (num_head_channels, diffusers' attention_head_dim).
        skip = ('dropout', 'num_heads') if settings['num_head_channels'] > 0 else ('dropout',)
        diffusers_folder.check_against_config(settings, config.model, 'model', skip=skip)
        expected = output_channels(config.diffusion.variance, space.shape[-1])
        if settings['out_channels'] != expected:
            learned = settings['out_channels'] == 2 * space.shape[-1]
            raise ConfigError(f"{path}'s UNet has {settings['out_channels']} output channels where "
                              f'diffusion.variance={config.diffusion.variance!r} needs {expected}; pass '
                              f"--config.diffusion.variance={'learned_range' if learned else 'fixed_small'}")
        scheduler = diffusers_folder.read_scheduler(path)
        if scheduler is not None:
            diffusers_folder.check_against_config(scheduler['diffusion'], config.diffusion, 'diffusion')
            flags = ' '.join(f'--config.sampling.{k}={v}' for k, v in scheduler['sampling'].items())
            print(f"the folder's scheduler samples with {flags}")

    def check_ldm() -> None:
        refuse_mismatches(COMPVIS, COMPVIS_UNET, config.model, 'model')

    sd, facts = _read_weights(config, check_folder, check_ldm)
    check_schedule(sd, config.diffusion)
    unet = exp.network
    labels = jnp.zeros((1,), jnp.int32) if unet.num_classes else None
    shapes = convert.param_shapes(unet, jnp.zeros((1, *space.shape)), jnp.zeros((1,), jnp.int32), labels)
    if w.layout == 'diffusers':
        params = ema = convert.unet_from_diffusers(sd, shapes)
    else:
        m = config.model

        def heads(channels: int) -> int:
            return num_attention_heads(channels, m.num_heads, m.num_head_channels)

        params = convert.unet_from_ldm(sd, shapes, heads)
        has_ema = any(k.startswith(convert.LDM_EMA_PREFIX) for k in sd)
        ema = convert.unet_from_ldm(sd, shapes, heads, ema=True) if has_ema else params
    scale = float(np.asarray(sd.get('scale_factor', config.latent.scale_factor)))
    if space.latent and scale <= 0:
        raise ConfigError('set latent.scale_factor: the checkpoint has no scale_factor and 0 (from the data) '
                          'cannot be computed for imported weights')
    state = TrainState.from_config(params, config, extra={'scale_factor': jnp.asarray(scale, jnp.float32)})
    _save(config, workdir, initialiser(exp), state.replace(ema_params=ema), facts)


def import_autoencoder(config: ml_collections.ConfigDict, workdir: str) -> None:
    """The VQ autoencoder of weights.path as step 0 of `workdir` (with a freshly initialised discriminator)."""
    w, shape = config.weights, image_shape(config)

    def check_folder(cfg: dict, path: str) -> None:
        diffusers_folder.check_against_config(diffusers_folder.vq_settings(cfg, shape[0]), config.autoencoder,
                                              'autoencoder')

    def check_ldm() -> None:
        refuse_mismatches(COMPVIS, COMPVIS_AUTOENCODER, config.autoencoder, 'autoencoder')

    sd, facts = _read_weights(config, check_folder, check_ldm)
    shapes = convert.param_shapes(autoencoder_from_config(config), jnp.zeros((1, *shape)))
    if w.layout == 'diffusers':
        params = convert.vq_from_diffusers(sd, shapes)
    else:
        params = convert.vq_from_ldm(sd, shapes, prefix=w.prefix)
    initialiser = autoencoder_initialiser(config, shape)
    state = run_once(initialiser, jax.random.key(config.seed))  # its discriminator is kept as initialised
    stats = None
    if config.autoencoder.codebook == 'ema':
        codebook = params['quantizer']['embedding']
        stats = {'cluster_size': jnp.ones(codebook.shape[:1]), 'embed_sum': codebook}
    state['generator'] = TrainState.from_config(params, config, extra=stats)
    _save(config, workdir, initialiser, state, facts)

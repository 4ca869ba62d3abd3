"""diffusers `save_pretrained` folders: config.json read into our settings, weights from the folder.

A scheduler's `scheduler_config.json` (in the folder, or in the `scheduler/` folder of a pipeline beside
it) is read by `scheduler_settings` into our `diffusion` and `sampling` settings.

A UNet2DModel or VQModel folder holds `config.json` and `diffusion_pytorch_model.safetensors` (or `.bin`,
a torch pickle read without torch, tensors only). `unet_settings` / `vq_settings` turn config.json into
the keyword arguments of our `UNet` / `VQModel` and refuse, naming the field and its value, what our
modules cannot express and any field they do not know (it might change the outputs unchecked);
`load_pretrained(folder)` builds the module and converts the weights, for
notebooks. `--mode import_weights` / `import_autoencoder` with a folder as weights.path check the run's
config against the folder's (`check_against_config`) and import the weights.
"""

import json
import os
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import ml_collections
import numpy as np

from gen_runtime.errors import ConfigError
from gen_runtime.import_checks import refuse_mismatches
from gen_runtime.state_dicts import read_state_dict
from ldm_jax import convert
from ldm_jax.nn.autoencoder import VQModel
from ldm_jax.nn.unet import UNet

WEIGHT_FILES = ('diffusion_pytorch_model.safetensors', 'diffusion_pytorch_model.bin')
# config.json fields whose only value we implement (the field's diffusers default).
_UNET_FIXED = {'center_input_sample': False, 'time_embedding_type': 'positional', 'time_embedding_dim': None,
               'mid_block_type': 'UNetMidBlock2D', 'mid_block_scale_factor': 1, 'downsample_padding': 1,
               'downsample_type': 'conv', 'upsample_type': 'conv', 'act_fn': 'silu', 'add_attention': True,
               'class_embed_type': None}
_VQ_FIXED = {'act_fn': 'silu', 'norm_type': 'group', 'mid_block_add_attention': True}
# Every other config.json field that is read, or that cannot change the outputs here (sample_size: the
# networks are convolutional; num_train_timesteps: only for a learned time embedding; scaling_factor: a
# pipeline's latent scale, not the autoencoder's; lookup_from_codebook: decoding of code indices;
# force_upcast: precision). A field outside these is refused: it may change outputs in a way not checked.
_UNET_READ = {'in_channels', 'out_channels', 'freq_shift', 'flip_sin_to_cos', 'down_block_types', 'up_block_types',
              'block_out_channels', 'layers_per_block', 'dropout', 'attention_head_dim', 'norm_num_groups',
              'attn_norm_num_groups', 'norm_eps', 'resnet_time_scale_shift', 'num_class_embeds', 'sample_size',
              'num_train_timesteps'}
_VQ_READ = {'in_channels', 'out_channels', 'down_block_types', 'up_block_types', 'block_out_channels',
            'layers_per_block', 'latent_channels', 'sample_size', 'num_vq_embeddings', 'norm_num_groups',
            'vq_embed_dim', 'scaling_factor', 'lookup_from_codebook', 'force_upcast'}


def read_folder(folder: str) -> tuple[dict, dict[str, np.ndarray]]:
    """(config.json, state dict) of a diffusers model folder."""
    path = os.path.join(folder, 'config.json')
    try:
        with open(path) as f:
            cfg = json.load(f)
    except (OSError, ValueError) as e:
        raise ConfigError(f'{path} could not be read ({e}); is {folder} a diffusers save_pretrained folder?') from e
    return cfg, read_state_dict(folder)


def _refuse(field: str, value: Any, why: str) -> None:
    raise ConfigError(f'config.json {field}={value!r}: {why}')


def _fixed(cfg: dict, fixed: dict, read: set[str] | None = None) -> None:
    """Refuses a field whose value is not the one implemented and, given the fields `read`, any other one."""
    for field, value in cfg.items():
        if field.startswith('_'):  # _class_name, _diffusers_version, _name_or_path
            continue
        if field in fixed and value != fixed[field]:
            _refuse(field, value, f'only {fixed[field]!r} is implemented here')
        if read is not None and field not in fixed and field not in read:
            _refuse(field, value, 'a field this importer does not know, so it cannot tell whether it changes the '
                    "model's outputs; remove it from config.json if it has diffusers' default")


def _levels(cfg: dict, down: tuple[str, str], up: tuple[str, str]) -> list[bool]:
    """Per level, whether its blocks have attention; the up blocks must mirror the down blocks."""
    downs, ups = list(cfg['down_block_types']), list(cfg['up_block_types'])
    for types, allowed, field in ((downs, down, 'down_block_types'), (ups, up, 'up_block_types')):
        for t in types:
            if t not in allowed:
                _refuse(field, types, f'block type {t!r} is not one of {", ".join(allowed)}')
    attention = [t == down[1] for t in downs]
    if [t == up[1] for t in ups] != attention[::-1]:
        _refuse('up_block_types', ups, 'attention must sit at the levels of down_block_types, mirrored')
    return attention


def _channel_mult(cfg: dict) -> tuple[int, tuple[int, ...]]:
    widths = [int(w) for w in cfg['block_out_channels']]
    if any(w % widths[0] for w in widths):
        _refuse('block_out_channels', widths, 'every width must be a multiple of the first')
    return widths[0], tuple(w // widths[0] for w in widths)


def unet_settings(cfg: dict) -> dict[str, Any]:
    """Our UNet's keyword arguments (and in_channels) for a diffusers UNet2DModel config.json."""
    if cfg.get('_class_name', 'UNet2DModel') != 'UNet2DModel':
        _refuse('_class_name', cfg['_class_name'], 'only UNet2DModel is implemented here')
    _fixed(cfg, _UNET_FIXED, _UNET_READ)
    attention = _levels(cfg, ('DownBlock2D', 'AttnDownBlock2D'), ('UpBlock2D', 'AttnUpBlock2D'))
    model_channels, channel_mult = _channel_mult(cfg)
    groups = int(cfg.get('norm_num_groups', 32))
    if cfg.get('attn_norm_num_groups') not in (None, groups):
        _refuse('attn_norm_num_groups', cfg['attn_norm_num_groups'], f'only norm_num_groups ({groups}) is implemented')
    shift = cfg.get('resnet_time_scale_shift', 'default')
    if shift not in ('default', 'scale_shift'):
        _refuse('resnet_time_scale_shift', shift, "only 'default' and 'scale_shift' are implemented")
    if shift == 'scale_shift' and cfg.get('attn_norm_num_groups') is None:
        _refuse('attn_norm_num_groups', None, "with resnet_time_scale_shift='scale_shift' diffusers' mid-block "
                'attention then has no GroupNorm, ours always has one (openaimodel); only a group count is implemented')
    head_dim = cfg.get('attention_head_dim', 8)
    if cfg.get('out_channels', 3) not in (cfg.get('in_channels', 3), 2 * cfg.get('in_channels', 3)):
        _refuse('out_channels', cfg.get('out_channels'), f'is neither in_channels={cfg.get("in_channels", 3)} nor '
                'twice that (a learned variance)')
    return {'model_channels': model_channels, 'channel_mult': channel_mult,
            'num_res_blocks': int(cfg.get('layers_per_block', 2)),
            'attention_resolutions': tuple(2**i for i, a in enumerate(attention) if a),
            'dropout': float(cfg.get('dropout', 0.0)), 'num_heads': 1,
            'num_head_channels': -1 if head_dim is None else int(head_dim), 'scale_shift_norm': shift == 'scale_shift',
            'norm_eps': float(cfg.get('norm_eps', 1e-5)), 'norm_groups': groups,
            'flip_sin_to_cos': bool(cfg.get('flip_sin_to_cos', True)), 'freq_shift': float(cfg.get('freq_shift', 0)),
            'num_classes': int(cfg.get('num_class_embeds') or 0), 'out_channels': int(cfg.get('out_channels', 3))}


def vq_settings(cfg: dict, image_size: int) -> dict[str, Any]:
    """Our VQModel's keyword arguments for a diffusers VQModel config.json and images of `image_size`."""
    if cfg.get('_class_name', 'VQModel') != 'VQModel':
        _refuse('_class_name', cfg['_class_name'], 'only VQModel is implemented here')
    _fixed(cfg, _VQ_FIXED, _VQ_READ)
    attention = _levels(cfg, ('DownEncoderBlock2D', 'AttnDownEncoderBlock2D'),
                        ('UpDecoderBlock2D', 'AttnUpDecoderBlock2D'))
    ch, ch_mult = _channel_mult(cfg)
    latent = int(cfg.get('latent_channels', 3))
    return {'ch': ch, 'ch_mult': ch_mult, 'num_res_blocks': int(cfg.get('layers_per_block', 1)),
            'attn_resolutions': tuple(image_size // 2**i for i, a in enumerate(attention) if a),
            'z_channels': latent, 'embed_dim': int(cfg.get('vq_embed_dim') or latent),
            'num_codes': int(cfg.get('num_vq_embeddings', 256)), 'in_channels': int(cfg.get('in_channels', 3)),
            'norm_groups': int(cfg.get('norm_num_groups', 32))}


SCHEDULER_FILE = 'scheduler_config.json'
_BETA_SCHEDULES = {'linear': 'linear', 'scaled_linear': 'sqrt_linear', 'squaredcos_cap_v2': 'cosine'}
_PREDICTIONS = {'epsilon': 'eps', 'sample': 'x0', 'v_prediction': 'v'}
# scheduler_config.json fields whose only value we implement (diffusers' default).
_SCHEDULER_FIXED = {'trained_betas': None, 'thresholding': False, 'clip_sample_range': 1.0,
                    'rescale_betas_zero_snr': False}


def scheduler_config_path(folder: str) -> str | None:
    """scheduler_config.json in a model folder, or in the `scheduler/` folder of its pipeline."""
    for path in (os.path.join(folder, SCHEDULER_FILE),
                 os.path.join(os.path.dirname(os.path.abspath(folder)), 'scheduler', SCHEDULER_FILE)):
        if os.path.isfile(path):
            return path
    return None


def scheduler_settings(cfg: dict) -> dict[str, dict[str, Any]]:
    """Our `diffusion` and `sampling` settings for a diffusers DDPMScheduler / DDIMScheduler config.

    DDIM's 'leading' timesteps with steps_offset = 1 are our 'uniform' spacing; set_alpha_to_one is
    sampling.alpha_to_one. Anything else our samplers cannot express is refused, naming the field.
    """
    kind = cfg.get('_class_name', 'DDPMScheduler')
    if kind not in ('DDPMScheduler', 'DDIMScheduler'):
        _refuse('_class_name', kind, 'only DDPMScheduler and DDIMScheduler are implemented here')
    _fixed(cfg, _SCHEDULER_FIXED)
    beta_schedule = cfg.get('beta_schedule', 'linear')
    if beta_schedule not in _BETA_SCHEDULES:
        _refuse('beta_schedule', beta_schedule, f'not one of {", ".join(_BETA_SCHEDULES)}')
    prediction = cfg.get('prediction_type', 'epsilon')
    if prediction not in _PREDICTIONS:
        _refuse('prediction_type', prediction, f'not one of {", ".join(_PREDICTIONS)}')
    diffusion = {'num_timesteps': int(cfg.get('num_train_timesteps', 1000)), 'schedule': _BETA_SCHEDULES[beta_schedule],
                 'parameterization': _PREDICTIONS[prediction]}
    if beta_schedule == 'squaredcos_cap_v2':
        diffusion['cosine_s'] = 0.008  # diffusers' betas_for_alpha_bar offset
    else:
        diffusion.update(linear_start=float(cfg.get('beta_start', 1e-4)), linear_end=float(cfg.get('beta_end', 0.02)))
    sampling = {'method': 'ddpm' if kind == 'DDPMScheduler' else 'ddim',
                'clip_denoised': bool(cfg.get('clip_sample', True))}
    if kind == 'DDPMScheduler':
        variance = cfg.get('variance_type', 'fixed_small')
        if variance not in ('fixed_small', 'fixed_large', 'learned_range'):
            _refuse('variance_type', variance, "only 'fixed_small', 'fixed_large' and 'learned_range' are implemented")
        diffusion['variance'] = variance
        return {'diffusion': diffusion, 'sampling': sampling}
    if cfg.get('timestep_spacing', 'leading') != 'leading':
        _refuse('timestep_spacing', cfg['timestep_spacing'], "only 'leading' (with steps_offset=1) is implemented")
    if cfg.get('steps_offset', 0) != 1:
        _refuse('steps_offset', cfg.get('steps_offset', 0), "only 1 (latent diffusion's +1 shift) is implemented")
    sampling.update(spacing='uniform', alpha_to_one=bool(cfg.get('set_alpha_to_one', True)))
    return {'diffusion': diffusion, 'sampling': sampling}


def read_scheduler(folder: str) -> dict[str, dict[str, Any]] | None:
    """`scheduler_settings` of the folder's scheduler_config.json, None if it has none."""
    path = scheduler_config_path(folder)
    if path is None:
        return None
    try:
        with open(path) as f:
            return scheduler_settings(json.load(f))
    except (OSError, ValueError) as e:
        raise ConfigError(f'{path} could not be read ({e})') from e


def load_pretrained(folder: str) -> tuple[nn.Module, dict]:
    """(module, params) of a diffusers UNet2DModel or VQModel folder, e.g. for a notebook:
    `unet, params = ldm_jax.load_pretrained(folder); eps = unet.apply({'params': params}, x, t)`
    (NHWC inputs)."""
    cfg, state_dict = read_folder(folder)
    side = int(cfg.get('sample_size', 32))
    if cfg.get('_class_name') == 'VQModel' or 'num_vq_embeddings' in cfg:
        module = VQModel(**vq_settings(cfg, side))
        shapes = convert.param_shapes(module, jnp.zeros((1, side, side, module.in_channels)))
        return module, convert.vq_from_diffusers(state_dict, shapes)
    module = UNet(**unet_settings(cfg))
    labels = jnp.zeros((1,), jnp.int32) if module.num_classes else None
    shapes = convert.param_shapes(module, jnp.zeros((1, side, side, int(cfg.get('in_channels', 3)))),
                                  jnp.zeros((1,), jnp.int32), labels)
    return module, convert.unet_from_diffusers(state_dict, shapes)


def check_against_config(settings: dict[str, Any], section: ml_collections.ConfigDict, name: str,
                         skip: tuple[str, ...] = ()) -> None:
    """Refuses, in one line, the fields of config section `name` that differ from the folder's."""
    refuse_mismatches('the diffusers folder', settings, section, name, skip)

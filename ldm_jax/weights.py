"""Importing PyTorch weights into a workdir: `--mode import_weights` (the UNet) and `import_autoencoder`.

The state dict is read from an .npz or .safetensors file (numpy, no torch), or from a diffusers
`save_pretrained` folder (config.json checked against the run's config, see ldm_jax.diffusers_folder):
latent diffusion's layout
(`model.diffusion_model.*` with its `model_ema.*` copy, `first_stage_model.*`, or a stand-alone VQGAN with
weights.prefix='') or diffusers' (UNet2DModel / VQModel). A PyTorch-pickled .ckpt is turned into an npz once,
outside this library, with:
    python -c "import torch, numpy as np; sd = torch.load('model.ckpt', map_location='cpu')['state_dict'];
               np.savez('model.npz', **{k: v.numpy() for k, v in sd.items()})"
The converted parameters become step 0 of the workdir, so `sample`, `eval` and `reconstruct` use them and
`train` fine-tunes from them.
"""

import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gen_runtime.config import resolve_data_path
from gen_runtime.errors import CheckpointError, ConfigError
from gen_runtime.imported import save_imported_state
from gen_runtime.train_state import TrainState
from gen_runtime.trainer import TrainTask
from ldm_jax import convert, diffusers_folder
from ldm_jax.autoencoder_task import autoencoder_task
from ldm_jax.data import image_shape
from ldm_jax.diffusion_task import diffusion_task
from ldm_jax.models import autoencoder_from_config, discriminator_from_config, unet_from_config
from ldm_jax.nn.layers import num_attention_heads
from ldm_jax.pretrained import data_space

LAYOUTS = ('ldm', 'diffusers')


def read_state_dict(path: str) -> dict[str, np.ndarray]:
    """Name -> array from an .npz or .safetensors file."""
    if not os.path.isfile(path):
        raise ConfigError(f'weights.path {path} does not exist')
    try:
        if path.endswith('.npz'):
            with np.load(path) as f:
                return {k: f[k] for k in f.files}
        if path.endswith('.safetensors'):
            from safetensors.numpy import load_file

            return load_file(path)
    except (OSError, ValueError) as e:
        raise CheckpointError(f'{path} could not be read ({e})') from e
    raise ConfigError(f'weights.path {path} is neither .npz nor .safetensors; convert a torch .ckpt with the '
                      'one-liner in docs/ldm.md')


def _save(config: ml_collections.ConfigDict, workdir: str, task: TrainTask, state: object) -> None:
    save_imported_state(config, workdir, task, state, {'path': config.weights.path, 'layout': config.weights.layout})


def import_unet(config: ml_collections.ConfigDict, workdir: str) -> None:
    """The UNet (and its EMA, if the checkpoint has one) of weights.path as step 0 of `workdir`."""
    w, space = config.weights, data_space(config)
    if w.layout not in LAYOUTS:
        raise ConfigError(f'weights.layout={w.layout!r} is not one of {", ".join(LAYOUTS)}')
    path = resolve_data_path(config, w.path)
    if os.path.isdir(path):
        cfg, sd = diffusers_folder.read_folder(path)
        settings = diffusers_folder.unet_settings(cfg)
        if config.diffusion.label_dropout > 0 and settings['num_classes']:
            settings['num_classes'] -= 1  # the null label's row
        diffusers_folder.check_against_config(settings, config.model, 'model', skip=('dropout',))
        if w.layout != 'diffusers':
            raise ConfigError(f'weights.path {path} is a diffusers folder: pass --config.weights.layout=diffusers')
    else:
        sd = read_state_dict(path)
    unet = unet_from_config(config, space.shape[-1])
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
    _save(config, workdir, diffusion_task(config, None, space), state.replace(ema_params=ema))


def import_autoencoder(config: ml_collections.ConfigDict, workdir: str) -> None:
    """The VQ autoencoder of weights.path as step 0 of `workdir` (with a freshly initialised discriminator)."""
    w, shape = config.weights, image_shape(config)
    if w.layout not in LAYOUTS:
        raise ConfigError(f'weights.layout={w.layout!r} is not one of {", ".join(LAYOUTS)}')
    path = resolve_data_path(config, w.path)
    if os.path.isdir(path):
        cfg, sd = diffusers_folder.read_folder(path)
        diffusers_folder.check_against_config(diffusers_folder.vq_settings(cfg, shape[0]), config.autoencoder,
                                              'autoencoder')
        if w.layout != 'diffusers':
            raise ConfigError(f'weights.path {path} is a diffusers folder: pass --config.weights.layout=diffusers')
    else:
        sd = read_state_dict(path)
    shapes = convert.param_shapes(autoencoder_from_config(config), jnp.zeros((1, *shape)))
    if w.layout == 'diffusers':
        params = convert.vq_from_diffusers(sd, shapes)
    else:
        params = convert.vq_from_ldm(sd, shapes, prefix=w.prefix)
    stats = None
    if config.autoencoder.codebook == 'ema':
        codebook = params['quantizer']['embedding']
        stats = {'cluster_size': jnp.ones(codebook.shape[:1]), 'embed_sum': codebook}
    disc = jax.jit(lambda rng: discriminator_from_config(config).init(rng, jnp.zeros((1, *shape)), train=False))(
        jax.random.key(config.seed))
    state = {'generator': TrainState.from_config(params, config, extra=stats),
             'discriminator': TrainState.from_config(disc['params'], config,
                                                     extra={'batch_stats': disc['batch_stats']})}
    _save(config, workdir, autoencoder_task(config, None, shape), state)

"""`--mode import_weights`: an original score-SDE checkpoint as step 0 of a workdir.

Reads score_sde_pytorch's `checkpoint_*.pth` (torch.save of {'model', 'ema', 'optimizer', 'step'} with a
DataParallel `module.` prefix; read without torch, tensors only, nothing in the pickle is executed) or
score_sde's Flax `checkpoint_N` (msgpack of its training State: `optimizer.target`, `params_ema`, `step`).
The EMA weights become `ema_params` (what sample, likelihood, eval, inpaint and colorize use), the raw
weights `params` (what train fine-tunes, with a fresh optimiser state); the file, its layout and its
training step are recorded in `<workdir>/import.json`.

Settings the files fix: neither file stores its config, but the network's time embedding shows in its
tensors (a Gaussian Fourier `W` or none), score_sde_pytorch's `sigmas` buffer holds the VE noise scales
sigma_max ... sigma_min its SDE was built with, and score_sde always divides a VE network's output by sigma(t)
(sde.ve_marginal_std='sigma') and trains Fourier features only on log sigma of the VE SDE. A config that
differs from any of them is refused in one line (`check_recorded`, `check_original_conventions`) before
anything is written. What no file records (fir, fir_kernel, skip_rescale, data.centered, the VP betas) is
the config's: use the configs/sde/cifar10_* config of the checkpoint.
"""

import os
import zipfile

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gen_runtime.config import resolve_data_path
from gen_runtime.errors import CheckpointError, ConfigError
from gen_runtime.import_checks import refuse_mismatches
from gen_runtime.imported import refuse_existing_checkpoints, save_imported_state
from gen_runtime.state_dicts import without_prefix
from gen_runtime.torch_archive import load_archive
from gen_runtime.train_state import TrainState
from sde_jax import convert
from sde_jax.experiment import Experiment, initialiser, make_experiment
from sde_jax.sde import VESDE

LAYOUT_CHOICES = ('auto', *convert.LAYOUTS)
# The SDE the original NCSNpp's time embedding goes with: Fourier features of log(time input) are only
# meaningful on the VE SDE's sigma(t); the positional embedding of continuous models takes 999 t (VP, sub-VP).
EMBEDDING_SDES = {'fourier': ('vesde',), 'positional': ('vpsde', 'subvpsde')}


def detect_layout(path: str) -> str:
    """'score_sde_pytorch' for a torch zip archive, else 'score_sde' (a Flax msgpack file)."""
    return 'score_sde_pytorch' if zipfile.is_zipfile(path) else 'score_sde'


def read_pytorch(path: str) -> tuple[dict, dict, int]:
    """(raw state dict, EMA state dict, step) of a score_sde_pytorch checkpoint, `module.` removed."""
    saved = load_archive(path)
    if not isinstance(saved, dict) or 'model' not in saved:
        raise CheckpointError(f'{path} has no "model" entry; is it a score_sde_pytorch checkpoint_*.pth?')
    model = without_prefix(saved['model'])
    ema = saved.get('ema')
    shadow = ema.get('shadow_params') if isinstance(ema, dict) else None
    ema_sd = convert.ema_state_dict(model, [np.asarray(s) for s in shadow]) if shadow is not None else model
    return model, ema_sd, int(np.asarray(saved.get('step', 0)))


def read_flax(path: str) -> tuple[dict, dict, int]:
    """(raw parameters, EMA parameters, step) of a score_sde Flax checkpoint file."""
    from flax import serialization

    try:
        with open(path, 'rb') as f:
            state = serialization.msgpack_restore(f.read())
    except (OSError, ValueError, TypeError) as e:
        raise CheckpointError(f'{path} is neither a PyTorch archive nor a readable Flax msgpack file ({e})') from e
    try:
        params = state['optimizer']['target']
    except (KeyError, TypeError) as e:
        raise CheckpointError(f'{path} has no optimizer.target; is it a score_sde checkpoint_N file?') from e
    ema = state.get('params_ema') or params
    return params, ema, int(np.asarray(state.get('step', 0)))


def _check(config: ml_collections.ConfigDict, exp: Experiment) -> None:
    if config.model.name != 'ncsnpp':
        raise ConfigError(f'import_weights reads NCSN++ / DDPM++ checkpoints; model.name={config.model.name!r} '
                          'has no original checkpoints (use a configs/sde/cifar10_* config)')
    if not exp.continuous:
        raise ConfigError(f'the original checkpoints of these configs are continuously trained; loss.type='
                          f'{config.loss.type!r} would condition the network differently (use loss.type=dsm)')
    if config.weights.layout not in LAYOUT_CHOICES:
        raise ConfigError(f'weights.layout={config.weights.layout!r} is not one of {", ".join(LAYOUT_CHOICES)}')
    if not config.weights.path:
        raise ConfigError('set --config.weights.path to the checkpoint file (checkpoint_*.pth or checkpoint_N)')


def check_original_conventions(config: ml_collections.ConfigDict) -> None:
    """What score_sde always does and the config could do otherwise: divide a VE network's output by sigma(t)
    (its VESDE's marginal std), and pair the time embedding with its SDE (`EMBEDDING_SDES`)."""
    if config.sde.type == 'vesde':
        refuse_mismatches("score_sde's VE SDE (marginal std sigma(t), by which its network's output is divided)",
                          {'ve_marginal_std': 'sigma'}, config.sde, 'sde')
    sdes = EMBEDDING_SDES[config.model.embedding_type]
    if config.sde.type not in sdes:
        raise ConfigError(f'sde.type={config.sde.type!r} with model.embedding_type={config.model.embedding_type!r}: '
                          f'the original NCSN++ / DDPM++ use that embedding with sde.type={" or ".join(sdes)} only '
                          '(Fourier features of log sigma(t), positional features of 999 t)')


def recorded_settings(layout: str, raw: dict) -> dict[str, dict]:
    """What the checkpoint's raw parameters (as read) record, per config section: model.embedding_type
    (a Gaussian Fourier W or not) and, for score_sde_pytorch, the VE noise scales of its `sigmas` buffer."""
    if layout == 'score_sde_pytorch':
        fourier = np.ndim(raw.get('all_modules.0.W')) == 1
    else:
        fourier = any(key.startswith('GaussianFourierProjection') for key in raw)
    recorded = {'model': {'embedding_type': 'fourier' if fourier else 'positional'}}
    sigmas = raw.get('sigmas') if layout == 'score_sde_pytorch' else None
    if sigmas is not None and np.ndim(sigmas) == 1 and np.size(sigmas) > 1:
        # get_sigmas(config): exp(linspace(log sigma_max, log sigma_min, num_scales)), the VESDE's constants
        recorded['sde'] = {'sigma_max': float(f'{float(sigmas[0]):.7g}'),
                           'sigma_min': float(f'{float(sigmas[-1]):.7g}')}
    return recorded


def check_recorded(config: ml_collections.ConfigDict, recorded: dict[str, dict]) -> None:
    """Refuses a config whose settings differ from what the checkpoint records (`recorded_settings`)."""
    refuse_mismatches('the checkpoint', recorded['model'], config.model, 'model')
    if config.sde.type == 'vesde' and 'sde' in recorded:  # a VP model's buffer holds unused defaults
        refuse_mismatches("the checkpoint's sigmas buffer", recorded['sde'], config.sde, 'sde')


def convert_checkpoint(exp: Experiment, path: str, layout: str) -> tuple[dict, dict, int]:
    """(params, ema_params, original step) in our layout, for the network `exp` builds."""
    x = jnp.zeros((1, *exp.image_shape), jnp.float32)
    label = jnp.zeros((1,), jnp.float32)
    shapes = jax.eval_shape(lambda: exp.model.init(jax.random.key(0), x, label))['params']
    order = convert.call_order(exp.model, x, label)
    raw, ema, step = read_pytorch(path) if layout == 'score_sde_pytorch' else read_flax(path)
    check_recorded(exp.config, recorded_settings(layout, raw))
    if layout == 'score_sde_pytorch':
        params, ema_params = (convert.ncsnpp_from_pytorch(sd, shapes, order) for sd in (raw, ema))
    else:
        params, ema_params = (convert.ncsnpp_from_flax(tree, shapes) for tree in (raw, ema))
    if isinstance(exp.sde, VESDE):  # scale_by_sigma: score = output / sigma
        params, ema_params = (convert.negate_output(p, order, exp.config.model.progressive)
                              for p in (params, ema_params))
    return params, ema_params, step


def import_weights(config: ml_collections.ConfigDict, workdir: str) -> None:
    """The checkpoint at weights.path as step 0 of `workdir` (see the module docstring)."""
    exp = make_experiment(config)
    _check(config, exp)
    check_original_conventions(config)
    path = resolve_data_path(config, config.weights.path)
    if not os.path.isfile(path):
        raise ConfigError(f'weights.path {path} is not a file')
    refuse_existing_checkpoints(config, workdir)
    layout = detect_layout(path) if config.weights.layout == 'auto' else config.weights.layout
    params, ema_params, step = convert_checkpoint(exp, path, layout)
    state = TrainState.from_config(jax.tree.map(jnp.asarray, params), config)
    state = state.replace(ema_params=jax.tree.map(jnp.asarray, ema_params))
    save_imported_state(config, workdir, initialiser(exp), state,
                        {'path': os.path.abspath(path), 'layout': layout, 'original_step': step})

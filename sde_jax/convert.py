"""NCSN++ / DDPM++ parameters of the original code bases -> ours (sde_jax.models.ncsnpp.NCSNpp).

Two layouts, as their training scripts save them:
  score_sde_pytorch  a `state_dict` of `NCSNpp` whose layers are one list, `all_modules.<i>.<layer>.<leaf>`
                     (PyTorch NCHW kernels (out, in, h, w), Linear weights (out, in), `NIN` W (in, out));
                     the EMA is a list `shadow_params` of the trainable parameters in state-dict order
                     (the Gaussian Fourier W is fixed, so it has no EMA entry);
  score_sde          the Flax linen tree of its `NCSNpp`, auto-named per class and call order
                     (`ResnetBlockBigGANpp_3/Conv_0/kernel`, `AttnBlockpp_0/NIN_2/W`, ...), HWIO kernels.

Ours calls the same layers in the same order (models/ncsnpp.py follows the paper's architecture), so
module i of the PyTorch list is the i-th of our top-level modules that has parameters, and a Flax
name maps to ours by renaming its classes. Leaves are converted by kind (transposed kernels, GroupNorm
weight -> scale, NIN W/b -> Dense kernel/bias) and every shape is checked against the network the
config builds; the first mismatch is reported with both shapes.

Output convention: ours returns -std(t) x score (sde_jax.conditioning). The DDPM++ configs already
return that (their score is -output / std); NCSN++ with `scale_by_sigma` returns output / sigma, so
its last convolution(s) are negated (`negate_output`).
"""

from collections.abc import Iterable
from typing import Any

import flax.linen as nn
import jax
import numpy as np
from flax import traverse_util

from gen_runtime.errors import CheckpointError
from gen_runtime.pytree import PyTree
from gen_runtime.state_dicts import conv_kernel, dense_kernel

LAYOUTS = ('score_sde_pytorch', 'score_sde')

# Our class -> {the original's sub-layer name: ours ('' = the parameters sit in our module itself)}.
_SUBLAYERS = {
    'AttnBlock': {'NIN_0': 'Dense_0', 'NIN_1': 'Dense_1', 'NIN_2': 'Dense_2', 'NIN_3': 'Dense_3'},
    'ResnetBlockDDPM': {'NIN_0': 'Dense_1'},
    'Upsample': {'Conv2d_0': ''},
    'Downsample': {'Conv2d_0': ''},
}
# The original Flax class names that differ from ours.
_FLAX_CLASSES = {'ResnetBlockBigGANpp': 'ResnetBlockBigGAN', 'ResnetBlockDDPMpp': 'ResnetBlockDDPM',
                 'AttnBlockpp': 'AttnBlock'}


def call_order(model: nn.Module, *inputs: jax.Array) -> list[str]:
    """Names of the model's direct sub-modules in the order its forward pass first calls them."""
    order: list[str] = []

    def record(next_fun: Any, args: tuple, kwargs: dict, context: Any) -> Any:
        path = context.module.scope.path if context.module.scope is not None else ()
        if len(path) == 1 and path[0] not in order:
            order.append(path[0])
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(record):
        jax.eval_shape(lambda: model.init(jax.random.key(0), *inputs))
    return order


def _class_of(name: str) -> str:
    return name.rsplit('_', 1)[0]


def _leaf(name: str, value: np.ndarray, layout: str) -> tuple[str, np.ndarray]:
    """(our leaf name, value in our orientation) of one original leaf."""
    if layout == 'score_sde_pytorch':
        if name == 'weight' and value.ndim == 4:
            return 'kernel', conv_kernel(value)
        if name == 'weight' and value.ndim == 2:
            return 'kernel', dense_kernel(value)
        if name == 'weight' and value.ndim == 1:
            return 'scale', value
    elif name == 'weight':  # up_or_down_sampling.Conv2d, already HWIO
        return 'kernel', value
    if name == 'W' and value.ndim == 2:  # NIN
        return 'kernel', value
    if name == 'b':
        return 'bias', value
    return name, value


def _convert_module(ours_class: str, theirs: dict, shapes: dict, where: str, layout: str) -> dict:
    """One of our modules from the original's sub-tree `theirs`, checked against `shapes`."""
    renames = _SUBLAYERS.get(ours_class, {})
    out: dict = {}
    for key, value in theirs.items():
        if isinstance(value, dict):
            sub = renames.get(key, key)
            target = out if sub == '' else out.setdefault(sub, {})
            target.update(_convert_module('', value, shapes if sub == '' else shapes.get(sub, {}),
                                          f'{where}.{key}', layout))
            continue
        name, array = _leaf(key, np.asarray(value), layout)
        expected = shapes.get(name)
        if expected is None or isinstance(expected, dict) or tuple(expected.shape) != array.shape:
            shape = None if expected is None or isinstance(expected, dict) else tuple(expected.shape)
            raise CheckpointError(f'checkpoint parameter {where}.{key} has shape {tuple(value.shape)}, which this '
                                  f'config\'s network does not have there (expects {shape}); check the config '
                                  '(variant, model.nf, ch_mult, num_res_blocks, data.image_size) against the '
                                  'checkpoint')
        out[name] = array.astype(np.float32)
    return out


def _check_complete(params: dict, shapes: dict, path: str = '') -> None:
    for key, value in shapes.items():
        if key not in params:
            raise CheckpointError(f'this config\'s network has {path}{key}, which the checkpoint lacks; check the '
                                  'config against the checkpoint')
        if isinstance(value, dict):
            _check_complete(params[key], value, f'{path}{key}/')


def ncsnpp_from_pytorch(state_dict: dict[str, np.ndarray], shapes: PyTree, order: Iterable[str]) -> PyTree:
    """Our parameters from a score_sde_pytorch NCSNpp state dict (`module.` prefix removed)."""
    modules: dict[int, dict] = {}
    for key, value in state_dict.items():
        if not key.startswith('all_modules.'):
            continue  # buffers such as `sigmas`
        index, rest = key[len('all_modules.'):].split('.', 1)
        modules.setdefault(int(index), {})[rest] = value
    ours = [name for name in order if name in shapes]
    if len(ours) != len(modules):
        raise CheckpointError(f'the checkpoint network has {len(modules)} layers with parameters, this config\'s '
                              f'{len(ours)}; check the config (variant, num_res_blocks, ch_mult, '
                              'progressive options) against the checkpoint')
    params = {}
    for name, index in zip(ours, sorted(modules), strict=True):
        nested = traverse_util.unflatten_dict(modules[index], sep='.')
        params[name] = _convert_module(_class_of(name), nested, shapes[name], f'all_modules.{index}',
                                       'score_sde_pytorch')
    _check_complete(params, shapes)
    return params


def ncsnpp_from_flax(tree: dict, shapes: PyTree) -> PyTree:
    """Our parameters from the parameter tree of score_sde's Flax NCSNpp."""
    params = {}
    for key, value in tree.items():
        number = key.rsplit('_', 1)[1] if '_' in key else ''
        name = f'{_FLAX_CLASSES.get(_class_of(key), _class_of(key))}_{number}'
        if name not in shapes:
            raise CheckpointError(f'checkpoint module {key} has no counterpart in this config\'s network; check '
                                  'the config against the checkpoint')
        params[name] = _convert_module(_class_of(name), value, shapes[name], key, 'score_sde')
    _check_complete(params, shapes)
    return params


def negate_output(params: PyTree, order: Iterable[str], progressive: str) -> PyTree:
    """Negates the network's output layer(s): score = output / sigma (NCSN++ scale_by_sigma) becomes our
    -sigma x score convention. The output is the last Conv (or, with progressive='output_skip', the sum
    of the pyramid's image-space convolutions, each of which is negated)."""
    convs = [name for name in order if _class_of(name) == 'Conv']
    if progressive == 'output_skip':
        channels = params[convs[-1]]['kernel'].shape[-1]
        outputs = [name for name in convs if params[name]['kernel'].shape[-1] == channels and name != convs[0]]
    else:
        outputs = convs[-1:]
    out = dict(params)
    for name in outputs:
        out[name] = {k: -v for k, v in params[name].items()}
    return out


def trainable_keys(state_dict: dict[str, np.ndarray]) -> list[str]:
    """State-dict keys of the parameters PyTorch trains, in order: no buffers (`sigmas`), no fixed
    Gaussian Fourier W (1-D `W`; NIN's W is 2-D)."""
    return [k for k, v in state_dict.items()
            if k.startswith('all_modules.') and not (k.endswith('.W') and np.ndim(v) == 1)]


def ema_state_dict(state_dict: dict[str, np.ndarray], shadow_params: list[np.ndarray]) -> dict[str, np.ndarray]:
    """The state dict with the EMA's shadow parameters in place of the trainable ones."""
    keys = trainable_keys(state_dict)
    if len(keys) != len(shadow_params):
        raise CheckpointError(f'the checkpoint EMA has {len(shadow_params)} tensors for {len(keys)} trainable '
                              'parameters; the file is not a score_sde_pytorch checkpoint of this model')
    out = dict(state_dict)
    for key, shadow in zip(keys, shadow_params, strict=True):
        if tuple(np.shape(shadow)) != tuple(np.shape(state_dict[key])):
            raise CheckpointError(f'the checkpoint EMA tensor for {key} has shape {np.shape(shadow)}, the '
                                  f'parameter {np.shape(state_dict[key])}; the file is corrupt')
        out[key] = shadow
    return out

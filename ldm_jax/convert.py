"""Converters from PyTorch state dicts to our parameter trees.

Layouts understood:
- diffusers `UNet2DModel` -> `UNet`, diffusers `VQModel` -> `VQModel`;
- latent diffusion's checkpoints (CompVis/latent-diffusion): the openaimodel UNet under
  `model.diffusion_model.*`, its EMA under `model_ema.diffusion_model<name without dots>` (LitEma's
  buffer names), and the VQ first stage under `first_stage_model.*` (`encoder.down.{l}.block.{i}`,
  `quantize.embedding.weight`, ...; prefix '' for a stand-alone autoencoder checkpoint).

State dicts are mappings from names to arrays (numpy, or anything `np.asarray` takes, such as CPU torch
tensors). The target tree's structure comes from the Flax module itself (`jax.eval_shape` of its init),
so every parameter we need must be present with the right shape and every source tensor must be used;
anything else raises a CheckpointError naming the key.

Tensor layouts: conv (out, in, kh, kw) -> (kh, kw, in, out); linear (out, in) and 1x1 convs (out, in, 1[, 1])
-> (in, out); GroupNorm weight -> scale. openaimodel's fused `qkv` is head-interleaved (QKVAttentionLegacy
splits heads first, then q/k/v), ours is [q | k | v] each laid out (heads, head_dim).
"""

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gen_runtime.errors import CheckpointError
from gen_runtime.pytree import PyTree
from gen_runtime.state_dicts import conv_kernel, dense_kernel

StateDict = Mapping[str, Any]

LDM_UNET_PREFIX = 'model.diffusion_model.'
LDM_EMA_PREFIX = 'model_ema.diffusion_model'
LDM_FIRST_STAGE_PREFIX = 'first_stage_model.'


@dataclasses.dataclass(frozen=True)
class Source:
    """Where one of our layers comes from: one torch prefix, or three (q, k, v) to concatenate.

    `interleaved_heads` > 0 marks openaimodel's fused, head-interleaved qkv of that many heads.
    """

    prefixes: tuple[str, ...]
    interleaved_heads: int = 0


Rename = Callable[[tuple[str, ...]], Source]


def param_shapes(module: nn.Module, *example_args: Any, **example_kwargs: Any) -> PyTree:
    """The module's parameter tree of ShapeDtypeStructs (no memory is allocated)."""
    variables = jax.eval_shape(lambda: module.init(jax.random.key(0), *example_args, **example_kwargs))
    return variables['params']


def convert(state_dict: StateDict, shapes: PyTree, rename: Rename, what: str) -> PyTree:
    """Fills the tree `shapes` from `state_dict` using `rename` (our layer path -> Source)."""
    sd = {k: v for k, v in state_dict.items()}
    used: set[str] = set()

    def take(key: str) -> np.ndarray:
        if key not in sd:
            raise CheckpointError(f'{what}: the state dict has no {key!r}; it is not a checkpoint of this '
                                  'architecture (check the config against the checkpoint)')
        used.add(key)
        return np.asarray(sd[key], np.float32)

    def layer(path: tuple[str, ...], leaves: dict) -> dict:
        src = rename(path)
        if src.interleaved_heads:
            return _interleaved_qkv(take(src.prefixes[0] + 'weight'), take(src.prefixes[0] + 'bias'),
                                    src.interleaved_heads)
        if len(src.prefixes) == 3:
            ws = [dense_kernel(take(p + 'weight')) for p in src.prefixes]
            bs = [take(p + 'bias') for p in src.prefixes]
            return {'kernel': np.concatenate(ws, axis=1), 'bias': np.concatenate(bs)}
        prefix = src.prefixes[0]
        if 'embedding' in leaves:
            return {'embedding': take(prefix + 'weight')}
        if 'scale' in leaves:
            return {'scale': take(prefix + 'weight'), 'bias': take(prefix + 'bias')}
        kernel = take(prefix + 'weight')
        out = {'kernel': conv_kernel(kernel) if len(leaves['kernel'].shape) == 4 else dense_kernel(kernel)}
        if 'bias' in leaves:
            out['bias'] = take(prefix + 'bias')
        return out

    def walk(tree: dict, path: tuple[str, ...]) -> dict:
        if all(not isinstance(v, dict) for v in tree.values()):
            converted = layer(path, tree)
            for name, value in converted.items():
                if value.shape != tuple(tree[name].shape):
                    raise CheckpointError(f'{what}: {"/".join(path)}/{name} needs shape {tuple(tree[name].shape)} '
                                          f'but the checkpoint gives {value.shape}; the config does not match it')
            return {name: jnp.asarray(value) for name, value in converted.items()}
        return {name: walk(sub, path + (name,)) for name, sub in tree.items()}

    params = walk(_plain(shapes), ())
    unused = sorted(set(sd) - used)
    if unused:
        raise CheckpointError(f'{what}: {len(unused)} tensors of the checkpoint have no place in the model '
                              f'(first: {unused[0]!r}); the config does not match the checkpoint')
    return params


def _plain(tree: PyTree) -> dict:
    return {k: _plain(v) for k, v in tree.items()} if hasattr(tree, 'items') else tree


def _interleaved_qkv(weight: np.ndarray, bias: np.ndarray, heads: int) -> dict:
    """openaimodel's qkv conv1d (3C, C, 1), rows ordered (head, q/k/v, head_dim) -> our [q | k | v]."""
    three_c, c = weight.shape[0], weight.shape[1]
    head_dim = three_c // (3 * heads)
    w = weight.reshape(heads, 3, head_dim, c).transpose(1, 0, 2, 3).reshape(three_c, c)
    b = bias.reshape(heads, 3, head_dim).transpose(1, 0, 2).reshape(three_c)
    return {'kernel': dense_kernel(w), 'bias': b}


def _levels(shapes: PyTree, prefix: str) -> tuple[int, int]:
    """(number of levels, blocks per level) from names like '{prefix}_{level}_res_{i}'."""
    found = [re.fullmatch(rf'{prefix}_(\d+)_res_(\d+)', name) for name in _plain(shapes)]
    found = [(int(m[1]), int(m[2])) for m in found if m]
    return 1 + max(level for level, _ in found), 1 + max(i for _, i in found)


# ----------------------------------------------------------------------------------------------- diffusers

_DIFFUSERS_RES = {'norm1': 'norm1', 'conv1': 'conv1', 'time_emb_proj': 'time_emb_proj', 'norm2': 'norm2',
                  'conv2': 'conv2', 'conv_shortcut': 'conv_shortcut'}


def _diffusers_block(path: tuple[str, ...], prefix: str) -> Source:
    """A layer inside a resnet or attention block of diffusers, given the block's torch prefix."""
    layer = path[-1]
    if layer == 'qkv':
        return Source(tuple(f'{prefix}to_{n}.' for n in 'qkv'))
    names = {'norm': 'group_norm', 'proj_out': 'to_out.0', 'conv': 'conv', **_DIFFUSERS_RES}
    return Source((prefix + names[layer] + '.',))


def _diffusers_rename(num_levels: int, top: dict[str, str], in_block: str = '') -> Rename:
    """our path -> diffusers key for UNet2DModel (in_block='') and the VQModel halves."""

    def rename(path: tuple[str, ...]) -> Source:
        head = path[1:] if in_block else path
        base = f'{in_block}.' if in_block else ''
        name = head[0]
        if name in top:
            return Source((base + top[name] + '.',))
        m = re.fullmatch(r'(down|up)_(\d+)_(res|attn|downsample|upsample)(?:_(\d+))?', name)
        if m:
            side, level, kind, i = m[1], int(m[2]), m[3], m[4]
            block = level if side == 'down' else num_levels - 1 - level
            group = {'res': f'resnets.{i}', 'attn': f'attentions.{i}', 'downsample': 'downsamplers.0',
                     'upsample': 'upsamplers.0'}[kind]
            return _diffusers_block(head, f'{base}{side}_blocks.{block}.{group}.')
        mid = {'mid_res_0': 'resnets.0', 'mid_attn': 'attentions.0', 'mid_res_1': 'resnets.1'}[name]
        return _diffusers_block(head, f'{base}mid_block.{mid}.')

    return rename


def unet_from_diffusers(state_dict: StateDict, shapes: PyTree) -> PyTree:
    """diffusers UNet2DModel state dict -> our UNet params (structure `shapes`, see `param_shapes`)."""
    levels, _ = _levels(shapes, 'down')
    top = {'conv_in': 'conv_in', 'time_embed_0': 'time_embedding.linear_1', 'time_embed_1': 'time_embedding.linear_2',
           'label_emb': 'class_embedding', 'out_norm': 'conv_norm_out', 'conv_out': 'conv_out'}
    return convert(state_dict, shapes, _diffusers_rename(levels, top), 'diffusers UNet2DModel')


def vq_from_diffusers(state_dict: StateDict, shapes: PyTree) -> PyTree:
    """diffusers VQModel state dict -> our VQModel params."""
    levels, _ = _levels(shapes['encoder'], 'down')
    halves = {side: _diffusers_rename(levels, {'conv_in': 'conv_in', 'norm_out': 'conv_norm_out',
                                              'conv_out': 'conv_out'}, side) for side in ('encoder', 'decoder')}

    def rename(path: tuple[str, ...]) -> Source:
        if path[0] in halves:
            return halves[path[0]](path)
        return Source(({'quant_conv': 'quant_conv.', 'post_quant_conv': 'post_quant_conv.',
                        'quantizer': 'quantize.embedding.'}[path[0]],))

    return convert(state_dict, shapes, rename, 'diffusers VQModel')


# ------------------------------------------------------------------------------------- latent diffusion

_LDM_RES = {'norm1': 'in_layers.0', 'conv1': 'in_layers.2', 'time_emb_proj': 'emb_layers.1', 'norm2': 'out_layers.0',
            'conv2': 'out_layers.3', 'conv_shortcut': 'skip_connection'}


def _openaimodel_blocks(shapes: PyTree) -> dict[str, str]:
    """Our block name -> openaimodel block prefix (input_blocks.k.j, middle_block.j, output_blocks.k.j)."""
    names = set(_plain(shapes))
    levels, blocks = _levels(shapes, 'down')
    where = {'conv_in': 'input_blocks.0.0'}
    k = 1
    for level in range(levels):
        for i in range(blocks):
            where[f'down_{level}_res_{i}'] = f'input_blocks.{k}.0'
            where[f'down_{level}_attn_{i}'] = f'input_blocks.{k}.1'
            k += 1
        if f'down_{level}_downsample' in names:
            where[f'down_{level}_downsample'] = f'input_blocks.{k}.0'
            k += 1
    where.update({'mid_res_0': 'middle_block.0', 'mid_attn': 'middle_block.1', 'mid_res_1': 'middle_block.2'})
    k = 0
    for level in reversed(range(levels)):
        for i in range(blocks + 1):
            where[f'up_{level}_res_{i}'] = f'output_blocks.{k}.0'
            attn = f'up_{level}_attn_{i}' in names
            where[f'up_{level}_attn_{i}'] = f'output_blocks.{k}.1'
            if i == blocks and f'up_{level}_upsample' in names:
                where[f'up_{level}_upsample'] = f'output_blocks.{k}.{2 if attn else 1}'
            k += 1
    where.update({'time_embed_0': 'time_embed.0', 'time_embed_1': 'time_embed.2', 'label_emb': 'label_emb',
                  'out_norm': 'out.0', 'conv_out': 'out.2'})
    return where


def unet_from_ldm(state_dict: StateDict, shapes: PyTree, heads: Callable[[int], int], ema: bool = False,
                  prefix: str = LDM_UNET_PREFIX) -> PyTree:
    """The openaimodel UNet of a latent-diffusion checkpoint -> our UNet params.

    `heads(channels)` is the attention head count at a width (the config's rule, see
    `layers.num_attention_heads`). With `ema` the LitEma copies (`model_ema.*`) are read instead. Keys of
    other parts of the checkpoint (first stage, conditioning, EMA bookkeeping) are ignored.
    """
    blocks = _openaimodel_blocks(shapes)
    flat_shapes = _plain(shapes)

    def source_key(name: str) -> str:
        # LitEma stores 'diffusion_model.<name>' with the dots removed, under 'model_ema.'
        return LDM_EMA_PREFIX + name.replace('.', '') if ema else prefix + name

    def rename(path: tuple[str, ...]) -> Source:
        block, layer = blocks[path[0]], path[1:]
        if not layer:  # a plain layer: conv_in, time_embed_*, label_emb, out_norm, conv_out
            return Source((block + '.',))
        if layer[0] == 'qkv':
            channels = flat_shapes[path[0]]['qkv']['kernel'].shape[0]
            return Source((f'{block}.qkv.',), interleaved_heads=heads(channels))
        inner = {'norm': 'norm', 'proj_out': 'proj_out', **_LDM_RES}.get(layer[0])
        if inner is None:  # Downsample's 'op' / Upsample's 'conv'
            inner = 'op' if 'downsample' in path[0] else 'conv'
        return Source((f'{block}.{inner}.',))

    wanted = _ldm_keys(state_dict, blocks, source_key)
    return convert(wanted, shapes, lambda path: _mapped(rename(path), source_key), 'latent-diffusion UNet')


def _mapped(src: Source, key: Callable[[str], str]) -> Source:
    return dataclasses.replace(src, prefixes=tuple(key(p) for p in src.prefixes))


def _ldm_keys(state_dict: StateDict, blocks: dict[str, str], key: Callable[[str], str]) -> dict:
    """The tensors of the UNet (or of its EMA) in a full latent-diffusion checkpoint."""
    roots = {key(b.split('.')[0]) for b in blocks.values()}
    return {k: v for k, v in state_dict.items() if any(k.startswith(r) for r in roots)}


def vq_from_ldm(state_dict: StateDict, shapes: PyTree, prefix: str = LDM_FIRST_STAGE_PREFIX) -> PyTree:
    """The VQ first stage of a latent-diffusion (or taming) checkpoint -> our VQModel params.

    Keys outside `prefix` + (encoder, decoder, quant_conv, post_quant_conv, quantize) are ignored, e.g. a
    stand-alone VQGAN checkpoint's `loss.*` (discriminator, LPIPS) with prefix ''.
    """
    sub = {'quant_conv': 'quant_conv', 'post_quant_conv': 'post_quant_conv', 'quantizer': 'quantize.embedding'}
    block_names = {'res': 'block', 'attn': 'attn', 'downsample': 'downsample', 'upsample': 'upsample'}
    mid = {'mid_res_0': 'mid.block_1', 'mid_attn': 'mid.attn_1', 'mid_res_1': 'mid.block_2'}
    layer_names = {'conv_shortcut': 'nin_shortcut', 'proj_out': 'proj_out'}

    def rename(path: tuple[str, ...]) -> Source:
        if path[0] in sub:
            return Source((f'{prefix}{sub[path[0]]}.',))
        half, name, layer = path[0], path[1], path[2:]
        m = re.fullmatch(r'(down|up)_(\d+)_(res|attn|downsample|upsample)(?:_(\d+))?', name)
        if m:
            block = f'{m[1]}.{m[2]}.{block_names[m[3]]}' + (f'.{m[4]}' if m[4] is not None else '')
        else:
            block = mid.get(name, name)
        base = f'{prefix}{half}.{block}.'
        if not layer:
            return Source((base,))
        if layer[0] == 'qkv':
            return Source(tuple(f'{base}{n}.' for n in 'qkv'))
        return Source((base + layer_names.get(layer[0], layer[0]) + '.',))

    roots = tuple(f'{prefix}{r}.' for r in ('encoder', 'decoder', 'quant_conv', 'post_quant_conv', 'quantize'))
    wanted = {k: v for k, v in state_dict.items() if k.startswith(roots)}
    return convert(wanted, shapes, rename, 'latent-diffusion first stage')

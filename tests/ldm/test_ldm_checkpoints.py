"""The CompVis latent-diffusion checkpoint layout: openaimodel UNet (+ LitEma copy) and the VQ first stage.

No original checkpoint can be downloaded here, so an original-layout state dict is produced from a random
diffusers model by a key mapping written in this test (the inverse of diffusers'
scripts/convert_ldm_original_checkpoint_to_diffusers.py: openaimodel's head-interleaved qkv, 1-d/1x1
convolutions for attention, LitEma's dot-free buffer names). diffusers' own LDM converters
(`convert_ldm_unet_checkpoint`, `convert_ldm_vae_checkpoint`) check that layout, and our converter must
then reproduce the diffusers model's outputs.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import torch
from diffusers import UNet2DModel
from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint

import main
from configs.ldm import tiny
from gen_runtime.trainer import load_trained_state
from ldm_jax import convert
from ldm_jax.autoencoder_task import autoencoder_task
from ldm_jax.diffusion_task import DataSpace, diffusion_task
from ldm_jax.models import unet_from_config
from ldm_jax.nn.unet import UNet
from tests.ldm.test_networks import _nchw, _nhwc, _randomise, _state, check_vq_parity, small_torch_vq, small_vq

BLOCKS = 2  # residual blocks per level
HEAD_CHANNELS = 16
RES = {'norm1': 'in_layers.0', 'conv1': 'in_layers.2', 'time_emb_proj': 'emb_layers.1', 'norm2': 'out_layers.0',
       'conv2': 'out_layers.3', 'conv_shortcut': 'skip_connection'}


def _diffusers_unet():
    return _randomise(UNet2DModel(sample_size=16, block_out_channels=(32, 64), layers_per_block=BLOCKS,
                                  attention_head_dim=HEAD_CHANNELS, num_class_embeds=3,
                                  down_block_types=('DownBlock2D', 'AttnDownBlock2D'),
                                  up_block_types=('AttnUpBlock2D', 'UpBlock2D')), seed=1)


def _openaimodel_attention(sd, src, dst):
    """diffusers to_q/to_k/to_v/to_out.0 -> openaimodel's fused qkv (rows: head, q|k|v, head_dim) as conv1d."""
    q, k, v = (sd.pop(f'{src}.to_{n}.weight') for n in 'qkv')
    qb, kb, vb = (sd.pop(f'{src}.to_{n}.bias') for n in 'qkv')
    channels = q.shape[0]
    heads = channels // HEAD_CHANNELS
    w = np.stack([m.reshape(heads, HEAD_CHANNELS, channels) for m in (q, k, v)], axis=1)
    b = np.stack([m.reshape(heads, HEAD_CHANNELS) for m in (qb, kb, vb)], axis=1)
    out = {f'{dst}.qkv.weight': w.reshape(3 * channels, channels, 1), f'{dst}.qkv.bias': b.reshape(-1),
           f'{dst}.norm.weight': sd.pop(f'{src}.group_norm.weight'),
           f'{dst}.norm.bias': sd.pop(f'{src}.group_norm.bias'),
           f'{dst}.proj_out.weight': sd.pop(f'{src}.to_out.0.weight')[:, :, None],
           f'{dst}.proj_out.bias': sd.pop(f'{src}.to_out.0.bias')}
    return out


def _to_openaimodel(sd):
    """diffusers UNet2DModel state dict -> latent-diffusion openaimodel keys (without the model prefix)."""
    sd = dict(sd)
    out = {}
    for key in [k for k in sd if '.attentions.' in k and k.endswith('to_q.weight')]:
        block = key[:-len('.to_q.weight')]
        m = re.fullmatch(r'(down|up)_blocks\.(\d+)\.attentions\.(\d+)', block)
        if m is None:
            out.update(_openaimodel_attention(sd, block, 'middle_block.1'))
        elif m[1] == 'down':
            out.update(_openaimodel_attention(sd, block, f'input_blocks.{1 + int(m[2]) * (BLOCKS + 1) + int(m[3])}.1'))
        else:
            out.update(_openaimodel_attention(sd, block, f'output_blocks.{int(m[2]) * (BLOCKS + 1) + int(m[3])}.1'))
    fixed = {'conv_in': 'input_blocks.0.0', 'time_embedding.linear_1': 'time_embed.0',
             'time_embedding.linear_2': 'time_embed.2', 'class_embedding': 'label_emb', 'conv_norm_out': 'out.0',
             'conv_out': 'out.2'}
    for key, value in sd.items():
        prefix, leaf = key.rsplit('.', 1)
        if prefix in fixed:
            out[f'{fixed[prefix]}.{leaf}'] = value
            continue
        m = re.fullmatch(r'(down|up)_blocks\.(\d+)\.(resnets|downsamplers|upsamplers)\.(\d+)\.(\w+)', prefix)
        if m is None:
            m = re.fullmatch(r'mid_block\.resnets\.(\d+)\.(\w+)', prefix)
            out[f'middle_block.{2 * int(m[1])}.{RES[m[2]]}.{leaf}'] = value
            continue
        side, block, kind, index, layer = m[1], int(m[2]), m[3], int(m[4]), m[5]
        if kind == 'resnets' and side == 'down':
            out[f'input_blocks.{1 + block * (BLOCKS + 1) + index}.0.{RES[layer]}.{leaf}'] = value
        elif kind == 'resnets':
            out[f'output_blocks.{block * (BLOCKS + 1) + index}.0.{RES[layer]}.{leaf}'] = value
        elif kind == 'downsamplers':
            out[f'input_blocks.{1 + block * (BLOCKS + 1) + BLOCKS}.0.op.{leaf}'] = value
        else:
            has_attention = f'output_blocks.{block * (BLOCKS + 1) + BLOCKS}.1.qkv.weight' in out
            out[f'output_blocks.{block * (BLOCKS + 1) + BLOCKS}.{2 if has_attention else 1}.conv.{leaf}'] = value
    return out


def _latent_diffusion_checkpoint(unet_state, ema_state):
    """A full LatentDiffusion state dict: the UNet, its LitEma copy and unrelated first-stage keys."""
    ckpt = {f'model.diffusion_model.{k}': v for k, v in unet_state.items()}
    ckpt.update({'model_ema.diffusion_model' + k.replace('.', ''): v for k, v in ema_state.items()})
    ckpt.update({'model_ema.decay': np.float32(0.9999), 'model_ema.num_updates': np.int32(10),
                 'first_stage_model.encoder.conv_in.weight': np.zeros((4, 3, 3, 3), np.float32)})
    return ckpt


def test_unet_from_latent_diffusion_checkpoint_and_its_ema():
    model = _diffusers_unet()
    ema_model = _randomise(_diffusers_unet(), seed=2)
    original, original_ema = _to_openaimodel(_state(model)), _to_openaimodel(_state(ema_model))
    ckpt = _latent_diffusion_checkpoint(original, original_ema)
    config = {'layers_per_block': BLOCKS, 'num_class_embeds': 3}
    # diffusers' own LDM converter reads the layout back (attentions renamed, not split, as it expects SD models)
    for ema, reference in ((False, model), (True, ema_model)):
        back = convert_ldm_unet_checkpoint({k: torch.from_numpy(np.asarray(v)) for k, v in ckpt.items()}, config,
                                           extract_ema=ema)
        expected = _state(reference)
        plain = [k for k in back if '.attentions.' not in k]
        assert set(plain) == {k for k in expected if '.attentions.' not in k}
        for k in plain:
            np.testing.assert_array_equal(back[k].numpy(), expected[k], err_msg=k)
    ours = UNet(model_channels=32, channel_mult=(1, 2), num_res_blocks=BLOCKS, attention_resolutions=(2,),
                num_head_channels=HEAD_CHANNELS, num_classes=3, out_channels=3)
    shapes = convert.param_shapes(ours, jnp.zeros((1, 16, 16, 3)), jnp.zeros((1,), int), jnp.zeros((1,), int))
    x = np.random.default_rng(3).standard_normal((2, 16, 16, 3)).astype(np.float32)
    t, y = np.array([10, 900]), np.array([0, 2])
    apply = jax.jit(ours.apply)
    for ema, reference in ((False, model), (True, ema_model)):
        params = convert.unet_from_ldm(ckpt, shapes, heads=lambda c: c // HEAD_CHANNELS, ema=ema)
        with torch.no_grad():
            want = _nhwc(reference(_nchw(x), torch.from_numpy(t), torch.from_numpy(y)).sample)
        np.testing.assert_allclose(np.asarray(apply({'params': params}, x, t, y)), want, rtol=1e-5, atol=1e-5)


def _to_ldm_first_stage(sd, levels=2):
    """diffusers VQModel state dict -> taming/latent-diffusion first-stage keys under 'first_stage_model.'."""
    mid = {'resnets.0': 'block_1', 'resnets.1': 'block_2', 'attentions.0': 'attn_1'}
    attn = {'group_norm': 'norm', 'to_q': 'q', 'to_k': 'k', 'to_v': 'v', 'to_out.0': 'proj_out'}
    out = {}
    for key, value in sd.items():
        new = key.replace('conv_norm_out', 'norm_out').replace('conv_shortcut', 'nin_shortcut')
        new = re.sub(r'encoder\.down_blocks\.(\d+)\.resnets', r'encoder.down.\1.block', new)
        new = re.sub(r'encoder\.down_blocks\.(\d+)\.downsamplers\.0', r'encoder.down.\1.downsample', new)
        new = re.sub(r'decoder\.up_blocks\.(\d+)\.resnets',
                     lambda m: f'decoder.up.{levels - 1 - int(m[1])}.block', new)
        new = re.sub(r'decoder\.up_blocks\.(\d+)\.upsamplers\.0',
                     lambda m: f'decoder.up.{levels - 1 - int(m[1])}.upsample', new)
        new = re.sub(r'mid_block\.(resnets\.\d|attentions\.0)', lambda m: f'mid.{mid[m[1]]}', new)
        m = re.fullmatch(r'(.*mid\.attn_1)\.(group_norm|to_q|to_k|to_v|to_out\.0)\.(weight|bias)', new)
        if m:
            new = f'{m[1]}.{attn[m[2]]}.{m[3]}'
            if m[3] == 'weight' and m[2] != 'group_norm':
                value = value[:, :, None, None]  # model.py's attention uses 1x1 Conv2d
        out['first_stage_model.' + new] = value
    return out


def test_vq_first_stage_from_latent_diffusion_checkpoint():
    torch_model, ours = small_torch_vq(), small_vq()
    expected = _state(torch_model)
    ckpt = _to_ldm_first_stage(expected)
    ckpt['model.diffusion_model.out.2.bias'] = np.zeros(3, np.float32)  # other parts of a full checkpoint
    assert 'first_stage_model.quantize.embedding.weight' in ckpt
    back = convert_ldm_vae_checkpoint({k: torch.from_numpy(np.asarray(v)) for k, v in ckpt.items()},
                                      {'down_block_types': ['DownEncoderBlock2D'] * 2,
                                       'up_block_types': ['UpDecoderBlock2D'] * 2})
    assert set(back) == set(expected) - {'quantize.embedding.weight'}
    for key in back:
        np.testing.assert_array_equal(back[key].numpy(), expected[key], err_msg=key)
    params = convert.vq_from_ldm(ckpt, convert.param_shapes(ours, jnp.zeros((1, 16, 16, 3))))
    check_vq_parity(torch_model, ours, params)


def _tiny_import_config(tmp_path, ckpt):
    config = tiny.get_config('ddpm')
    np.savez(tmp_path / 'model.npz', **{k: np.asarray(v) for k, v in ckpt.items()})
    config.weights.path = str(tmp_path / 'model.npz')
    config.data.image_size, config.data.num_channels = 16, 3
    return config


def test_import_modes_make_step_0_of_a_workdir(tmp_path):
    model, ema_model = _diffusers_unet(), _randomise(_diffusers_unet(), seed=2)
    torch_vq = small_torch_vq()
    ckpt = _latent_diffusion_checkpoint(_to_openaimodel(_state(model)), _to_openaimodel(_state(ema_model)))
    del ckpt['first_stage_model.encoder.conv_in.weight']
    ckpt.update(_to_ldm_first_stage(_state(torch_vq)))
    config = _tiny_import_config(tmp_path, ckpt)
    config.model.update(num_res_blocks=BLOCKS, num_head_channels=HEAD_CHANNELS, num_classes=3)
    config.diffusion.label_dropout = 0.0
    main.run(config, str(tmp_path / 'unet'), 'import_weights')
    space = DataSpace((16, 16, 3), latent=False)
    step, state = load_trained_state(config, str(tmp_path / 'unet'), diffusion_task(config, None, space))
    shapes = convert.param_shapes(unet_from_config(config, 3), jnp.zeros((1, 16, 16, 3)), jnp.zeros((1,), int),
                                  jnp.zeros((1,), int))
    heads = lambda c: c // HEAD_CHANNELS  # noqa: E731
    for got, ema in ((state.params, False), (state.ema_params, True)):
        want = convert.unet_from_ldm(ckpt, shapes, heads, ema=ema)
        jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), got, want)
    assert step == 0 and float(state.extra['scale_factor']) == 1.0

    config.autoencoder.update(ch=32, ch_mult=(1, 2), num_res_blocks=1, num_codes=16)
    main.run(config, str(tmp_path / 'vq'), 'import_autoencoder')
    _, ae_state = load_trained_state(config, str(tmp_path / 'vq'), autoencoder_task(config, None, (16, 16, 3)))
    want = convert.vq_from_ldm(ckpt, convert.param_shapes(small_vq(), jnp.zeros((1, 16, 16, 3))))
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)),
                 ae_state['generator'].params, want)

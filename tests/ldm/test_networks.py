"""Parameter counts of the published configs, and parity with diffusers' PyTorch UNet2DModel and VQModel."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from diffusers import UNet2DModel
from diffusers import VQModel as TorchVQModel

from configs.ldm import celebahq_ldm_small, celebahq_ldm_vq4, cifar10_ddpm, vq_f4
from gen_runtime.errors import CheckpointError, ConfigError
from ldm_jax import convert
from ldm_jax.models import autoencoder_from_config, unet_from_config
from ldm_jax.nn.autoencoder import VQModel
from ldm_jax.nn.unet import UNet

# Counted from the original code (CompVis/latent-diffusion openaimodel.UNetModel / model.Encoder+Decoder with
# the same hyper-parameters; DDPM's paper quotes 35.7M for CIFAR-10, latent diffusion 274M for CelebA-HQ LDM-4).
CIFAR10_DDPM_PARAMS = 35_746_307
CELEBAHQ_LDM_VQ4_PARAMS = 274_056_163
SMALL_LDM_PARAMS = 5_072_643
VQ_F4_PARAMS = 55_322_782


def _count(tree):
    return sum(math.prod(x.shape) for x in jax.tree.leaves(tree))


def _unet_count(config, side):
    shapes = convert.param_shapes(unet_from_config(config, 3), jnp.zeros((1, side, side, 3)), jnp.zeros((1,), int))
    return _count(shapes)


def test_cifar10_ddpm_unet_has_35_7m_parameters():
    assert _unet_count(cifar10_ddpm.get_config(), 32) == CIFAR10_DDPM_PARAMS


def test_celebahq_ldm_vq4_unet_matches_the_original():
    assert _unet_count(celebahq_ldm_vq4.get_config(), 64) == CELEBAHQ_LDM_VQ4_PARAMS


def test_small_ldm_unet_is_about_5m():
    assert _unet_count(celebahq_ldm_small.get_config(), 64) == SMALL_LDM_PARAMS


def test_vq_f4_autoencoder_matches_the_original():
    model = autoencoder_from_config(vq_f4.get_config())
    assert _count(convert.param_shapes(model, jnp.zeros((1, 256, 256, 3)))) == VQ_F4_PARAMS


def test_parameter_counts_equal_diffusers_equivalents():
    """diffusers builds the same architectures: google/ddpm-cifar10-32's and CompVis/ldm-celebahq-256's UNets."""
    cifar = UNet2DModel(sample_size=32, block_out_channels=(128, 256, 256, 256), layers_per_block=2,
                        down_block_types=('DownBlock2D', 'AttnDownBlock2D', 'DownBlock2D', 'DownBlock2D'),
                        up_block_types=('UpBlock2D', 'UpBlock2D', 'AttnUpBlock2D', 'UpBlock2D'),
                        attention_head_dim=None)
    assert sum(p.numel() for p in cifar.parameters()) == CIFAR10_DDPM_PARAMS
    celeba = UNet2DModel(sample_size=64, attention_head_dim=32)  # diffusers' defaults are this config
    assert sum(p.numel() for p in celeba.parameters()) == CELEBAHQ_LDM_VQ4_PARAMS


def _randomise(module, scale=0.05, seed=0):
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p) * scale)
    return module.eval()


def _state(module):
    return {k: v.numpy() for k, v in module.state_dict().items()}


def _nchw(x):
    return torch.from_numpy(np.asarray(x)).permute(0, 3, 1, 2)


def _nhwc(x):
    return x.permute(0, 2, 3, 1).detach().numpy()


UNET_CASES = {
    # openaimodel conventions: [cos, sin] embedding, eps 1e-5, heads of 16 channels, class-conditional
    'openaimodel': (dict(block_out_channels=(32, 64), layers_per_block=1, attention_head_dim=16, num_class_embeds=5,
                         down_block_types=('DownBlock2D', 'AttnDownBlock2D'),
                         up_block_types=('AttnUpBlock2D', 'UpBlock2D')),
                    dict(model_channels=32, channel_mult=(1, 2), num_res_blocks=1, attention_resolutions=(2,),
                         num_head_channels=16, num_classes=5)),
    # widths that are not multiples of 32, GroupNorm with 8 groups (diffusers' norm_num_groups)
    'odd_groups': (dict(block_out_channels=(24, 48), layers_per_block=1, attention_head_dim=8, norm_num_groups=8,
                        down_block_types=('DownBlock2D', 'AttnDownBlock2D'),
                        up_block_types=('AttnUpBlock2D', 'UpBlock2D')),
                   dict(model_channels=24, channel_mult=(1, 2), num_res_blocks=1, attention_resolutions=(2,),
                        num_head_channels=8, norm_groups=8)),
    # DDPM's conventions: [sin, cos] with frequency shift 1, eps 1e-6, one head, three levels
    'ddpm': (dict(block_out_channels=(32, 32, 64), layers_per_block=1, attention_head_dim=None, flip_sin_to_cos=False,
                  freq_shift=1, norm_eps=1e-6, down_block_types=('DownBlock2D', 'AttnDownBlock2D', 'DownBlock2D'),
                  up_block_types=('UpBlock2D', 'AttnUpBlock2D', 'UpBlock2D')),
             dict(model_channels=32, channel_mult=(1, 1, 2), num_res_blocks=1, attention_resolutions=(2,),
                  flip_sin_to_cos=False, freq_shift=1.0, norm_eps=1e-6)),
    # FiLM (scale-shift) conditioning
    'scale_shift': (dict(block_out_channels=(32, 64), layers_per_block=1, attention_head_dim=32,
                         resnet_time_scale_shift='scale_shift', attn_norm_num_groups=32,
                         down_block_types=('AttnDownBlock2D', 'DownBlock2D'),
                         up_block_types=('UpBlock2D', 'AttnUpBlock2D')),
                    dict(model_channels=32, channel_mult=(1, 2), num_res_blocks=1, attention_resolutions=(1,),
                         num_head_channels=32, scale_shift_norm=True)),
}


@pytest.mark.parametrize('case', sorted(UNET_CASES))
def test_unet_matches_diffusers(case):
    torch_kwargs, our_kwargs = UNET_CASES[case]
    torch_model = _randomise(UNet2DModel(sample_size=16, **torch_kwargs))
    ours = UNet(out_channels=3, **our_kwargs)
    classes = our_kwargs.get('num_classes', 0)
    labels = np.array([1, 4]) if classes else None
    shapes = convert.param_shapes(ours, jnp.zeros((1, 16, 16, 3)), jnp.zeros((1,), int),
                                  jnp.zeros((1,), int) if classes else None)
    params = convert.unet_from_diffusers(_state(torch_model), shapes)
    x = np.random.default_rng(0).standard_normal((2, 16, 16, 3)).astype(np.float32)
    t = np.array([3, 777])
    got = np.asarray(jax.jit(ours.apply)({'params': params}, x, t, labels))
    with torch.no_grad():
        want = _nhwc(torch_model(_nchw(x), torch.from_numpy(t),
                                 torch.from_numpy(labels) if classes else None).sample)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_converter_rejects_a_mismatched_checkpoint():
    torch_kwargs, our_kwargs = UNET_CASES['openaimodel']
    state = _state(UNet2DModel(sample_size=16, **torch_kwargs))
    wider = UNet(out_channels=3, **{**our_kwargs, 'model_channels': 64})
    shapes = convert.param_shapes(wider, jnp.zeros((1, 16, 16, 3)), jnp.zeros((1,), int), jnp.zeros((1,), int))
    with pytest.raises(CheckpointError, match='needs shape'):
        convert.unet_from_diffusers(state, shapes)
    del state['conv_out.bias']
    shapes = convert.param_shapes(UNet(out_channels=3, **our_kwargs), jnp.zeros((1, 16, 16, 3)),
                                  jnp.zeros((1,), int), jnp.zeros((1,), int))
    with pytest.raises(CheckpointError, match='conv_out.bias'):
        convert.unet_from_diffusers(state, shapes)


def small_torch_vq(attention: bool = False) -> TorchVQModel:
    """A diffusers VQModel shaped like vq-f4 at small width (attention at 8x8 if asked)."""
    down = ('DownEncoderBlock2D', 'AttnDownEncoderBlock2D' if attention else 'DownEncoderBlock2D')
    up = ('AttnUpDecoderBlock2D' if attention else 'UpDecoderBlock2D', 'UpDecoderBlock2D')
    return _randomise(TorchVQModel(in_channels=3, out_channels=3, down_block_types=down, up_block_types=up,
                                   block_out_channels=(32, 64), layers_per_block=1, latent_channels=3,
                                   num_vq_embeddings=16, vq_embed_dim=3, norm_num_groups=32), scale=0.02)


def small_vq(attention: bool = False) -> VQModel:
    return VQModel(ch=32, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(8,) if attention else (),
                   z_channels=3, embed_dim=3, num_codes=16)


def check_vq_parity(torch_model: TorchVQModel, ours: VQModel, params) -> None:
    """Pre-quantisation latents, and decoded images (through the quantiser), match within float32 tolerance."""
    x = np.random.default_rng(0).uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
    with torch.no_grad():
        latents = torch_model.encode(_nchw(x)).latents
        # codes far apart, so that both quantisers pick the same code for every latent
        torch_model.quantize.embedding.weight.copy_(torch.randn(16, 3) * 3)
        images = torch_model.decode(latents).sample
    params = {**params, 'quantizer': {'embedding': jnp.asarray(torch_model.quantize.embedding.weight.detach().numpy())}}
    z = jax.jit(lambda p, x: ours.apply({'params': p}, x, method=VQModel.encode))(params, x)
    np.testing.assert_allclose(np.asarray(z), _nhwc(latents), rtol=1e-5, atol=1e-5)
    decoded = jax.jit(lambda p, z: ours.apply({'params': p}, z, method=VQModel.decode))(params, z)
    np.testing.assert_allclose(np.asarray(decoded), _nhwc(images), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('attention', [False, True])
def test_vq_model_matches_diffusers(attention):
    torch_model, ours = small_torch_vq(attention), small_vq(attention)
    params = convert.vq_from_diffusers(_state(torch_model), convert.param_shapes(ours, jnp.zeros((1, 16, 16, 3))))
    check_vq_parity(torch_model, ours, params)


def test_vq_model_with_odd_widths_and_group_count_matches_diffusers():
    """Widths 24 and 48 with 8 GroupNorm groups (diffusers' norm_num_groups=8)."""
    torch_model = _randomise(TorchVQModel(in_channels=3, out_channels=3, block_out_channels=(24, 48),
                                          down_block_types=('DownEncoderBlock2D', 'DownEncoderBlock2D'),
                                          up_block_types=('UpDecoderBlock2D', 'UpDecoderBlock2D'), layers_per_block=1,
                                          latent_channels=3, num_vq_embeddings=16, vq_embed_dim=3, norm_num_groups=8),
                             scale=0.02)
    ours = VQModel(ch=24, ch_mult=(1, 2), num_res_blocks=1, z_channels=3, embed_dim=3, num_codes=16, norm_groups=8)
    params = convert.vq_from_diffusers(_state(torch_model), convert.param_shapes(ours, jnp.zeros((1, 16, 16, 3))))
    check_vq_parity(torch_model, ours, params)


def test_widths_that_the_group_count_does_not_divide_are_refused_in_one_line():
    config = cifar10_ddpm.get_config()
    config.unlock()
    config.model.update(model_channels=24, norm_groups=32)
    with pytest.raises(ConfigError, match='model.norm_groups=32 groups, so every width must be a multiple of 32 '
                                          r'\(got 24\)'):
        unet_from_config(config, 3)
    config.model.norm_groups = 8
    unet_from_config(config, 3)


def test_load_pretrained_builds_a_diffusers_unet_folder_from_its_config_json(tmp_path):
    """save_pretrained of a class-conditional UNet2DModel with 8 groups and odd widths: load_pretrained
    reads config.json into our UNet, and its output equals diffusers'."""
    import ldm_jax

    torch_kwargs, _ = UNET_CASES['odd_groups']
    torch_model = _randomise(UNet2DModel(sample_size=16, num_class_embeds=3, resnet_time_scale_shift='scale_shift',
                                         attn_norm_num_groups=8, **torch_kwargs))
    torch_model.save_pretrained(tmp_path / 'unet')
    unet, params = ldm_jax.load_pretrained(str(tmp_path / 'unet'))
    assert (unet.model_channels, unet.channel_mult, unet.norm_groups, unet.num_classes) == (24, (1, 2), 8, 3)
    x = np.random.default_rng(1).standard_normal((2, 16, 16, 3)).astype(np.float32)
    t, labels = np.array([5, 900]), np.array([0, 2])
    got = np.asarray(jax.jit(unet.apply)({'params': params}, x, t, labels))
    with torch.no_grad():
        want = _nhwc(torch_model(_nchw(x), torch.from_numpy(t), torch.from_numpy(labels)).sample)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_load_pretrained_reads_a_vq_model_folder_and_refuses_what_it_cannot_build(tmp_path):
    import json

    import ldm_jax
    from ldm_jax.diffusers_folder import unet_settings

    torch_model = small_torch_vq(attention=True)
    torch_model.register_to_config(sample_size=16)
    torch_model.save_pretrained(tmp_path / 'vq')
    torch_model.save_pretrained(tmp_path / 'vq_bin', safe_serialization=False)  # a torch pickle, read without torch
    assert (tmp_path / 'vq_bin' / 'diffusion_pytorch_model.bin').is_file()
    for folder in ('vq', 'vq_bin'):
        ours, params = ldm_jax.load_pretrained(str(tmp_path / folder))
        assert ours.attn_resolutions == (8,) and ours.norm_groups == 32
        check_vq_parity(torch_model, ours, params)
    config = json.loads((tmp_path / 'vq' / 'config.json').read_text())
    config['act_fn'] = 'gelu'
    (tmp_path / 'vq' / 'config.json').write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=r"^config.json act_fn='gelu': only 'silu' is implemented here$"):
        ldm_jax.load_pretrained(str(tmp_path / 'vq'))
    with pytest.raises(ConfigError, match=r'^config.json attn_norm_num_groups=None: .*no GroupNorm'):
        unet_settings({'down_block_types': ['DownBlock2D'], 'up_block_types': ['UpBlock2D'], 'block_out_channels': [32],
                       'resnet_time_scale_shift': 'scale_shift'})
    with pytest.raises(ConfigError, match='up_block_types.*mirrored'):
        unet_settings({'down_block_types': ['DownBlock2D', 'AttnDownBlock2D'],
                       'up_block_types': ['UpBlock2D', 'AttnUpBlock2D'], 'block_out_channels': [32, 64]})

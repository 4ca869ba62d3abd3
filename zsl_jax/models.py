"""The generator and discriminator of GAZSL (Zhu et al., CVPR 2018, Sec. 3) and CIZSL (ICCV 2019).

G(z, t): the class text t is reduced by one linear layer (text_dim -> 1000; left out for attributes),
concatenated after the noise z, then hidden layer + LeakyReLU(0.01) and a tanh output of visual
features. D(x): one shared ReLU layer with two heads, the WGAN critic and a classifier over the
seen classes. Linear layers start from Xavier-normal weights and zero biases, as in the originals.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

# torch.nn.init.xavier_normal_: N(0, 2 / (fan_in + fan_out)), not truncated.
XAVIER_NORMAL = nn.initializers.variance_scaling(1.0, 'fan_avg', 'normal')


def dense(features: int, name: str, dtype: Any) -> nn.Dense:
    """A linear layer computed in `dtype` (float32 parameters)."""
    return nn.Dense(features, kernel_init=XAVIER_NORMAL, bias_init=nn.initializers.zeros, dtype=dtype, name=name)


class Generator(nn.Module):
    """G(z, t) -> visual features in (-1, 1)."""

    feature_dim: int
    hidden_dim: int
    text_reduction_dim: int  # 0: the attribute variant, text enters without a reduction layer
    dtype: Any = jnp.float32  # computation dtype; the output is float32

    @nn.compact
    def __call__(self, z: jax.Array, text: jax.Array) -> jax.Array:
        if self.text_reduction_dim:
            text = dense(self.text_reduction_dim, 'text_reduction', self.dtype)(text)
        h = dense(self.hidden_dim, 'hidden', self.dtype)(jnp.concatenate([z.astype(text.dtype), text], axis=-1))
        return jnp.tanh(dense(self.feature_dim, 'out', self.dtype)(nn.leaky_relu(h, 0.01))).astype(jnp.float32)


class Discriminator(nn.Module):
    """D(x) -> (critic score (B,), class logits (B, num_classes))."""

    hidden_dim: int
    num_classes: int
    dtype: Any = jnp.float32  # computation dtype; the outputs are float32

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = nn.relu(dense(self.hidden_dim, 'shared', self.dtype)(x))
        critic, logits = dense(1, 'critic', self.dtype)(h)[:, 0], dense(self.num_classes, 'classifier', self.dtype)(h)
        return critic.astype(jnp.float32), logits.astype(jnp.float32)


def make_models(model: ml_collections.ConfigDict, feature_dim: int, num_seen: int,
                dtype: Any = jnp.float32) -> tuple[Generator, Discriminator]:
    """The generator and discriminator `config.model` describes, for a problem's sizes, computing in `dtype`."""
    return (Generator(feature_dim, model.hidden_dim, model.text_reduction_dim, dtype),
            Discriminator(model.hidden_dim, num_seen, dtype))


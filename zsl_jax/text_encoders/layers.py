"""Transformer pieces shared by the CLIP and BERT text encoders, and reading Hugging Face checkpoints."""

import dataclasses
import json
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gen_runtime.errors import CheckpointError
from gen_runtime.state_dicts import dense_kernel, read_state_dict

# Additive attention bias of masked positions (finite, so fully masked rows cannot make NaNs).
MASKED = float(np.finfo(np.float32).min)

ACTIVATIONS = {
    'quick_gelu': lambda x: x * jax.nn.sigmoid(1.702 * x),
    'gelu': lambda x: jax.nn.gelu(x, approximate=False),
    'gelu_new': lambda x: jax.nn.gelu(x, approximate=True),
    'relu': jax.nn.relu,
}


def layer_norm(eps: float, name: str) -> nn.LayerNorm:
    """LayerNorm with the two-pass variance torch uses."""
    return nn.LayerNorm(epsilon=eps, use_fast_variance=False, name=name)


class SelfAttention(nn.Module):
    """Multi-head scaled dot-product self-attention with an additive bias (B, 1|H, L, L)."""

    num_heads: int

    @nn.compact
    def __call__(self, x: jax.Array, bias: jax.Array) -> jax.Array:
        batch, length, width = x.shape
        head = width // self.num_heads

        def heads(name: str) -> jax.Array:
            return nn.Dense(width, name=name)(x).reshape(batch, length, self.num_heads, head)

        q, k, v = heads('query'), heads('key'), heads('value')
        logits = jnp.einsum('bqhd,bkhd->bhqk', q, k) * head**-0.5 + bias
        weights = jax.nn.softmax(logits.astype(jnp.float32), axis=-1)
        out = jnp.einsum('bhqk,bkhd->bqhd', weights, v).reshape(batch, length, width)
        return nn.Dense(width, name='out')(out)


def padding_bias(attention_mask: jax.Array) -> jax.Array:
    """(B, L) 1/0 mask of real tokens -> (B, 1, 1, L) bias that hides padded keys."""
    return jnp.where(attention_mask[:, None, None, :] > 0, 0.0, MASKED)


def read_config(folder: str) -> dict:
    path = os.path.join(folder, 'config.json')
    if not os.path.isfile(path):
        raise CheckpointError(f'{path} does not exist; point text.encoder_path at a Hugging Face model folder '
                              '(config.json, *.safetensors, tokenizer files)')
    with open(path) as f:
        return json.load(f)


@dataclasses.dataclass(frozen=True)
class TorchWeights:
    """Hugging Face tensors by name (under `prefix`), converted to flax layouts; a missing name raises
    CheckpointError."""

    tensors: dict[str, np.ndarray]
    prefix: str
    source: str

    def get(self, name: str) -> np.ndarray:
        key = self.prefix + name
        if key not in self.tensors:
            raise CheckpointError(f'{self.source} has no tensor {key!r}; it is not a checkpoint of this model '
                                  'or its config.json does not match it')
        return np.asarray(self.tensors[key], np.float32)

    def dense(self, name: str, bias: bool = True) -> dict:
        """torch Linear (out, in) -> flax Dense {'kernel': (in, out), 'bias'}."""
        out = {'kernel': dense_kernel(self.get(f'{name}.weight'))}
        if bias:
            out['bias'] = self.get(f'{name}.bias')
        return out

    def layer_norm(self, name: str) -> dict:
        return {'scale': self.get(f'{name}.weight'), 'bias': self.get(f'{name}.bias')}

    def embedding(self, name: str) -> dict:
        return {'embedding': self.get(f'{name}.weight')}

    def attention(self, query: str, key: str, value: str, out: str) -> dict:
        """The four projections of a SelfAttention from their torch Linear names."""
        return {'query': self.dense(query), 'key': self.dense(key), 'value': self.dense(value), 'out': self.dense(out)}


def open_checkpoint(folder: str, probe: str, prefixes: tuple[str, ...]) -> tuple[dict, TorchWeights]:
    """(config.json, weights) of a Hugging Face folder (weights: gen_runtime.state_dicts.read_state_dict); names
    are read under the first of `prefixes` (possibly '') that holds `probe`, so both bare and wrapped models load."""
    config, tensors = read_config(folder), read_state_dict(folder)
    prefix = next((p for p in prefixes if p + probe in tensors), '')
    return config, TorchWeights(tensors, prefix, folder)

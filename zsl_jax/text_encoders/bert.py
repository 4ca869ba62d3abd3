"""A BERT-style sentence encoder in Flax (Devlin et al. 2019; sentence-transformers pooling).

Word + position + token-type embeddings and LayerNorm, post-LayerNorm transformer layers with GELU,
then the mean of the real tokens' hidden states, L2-normalised: the all-MiniLM-L6-v2 recipe
(Reimers & Gurevych 2019). Reads BertModel folders (config.json + *.safetensors) as transformers
and sentence-transformers write them.
"""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from zsl_jax.text_encoders.layers import ACTIVATIONS, SelfAttention, layer_norm, open_checkpoint, padding_bias


@dataclasses.dataclass(frozen=True)
class BertConfig:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    hidden_act: str

    @classmethod
    def from_hf(cls, c: dict) -> 'BertConfig':
        return cls(vocab_size=c['vocab_size'], hidden_size=c['hidden_size'], intermediate_size=c['intermediate_size'],
                   num_layers=c['num_hidden_layers'], num_heads=c['num_attention_heads'],
                   max_positions=c.get('max_position_embeddings', 512), type_vocab_size=c.get('type_vocab_size', 2),
                   layer_norm_eps=c.get('layer_norm_eps', 1e-12), hidden_act=c.get('hidden_act', 'gelu'))


class BertLayer(nn.Module):
    config: BertConfig

    @nn.compact
    def __call__(self, x: jax.Array, bias: jax.Array) -> jax.Array:
        c = self.config
        x = layer_norm(c.layer_norm_eps, 'attention_norm')(x + SelfAttention(c.num_heads, name='attention')(x, bias))
        h = ACTIVATIONS[c.hidden_act](nn.Dense(c.intermediate_size, name='intermediate')(x))
        return layer_norm(c.layer_norm_eps, 'output_norm')(x + nn.Dense(c.hidden_size, name='output')(h))


class BertSentenceEncoder(nn.Module):
    """(input_ids, attention_mask) -> (last hidden states, L2-normalised mean-pooled sentence embedding)."""

    config: BertConfig

    @nn.compact
    def __call__(self, input_ids: jax.Array, attention_mask: jax.Array) -> tuple[jax.Array, jax.Array]:
        c = self.config
        length = input_ids.shape[1]
        x = (nn.Embed(c.vocab_size, c.hidden_size, name='word_embedding')(input_ids)
             + nn.Embed(c.type_vocab_size, c.hidden_size, name='type_embedding')(jnp.zeros_like(input_ids))
             + nn.Embed(c.max_positions, c.hidden_size, name='position_embedding')(jnp.arange(length))[None])
        x = layer_norm(c.layer_norm_eps, 'embedding_norm')(x)
        bias = padding_bias(attention_mask)
        for i in range(c.num_layers):
            x = BertLayer(c, name=f'layer_{i}')(x, bias)
        mask = attention_mask[..., None].astype(x.dtype)
        mean = jnp.sum(x * mask, axis=1) / jnp.maximum(jnp.sum(mask, axis=1), 1e-9)
        return x, mean / jnp.maximum(jnp.linalg.norm(mean, axis=-1, keepdims=True), 1e-12)


def load_bert(folder: str) -> tuple[BertSentenceEncoder, dict]:
    """The encoder and its Flax params from a Hugging Face BERT folder (with or without 'bert.' names)."""
    hf_config, w = open_checkpoint(folder, 'embeddings.word_embeddings.weight', ('bert.', ''))
    config = BertConfig.from_hf(hf_config)
    params = {'word_embedding': w.embedding('embeddings.word_embeddings'),
              'type_embedding': w.embedding('embeddings.token_type_embeddings'),
              'position_embedding': w.embedding('embeddings.position_embeddings'),
              'embedding_norm': w.layer_norm('embeddings.LayerNorm')}
    for i in range(config.num_layers):
        p = f'encoder.layer.{i}.'
        params[f'layer_{i}'] = {
            'attention': w.attention(p + 'attention.self.query', p + 'attention.self.key',
                                     p + 'attention.self.value', p + 'attention.output.dense'),
            'attention_norm': w.layer_norm(p + 'attention.output.LayerNorm'),
            'intermediate': w.dense(p + 'intermediate.dense'), 'output': w.dense(p + 'output.dense'),
            'output_norm': w.layer_norm(p + 'output.LayerNorm')}
    return BertSentenceEncoder(config), {'params': params}

"""CLIP's text transformer (Radford et al. 2021) in Flax, loading Hugging Face CLIP checkpoints.

Token + position embeddings, pre-LayerNorm causal transformer layers (quick-GELU MLP), a final
LayerNorm; the pooled output is the hidden state at the end-of-text token, optionally mapped by the
bias-free text projection into the joint image-text space. Reads CLIPModel, CLIPTextModel and
CLIPTextModelWithProjection folders (config.json + *.safetensors), as transformers writes them.
"""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from zsl_jax.text_encoders.layers import ACTIVATIONS, MASKED, SelfAttention, layer_norm, open_checkpoint, padding_bias


@dataclasses.dataclass(frozen=True)
class ClipTextConfig:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    max_positions: int
    layer_norm_eps: float
    hidden_act: str
    eos_token_id: int
    projection_dim: int  # 0: no text projection

    @classmethod
    def from_hf(cls, config: dict) -> 'ClipTextConfig':
        """From a CLIPModel config (with text_config) or a CLIPTextModel(WithProjection) config."""
        text = config.get('text_config', config)
        has_projection = 'text_config' in config or 'CLIPTextModelWithProjection' in config.get('architectures', [])
        return cls(vocab_size=text.get('vocab_size', 49408), hidden_size=text.get('hidden_size', 512),
                   intermediate_size=text.get('intermediate_size', 2048),
                   num_layers=text.get('num_hidden_layers', 12), num_heads=text.get('num_attention_heads', 8),
                   max_positions=text.get('max_position_embeddings', 77),
                   layer_norm_eps=text.get('layer_norm_eps', 1e-5), hidden_act=text.get('hidden_act', 'quick_gelu'),
                   eos_token_id=text.get('eos_token_id', 49407),
                   projection_dim=config.get('projection_dim', text.get('projection_dim', 512)) if has_projection
                   else 0)


class ClipLayer(nn.Module):
    config: ClipTextConfig

    @nn.compact
    def __call__(self, x: jax.Array, bias: jax.Array) -> jax.Array:
        c = self.config
        x = x + SelfAttention(c.num_heads, name='attention')(layer_norm(c.layer_norm_eps, 'norm1')(x), bias)
        h = nn.Dense(c.intermediate_size, name='fc1')(layer_norm(c.layer_norm_eps, 'norm2')(x))
        return x + nn.Dense(c.hidden_size, name='fc2')(ACTIVATIONS[c.hidden_act](h))


class ClipTextEncoder(nn.Module):
    """(input_ids, attention_mask) -> (last hidden states, pooled, projected pooled or pooled)."""

    config: ClipTextConfig

    @nn.compact
    def __call__(self, input_ids: jax.Array, attention_mask: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        c = self.config
        length = input_ids.shape[1]
        x = nn.Embed(c.vocab_size, c.hidden_size, name='token_embedding')(input_ids)
        x = x + nn.Embed(c.max_positions, c.hidden_size, name='position_embedding')(jnp.arange(length))[None]
        causal = jnp.where(jnp.tril(jnp.ones((length, length), bool)), 0.0, MASKED)[None, None]
        bias = jnp.maximum(causal + padding_bias(attention_mask), MASKED)
        for i in range(c.num_layers):
            x = ClipLayer(c, name=f'layer_{i}')(x, bias)
        x = layer_norm(c.layer_norm_eps, 'final_norm')(x)
        if c.eos_token_id == 2:  # old configs: the end token is the largest id (transformers does the same)
            end = jnp.argmax(input_ids, axis=-1)
        else:
            end = jnp.argmax(input_ids == c.eos_token_id, axis=-1)
        pooled = x[jnp.arange(x.shape[0]), end]
        if not c.projection_dim:
            return x, pooled, pooled
        return x, pooled, nn.Dense(c.projection_dim, use_bias=False, name='projection')(pooled)


def load_clip_text(folder: str) -> tuple[ClipTextEncoder, dict]:
    """The encoder and its Flax params from a Hugging Face CLIP folder."""
    hf_config, w = open_checkpoint(folder, 'embeddings.token_embedding.weight', ('text_model.', ''))
    config = ClipTextConfig.from_hf(hf_config)
    params = {'token_embedding': w.embedding('embeddings.token_embedding'),
              'position_embedding': w.embedding('embeddings.position_embedding'),
              'final_norm': w.layer_norm('final_layer_norm')}
    for i in range(config.num_layers):
        p = f'encoder.layers.{i}.'
        params[f'layer_{i}'] = {
            'norm1': w.layer_norm(p + 'layer_norm1'), 'norm2': w.layer_norm(p + 'layer_norm2'),
            'attention': w.attention(p + 'self_attn.q_proj', p + 'self_attn.k_proj', p + 'self_attn.v_proj',
                                     p + 'self_attn.out_proj'),
            'fc1': w.dense(p + 'mlp.fc1'), 'fc2': w.dense(p + 'mlp.fc2')}
    if config.projection_dim:  # outside text_model. in CLIPModel and CLIPTextModelWithProjection
        params['projection'] = dataclasses.replace(w, prefix='').dense('text_projection', bias=False)
    return ClipTextEncoder(config), {'params': params}

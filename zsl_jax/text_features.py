"""Class text features of the CUB Wikipedia articles from a sentence or CLIP encoder.

Each article's sentences are encoded one by one; the class feature is the mean sentence embedding,
L2-normalised. The .npz it writes (features, class_ids, names) is read by `benchmark.text_path`, so
these features can replace the TF-IDF class matrix.
"""

import os

import ml_collections
import numpy as np

from gen_runtime.config import resolve_data_path
from gen_runtime.outputs import write_json
from zsl_jax.articles import Article, family_neighbour_rate, read_articles
from zsl_jax.segments import segment_means
from zsl_jax.text_encoders import TextEncoder, make_text_encoder


def article_features(encoder: TextEncoder, articles: list[Article]) -> np.ndarray:
    """(classes, dim): mean of each article's sentence embeddings, L2-normalised."""
    sentences = [s for a in articles for s in a.sentences]
    owner = np.repeat(np.arange(len(articles)), [len(a.sentences) for a in articles])
    means = segment_means(encoder.encode(sentences), owner, len(articles))
    return (means / np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def write_article_features(config: ml_collections.ConfigDict, workdir: str) -> str:
    """Encodes every article of text.articles_dir; writes <workdir>/text_features_<encoder>.npz and its summary
    text_features_<encoder>.json (with zsl_jax.articles.family_neighbour_rate, a sanity score)."""
    folder = os.path.join(resolve_data_path(config, config.data.path), config.text.articles_dir)
    articles = read_articles(folder)
    encoder = make_text_encoder(config.text)
    features = article_features(encoder, articles)
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, f'text_features_{config.text.encoder}.npz')
    np.savez_compressed(path, features=features, class_ids=np.asarray([a.class_id for a in articles]),
                        names=np.asarray([a.name for a in articles]), encoder=np.asarray(encoder.name))
    rate = family_neighbour_rate(features, [a.name for a in articles])
    write_json(os.path.join(workdir, f'text_features_{config.text.encoder}.json'), {
        'features': path, 'feature_shape': list(features.shape), 'encoder': encoder.name,
        'sentences': sum(len(a.sentences) for a in articles), 'family_neighbour_rate': rate,
        'use_with': f'--config.benchmark.text_path={path}'}, echo=True)
    return path

"""TF-IDF class features rebuilt from the raw CUB Wikipedia articles, and a vocabulary comparison.

Tokens are lower-cased alphanumeric runs, stemmed with nltk's Porter stemmer (no download needed);
stop words are scikit-learn's English list (nltk's stop-word corpus would need a download), removed
from the stems (`text.stop_word_stage='stem'`, which reproduces the shipped vocabulary best) or from
the tokens before stemming ('token'); stems shorter than 2 characters are dropped (the shipped
7551-term list has none). Weights are scikit-learn's TF-IDF (smoothed idf, L2-normalised rows), one
row per class article.
"""

import functools
import os
import re
from collections.abc import Callable

import ml_collections
import numpy as np

from gen_runtime.config import resolve_data_path
from gen_runtime.errors import ConfigError
from gen_runtime.outputs import write_json
from zsl_jax import files
from zsl_jax.articles import Article, family_neighbour_rate, read_articles

TOKEN = re.compile(r'[a-z0-9]+')
SHIPPED_TERMS = 'CUB_Porter_7551D_TFIDF_term.mat'
PORTER_MODES = ('ORIGINAL_ALGORITHM', 'MARTIN_EXTENSIONS', 'NLTK_EXTENSIONS')
STOP_WORD_STAGES = ('stem', 'token')


def check_analyzer(porter_mode: str, stop_word_stage: str) -> None:
    """Raises a ConfigError for a stemmer mode or stop-word stage `make_analyzer` does not have."""
    if porter_mode not in PORTER_MODES:
        raise ConfigError(f'text.porter_mode={porter_mode!r} is not one of {", ".join(PORTER_MODES)}')
    if stop_word_stage not in STOP_WORD_STAGES:
        raise ConfigError(f'text.stop_word_stage={stop_word_stage!r} is not one of {", ".join(STOP_WORD_STAGES)}')


def make_analyzer(porter_mode: str, stop_word_stage: str) -> Callable[[str], list[str]]:
    """text -> list of stemmed terms."""
    try:
        from nltk.stem.porter import PorterStemmer
    except ImportError as e:
        raise ConfigError('the TF-IDF text features stem words with nltk, which is not installed '
                          '(pip install nltk)') from e
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    check_analyzer(porter_mode, stop_word_stage)
    stem = functools.lru_cache(maxsize=None)(PorterStemmer(porter_mode).stem)

    def analyze(text: str) -> list[str]:
        tokens = TOKEN.findall(text.lower())
        if stop_word_stage == 'token':
            tokens = [t for t in tokens if t not in ENGLISH_STOP_WORDS]
        stems = (stem(t) for t in tokens)
        return [s for s in stems if len(s) >= 2 and (stop_word_stage == 'token' or s not in ENGLISH_STOP_WORDS)]

    return analyze


def tfidf_features(articles: list[Article], text: ml_collections.ConfigDict) -> tuple[np.ndarray, list[str]]:
    """(classes x terms) TF-IDF matrix of the articles and its vocabulary (sorted terms)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(analyzer=make_analyzer(text.porter_mode, text.stop_word_stage), min_df=text.min_df)
    matrix = vectorizer.fit_transform([a.text for a in articles])
    return matrix.toarray().astype(np.float32), list(vectorizer.get_feature_names_out())


def vocabulary_overlap(ours: list[str], shipped: list[str]) -> dict:
    """Counts and shares of the terms two vocabularies have in common."""
    a, b = set(ours), set(shipped)
    common = a & b
    return {'ours': len(a), 'shipped': len(b), 'common': len(common),
            'share_of_shipped_recovered': len(common) / len(b), 'share_of_ours_in_shipped': len(common) / len(a),
            'shipped_missing_from_ours': sorted(b - a), 'ours_not_shipped_examples': sorted(a - b)[:50]}


def read_shipped_terms(folder: str) -> list[str]:
    path = os.path.join(folder, SHIPPED_TERMS)
    terms = files.load_mat(path, ('TFIDF_Term',), 'TF-IDF vocabulary file', 'check data.path')['TFIDF_Term']
    return [str(t).strip() for t in np.ravel(terms)]


def write_tfidf_report(config: ml_collections.ConfigDict, workdir: str) -> dict:
    """Writes <workdir>/tfidf.npz (features, class_ids, vocabulary) and tfidf_report.json / .md."""
    folder = resolve_data_path(config, config.data.path)
    articles = read_articles(os.path.join(folder, config.text.articles_dir))
    features, vocabulary = tfidf_features(articles, config.text)
    os.makedirs(workdir, exist_ok=True)
    out = os.path.join(workdir, 'tfidf.npz')
    np.savez_compressed(out, features=features, class_ids=np.asarray([a.class_id for a in articles]),
                        vocabulary=np.asarray(vocabulary))
    overlap = vocabulary_overlap(vocabulary, read_shipped_terms(folder))
    report = {'articles': len(articles), 'porter_mode': config.text.porter_mode,
              'family_neighbour_rate': family_neighbour_rate(features, [a.name for a in articles]),
              'stop_word_stage': config.text.stop_word_stage, 'min_df': config.text.min_df,
              'features': out, 'feature_shape': list(features.shape), 'use_with': f'--config.benchmark.text_path={out}',
              **overlap}
    table = (f"| articles | our terms | shipped terms | common | shipped recovered | ours in shipped |\n"
             f"|---|---|---|---|---|---|\n"
             f"| {len(articles)} | {overlap['ours']} | {overlap['shipped']} | {overlap['common']} | "
             f"{100 * overlap['share_of_shipped_recovered']:.2f}% | "
             f"{100 * overlap['share_of_ours_in_shipped']:.2f}% |\n"
             f"\nPorter mode {config.text.porter_mode}, stop words removed at the {config.text.stop_word_stage} "
             f"stage, min_df {config.text.min_df}. Nearest class of the same family: "
             f"{100 * report['family_neighbour_rate']:.1f}%. Shipped terms we miss: "
             f"{', '.join(overlap['shipped_missing_from_ours']) or 'none'}.\n")
    with open(os.path.join(workdir, 'tfidf_report.md'), 'w') as f:
        f.write(table)
    write_json(os.path.join(workdir, 'tfidf_report.json'), report, echo=True)
    return report

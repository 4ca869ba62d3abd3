"""TF-IDF from the raw CUB articles: tokens, stems, weights, and the vocabulary against the shipped list."""

import json
import os

import numpy as np
import pytest

from configs.zsl import base
from zsl_jax.articles import read_articles
from zsl_jax.tfidf import make_analyzer, tfidf_features, vocabulary_overlap, write_tfidf_report

ARTICLES = 'zsl/cub_nab_wiki/CUB2011/wikipedia_HUMAN'


def test_analyzer_stems_and_drops_stop_words():
    text = 'The Black-footed Albatrosses are flying, his 2 nests; 10mm wings.'
    # 'his' stems to 'hi', which is not a stop word: removing stop words from the stems keeps it.
    assert make_analyzer('NLTK_EXTENSIONS', 'stem')(text) == ['black', 'foot', 'albatross', 'fli', 'hi', 'nest',
                                                             '10mm', 'wing']
    assert make_analyzer('NLTK_EXTENSIONS', 'token')(text) == ['black', 'foot', 'albatross', 'fli', 'nest', '10mm',
                                                              'wing']


def test_vocabulary_overlap_by_hand():
    out = vocabulary_overlap(['a', 'b', 'c', 'd'], ['b', 'c', 'e'])
    assert (out['ours'], out['shipped'], out['common']) == (4, 3, 2)
    assert out['share_of_shipped_recovered'] == pytest.approx(2 / 3)
    assert out['share_of_ours_in_shipped'] == pytest.approx(0.5)
    assert out['shipped_missing_from_ours'] == ['e']


def test_tfidf_of_real_articles(data_root):
    articles = read_articles(os.path.join(data_root, ARTICLES), [1, 2, 37])
    assert [a.class_id for a in articles] == [1, 2, 37] and articles[0].name == 'Black_footed_Albatross'
    features, vocabulary = tfidf_features(articles, base.get_config().text)
    assert features.shape == (3, len(vocabulary)) and vocabulary == sorted(vocabulary)
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, rtol=1e-5)
    column = {t: i for i, t in enumerate(vocabulary)}
    # 'albatross' is in both albatross articles but not in the flycatcher's: weight there is 0.
    assert features[0, column['albatross']] > 0 and features[2, column['albatross']] == 0
    assert 'the' not in column and 'albatrosses' not in column


def test_report_recovers_the_shipped_vocabulary(data_root, tmp_path):
    config = base.get_config()
    config.data.root = str(data_root)
    report = write_tfidf_report(config, str(tmp_path))
    assert report['articles'] == 200 and report['shipped'] == 7551
    assert report['share_of_shipped_recovered'] > 0.99
    with np.load(tmp_path / 'tfidf.npz') as f:
        assert f['features'].shape == (200, report['ours'])
        np.testing.assert_array_equal(f['class_ids'], np.arange(1, 201))
    with open(tmp_path / 'tfidf_report.json') as f:
        assert json.load(f)['common'] == report['common']


def test_family_neighbour_rate_by_hand():
    from zsl_jax.articles import family_neighbour_rate

    features = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.2, 1.0], [0.5, 0.5]])
    names = ['Black_footed_Albatross', 'Laysan_Albatross', 'Brewer_Sparrow', 'Fox_Sparrow', 'Bobolink']
    # Bobolink has no family mate and does not count; Albatrosses pair up, Sparrows pair up.
    assert family_neighbour_rate(features, names) == 1.0
    names[3] = 'Fox_Albatross'  # now Brewer_Sparrow has no mate; Fox_Albatross's nearest is Brewer_Sparrow
    assert family_neighbour_rate(features, names) == pytest.approx(2 / 3)

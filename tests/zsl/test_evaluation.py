"""The jitted evaluation against straightforward reimplementations of the originals' numpy code."""

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from zsl_jax import evaluation
from zsl_jax.models import Generator
from zsl_jax.problem import ZslProblem


def _cosine(a, b):
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return a @ b.T


def _original_knn(queries, gallery, per_class, k):
    """eval_fakefeat_test of train_CUB.py: argsort, integer division, majority by np.unique."""
    idx = np.argsort(-_cosine(queries, gallery), axis=1)
    label_mat = (idx[:, :k] / per_class).astype(int)
    preds = np.zeros(len(queries), int)
    for i, row in enumerate(label_mat):
        values, counts = np.unique(row, return_counts=True)
        preds[i] = values[np.argmax(counts)]
    return preds


def test_knn_vote_matches_the_original_procedure():
    rng = np.random.default_rng(0)
    per_class, classes = 12, 7
    gallery = rng.normal(size=(classes * per_class, 10)).astype(np.float32)
    queries = rng.normal(size=(50, 10)).astype(np.float32)
    ours = np.asarray(evaluation.knn_vote(jnp.asarray(queries), jnp.asarray(gallery), per_class, classes, 5, chunk=16))
    np.testing.assert_array_equal(ours, _original_knn(queries, gallery, per_class, 5))


def test_seen_unseen_curve_matches_the_argmax_sweep():
    rng = np.random.default_rng(1)
    num_seen, num_unseen = 6, 4
    seen_scores = rng.uniform(-1, 1, (40, 10)).astype(np.float32)
    unseen_scores = rng.uniform(-1, 1, (30, 10)).astype(np.float32)
    seen_labels, unseen_labels = rng.integers(0, num_seen, 40), rng.integers(0, num_unseen, 30)
    lambdas = np.arange(-2, 2, 0.01).astype(np.float32)
    acc_s, acc_u = evaluation.seen_unseen_curve(jnp.asarray(seen_scores), jnp.asarray(seen_labels),
                                                jnp.asarray(unseen_scores), jnp.asarray(unseen_labels), num_seen,
                                                jnp.asarray(lambdas))
    for i, lam in enumerate(lambdas):  # eval_fakefeat_GZSL: add lambda to the unseen columns, argmax
        s = seen_scores.copy()
        s[:, num_seen:] += lam
        u = unseen_scores.copy()
        u[:, num_seen:] += lam
        assert acc_s[i] == pytest.approx(np.mean(np.argmax(s, 1) == seen_labels))
        assert acc_u[i] == pytest.approx(np.mean(np.argmax(u, 1) == unseen_labels + num_seen))
    assert acc_s[0] > 0.0 and acc_u[0] == 0.0 and acc_s[-1] == 0.0


def test_area_under_curve_and_harmonic_mean_by_hand():
    # a straight line from (u=0, s=1) to (u=1, s=0) encloses half the unit square.
    assert evaluation.area_under_curve(np.array([1.0, 0.5, 0.0]), np.array([0.0, 0.5, 1.0])) == pytest.approx(50.0)
    assert evaluation.harmonic_mean(30.0, 60.0) == pytest.approx(40.0)
    assert evaluation.harmonic_mean(0.0, 0.0) == 0.0


def test_per_sample_and_per_class_accuracy_by_hand():
    pred, labels = jnp.array([0, 0, 0, 1, 2, 2]), jnp.array([0, 0, 0, 0, 2, 1])
    per_sample, per_class = evaluation.accuracies(pred, labels, 4)
    assert float(per_sample) == pytest.approx(4 / 6)
    # class 0: 3/4, class 1: 0/1, class 2: 1/1; class 3 absent.
    assert float(per_class) == pytest.approx((0.75 + 0 + 1) / 3)


def test_evaluator_gives_perfect_scores_to_a_generator_of_the_true_classes():
    """With a generator that outputs the text itself and test features equal to their class text,
    every metric is 100% (AUC: the curve reaches the top-right corner)."""
    rng = np.random.default_rng(2)
    text = np.eye(8, dtype=np.float32)[:, :8] + 0.01 * rng.uniform(size=(8, 8)).astype(np.float32)
    seen, unseen = text[:5], text[5:]
    problem = ZslProblem('identity', train_features=seen, train_labels=np.arange(5), seen_text=seen,
                         unseen_text=unseen, unseen_features=np.repeat(unseen, 3, 0),
                         unseen_labels=np.repeat(np.arange(3), 3), seen_test_features=np.repeat(seen, 2, 0),
                         seen_test_labels=np.repeat(np.arange(5), 2)).checked()

    class Echo(Generator):
        def __call__(self, z, text):
            return text + 0.0 * z[:, :1]

    settings = ml_collections.ConfigDict({'samples_per_class': 4, 'knn': 3, 'chunk': 4, 'gbu': True,
                                          'gzsl_lambda_min': -1.0, 'gzsl_lambda_max': 1.0, 'gzsl_lambda_step': 0.1})
    import jax

    result = evaluation.Evaluator(Echo(8, 8, 0), problem, settings, 2)({}, jax.random.key(0))
    assert result.metrics['zsl_top1'] == pytest.approx(100.0)
    assert result.metrics['gbu_h'] == pytest.approx(100.0)
    assert result.acc_seen.max() == pytest.approx(1.0) and result.acc_unseen.max() == pytest.approx(1.0)
    assert result.metrics['gzsl_auc'] > 90.0

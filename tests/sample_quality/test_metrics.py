"""FID, KID, Inception Score and precision/recall against independent computations (no Inception)."""

import itertools
import math

import numpy as np
import pytest
import scipy.linalg

from gen_runtime.sample_quality import metrics
from gen_runtime.sample_quality.statistics import FeatureMoments, FeatureReservoir, InceptionScoreSums, accumulate


def random_spd(rng, dim, rank=None):
    a = rng.normal(size=(dim, rank or dim))
    return a @ a.T / dim + (0 if rank else 0.1 * np.eye(dim))


def test_fid_of_diagonal_gaussians_is_closed_form():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    var1, var2 = rng.uniform(0.1, 3, 6), rng.uniform(0.1, 3, 6)
    # Commuting covariances: Tr((S1 S2)^(1/2)) = sum sqrt(var1 var2).
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(var1 + var2 - 2 * np.sqrt(var1 * var2))
    assert metrics.frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2)) == pytest.approx(expected, rel=1e-12)


def test_fid_matches_scipy_sqrtm_on_full_covariances():
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.normal(size=40), rng.normal(size=40)
    s1, s2 = random_spd(rng, 40), random_spd(rng, 40)
    root = scipy.linalg.sqrtm(s1 @ s2).real
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * root)
    assert metrics.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)


def test_fid_is_zero_for_identical_and_finite_for_singular_statistics():
    rng = np.random.default_rng(2)
    mu = rng.normal(size=30)
    singular = random_spd(rng, 30, rank=5)  # fewer samples than dimensions
    assert abs(metrics.frechet_distance(mu, singular, mu, singular)) < 1e-12 * np.trace(singular)
    other = random_spd(rng, 30, rank=7)
    value = metrics.frechet_distance(mu, singular, mu + 1, other)
    reference = np.sum(np.ones(30)) + np.trace(singular + other - 2 * scipy.linalg.sqrtm(singular @ other).real)
    assert np.isfinite(value) and value == pytest.approx(reference, rel=1e-6)
    zero = np.zeros((30, 30))  # rank 0: the trace term vanishes
    assert metrics.frechet_distance(mu, zero, mu, other) == pytest.approx(np.trace(other), rel=1e-12)


def test_streamed_moments_equal_numpy_and_recover_gaussian_fid():
    rng = np.random.default_rng(3)
    mu1, mu2 = np.array([1e3, -2.0, 0.5]), np.array([1e3 + 1.0, -1.0, 0.0])  # a large offset tests the shift
    cov1, cov2 = random_spd(rng, 3), random_spd(rng, 3)
    x = rng.multivariate_normal(mu1, cov1, 200_000)
    y = rng.multivariate_normal(mu2, cov2, 200_000)
    mx, my = FeatureMoments(3), FeatureMoments(3)
    for chunk in np.array_split(x, 7):
        mx.update(chunk)
    for chunk in np.array_split(y, 3):
        my.update(chunk)
    np.testing.assert_allclose(mx.mean, x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(mx.covariance, np.cov(x, rowvar=False), rtol=1e-9, atol=1e-12)
    closed_form = np.sum((mu1 - mu2) ** 2) + np.trace(cov1 + cov2 - 2 * scipy.linalg.sqrtm(cov1 @ cov2).real)
    estimate = metrics.frechet_distance(mx.mean, mx.covariance, my.mean, my.covariance)
    assert estimate == pytest.approx(closed_form, abs=0.02)


def direct_mmd2(x, y):
    """Unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3, written out as the double sums."""
    d = x.shape[1]
    k = lambda a, b: (float(np.dot(a, b)) / d + 1.0) ** 3
    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_polynomial_mmd_matches_double_sum():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(12, 5)), rng.normal(0.3, 1.2, size=(15, 5))
    assert metrics.polynomial_mmd2(x, y) == pytest.approx(direct_mmd2(x, y), rel=1e-12)


def test_kid_with_whole_set_subsets_is_the_full_mmd():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(20, 4)), rng.normal(0.5, 1.0, size=(20, 4))
    mean, std = metrics.kernel_inception_distance(x, y, num_subsets=4, subset_size=20)
    assert mean == pytest.approx(direct_mmd2(x, y), rel=1e-10)
    assert std < 1e-10  # every subset is a permutation of the full sets


def test_kid_separates_equal_from_shifted_distributions():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(600, 8)), rng.normal(size=(600, 8))
    same, same_std = metrics.kernel_inception_distance(x, y, 20, 200)
    shifted, _ = metrics.kernel_inception_distance(x, y + 0.5, 20, 200)
    assert abs(same) < 3 * same_std + 1e-3
    assert shifted > 10 * (abs(same) + same_std)
    with pytest.raises(ValueError, match='subsets of 700'):
        metrics.kernel_inception_distance(x, y, 2, 700)


def hand_inception_score(logits, splits):
    """exp(mean KL(p(y|x) || p(y))) per split (split s = samples s, s + splits, ...), by explicit loops."""
    scores = []
    for s in range(splits):
        rows = logits[s::splits]
        probs = [np.exp(r - r.max()) / np.exp(r - r.max()).sum() for r in rows]
        marginal = sum(probs) / len(probs)
        kl = [sum(p[c] * math.log(p[c] / marginal[c]) for c in range(len(p)) if p[c] > 0) for p in probs]
        scores.append(math.exp(sum(kl) / len(kl)))
    return np.mean(scores), np.std(scores)


def test_inception_score_matches_hand_computation_over_uneven_batches():
    rng = np.random.default_rng(7)
    logits = rng.normal(0, 3, size=(53, 11))
    sums = InceptionScoreSums(splits=10, num_classes=11)
    for chunk in np.array_split(logits, [5, 6, 30]):
        sums.update(chunk)
    mean, std = metrics.inception_score(sums)
    expected_mean, expected_std = hand_inception_score(logits, 10)
    assert mean == pytest.approx(expected_mean, rel=1e-10)
    assert std == pytest.approx(expected_std, rel=1e-8)


def test_inception_score_of_known_predictions():
    # Confident, evenly spread predictions over C classes give IS = C; identical predictions give 1.
    confident = np.full((40, 4), -1e4)
    confident[np.arange(40), (np.arange(40) // 2) % 4] = 0.0  # each split (every 2nd sample) sees all 4
    for logits, expected in ((confident, 4.0), (np.tile([0.3, 2.0, -1.0, 0.0], (40, 1)), 1.0)):
        sums = InceptionScoreSums(splits=2, num_classes=4)
        sums.update(logits)
        assert metrics.inception_score(sums)[0] == pytest.approx(expected, rel=1e-9)


def brute_precision_recall(real, fake, k):
    def radii(points):
        d = np.linalg.norm(points[:, None] - points[None], axis=-1)
        return np.sort(d, axis=1)[:, k]  # column 0 is the point itself

    def covered(queries, centres, r):
        return np.mean([any(np.linalg.norm(q - c) <= rc for c, rc in zip(centres, r, strict=True)) for q in queries])

    return covered(fake, real, radii(real)), covered(real, fake, radii(fake))


def test_precision_recall_matches_brute_force():
    rng = np.random.default_rng(8)
    real = rng.normal(size=(60, 6)).astype(np.float32)
    fake = rng.normal(0.4, 0.8, size=(45, 6)).astype(np.float32)
    for k, block in itertools.product((1, 3), (7, 512)):
        got = metrics.precision_recall(real, fake, k=k, block=block)
        assert got == pytest.approx(brute_precision_recall(real.astype(np.float64), fake.astype(np.float64), k))


def test_precision_recall_extremes():
    rng = np.random.default_rng(9)
    real = rng.normal(size=(30, 4)).astype(np.float32)
    assert metrics.precision_recall(real, real.copy(), k=3) == (1.0, 1.0)
    assert metrics.precision_recall(real, real + 100.0, k=3) == (0.0, 0.0)


def test_reservoir_keeps_a_uniform_subset():
    stream = np.arange(20, dtype=np.float32)[:, None]
    counts = np.zeros(20)
    for seed in range(2000):
        reservoir = FeatureReservoir(capacity=5, dim=1, seed=seed)
        for chunk in np.array_split(stream, [3, 4, 11]):
            reservoir.update(chunk)
        kept = reservoir.rows[:, 0].astype(int)
        assert len(set(kept)) == 5
        counts[kept] += 1
    np.testing.assert_allclose(counts / 2000, 0.25, atol=0.04)
    small = FeatureReservoir(capacity=50, dim=1, seed=0)
    small.update(stream)
    np.testing.assert_array_equal(small.rows, stream)


def test_accumulate_collects_every_statistic():
    rng = np.random.default_rng(10)
    pool, logits = rng.normal(size=(25, 3)), rng.normal(size=(25, 5))
    stats = accumulate(((pool[i:i + 4], logits[i:i + 4]) for i in range(0, 25, 4)), keep_features=10, seed=0,
                       is_splits=5)
    assert stats.count == 25 and len(stats.features.rows) == 10
    np.testing.assert_allclose(stats.moments.mean, pool.mean(axis=0))
    assert metrics.inception_score(stats.score_sums)[0] == pytest.approx(hand_inception_score(logits, 5)[0])
    with pytest.raises(ValueError, match='no images'):
        accumulate(iter([]), keep_features=0, seed=0)

"""Streaming accumulators over feature batches: Gaussian moments (FID), a uniform random subset of the
feature vectors (KID, precision/recall) and the per-split sums of the Inception Score.

Each keeps O(dim^2), O(capacity x dim) or O(splits x classes) numbers however many images stream by.
"""

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy.special import log_softmax


class FeatureMoments:
    """Running mean and covariance of feature vectors in float64.

    Sums are taken about a fixed shift (the first batch's mean) to avoid the cancellation of
    E[x x^T] - mu mu^T; the covariance is the unbiased one (divisor n - 1), as numpy's np.cov.
    """

    def __init__(self, dim: int) -> None:
        self.count = 0
        self._shift = np.zeros(dim)
        self._sum = np.zeros(dim)
        self._outer = np.zeros((dim, dim))

    def update(self, features: np.ndarray) -> None:
        x = np.asarray(features, np.float64)
        if self.count == 0 and len(x):
            self._shift = x.mean(axis=0)
        x = x - self._shift
        self.count += len(x)
        self._sum += x.sum(axis=0)
        self._outer += x.T @ x

    @property
    def mean(self) -> np.ndarray:
        return self._shift + self._sum / self.count

    @property
    def covariance(self) -> np.ndarray:
        if self.count < 2:
            raise ValueError(f'a covariance needs at least 2 feature vectors, got {self.count}')
        centred_sum = self._sum / self.count
        return (self._outer - self.count * np.outer(centred_sum, centred_sum)) / (self.count - 1)


class FeatureReservoir:
    """A uniform random subset of at most `capacity` rows of a stream (Vitter's algorithm R), seeded."""

    def __init__(self, capacity: int, dim: int, seed: int) -> None:
        self.capacity = capacity
        self.seen = 0
        self._rows = np.zeros((capacity, dim), np.float32)
        self._rng = np.random.default_rng(seed)

    def update(self, rows: np.ndarray) -> None:
        rows = np.asarray(rows, np.float32)
        fill = min(max(self.capacity - self.seen, 0), len(rows))
        self._rows[self.seen:self.seen + fill] = rows[:fill]
        if fill < len(rows):
            positions = self.seen + np.arange(fill, len(rows))
            slots = self._rng.integers(0, positions + 1)  # row at stream position t replaces slot j ~ U{0..t}
            for i in np.flatnonzero(slots < self.capacity):
                self._rows[slots[i]] = rows[fill + i]
        self.seen += len(rows)

    @property
    def rows(self) -> np.ndarray:
        return self._rows[:min(self.seen, self.capacity)]


class InceptionScoreSums:
    """Per-split sums for the Inception Score; sample t goes to split t mod `splits`.

    For a split S with p_x = softmax(logits_x): IS_S = exp(mean_x KL(p_x || p_S)), p_S = mean_x p_x,
    and mean_x KL(p_x || p_S) = mean_x sum_y p_x log p_x - sum_y p_S log p_S, so the sums of p_x and
    of sum_y p_x log p_x over each split are all that is kept. Splitting round-robin instead of into
    contiguous chunks (as the original code does) gives equally sized, equally distributed splits
    without knowing the sample count in advance.
    """

    def __init__(self, splits: int, num_classes: int) -> None:
        self.splits = splits
        self.seen = 0
        self.counts = np.zeros(splits, np.int64)
        self.prob_sums = np.zeros((splits, num_classes))
        self.neg_entropy_sums = np.zeros(splits)

    def update(self, logits: np.ndarray) -> None:
        log_p = log_softmax(np.asarray(logits, np.float64), axis=-1)
        p = np.exp(log_p)
        split = (self.seen + np.arange(len(p))) % self.splits
        np.add.at(self.counts, split, 1)
        np.add.at(self.prob_sums, split, p)
        np.add.at(self.neg_entropy_sums, split, (p * log_p).sum(axis=-1))
        self.seen += len(p)


@dataclass
class StreamStatistics:
    """What one pass over a stream of Inception outputs leaves for the metrics."""

    moments: FeatureMoments
    features: FeatureReservoir
    score_sums: InceptionScoreSums | None

    @property
    def count(self) -> int:
        return self.moments.count


def accumulate(outputs: Iterable[tuple[np.ndarray, np.ndarray | None]], *, keep_features: int, seed: int,
               is_splits: int = 0) -> StreamStatistics:
    """Consumes (pool_3, logits) batches: moments of all features, a random subset of `keep_features`
    feature vectors, and Inception Score sums over `is_splits` splits (0: none; needs logits)."""
    stats = None
    for pool, logits in outputs:
        if stats is None:
            score_sums = InceptionScoreSums(is_splits, logits.shape[1]) if is_splits else None
            dim = pool.shape[1]
            stats = StreamStatistics(FeatureMoments(dim), FeatureReservoir(keep_features, dim, seed), score_sums)
        stats.moments.update(pool)
        stats.features.update(pool)
        if stats.score_sums is not None:
            stats.score_sums.update(logits)
    if stats is None:
        raise ValueError('no images were given')
    return stats

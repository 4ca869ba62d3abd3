"""Per-group means of rows on the host (numpy), for class centroids and per-article text features."""

import numpy as np


def segment_means(values: np.ndarray, ids: np.ndarray, num_segments: int) -> np.ndarray:
    """(num_segments, dim) float64 mean of the rows of each id in [0, num_segments); 0 for empty groups."""
    order = np.argsort(ids, kind='stable')
    sorted_ids = ids[order]
    starts = np.searchsorted(sorted_ids, np.arange(num_segments))
    counts = np.bincount(ids, minlength=num_segments)
    sums = np.zeros((num_segments, values.shape[1]), np.float64)
    present = counts > 0
    sums[present] = np.add.reduceat(values[order].astype(np.float64), starts[present], axis=0)
    return sums / np.maximum(counts, 1)[:, None]
